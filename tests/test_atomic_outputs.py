"""Crash-safe outputs: reports, manifests, feature-cache entries, model packages, ONNX graphs,
timelines, prediction files and checkpoints are written to a temporary file and renamed. A crash
mid-write (simulated by a writer that writes half and raises, or by SIGKILL) leaves the previous
file intact and nothing partial under the final name."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import emovox
from emovox.io import atomic_folder, atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text, read_json

PACKAGE = Path(emovox.__file__).parent


class Crash(OSError):
    """A simulated failure mid-write (disk full, power cut, kill)."""


@pytest.fixture
def crash_path_writes(monkeypatch):
    """Path.write_bytes writes half of the data, then fails."""
    def write_bytes(self, data):
        with open(self, "wb") as fh:
            fh.write(bytes(data)[: len(data) // 2])
        raise Crash("simulated crash mid-write")

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def leftovers(folder: Path, final: str) -> list[str]:
    """Files next to ``final`` that are not it (temporary files a writer forgot)."""
    return sorted(p.name for p in folder.iterdir() if p.name != final)


# ------------------------------------------------------------------------------- emovox.io
@pytest.mark.parametrize("write", [lambda p: atomic_write_text(p, "new " * 1000),
                                   lambda p: atomic_write_bytes(p, b"new " * 1000),
                                   lambda p: atomic_write_json(p, {"new": list(range(1000))})])
def test_crash_mid_write_keeps_the_previous_file(tmp_path, crash_path_writes, write):
    final = tmp_path / "out.json"
    with open(final, "w") as fh:
        fh.write('{"old": true}\n')
    with pytest.raises(Crash):
        write(final)
    assert read_json(final) == {"old": True} and leftovers(tmp_path, "out.json") == []
    with pytest.raises(Crash):
        write(tmp_path / "fresh.json")
    assert not (tmp_path / "fresh.json").exists()


def test_unserialisable_json_never_touches_the_file(tmp_path):
    final = atomic_write_json(tmp_path / "r.json", {"old": 1})
    with pytest.raises(TypeError):
        atomic_write_json(final, {"bad": object()})
    assert read_json(final) == {"old": 1} and leftovers(tmp_path, "r.json") == []


def test_sigkill_mid_write_leaves_the_previous_file(tmp_path):
    final = atomic_write_text(tmp_path / "report.md", "old report\n")
    script = ("import sys, time\nfrom emovox.io import atomic_path\n"
              "with atomic_path(sys.argv[1]) as tmp:\n"
              "    fh = open(tmp, 'w'); fh.write('half of a new rep'); fh.flush()\n"
              "    print('writing', flush=True); time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(final)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert final.read_text() == "old report\n"
    temps = leftovers(tmp_path, "report.md")
    assert len(temps) == 1 and temps[0].startswith(".report.md.") and temps[0].endswith(".tmp")  # hidden, never trusted
    atomic_write_text(final, "new report\n")  # the next run simply replaces it
    assert final.read_text() == "new report\n"


def test_atomic_files_get_normal_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        fresh = atomic_write_text(tmp_path / "a.txt", "x")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644  # not mkstemp's private 0600
        os.chmod(fresh, 0o640)
        atomic_write_text(fresh, "y")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o640  # a replaced file keeps its mode
    finally:
        os.umask(mask)


def test_atomic_path_removes_its_temp_file_when_the_writer_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "plot.png", suffix=".png") as tmp:
            tmp.write_bytes(b"\x89PNG partial")
            raise RuntimeError("savefig failed")
    assert list(tmp_path.iterdir()) == []


def test_corrupt_state_file_raises_a_named_error(tmp_path):
    from emovox.errors import EmovoxError

    (tmp_path / "result.json").write_text('{"metrics": {"ua": 0.5')
    with pytest.raises(EmovoxError, match=r"result.json: not a valid JSON file") as info:
        read_json(tmp_path / "result.json")
    assert isinstance(info.value, ValueError)  # callers that caught json's ValueError still do


# ------------------------------------------------------------------------- product outputs
def test_manifest(tmp_path, wav_file, crash_path_writes):
    from emovox.corpora import Utterance, read_manifest, write_manifest

    folder = tmp_path / "manifests"
    folder.mkdir()
    with open(folder / "m.csv", "w") as fh:
        fh.write(f"id,path,speaker,label\na,{wav_file},s1,angry\n")
    new = [Utterance("a", str(wav_file), "s1", "angry"), Utterance("b", str(wav_file), "s2", "sad")]
    with pytest.raises(Crash):
        write_manifest(folder / "m.csv", new)
    assert [u.id for u in read_manifest(folder / "m.csv")] == ["a"] and leftovers(folder, "m.csv") == []


def test_report(tmp_path, monkeypatch):
    from emovox.evaluation.metrics import classification_metrics
    from emovox.evaluation.report import write_report

    folds = [{"fold": f"f{i}", "metrics": classification_metrics(["angry", "sad", "sad"], ["angry", "sad", p])}
             for i, p in enumerate(("sad", "angry"))]
    write_report(tmp_path, folds, ["angry", "sad"], title="old")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(before) == ["confusion.png", "report.json", "report.md"]

    from matplotlib.figure import Figure

    def savefig(self, fname, **kw):
        Path(fname).open("wb").write(b"\x89PNG\r\n half")
        raise Crash("killed while plotting")

    monkeypatch.setattr(Figure, "savefig", savefig)
    with pytest.raises(Crash):
        write_report(tmp_path, folds[:1], ["angry", "sad"], title="new")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_feature_cache_entry(tmp_path, monkeypatch):
    import safetensors.numpy

    from emovox.cache import FeatureCache

    cache = FeatureCache(tmp_path, "logmel-test")
    cache.put("ab12", {"features": np.ones((5, 3), np.float32)})

    def save_file(tensors, filename, metadata=None):
        Path(filename).open("wb").write(b"\x10\x00\x00\x00 half a header")
        raise Crash("killed while caching")

    monkeypatch.setattr(safetensors.numpy, "save_file", save_file)
    with pytest.raises(Crash):
        cache.put("ab12", {"features": np.zeros((9, 3), np.float32)})
    with pytest.raises(Crash):
        cache.put("cd34", {"features": np.zeros((9, 3), np.float32)})
    np.testing.assert_array_equal(cache.get("ab12")["features"], np.ones((5, 3), np.float32))
    assert cache.get("cd34") is None  # a crashed entry is a miss, never a half-read
    assert sorted(p.name for p in (tmp_path / "logmel-test").rglob("*") if p.is_file()) == ["ab12.safetensors"]


def test_model_package(tmp_path, monkeypatch):
    from emovox.models import load_model
    from tests.product_fixtures import make_tiny_model

    folder = make_tiny_model(tmp_path / "model", seed=0)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    real, calls = Path.write_bytes, []

    def write_bytes(self, data):
        calls.append(self)
        if len(calls) == 2:  # weights written, config half-written
            real(self, data[: len(data) // 2])
            raise Crash("killed while saving the model")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)
    with pytest.raises(Crash):
        make_tiny_model(folder, seed=1)
    assert len(calls) == 2 and calls[0].parent.name.endswith(".tmp")  # written inside the temporary folder
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert leftovers(tmp_path, "model") == []  # the temporary package folder is gone
    load_model(folder)  # still a complete, loadable package


def test_atomic_folder_replaces_the_old_folder_whole(tmp_path):
    old = tmp_path / "pkg"
    old.mkdir()
    (old / "stale.txt").write_text("old")
    mask = os.umask(0o022)
    try:
        with atomic_folder(old) as tmp:
            (tmp / "sub").mkdir()
            (tmp / "sub" / "a.bin").write_bytes(b"new")
            (tmp / "b.txt").write_text("new")
            os.chmod(tmp / "b.txt", 0o600)  # some writers make private files
    finally:
        os.umask(mask)
    assert sorted(p.relative_to(old).as_posix() for p in old.rglob("*")) == ["b.txt", "sub", "sub/a.bin"]
    assert [stat.S_IMODE(p.stat().st_mode) for p in (old, old / "sub", old / "b.txt")] == [0o755, 0o755, 0o644]
    assert leftovers(tmp_path, "pkg") == []


def test_atomic_folder_keeps_the_old_folder_when_the_writer_or_the_rename_fails(tmp_path, monkeypatch):
    import emovox.io as eio

    old = tmp_path / "pkg"
    old.mkdir()
    (old / "a.txt").write_text("old")
    with pytest.raises(Crash):
        with atomic_folder(old) as tmp:
            (tmp / "a.txt").write_text("half")
            raise Crash("killed while writing the package")
    assert (old / "a.txt").read_text() == "old" and leftovers(tmp_path, "pkg") == []

    real, calls = os.replace, []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the old folder is moved aside; renaming the new one into place fails
            raise Crash("disk gone")
        real(src, dst)

    monkeypatch.setattr(eio.os, "replace", replace)
    with pytest.raises(Crash):
        with atomic_folder(old) as tmp:
            (tmp / "a.txt").write_text("new")
    assert (old / "a.txt").read_text() == "old" and leftovers(tmp_path, "pkg") == []


def test_model_package_folder_has_normal_permissions(tmp_path):
    from tests.product_fixtures import make_tiny_model

    mask = os.umask(0o022)
    try:
        folder = make_tiny_model(tmp_path / "model")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_onnx_graph(tmp_path, monkeypatch, crash_path_writes):
    import emovox.export as export

    (tmp_path / "model.onnx").write_text("old graph")  # str write: not the patched write_bytes
    monkeypatch.setattr(export, "export_bytes", lambda folder: b"new graph " * 500)
    with pytest.raises(Crash):
        export.export_onnx(tmp_path)
    assert (tmp_path / "model.onnx").read_text() == "old graph" and leftovers(tmp_path, "model.onnx") == []


def test_timeline_outputs(tmp_path, monkeypatch, crash_path_writes):
    from matplotlib.figure import Figure

    from emovox.timeline import Timeline

    tl = Timeline(source="rec.wav", duration=2.0, labels=["angry", "sad"], window=2.0, hop=1.0, vad="none",
                  min_speech=0.3)
    for name in ("t.json", "t.csv", "t.png"):
        (tmp_path / name).write_text("old")

    def savefig(self, fname, **kw):
        Path(fname).open("wb").write(b"\x89PNG half")
        raise Crash("killed while plotting")

    monkeypatch.setattr(Figure, "savefig", savefig)
    for write in (lambda: tl.write_json(tmp_path / "t.json"), lambda: tl.write_csv(tmp_path / "t.csv"),
                  lambda: tl.plot(tmp_path / "t.png")):
        with pytest.raises(Crash):
            write()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json", "t.png"]
    assert all((tmp_path / n).read_text() == "old" for n in ("t.json", "t.csv", "t.png"))


def test_predict_output_file(tmp_path, wav_file, request):
    from emovox.cli import main
    from tests.product_fixtures import make_tiny_model

    model = make_tiny_model(tmp_path / "m")
    request.getfixturevalue("crash_path_writes")  # writes crash from here on
    out = tmp_path / "results.json"
    out.write_text("[previous results]")
    with pytest.raises(Crash):
        main(["predict", str(wav_file), "--json", "-o", str(out), "--model", str(model), "--threads", "1"])
    assert out.read_text() == "[previous results]" and leftovers(tmp_path, "results.json") == ["m", "tone.wav"]


def test_training_checkpoint(tmp_path, monkeypatch):
    import torch

    from emovox.config import recipe_from_dict
    from emovox.training.experiment import _trainer

    trainer = _trainer(recipe_from_dict({"data": {"manifest": "m.csv"}, "train": {"progress": False}}),
                       tmp_path, [], False)
    io = trainer.strategy.checkpoint_io
    last = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "state_dict": {"w": torch.ones(3)}}, last)

    def save(obj, f, *a, **kw):
        Path(f).open("wb").write(b"PK\x03\x04 half a checkpoint")
        raise Crash("SIGKILL while checkpointing")

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(Crash):
        io.save_checkpoint({"epoch": 2, "state_dict": {"w": torch.zeros(3)}}, last)
    assert torch.load(last, weights_only=True)["epoch"] == 1 and leftovers(tmp_path, "last.ckpt") == []


# --------------------------------------------------------------------------- static guard
WRITE_CALL = re.compile(r"\.write_text\(|\.write_bytes\(|open\([^)]*[\"'][wax]b?[\"']|savefig\(|torch\.save\(|"
                        r"save_file\(|np\.save\(|\.save_pretrained\(|safetensors\.torch\.save_model\(|to_csv\(")


def test_every_file_writer_in_the_package_writes_to_a_temporary_path():
    """Any direct write in emovox/ targets a temporary path (``tmp``) that is renamed afterwards;
    everything else goes through emovox.io. (Test-data generators in emovox/testing are exempt.)"""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "io.py" or rel.startswith("testing/"):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            code = line.split("#", 1)[0]
            if WRITE_CALL.search(code) and "tmp" not in code and not code.lstrip().startswith("def "):
                offenders.append(f"{rel}: {line.strip()}")
    # archive_output appends records to the output of `emovox predict -o` by design (locked, then
    # append-only; a resumed run truncates a torn last record or header: tested in tests/test_archive.py)
    assert offenders == ['archive_output.py: fh = open(target, "a", encoding="utf-8", newline="")  '
                         '# noqa: SIM115 - kept open until close()']


def test_normal_mode_follows_the_umask():
    from emovox.io import normal_mode

    mask = os.umask(0o027)
    try:
        assert normal_mode() == 0o640 and normal_mode(directory=True) == 0o750
    finally:
        os.umask(mask)
