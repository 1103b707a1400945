"""``emovox timeline`` over archives (:mod:`emovox.archive_timeline`): one record per file through
the archive machinery: records, CSV rows per window, resume (also of a file's rows cut short),
jobs 1 = jobs 2, SIGKILL, bad files, speakers, and the command line's choice of mode.

Tiny generated tones, the tiny random model, no VAD (tones are not speech for the VADs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.archive import ModelSpec, iter_inputs, run_archive
from emovox.archive_timeline import FIELDS, TimelineTask
from emovox.cli import main
from emovox.errors import ConfigError, DependencyError, EmovoxError, FileFormatError
from emovox.inference import Recognizer
from tests.conftest import REPO
from tests.product_fixtures import LABELS
from tests.test_archive import kill_at_lines, make_clips
from tests.test_diarize import tone_embed, two_speakers


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("timeline-archive")
    make_clips(folder, 6, seconds=3.5)  # 3 windows of 2 s every 1 s each, plus d1/broken.wav
    return folder


def task(model: Path, **kw) -> TimelineTask:
    return TimelineTask(ModelSpec(model=str(model), vad="none"), vad="none", **kw)


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def run(items, out, model, **kw):
    return run_archive(iter_inputs(items), out, task(model), progress=False, **kw)


# ----------------------------------------------------------------------------------- records
def test_records_hold_the_single_file_timeline_and_bad_files_get_error_records(clips, tiny_model, tmp_path):
    out = tmp_path / "t.jsonl"
    s = run([str(clips)], out, tiny_model)
    assert (s.ok, s.failed, s.predicted) == (6, 1, 7)
    records = lines(out)
    assert [Path(r["source"]).name for r in records] == ["c000.wav", "c002.wav", "c004.wav", "broken.wav", "c001.wav",
                                                          "c003.wav", "c005.wav"]
    assert all(list(r)[:len(FIELDS)] == list(FIELDS) for r in records)
    good = records[0]
    assert good["model"] == "tiny-test-model" and len(good["model_version"]) == 12
    assert good["settings"] == "window=2 hop=1 vad=none min_speech=0.3 speakers=none min_turn=1"
    single = Recognizer.load(tiny_model, vad=None, threads=1).timeline(good["source"], vad=None).to_dict()
    assert good["windows"] == single["windows"] and len(good["windows"]) == 3
    assert good["regions"] == single["regions"] and good["summary"] == single["summary"]
    assert good["speakers"] == [] and good["speakers_note"] is None and good["error"] is None
    broken = records[3]
    assert "broken.wav: not a readable audio file" in broken["error"] and broken["windows"] == []
    assert broken["hop"] == 1.0 and broken["model"] == "tiny-test-model"
    # a finished file is a finished job; another command's or setting's file is refused
    assert run([str(clips)], out, tiny_model).predicted == 0
    with pytest.raises(FileFormatError, match="settings 'window=2 hop=1 .*settings 'window=2 hop=0.5 .*another output"):
        run_archive(iter_inputs([str(clips)]), out, task(tiny_model, hop=0.5), progress=False)
    with pytest.raises(FileFormatError, match="not an emovox predict record.*no probabilities"):
        run_archive(iter_inputs([str(clips)]), out, ModelSpec(model=str(tiny_model), vad="none"), progress=False)


def test_csv_is_one_row_per_window_and_resumes_a_file_cut_short(clips, tiny_model, tmp_path):
    ref = tmp_path / "ref.csv"
    run([str(clips)], ref, tiny_model)
    text = ref.read_text()
    rows = text.splitlines()
    assert rows[0].split(",")[:11] == ["file", "duration", "window", "windows", "start", "end", "speech_fraction",
                                       "speaker", "label", "no_speech", "uncertain"]
    assert rows[0].split(",")[11:11 + len(LABELS)] == LABELS and rows[0].endswith("model,model_version,settings")
    assert len(rows) == 1 + 6 * 3 + 1  # header, 3 windows per clip, one row for the broken file
    assert rows[1].split(",")[2:4] == ["0", "3"] and rows[3].split(",")[2:4] == ["2", "3"]
    assert rows[10].split(",")[2:4] == ["", "0"] and "broken.wav" in rows[10]

    for cut in (len("\n".join(rows[:6])) + 1,  # 1 + 3 + 2 rows: the second file's third row is missing
                len("\n".join(rows[:6])) + 30):  # ... and its third row is torn
        part = tmp_path / f"part{cut}.csv"
        part.write_text(text[:cut])
        s = run([str(clips)], part, tiny_model)
        assert s.skipped == 1 and s.predicted == 6 and part.read_text() == text
    edited = tmp_path / "edited.csv"
    edited.write_text("\n".join(rows[:3] + rows[4:]) + "\n")  # the first file lost a row in the middle
    with pytest.raises(FileFormatError, match="rows of .*c000.wav are incomplete"):
        run([str(clips)], edited, tiny_model)


def test_parquet_rows_and_a_finished_file_extended(clips, tiny_model, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="Parquet output needs pyarrow")
    out = tmp_path / "t.parquet"
    run([str(clips / "d0")], out, tiny_model)
    first = pq.read_table(out).to_pylist()
    assert len(first) == 9 and first[0]["window"] == 0 and first[2]["windows"] == 3
    assert isinstance(first[0]["start"], float) and abs(sum(first[0][k] for k in LABELS) - 1) < 1e-4
    s = run([str(clips / "d0"), str(clips / "d1")], out, tiny_model)
    rows = pq.read_table(out).to_pylist()
    assert s.skipped == 3 and s.predicted == 4 and rows[:9] == first and len(rows) == 9 + 1 + 9
    assert rows[9]["file"].endswith("broken.wav") and rows[9]["windows"] == 0 and rows[9]["error"]
    ref = tmp_path / "ref.parquet"
    run([str(clips / "d0"), str(clips / "d1")], ref, tiny_model)
    assert pq.read_table(ref).to_pylist() == rows


# ----------------------------------------------------------------------------------- speakers
def test_speakers_per_file_and_without_the_encoder(tiny_model, tmp_path, monkeypatch):
    import emovox.diarize

    x, _ = two_speakers()
    folder = tmp_path / "calls"
    folder.mkdir()
    sf.write(folder / "call.wav", x, 16000)
    sf.write(folder / "short.wav", np.zeros(800, np.float32), 16000)  # too short to diarise or window

    class Fake:
        def __call__(self, segments):
            return tone_embed(segments)

    monkeypatch.setattr(emovox.diarize, "GE2EEmbedder", Fake)
    out = tmp_path / "s.jsonl"
    run_archive(iter_inputs([str(folder)]), out, task(tiny_model, speakers="auto"), progress=False)
    call = lines(out)[0]
    assert call["speakers"] == ["S1", "S2"] and call["speakers_note"] is None
    assert {w["speaker"] for w in call["windows"]} >= {"S1", "S2"} and set(call["summary"]) == {"S1", "S2"}
    assert call["settings"].endswith("speakers=auto min_turn=1")

    def missing():
        raise DependencyError("resemblyzer", "the GE2E speaker encoder")

    monkeypatch.setattr(emovox.diarize, "GE2EEmbedder", missing)
    out = tmp_path / "none.jsonl"
    s = run_archive(iter_inputs([str(folder)]), out, task(tiny_model, speakers="auto"), progress=False)
    records = lines(out)
    assert s.ok + s.failed == 2 and all(r["speakers"] == [] for r in records)
    assert "no speakers (the GE2E speaker encoder needs the optional package 'resemblyzer'" in records[0]["speakers_note"]
    with pytest.raises(EmovoxError, match="resemblyzer"):  # a number of speakers asked for: no run without them
        run_archive(iter_inputs([str(folder)]), tmp_path / "two.jsonl", task(tiny_model, speakers=2), progress=False)
    with pytest.raises(ConfigError, match="speakers must be an integer between 1 and 20"):
        task(tiny_model, speakers=50)


# ----------------------------------------------------------------------------------- command
def test_command_line_takes_recordings_of_hours(clips, tiny_model, tmp_path, monkeypatch):
    """The service caps windows per response (6000); the command line writes files, so a 2 h 5 min
    meeting (7499 windows at the default hop) is not refused, alone or in an archive."""
    import emovox.audio

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(emovox.audio, "audio_duration", lambda path: 7500.0)  # as the header of a long file says
    base = ["--model", str(tiny_model), "--vad", "none", "--speakers", "none", "--no-progress"]
    assert main(["timeline", str(clips / "d0" / "c000.wav"), "-o", "one", "--format", "json", *base]) == 0
    assert main(["timeline", str(clips / "d0"), "-o", "a.jsonl", *base]) == 0
    assert all(r["error"] is None for r in lines(tmp_path / "a.jsonl"))
    assert main(["timeline", str(clips / "d0" / "c000.wav"), "-o", "x", "--hop", "0.01", *base]) == 2  # bounds stay


def test_command_line_modes(clips, tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["--model", str(tiny_model), "--vad", "none", "--speakers", "none", "--no-progress"]
    assert main(["timeline", str(clips / "d0"), "-o", "a.jsonl", *base]) == 0
    assert len(lines(tmp_path / "a.jsonl")) == 3
    assert main(["timeline", str(clips / "d0" / "c000.wav"), "-o", "one.csv", *base]) == 0  # -o FILE.csv: archive
    assert (tmp_path / "one.csv").read_text().count("\n") == 4
    (tmp_path / "list.txt").write_text(f"{clips}/d1/c001.wav\n{clips}/d1/broken.wav\n")
    assert main(["timeline", "--manifest", "list.txt", "-o", "m.jsonl", *base]) == 1
    err = capsys.readouterr().err
    assert "broken.wav: not a readable audio file" in err and "1 of 2 inputs done, 1 failed" in err
    assert main(["timeline", f"{clips}/d0/*.wav", "-o", "g.jsonl", *base]) == 0  # a glob
    assert (tmp_path / "g.jsonl").read_bytes() == (tmp_path / "a.jsonl").read_bytes()
    assert main(["timeline", str(clips / "d0"), "-o", "g.jsonl", *base]) == 0
    assert "resumed: 3 files were already done, 0 analysed now" in capsys.readouterr().err

    for argv, message in ((["timeline", str(clips / "d0")], "an archive run writes one file: add -o FILE.jsonl"),
                          (["timeline", str(clips / "d0"), "-o", "x.jsonl", "--format", "json"], "--format is for"),
                          (["timeline", str(clips / "d0" / "c000.wav"), "--jobs", "2"], "--jobs is for archives"),
                          (["timeline"], "give a recording, a folder, a glob or --manifest"),
                          (["timeline", str(tmp_path / "nothing*.wav"), "-o", "n.jsonl"], "nothing to analyse")):
        assert main(argv + base) == 2, argv
        assert message in capsys.readouterr().err
    # one recording without an archive -o: the folder of CSV/JSON/PNG, as before
    assert main(["timeline", str(clips / "d0" / "c000.wav"), "-o", "single", "--format", "json", *base[:-1]]) == 0
    assert (tmp_path / "single" / "c000.json").is_file()


# ------------------------------------------------------------------------------- processes
@pytest.mark.slow
def test_two_jobs_write_the_same_file_as_one(clips, tiny_model, tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.csv"
    run([str(clips)], one, tiny_model, jobs=1)
    run([str(clips)], two, tiny_model, jobs=2, window=3)
    ref = tmp_path / "ref.csv"
    run([str(clips)], ref, tiny_model, jobs=1)
    assert two.read_bytes() == ref.read_bytes()
    run([str(clips)], tmp_path / "two.jsonl", tiny_model, jobs=2, window=3)
    assert (tmp_path / "two.jsonl").read_bytes() == one.read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("output,jobs", [("out.jsonl", 2), ("out.csv", 1)])
def test_sigkill_then_rerun_gives_the_uninterrupted_file(tmp_path, tiny_model, output, jobs):
    folder = tmp_path / "clips"
    make_clips(folder, 24, seconds=2.5)
    cmd = [sys.executable, "-c", "import sys; from emovox.cli import main; sys.exit(main())", "timeline", str(folder),
           "--model", str(tiny_model), "--vad", "none", "--speakers", "none", "--jobs", str(jobs), "--no-progress", "-o"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "OMP_NUM_THREADS": "1"}
    ref = tmp_path / f"ref{Path(output).suffix}"
    done = subprocess.run(cmd + [str(ref)], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "24 of 25 inputs done" in done.stderr, done.stderr[-2000:]

    out = tmp_path / output
    n = ref.read_bytes().count(b"\n")
    kills = kill_at_lines(cmd + [str(out)], env, out, (n // 6, n // 2, 3 * n // 4))  # kill -9 at about these lines
    assert kills >= 2 and out.read_bytes() != ref.read_bytes()  # the runs really were cut short
    final = subprocess.run(cmd + [str(out)], env=env, capture_output=True, text=True, timeout=300)
    assert final.returncode == 1 and "resumed" in final.stderr, final.stderr[-2000:]
    assert out.read_bytes() == ref.read_bytes()


def test_speakers_from_the_models_frames_need_no_ge2e(tmp_path, monkeypatch):
    """An archive diarises as ``emovox timeline FILE`` does: from the model's Whisper frames."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    import emovox.diarize
    from emovox.frame_speakers import SpeakerProjection
    from tests.test_frame_speakers import LABELS as TINY, package_at, projection_for, two_voices

    package = package_at(tmp_path / "pkg")
    projection = projection_for(package, tmp_path / "proj")
    monkeypatch.setattr(SpeakerProjection, "load", classmethod(lambda cls, name, folder=None: projection))

    def no_ge2e():
        raise AssertionError("GE2E loaded although the model has frames")

    monkeypatch.setattr(emovox.diarize, "GE2EEmbedder", no_ge2e)
    x, ref = two_voices()
    (tmp_path / "calls").mkdir()
    sf.write(tmp_path / "calls" / "call.wav", x, 16000)
    out = tmp_path / "s.jsonl"
    t = TimelineTask(ModelSpec(model=str(package), vad="none"), vad="none", speakers=2)
    assert run_archive(iter_inputs([str(tmp_path / "calls")]), out, t, progress=False).ok == 1
    call = lines(out)[0]
    assert call["labels"] == TINY and call["speakers"] == ["S1", "S2"] and call["speakers_note"] is None
    by_start = {w["start"]: w["speaker"] for w in call["windows"]}
    assert by_start[1.0] == "S1" and by_start[5.0] == "S2" and by_start[9.0] == "S1"  # turns 0-4, 4.6-7.6, 8.2-13.2 s
    assert t.settings.endswith("speakers=2 min_turn=1")
    assert TimelineTask(speakers=2, diarizer="ge2e", adapt=True).settings.endswith("diarizer=ge2e adapt=1")
    with pytest.raises(ConfigError, match="needs speakers"):
        TimelineTask(adapt=True)
    with pytest.raises(ConfigError, match="unknown diarizer"):
        TimelineTask(speakers=2, diarizer="pyannote")
