"""Archive prediction (:mod:`emovox.archive`): inputs, incremental resumable output, workers, order.

Tiny generated clips and the tiny random model; ``--vad none`` where the speech fraction is not
the point (it is the slow part of a tiny model's prediction)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import soundfile as sf

from emovox.archive import ModelSpec, Problem, Progress, iter_inputs, predict_archive, read_manifest, unique
from emovox.archive_output import FileRows, ResultWriter
from emovox.errors import FileFormatError, ManifestError, ModelError
from tests.conftest import REPO, make_tone
from tests.product_fixtures import LABELS  # noqa: F401


def make_clips(folder: Path, n: int, seconds: float = 0.4) -> list[Path]:
    """``n`` distinct short tones in two sub-folders, plus one unreadable 'audio' file."""
    paths = []
    for i in range(n):
        p = folder / f"d{i % 2}" / f"c{i:03d}.wav"
        p.parent.mkdir(parents=True, exist_ok=True)
        sf.write(p, make_tone(seconds, freq=120 + 17 * i, seed=i), 16000)
        paths.append(p)
    (folder / "d1" / "broken.wav").write_bytes(b"RIFF not really a wave file")
    return paths


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("archive")
    make_clips(folder, 12)
    return folder


def spec(model: Path) -> ModelSpec:
    return ModelSpec(model=str(model), vad="none")


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


# ------------------------------------------------------------------------------------ inputs
def test_inputs_walk_sorted_globs_manifests_and_problems(clips, tmp_path):
    items = list(iter_inputs([str(clips), str(clips / "nomatch*.wav"), str(tmp_path)]))
    files = [i for i in items if isinstance(i, str)]
    assert files[0].endswith("d0/c000.wav") and files[-1].endswith("d1/c011.wav")
    assert files == sorted(files) and len(files) == 13 and any(f.endswith("broken.wav") for f in files)
    problems = [i for i in items if isinstance(i, Problem)]
    assert [p.problem for p in problems] == ["no files match this pattern",
                                             problems[1].problem] and "no audio files" in problems[1].problem
    globbed = list(iter_inputs([str(clips / "d0" / "*.wav")]))
    assert len(globbed) == 6 and all("/d0/" in g for g in globbed)

    (tmp_path / "list.txt").write_text("# calls\nd0/c000.wav\n\n/abs/x.wav\n")
    assert list(read_manifest(tmp_path / "list.txt")) == [str(tmp_path / "d0/c000.wav"), "/abs/x.wav"]
    (tmp_path / "m.csv").write_text("speaker,path\ns1,a.wav\ns2,a.wav\ns3,b.flac\n")
    listed = list(unique(iter_inputs([], [str(tmp_path / "m.csv")])))
    assert listed == [str(tmp_path / "a.wav"), str(tmp_path / "b.flac")]  # duplicates once
    (tmp_path / "bad.csv").write_text("speaker,wave\ns1,a.wav\n")
    with pytest.raises(ManifestError, match="needs a 'path' column.*speaker, wave"):
        list(read_manifest(tmp_path / "bad.csv"))
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbfpath\na.wav\n")  # Excel's "CSV UTF-8" starts with a BOM
    assert list(read_manifest(tmp_path / "bom.csv")) == [str(tmp_path / "a.wav")]
    (tmp_path / "excel.csv").write_bytes("path\ncaf\xe9.wav\n".encode("latin-1"))  # a traceback before
    with pytest.raises(ManifestError, match=r"excel.csv: not UTF-8 text \(it has the byte 0xE9\); save it as UTF-8"):
        list(read_manifest(tmp_path / "excel.csv"))
    from emovox.corpora import read_manifest as read_clips
    from emovox.corpora.generic import iter_utterances

    (tmp_path / "clips.csv").write_bytes("path,label,speaker\na.wav,angry,Jos\xe9\n".encode("latin-1"))
    for read in (read_clips, lambda p: iter_utterances(str(p))):  # the clip manifests of training too
        with pytest.raises(ManifestError, match="clips.csv: not UTF-8 text"):
            list(read(tmp_path / "clips.csv"))
    (tmp_path / "clips.csv").write_bytes(b"\xef\xbb\xbfid,path,label,speaker\nx,a.wav,angry,s1\n")
    assert [u.speaker for u in read_clips(tmp_path / "clips.csv", check_files=False)] == ["s1"]


def test_a_walk_skips_hidden_entries_and_enters_each_folder_once(tmp_path, caplog):
    """macOS writes a ``._name`` twin of every file on foreign disks (not audio: each one was an
    error record, and the run's exit code 1); a link back to a folder above used to repeat the
    same files until the path grew too long (5 files gave 287 inputs)."""
    root = tmp_path / "calls"
    (root / "day1").mkdir(parents=True)
    for name in ("a.wav", "day1/b.wav", "._a.wav", "day1/._b.wav"):
        (root / name).write_bytes(b"RIFF")
    (root / ".git").mkdir()
    (root / ".git" / "c.wav").write_bytes(b"RIFF")
    (root / "day1" / "back").symlink_to(root)  # a loop
    (root / "z-link").symlink_to(root / "day1")  # a second way into one folder (walked first: sorted after it)
    found = [Path(f).relative_to(root).as_posix() for f in iter_inputs([str(root)])]
    assert found == ["a.wav", "day1/b.wav"]
    # predict walks its inputs twice (counted, then run): each skipped link is reported once
    assert list(iter_inputs([str(root)])) == list(iter_inputs([str(root)]))
    skipped = [r.getMessage() for r in caplog.records if "walked already" in r.getMessage()]
    assert sorted(Path(m.split(":")[0]).name for m in skipped) == ["back", "z-link"]
    assert [Path(f).name for f in iter_inputs([str(root / "._a.wav")])] == ["._a.wav"]  # named: used
    assert len(list(iter_inputs([str(root / ".git")]))) == 1


def test_a_link_to_a_missing_file_is_an_input_whose_error_says_so(tmp_path):
    """A dangling ``.wav`` link in an archive was skipped without a word: its file is missing."""
    from emovox.audio import load_audio
    from emovox.errors import AudioError

    root = tmp_path / "calls"
    root.mkdir()
    (root / "gone.wav").symlink_to(tmp_path / "moved" / "gone.wav")
    (root / "notes.txt").symlink_to(tmp_path / "nowhere.txt")  # not audio by name: not an input
    assert [Path(f).name for f in iter_inputs([str(root)])] == ["gone.wav"]
    with pytest.raises(AudioError, match="a link to a missing file .*moved/gone.wav"):
        load_audio(root / "gone.wav")


# ------------------------------------------------------------------------------------ output
def test_jsonl_records_errors_and_resume_after_a_torn_line(clips, tiny_model, tmp_path):
    out = tmp_path / "r.jsonl"
    summary = predict_archive(iter_inputs([str(clips)]), out, spec(tiny_model), progress=False)
    assert (summary.ok, summary.failed, summary.predicted) == (12, 1, 13)
    full = out.read_bytes()
    records = lines(out)
    assert [Path(r["source"]).name for r in records][:3] == ["c000.wav", "c002.wav", "c004.wav"]
    broken = next(r for r in records if r["source"].endswith("broken.wav"))
    assert broken["label"] is None and "broken.wav" in broken["error"]
    good = records[0]
    assert good["model"] == "tiny-test-model" and len(good["model_version"]) == 12
    assert sorted(good["probabilities"]) == sorted(LABELS) and good["error"] is None

    # a run killed after 6 records, in the middle of writing the 7th
    rows = full.split(b"\n")
    out.write_bytes(b"".join(r + b"\n" for r in rows[:6]) + rows[6][:40])
    again = predict_archive(iter_inputs([str(clips)]), out, spec(tiny_model), progress=False)
    assert again.skipped == 6 and again.predicted == 7 and (again.ok, again.failed) == (12, 1)
    assert out.read_bytes() == full
    assert predict_archive(iter_inputs([str(clips)]), out, spec(tiny_model), progress=False).predicted == 0


def test_resume_refuses_another_models_file_and_foreign_files(clips, tiny_model, tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text(json.dumps({"source": "x.wav", "probabilities": {}, "error": None, "model": "other",
                               "model_version": "1"}) + "\n")
    with pytest.raises(FileFormatError, match="model 'other'.*choose another output file"):
        predict_archive(iter_inputs([str(clips / "d0")]), out, spec(tiny_model), progress=False)
    out.write_text("hello\n")
    with pytest.raises(FileFormatError, match="line 1 is not an emovox predict record"):
        predict_archive(iter_inputs([str(clips / "d0")]), out, spec(tiny_model), progress=False)
    out.write_text("[previous results]")  # no newline: not a torn record of ours, so not truncated
    with pytest.raises(FileFormatError, match="not written by emovox predict"):
        predict_archive(iter_inputs([str(clips / "d0")]), out, spec(tiny_model), progress=False)
    assert out.read_text() == "[previous results]"
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\xff\xfe,binary\n")
    with pytest.raises(FileFormatError, match="not a UTF-8 text file"):
        predict_archive(iter_inputs([str(clips / "d0")]), binary, spec(tiny_model), progress=False)
    with pytest.raises(FileFormatError, match="cannot read or create the output file"):
        predict_archive(iter_inputs([str(clips / "d0")]), tmp_path, spec(tiny_model), progress=False)


def test_csv_and_parquet_resume_to_the_same_content(clips, tiny_model, tmp_path):
    ref = tmp_path / "ref.csv"
    predict_archive(iter_inputs([str(clips)]), ref, spec(tiny_model), progress=False)
    text = ref.read_text()
    header = text.splitlines()[0].split(",")
    assert header[:4] == ["file", "label", "duration", "speech_fraction"] and header[-2:] == ["model", "model_version"]
    assert header[4:4 + len(LABELS)] == LABELS and len(text.splitlines()) == 14
    torn_header = tmp_path / "torn.csv"
    torn_header.write_text(text[:7])  # killed while writing the header
    predict_archive(iter_inputs([str(clips)]), torn_header, spec(tiny_model), progress=False)
    assert torn_header.read_text() == text
    part = tmp_path / "part.csv"
    part.write_text(text[:text.index("\n", len(text) // 2) + 20])  # half the rows and a torn one
    predict_archive(iter_inputs([str(clips)]), part, spec(tiny_model), progress=False)
    assert part.read_text() == text

    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet output needs pyarrow")
    out = tmp_path / "r.parquet"
    predict_archive(iter_inputs([str(clips / "d0")]), out, spec(tiny_model), progress=False)
    first = pq.read_table(out).to_pylist()
    assert len(first) == 6 and not out.with_name("r.parquet.part.jsonl").exists()
    s = predict_archive(iter_inputs([str(clips / "d0"), str(clips / "d1")]), out, spec(tiny_model), progress=False)
    rows = pq.read_table(out).to_pylist()
    assert s.skipped == 6 and s.predicted == 7 and rows[:6] == first and len(rows) == 13
    assert rows[0]["file"].endswith("c000.wav") and abs(sum(rows[0][k] for k in LABELS) - 1) < 1e-4
    assert rows[-1]["error"] is None and rows[6]["file"].endswith("broken.wav") and rows[6]["label"] is None


# ----------------------------------------------------------------------------------- workers
class CrashingSpec(ModelSpec):
    """A model whose process dies (as a decoder crash would) on files named *crash*."""

    def load(self):
        recognizer = super().load()
        real = recognizer.predict

        def predict(items, *a, **k):
            if "crash" in str(items[0]):
                os._exit(3)
            return real(items, *a, **k)

        recognizer.predict = predict
        return recognizer


@pytest.mark.slow
def test_two_workers_same_file_as_one_and_a_crashing_file_is_isolated(clips, tiny_model, tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    predict_archive(iter_inputs([str(clips)]), one, spec(tiny_model), jobs=1, progress=False)
    predict_archive(iter_inputs([str(clips)]), two, spec(tiny_model), jobs=2, window=5, progress=False)
    assert two.read_bytes() == one.read_bytes()

    crash = tmp_path / "crash.wav"
    sf.write(crash, make_tone(0.4), 16000)
    out = tmp_path / "crash.jsonl"
    items = [str(p) for p in sorted((clips / "d0").glob("*.wav"))]
    s = predict_archive(iter(items[:2] + [str(crash)] + items[2:]), out,
                        CrashingSpec(model=str(tiny_model), vad="none"), jobs=2, progress=False)
    records = lines(out)
    assert [r["source"] for r in records] == items[:2] + [str(crash)] + items[2:]
    assert (s.ok, s.failed) == (6, 1) and "worker process died" in records[2]["error"]
    assert [r["probabilities"] for r in records[3:]] == [r["probabilities"] for r in lines(one)[2:6]]


def test_a_model_that_workers_cannot_load_is_a_clear_error(clips, tmp_path):
    with pytest.raises(ModelError, match="config.json"):
        predict_archive(iter_inputs([str(clips)]), tmp_path / "r.jsonl", ModelSpec(model=str(tmp_path)), jobs=2)
    assert not (tmp_path / "r.jsonl").exists()


def test_progress_log_lines_when_not_a_terminal(capsys):
    progress = Progress(total=10, bar=None, every=0.0)
    for _ in range(4):
        progress.update()
    progress.close()
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("predicting: 1/10 files (10%)") and "files/s" in err[0] and "ETA" in err[0]
    assert err[-1].startswith("predicting: 4/10 files (40%)") and err[-1].endswith("done")
    stopped = Progress(total=10, bar=None, every=60.0)
    stopped.update()
    stopped.close(complete=False)  # interrupted: it said "ETA 0:09, done"
    assert capsys.readouterr().err.strip().endswith("files/s, stopped")


# ------------------------------------------------------------------------------------- kill

def kill_at_lines(cmd: list[str], env: dict, out: Path, targets) -> int:
    """Run ``cmd`` once per target and kill -9 it as soon as ``out`` holds that many lines; the
    number of runs really killed (a run may finish first)."""
    kills = 0
    for target in targets:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            if out.exists() and out.read_bytes().count(b"\n") >= target:
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.005)
        proc.wait(timeout=60)
    return kills


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_sigkill_at_any_moment_then_rerun_gives_the_uninterrupted_file(tmp_path, tiny_model, jobs):
    folder = tmp_path / "clips"
    make_clips(folder, 30, seconds=0.3)
    cmd = [sys.executable, "-c", "import sys; from emovox.cli import main; sys.exit(main())", "predict", str(folder), "--model", str(tiny_model), "--vad", "none",
           "--jobs", str(jobs), "--no-progress", "-o"]
    tag = f"EMOVOX_TEST_TAG={tmp_path}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "OMP_NUM_THREADS": "1", "EMOVOX_TEST_TAG": str(tmp_path)}
    ref = tmp_path / "ref.jsonl"
    done = subprocess.run(cmd + [str(ref)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "30 of 31 inputs predicted" in done.stderr, done.stderr[-2000:]

    out = tmp_path / "out.jsonl"
    kills = kill_at_lines(cmd + [str(out)], env, out, (3, 11, 19))
    assert kills >= 2  # the runs really were cut short
    assert len(out.read_bytes().splitlines()) < 31
    final = subprocess.run(cmd + [str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 1 and "resumed" in final.stderr, final.stderr[-2000:]
    assert out.read_bytes() == ref.read_bytes()
    deadline = time.monotonic() + 30  # the killed runs' workers noticed and left
    while (left := _processes_with(tag)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"worker processes outlived their killed parent: {left}"


@pytest.mark.slow
@pytest.mark.parametrize("jobs", [1, 2])
def test_sigterm_stops_like_ctrl_c_and_the_rerun_resumes(tmp_path, tiny_model, jobs):
    """kill, docker stop, a scheduler's time limit: SIGTERM ended the process on the spot (exit
    -15, the multiprocessing tracker's 'leaked semaphore' warning, no word on resuming)."""
    folder = tmp_path / "clips"
    make_clips(folder, 30, seconds=0.3)
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-c", "import sys; from emovox.cli import main; sys.exit(main())", "predict", str(folder),
           "--model", str(tiny_model), "--vad", "none", "--jobs", str(jobs), "--no-progress", "-o", str(out)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "OMP_NUM_THREADS": "1",
           "EMOVOX_TEST_TAG": str(tmp_path)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and not (out.exists() and out.read_bytes().count(b"\n")):
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)
    err = proc.communicate(timeout=120)[1]
    if proc.returncode == 1:
        pytest.skip("the run finished before the signal")
    assert proc.returncode == 143, err[-2000:]
    assert "terminated (SIGTERM)" in err and "run the same command again to resume" in err and "leaked" not in err
    lines = out.read_bytes().splitlines()
    assert 0 < len(lines) < 31 and all(json.loads(line)["source"] for line in lines)  # whole records only
    final = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 1 and "resumed" in final.stderr, final.stderr[-2000:]
    sources = [json.loads(line)["source"] for line in out.read_bytes().splitlines()]
    assert len(sources) == len(set(sources)) == 31


