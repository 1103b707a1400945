"""``emovox predict``: inputs (files, folders, globs), output formats, per-file errors, exit codes."""

from __future__ import annotations

import csv
import io
import json
import shutil

import pytest
import soundfile as sf

from emovox.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PARTIAL, main
from tests.conftest import make_tone
from tests.product_fixtures import LABELS  # noqa: F401


@pytest.fixture
def tree(tmp_path, examples_dir):
    """good/a.flac, good/sub/b.wav, good/readme.txt, mixed/{ok.wav, bad.wav (text), empty.wav}."""
    good = tmp_path / "good"
    (good / "sub").mkdir(parents=True)
    shutil.copy(sorted(examples_dir.glob("*.flac"))[0], good / "a.flac")
    sf.write(good / "sub" / "b.wav", make_tone(1.2), 16000)
    (good / "readme.txt").write_text("not audio, not an audio extension: skipped")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    sf.write(mixed / "ok.wav", make_tone(1.0, freq=300), 44100, subtype="PCM_24")
    (mixed / "bad.wav").write_text("%PDF-1.4 renamed")
    (mixed / "empty.wav").write_bytes(b"")
    return tmp_path


def run(capsys, *argv):
    code = main(["predict", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_table_shows_whole_label_names_over_aligned_columns():
    from emovox.cli.predict import table

    labels = ["angry", "neutral", "surprise"]
    rec = {"source": "a.wav", "label": "surprise", "duration": 2.0, "speech_fraction": 0.9,
           "probabilities": {"angry": 0.1, "neutral": 0.2, "surprise": 0.7}}
    head, row = table([rec], labels).splitlines()
    assert head.split()[-3:] == labels  # "surprise" was cut to "surpris"
    assert table([{**rec, "source": "take\n2.wav"}], labels).splitlines()[1].startswith("take\\n2.wav ")
    # each probability ends under the end of its label
    for name, value in zip(labels, ("0.100", "0.200", "0.700")):
        assert head.index(name) + len(name) == row.index(value) + len(value)


def test_table_for_a_folder(tree, tiny_model, capsys):
    code, out, err = run(capsys, str(tree / "good"), "--model", str(tiny_model), "--threads", "1")
    assert code == EXIT_OK and err == ""
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["file", "emotion"] and len(lines) == 3
    assert lines[1].startswith(str(tree / "good" / "a.flac")) and lines[2].startswith(str(tree / "good" / "sub" / "b.wav"))
    assert lines[1].split()[1] in LABELS and len(lines[1].split()) == 4 + len(LABELS)


def test_an_interrupted_printed_run_still_shows_what_it_finished(tree, tiny_model, capsys, monkeypatch):
    """Ctrl-C (or SIGTERM) after some files of a printed run: those results are shown, exit 130;
    before, everything done was lost."""
    from emovox import archive
    from emovox.cli import EXIT_INTERRUPTED

    real_run = archive.Engine.run

    def run_then_stop(self, sources):
        for n, record in enumerate(real_run(self, sources)):
            if n == 1:
                raise KeyboardInterrupt
            yield record

    monkeypatch.setattr(archive.Engine, "run", run_then_stop)
    monkeypatch.setattr("emovox.cli.predict.LONG_PRINTED_RUN", 3)  # a long printed run is told about -o
    code, out, err = run(capsys, str(tree / "good"), str(tree / "mixed" / "ok.wav"), "--csv", "--model",
                         str(tiny_model), "--threads", "1", "--vad", "none")
    assert code == EXIT_INTERRUPTED
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["file"] for r in rows] == [str(tree / "good" / "a.flac")] and rows[0]["label"] in LABELS
    assert "stopped after 1 of 3 inputs; their results follow" in err and "emovox: interrupted" in err
    assert "3 inputs; the results are shown when all are done" in err and "-o results.jsonl" in err
    out_file = tree / "r.json"
    code, _, err = run(capsys, str(tree / "good"), "--json", "-o", str(out_file), "--model", str(tiny_model))
    assert code == EXIT_INTERRUPTED and not out_file.exists()  # a JSON file is written whole or not at all


def test_json_and_errors_do_not_stop_the_batch(tree, tiny_model, capsys):
    code, out, err = run(capsys, str(tree / "mixed"), str(tree / "good" / "a.flac"), "--json",
                         "--model", str(tiny_model), "--threads", "1", "--vad", "none")
    assert code == EXIT_PARTIAL
    data = json.loads(out)
    by_name = {d["source"].rsplit("/", 1)[-1]: d for d in data}
    assert sorted(by_name) == ["a.flac", "bad.wav", "empty.wav", "ok.wav"]
    assert by_name["ok.wav"]["label"] in LABELS and by_name["ok.wav"]["error"] is None
    assert abs(sum(by_name["a.flac"]["probabilities"].values()) - 1) < 1e-4
    assert "not a readable audio file" in by_name["bad.wav"]["error"] and by_name["bad.wav"]["label"] is None
    assert "empty" in by_name["empty.wav"]["error"]
    assert "bad.wav" in err and "2 of 4 inputs predicted, 2 failed" in err
    assert "Traceback" not in err


def test_csv_labels_subset_and_output_file(tree, tiny_model, capsys):
    target = tree / "out" / "r.csv"
    code, out, _ = run(capsys, str(tree / "good" / "**" / "*.wav"), "--csv", "-o", str(target),
                       "--labels", "angry,happy,neutral,sad", "--model", str(tiny_model), "--vad", "none")
    assert code == EXIT_OK and out == ""
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 1 and rows[0]["file"].endswith("b.wav")
    assert list(rows[0])[:4] == ["file", "label", "duration", "speech_fraction"]
    assert rows[0]["speech_fraction"] == "" and rows[0]["label"] in ["angry", "happy", "neutral", "sad"]
    assert sum(float(rows[0][k]) for k in ["angry", "happy", "neutral", "sad"]) == pytest.approx(1, abs=1e-4)


def test_onnx_backend(tree, tiny_model, capsys):
    pytest.importorskip("onnxruntime")
    code, out, _ = run(capsys, str(tree / "good" / "a.flac"), "--json", "--backend", "onnx",
                       "--model", str(tiny_model), "--threads", "1")
    torch_code, torch_out, _ = run(capsys, str(tree / "good" / "a.flac"), "--json", "--model", str(tiny_model))
    assert code == torch_code == EXIT_OK
    a, b = json.loads(out)[0], json.loads(torch_out)[0]
    assert a["label"] == b["label"]
    assert max(abs(a["probabilities"][k] - b["probabilities"][k]) for k in LABELS) < 1e-4


def test_nothing_to_run_exits_2(tree, tiny_model, capsys):
    code, _, err = run(capsys, str(tree / "nomatch*.wav"), "--model", str(tiny_model))
    assert code == EXIT_BAD_INPUT and "no files match" in err
    empty = tree / "emptydir"
    empty.mkdir()
    code, _, err = run(capsys, str(empty), "--model", str(tiny_model))
    assert code == EXIT_BAD_INPUT and "no audio files" in err and "can be given by its path" in err
    code, out, err = run(capsys, str(tree / "mixed" / "bad.wav"), "--model", str(tiny_model))
    assert code == EXIT_BAD_INPUT and out == "" and "bad.wav" in err


def test_bad_options_exit_2(tree, tiny_model, capsys):
    code, _, err = run(capsys, str(tree / "good"), "--model", str(tiny_model), "--labels", "angry,calm")
    assert code == EXIT_BAD_INPUT and "calm" in err
    code, _, err = run(capsys, str(tree / "good"), "--model", str(tree / "good"))
    assert code == EXIT_BAD_INPUT and "config.json is missing" in err
    for fmt in ("--json", "--csv"):  # -o naming a folder: refused before any work (a traceback after it, before)
        code, _, err = run(capsys, str(tree / "good"), "--model", str(tiny_model), fmt, "-o", str(tree))
        assert code == EXIT_BAD_INPUT and "is a folder; give a file name" in err


def test_progress_bar_on_stderr(tree, tiny_model, capsys):
    code, _, err = run(capsys, str(tree / "good"), str(tree / "mixed"), "--progress", "--model", str(tiny_model))
    assert code == EXIT_PARTIAL and "predicting" in err and "file" in err


def test_output_file_is_json_lines_and_a_rerun_resumes(tree, tiny_model, capsys, tmp_path):
    target = tmp_path / "out" / "r.jsonl"
    code, out, err = run(capsys, str(tree / "mixed"), str(tree / "good"), "-o", str(target), "--model", str(tiny_model),
                         "--vad", "none")
    assert code == EXIT_PARTIAL and out == "" and "3 of 5 inputs predicted" in err
    records = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["source"].rsplit("/", 1)[-1] for r in records] == ["bad.wav", "empty.wav", "ok.wav", "a.flac", "b.wav"]
    assert all(r["model"] == "tiny-test-model" for r in records) and records[2]["label"] in LABELS
    code, _, err = run(capsys, str(tree / "mixed"), str(tree / "good"), "-o", str(target), "--model", str(tiny_model),
                       "--vad", "none")
    assert code == EXIT_PARTIAL and "resumed: 5 files were already done, 0 predicted now" in err
    assert [json.loads(line) for line in target.read_text().splitlines()] == records


def test_manifest_and_option_errors(tree, tiny_model, capsys, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,speaker\n{tree / 'good' / 'a.flac'},s1\n../nothing/here.wav,s2\n")
    code, out, err = run(capsys, "--manifest", str(manifest), "--json", "--model", str(tiny_model), "--vad", "none")
    data = json.loads(out)
    assert code == EXIT_PARTIAL and [d["error"] is None for d in data] == [True, False]
    assert data[1]["source"] == str(tmp_path / "../nothing/here.wav") and "here.wav" in err
    code, _, err = run(capsys, "--model", str(tiny_model))
    assert code == EXIT_BAD_INPUT and "--manifest" in err
    code, _, err = run(capsys, str(tree / "good"), "--parquet", "--model", str(tiny_model))
    assert code == EXIT_BAD_INPUT and "need -o FILE" in err


def test_threads_default_to_one_for_predict():
    from emovox.cli import build_parser

    assert build_parser().parse_args(["predict", "x.wav"]).threads == 1
    assert build_parser().parse_args(["predict", "x.wav", "--threads", "2"]).threads == 2