def _processes_with(tag: str) -> list[int]:
    found: list[int] = []
    for proc in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        try:
            if proc.name.isdigit() and tag.encode() + b"\0" in (proc / "environ").read_bytes() + b"\0":
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_writer_stamp_is_in_every_record(tmp_path):
    w = ResultWriter(tmp_path / "w.jsonl", "jsonl", FileRows(["a", "b"], ["source", "label", "probabilities", "error"]),
                     {"model": "m", "model_version": "v"})
    assert len(w.open()) == 0
    w.write({"source": "x", "label": "a", "probabilities": {"a": 1.0, "b": 0.0}, "error": None})
    w.close()
    assert lines(tmp_path / "w.jsonl") == [{"source": "x", "label": "a", "probabilities": {"a": 1.0, "b": 0.0},
                                            "error": None, "model": "m", "model_version": "v"}]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_second_run_on_the_same_output_is_refused_while_the_first_writes(tmp_path, fmt):
    """The same command started twice (a second terminal) wrote every file twice into one output,
    and a second run starting on a new output replaced the first one's file under it."""
    rows = FileRows(["a", "b"], ["source", "label", "probabilities", "error"])
    stamp = {"model": "m", "model_version": "v"}
    out = tmp_path / f"w.{fmt}"
    first = ResultWriter(out, fmt, rows, stamp)
    first.open()
    with pytest.raises(FileFormatError, match="another emovox run is writing this file now"):
        ResultWriter(out, fmt, rows, stamp).open()
    first.write({"source": "x", "label": "a", "probabilities": {"a": 1.0, "b": 0.0}, "error": None})
    first.close()
    second = ResultWriter(out, fmt, rows, stamp)  # after the first: it resumes
    assert len(second.open()) == 1
    second.close()
    assert out.read_text().count("x") == 1


def test_a_csv_header_cut_short_by_a_kill_is_written_again(tmp_path):
    rows = FileRows(["a", "b"], ["source", "label", "probabilities", "error"])
    out = tmp_path / "w.csv"
    out.write_text("file,lab")  # killed while writing the header
    w = ResultWriter(out, "csv", rows, {"model": "m", "model_version": "v"})
    assert len(w.open()) == 0
    w.write({"source": "x", "label": "a", "probabilities": {"a": 1.0, "b": 0.0}, "error": None})
    w.close()
    header, row = out.read_text().splitlines()
    assert header.startswith("file,label,") and row.startswith("x,a,")


def test_model_spec_passes_only_the_options_it_was_given(monkeypatch):
    from emovox.inference import Recognizer

    seen: dict = {}
    monkeypatch.setattr(Recognizer, "load", classmethod(lambda cls, path=None, **kw: seen.update(path=path, **kw)))
    ModelSpec().load()
    assert seen == {"path": None, "threads": 1}  # the Recognizer's own defaults for the rest
    seen.clear()
    ModelSpec("m", backend="onnx", labels=("a", "b"), vad="none", batch_size=4, threads=2).load()
    assert seen == {"path": "m", "threads": 2, "backend": "onnx", "labels": ["a", "b"], "vad": None, "batch_size": 4}


# ------------------------------------------------------------------------- names not in UTF-8
def latin1_named(folder: Path) -> Path:
    """A clip whose file name is Latin-1, not UTF-8 (old archives, Windows zips): 'café.wav'."""
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(os.fsdecode(bytes(folder) + b"/caf\xe9.wav"))
    try:
        sf.write(os.fsencode(path), make_tone(1.0), 16000, format="WAV")  # libsndfile takes the name's bytes
    except (OSError, RuntimeError):
        pytest.skip("this file system takes UTF-8 names only")
    sf.write(folder / "plain.wav", make_tone(1.0, freq=330.0), 16000)
    return path


@pytest.mark.parametrize("fmt,suffix", [(None, "jsonl"), ("csv", "csv"), ("parquet", "parquet")])
def test_a_file_name_that_is_not_utf8_is_predicted_written_and_resumed(tiny_model, tmp_path, fmt, suffix):
    """Its undecodable byte was 'not a readable audio file', then the JSONL writer crashed on it."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    latin1_named(tmp_path / "in")
    out = tmp_path / f"r.{suffix}"
    summary = predict_archive(iter_inputs([str(tmp_path / "in")]), out, spec(tiny_model), fmt=fmt, progress=False)
    assert (summary.ok, summary.failed) == (2, 0)
    again = predict_archive(iter_inputs([str(tmp_path / "in")]), out, spec(tiny_model), fmt=fmt, progress=False)
    assert again.predicted == 0  # both recognised as done
    if fmt is None:
        records = lines(out)  # valid UTF-8 JSON: the name's byte as an escape that loads back the same
        assert os.fsencode(records[0]["source"]).endswith(b"caf\xe9.wav") and records[0]["label"] in LABELS


@pytest.mark.parametrize("fmt,suffix", [(None, "jsonl"), ("csv", "csv")])
def test_a_file_name_with_a_line_break_is_written_on_one_line_and_resumed(tiny_model, tmp_path, fmt, suffix):
    """CSV wrote the break as a space, so a re-run did not find the file done and added it again."""
    folder = tmp_path / "in"
    folder.mkdir()
    sf.write(folder / "take\n2.wav", make_tone(1.0), 16000)
    sf.write(folder / "plain.wav", make_tone(1.0, freq=330.0), 16000)
    out = tmp_path / f"r.{suffix}"
    summary = predict_archive(iter_inputs([str(folder)]), out, spec(tiny_model), fmt=fmt, progress=False)
    assert (summary.ok, summary.failed) == (2, 0)
    again = predict_archive(iter_inputs([str(folder)]), out, spec(tiny_model), fmt=fmt, progress=False)
    assert again.predicted == 0
    text = out.read_text(encoding="utf-8")
    assert len(text.splitlines()) == 2 + (fmt == "csv")  # one line per file (+ the header)
    if fmt == "csv":
        assert "take\\n2.wav" in text
