"""Timeline logic with a fake model and a fake VAD: windows, speech fractions, regions, writers."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.timeline import Timeline, Window, compute_timeline, merge_regions

SR = 16000
LABELS = ["angry", "happy", "sad"]


def level_model(waves: np.ndarray) -> np.ndarray:
    """Fake classifier: loud windows are 'angry', medium 'happy', quiet 'sad'."""
    rms = np.sqrt((waves ** 2).mean(axis=1))
    out = np.full((len(waves), 3), 0.1)
    out[np.arange(len(waves)), np.where(rms > 0.3, 0, np.where(rms > 0.05, 1, 2))] = 0.8
    return out


def energy_vad(block: np.ndarray) -> list[tuple[float, float]]:
    """Fake VAD: 10 ms frames above a tiny energy are speech."""
    frames = block[: block.size // 160 * 160].reshape(-1, 160)
    active = (frames ** 2).mean(axis=1) > 1e-6
    regions, start = [], None
    for i, a in enumerate(np.append(active, False)):
        if a and start is None:
            start = i
        if not a and start is not None:
            regions.append((start * 0.01, i * 0.01))
            start = None
    return regions


def signal() -> np.ndarray:
    """0-2 s silence, 2-6 s loud, 6-10 s medium, 10-12 s silence (12 s)."""
    rng = np.random.default_rng(0)
    parts = [np.zeros(2 * SR), 0.5 * rng.standard_normal(4 * SR), 0.1 * rng.standard_normal(4 * SR), np.zeros(2 * SR)]
    return np.concatenate(parts).astype(np.float32)


def blocks_of(x: np.ndarray, seconds: float):
    step = int(seconds * SR)
    return (x[i:i + step] for i in range(0, x.size, step))


def test_windows_speech_and_regions():
    tl = compute_timeline(blocks_of(signal(), 5.0), level_model, LABELS, energy_vad, window=2.0, hop=1.0)
    assert tl.duration == 12.0
    assert [(w.start, w.end) for w in tl.windows] == [(float(s), float(s + 2)) for s in range(11)]
    assert tl.speech == [(2.0, 10.0)]
    fractions = [w.speech_fraction for w in tl.windows]
    assert fractions[0] == 0.0 and fractions[1] == 0.5 and fractions[2] == 1.0 and fractions[-1] == 0.0
    labels = [w.label for w in tl.windows]
    # a window needs >= 30 % speech; 1-3 s holds 50 % loud speech
    assert labels == [None, "angry", "angry", "angry", "angry", "angry", "happy", "happy", "happy", "happy", None]
    assert [(r.label, r.windows) for r in tl.regions] == [("angry", 5), ("happy", 4)]
    # the two regions' windows overlap (5-7 s vs 6-8 s): the boundary goes halfway, at 6.5 s
    assert tl.regions[0].start == 1.0 and tl.regions[0].end == 6.5 and tl.regions[1].start == 6.5
    assert tl.regions[1].end == 11.0
    assert tl.regions[0].probabilities["angry"] == pytest.approx(0.8)


def test_block_size_does_not_change_the_result():
    x = signal()
    a = compute_timeline(blocks_of(x, 12.0), level_model, LABELS, energy_vad)
    b = compute_timeline(blocks_of(x, 0.37), level_model, LABELS, energy_vad)
    assert a.to_dict() == b.to_dict()


def test_last_window_reaches_the_end_and_short_input():
    x = 0.5 * np.ones(int(4.5 * SR), np.float32)
    tl = compute_timeline([x], level_model, LABELS, None, window=2.0, hop=1.0)
    assert [(w.start, w.end) for w in tl.windows][-1] == (3.0, 4.5)
    assert tl.speech == [(0.0, 4.5)] and tl.vad == "none"
    short = compute_timeline([x[: SR // 2]], level_model, LABELS, None, window=2.0, hop=1.0)
    assert len(short.windows) == 1 and short.windows[0].end == 0.5 and short.windows[0].label == "angry"
    empty = compute_timeline([], level_model, LABELS, None)
    assert empty.windows == [] and empty.regions == [] and empty.duration == 0.0


def test_batches_hold_only_speech_windows():
    seen = []

    def model(waves):
        seen.append(len(waves))
        return level_model(waves)

    compute_timeline(blocks_of(signal(), 3.0), model, LABELS, energy_vad, batch_size=4)
    assert seen == [4, 4, 1]  # 9 speech windows of 11


@pytest.mark.parametrize("window,hop,min_speech", [(0.0, 1.0, 0.3), (2.0, 3.0, 0.3), (2.0, 0.0, 0.3), (2.0, 1.0, 1.5)])
def test_bad_window_settings(window, hop, min_speech):
    with pytest.raises(ConfigError):
        compute_timeline([np.zeros(SR, np.float32)], level_model, LABELS, None, window=window, hop=hop,
                         min_speech=min_speech)


def test_merge_regions_splits_on_gaps():
    p = {"angry": 0.9, "happy": 0.05, "sad": 0.05}
    windows = [Window(0, 2, 1, "angry", p), Window(1, 3, 1, "angry", p), Window(2, 4, 0, None, None),
               Window(3, 5, 1, "angry", p)]
    regions = merge_regions(windows, LABELS)
    assert [(r.start, r.end, r.windows) for r in regions] == [(0, 3, 2), (3, 5, 1)]


def test_writers(tmp_path):
    tl = compute_timeline(blocks_of(signal(), 4.0), level_model, LABELS, energy_vad, source="meeting.wav")
    tl.write_csv(tmp_path / "w.csv")
    tl.write_csv(tmp_path / "r.csv", "regions")
    tl.write_json(tmp_path / "t.json")
    tl.plot(tmp_path / "t.png")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "w.csv").read_text())))
    assert len(rows) == 11 and list(rows[0]) == ["start", "end", "speech_fraction", "speaker", "label", "no_speech",
                                                  "uncertain", *LABELS]
    assert rows[0]["no_speech"] == "1" and rows[3]["no_speech"] == "0" and rows[3]["speaker"] == ""
    assert rows[0]["label"] == "" and rows[0]["angry"] == "" and float(rows[3]["angry"]) == pytest.approx(0.8)
    regions = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert [r["label"] for r in regions] == ["angry", "happy"]
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["source"] == "meeting.wav" and data["speech"] == [{"start": 2.0, "end": 10.0}]
    assert len(data["windows"]) == 11 and data["speech_fraction"] == pytest.approx(8 / 12, abs=1e-3)
    assert (tmp_path / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ConfigError):
        tl.write_csv(tmp_path / "x.csv", "frames")
    assert not list(tmp_path.glob(".*"))  # atomic writes leave no temporary files behind


def test_json_probabilities_have_six_decimals_like_a_prediction():
    def thirds(waves: np.ndarray) -> np.ndarray:
        return np.tile(np.array([1 / 3, 2 / 9, 4 / 9]), (len(waves), 1))

    d = compute_timeline(blocks_of(signal(), 4.0), thirds, LABELS, energy_vad).to_dict()
    probs = [p for w in d["windows"] if w["probabilities"] for p in w["probabilities"].values()]
    probs += [p for r in d["regions"] for p in r["probabilities"].values()]
    assert probs and all(p == round(p, 6) for p in probs) and 1 / 3 not in probs
    assert d["windows"][3]["probabilities"]["angry"] == 0.333333
    assert [w["probabilities"] for w in d["windows"]][0] is None  # silence: no probabilities


def test_speakers_split_regions_and_summarise(tmp_path):
    from emovox.diarize import Turn

    tl = compute_timeline(blocks_of(signal(), 4.0), level_model, LABELS, energy_vad, source="talk.wav")
    # two speakers: S1 holds 2-6.4 s (loud = angry), S2 6.4-10 s (medium = happy)
    tl.attach_speakers([Turn(2.0, 6.4, "S1"), Turn(6.4, 10.0, "S2")])
    assert tl.speakers == ["S1", "S2"]
    assert [w.speaker for w in tl.windows] == [None, "S1", "S1", "S1", "S1", "S1", "S2", "S2", "S2", "S2", None]
    assert [(r.speaker, r.label) for r in tl.regions] == [("S1", "angry"), ("S2", "happy")]
    summary = tl.summary()
    assert list(summary) == ["S1", "S2"]
    assert summary["S1"]["dominant"] == "angry" and summary["S1"]["shares"]["angry"] == pytest.approx(1.0)
    assert summary["S2"]["speech_seconds"] == pytest.approx(3.6) and summary["S2"]["windows"] == 4
    # a speaker change inside one emotion also ends a region
    tl.attach_speakers([Turn(2.0, 4.4, "S1"), Turn(4.4, 10.0, "S2")])
    assert [(r.speaker, r.label, r.windows) for r in tl.regions] == [("S1", "angry", 3), ("S2", "angry", 2),
                                                                       ("S2", "happy", 4)]
    rows = list(csv.DictReader(io.StringIO(tl.windows_csv())))
    assert [r["speaker"] for r in rows][1:5] == ["S1", "S1", "S1", "S2"]  # 3-5 s: 1.4 s of S1, 0.6 s of S2
    data = tl.to_dict()
    assert data["turns"][0] == {"start": 2.0, "end": 4.4, "speaker": "S1"} and data["speakers"] == ["S1", "S2"]
    assert data["windows"][0]["no_speech"] is True and data["windows"][3]["uncertain"] is False
    json.dumps(data)
    tl.plot(tmp_path / "speakers.png")
    assert (tmp_path / "speakers.png").stat().st_size > 10_000


def test_summary_without_speakers_and_uncertain_windows():
    p = {"angry": 0.35, "happy": 0.33, "sad": 0.32}
    tl = Timeline("x.wav", 4.0, LABELS, 2.0, 1.0, "sohn", 0.3, [Window(0, 2, 1.0, "angry", p), Window(1, 3, 0.5, None)],
                  [(0.0, 2.5)])
    assert tl.windows[0].uncertain and not tl.windows[1].uncertain and tl.windows[1].no_speech
    assert tl.summary() == {"all": {"windows": 1, "shares": {"angry": 1.0, "happy": 0.0, "sad": 0.0},
                                    "speech_seconds": 2.5, "dominant": "angry"}}


def test_plot_mmss_and_smoothing():
    from emovox.timeline_plot import mmss, smooth

    assert mmss(0) == "00:00" and mmss(75.4) == "01:15" and mmss(3725) == "1:02:05"
    out = smooth(np.array([0.0, 1.0, np.nan, 1.0, 1.0]), 3)
    assert out[0] == pytest.approx(0.5) and np.isnan(out[2]) and out[4] == pytest.approx(1.0)
    for n in (1, 2, 4):  # fewer values than the kernel: as many values out as in
        assert smooth(np.arange(n, dtype=float), 5).shape == (n,)


def test_plot_of_one_window(tmp_path):
    """A 2 s clip has one window: the probability panel must not fail on it."""
    p = {"angry": 0.7, "happy": 0.2, "sad": 0.1}
    tl = Timeline("short.wav", 2.0, LABELS, 2.0, 1.0, "sohn", 0.3, [Window(0, 2, 1.0, "angry", p)], [(0.0, 2.0)])
    tl.plot(tmp_path / "one.png")
    assert (tmp_path / "one.png").stat().st_size > 1000


def test_plot_without_speech(tmp_path):
    tl = Timeline("silence.wav", 3.0, LABELS, 2.0, 1.0, "sohn", 0.3, [Window(0, 2, 0.0), Window(1, 3, 0.0)])
    tl.plot(tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 1000


# ------------------------------------------------------------------------------------- CLI
def test_cli_timeline_writes_outputs(tmp_path, capsys):
    import soundfile as sf

    from emovox.cli import main
    from tests.product_fixtures import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    rec = tmp_path / "talk.flac"
    sf.write(rec, signal(), SR)
    out = tmp_path / "out"
    code = main(["timeline", str(rec), "--model", str(model), "--threads", "1", "-o", str(out), "--window", "3"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["talk.json", "talk.png", "talk.regions.csv", "talk.windows.csv"]
    data = json.loads((out / "talk.json").read_text())
    assert data["window"] == 3.0 and data["vad"] == "gated" and len(data["windows"]) == 10
    printed = capsys.readouterr()
    assert "talk.flac: 12.0 s" in printed.out and "wrote" in printed.err
    assert main(["timeline", str(rec), "--model", str(model), "-o", str(out), "--format", "svg"]) == 2
    assert main(["timeline", str(tmp_path / "missing.wav"), "--model", str(model)]) == 2
    assert "missing.wav: file not found" in capsys.readouterr().err


def test_cli_timeline_prints_the_first_regions_and_points_to_the_rest(tmp_path, capsys, monkeypatch):
    import soundfile as sf

    import emovox.cli.timeline as cli_timeline
    from emovox.cli import main
    from tests.product_fixtures import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    rec = tmp_path / "talk.flac"
    sf.write(rec, signal(), SR)
    monkeypatch.setattr(cli_timeline, "MAX_PRINTED", 0)
    args = ["timeline", str(rec), "--model", str(model), "--threads", "1", "--vad", "sohn", "--window", "1",
            "--speakers", "none", "-o", str(tmp_path / "out")]
    assert main(args) == 0
    out = capsys.readouterr().out
    regions = json.loads((tmp_path / "out" / "talk.json").read_text())["regions"]
    assert regions and not [line for line in out.splitlines() if line.startswith(" ") and "start" not in line]
    assert f"... {len(regions)} more regions: all of them are in {tmp_path / 'out' / 'talk.regions.csv'}" in out


def test_cli_timeline_of_silence_says_no_speech(tmp_path, capsys):
    import soundfile as sf

    from emovox.cli import main
    from tests.product_fixtures import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    rec = tmp_path / "quiet.flac"
    sf.write(rec, np.zeros(4 * SR, np.float32), SR)
    assert main(["timeline", str(rec), "--model", str(model), "--threads", "1", "--vad", "sohn",
                 "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "0/3 windows classified" in out and "no_speech: no window has enough speech" in out


def test_cli_timeline_says_when_fewer_speakers_than_asked(tmp_path, capsys):
    import soundfile as sf

    from emovox.cli import main
    from tests.product_fixtures import make_tiny_model

    import importlib.util

    if importlib.util.find_spec("resemblyzer") is None:
        pytest.skip("the tiny model diarises with GE2E: pip install --no-deps resemblyzer==0.1.4")
    model = make_tiny_model(tmp_path / "model")
    rec = tmp_path / "short.flac"
    sf.write(rec, signal()[: 4 * SR], SR)  # 2 s of silence, 2 s of noise: speech to Sohn's VAD
    assert main(["timeline", str(rec), "--model", str(model), "--threads", "1", "--vad", "sohn", "--speakers", "3",
                 "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "--speakers 3: 1 found; each needs a few seconds of speech" in err


def test_cli_timeline_out_png_or_json_is_that_one_file(tmp_path):
    """``-o talk.png`` writes a picture named so, not a folder of that name."""
    import soundfile as sf

    from emovox.cli import main
    from tests.product_fixtures import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    rec = tmp_path / "talk.flac"
    sf.write(rec, signal(), SR)
    png, js = tmp_path / "pics" / "talk.png", tmp_path / "talk.json"
    assert main(["timeline", str(rec), "--model", str(model), "--threads", "1", "-o", str(png)]) == 0
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG" and sorted(p.name for p in png.parent.iterdir()) == ["talk.png"]
    assert main(["timeline", str(rec), "--model", str(model), "--threads", "1", "-o", str(js)]) == 0
    assert js.is_file() and json.loads(js.read_text())["duration"] == pytest.approx(12.0)
    notes = tmp_path / "notes.txt"  # an existing file is no folder for the outputs: an error, not a traceback
    notes.write_text("mine")
    assert main(["timeline", str(rec), "--model", str(model), "-o", str(notes)]) == 2 and notes.read_text() == "mine"


def test_on_window_streams_results_and_keep_windows_false_bounds_memory():
    from emovox.timeline import ContextVad

    seen = []
    x = signal()
    full = compute_timeline(blocks_of(x, 0.5), level_model, LABELS, energy_vad)
    live = compute_timeline(blocks_of(x, 0.5), level_model, LABELS, ContextVad(energy_vad, context=5.0),
                            batch_size=1, on_window=seen.append, keep_windows=False)
    assert live.windows == [] and live.speech == [] and live.duration == 12.0
    assert [(w.start, w.end, w.label) for w in seen] == [(w.start, w.end, w.label) for w in full.windows]


def test_context_vad_reports_only_the_new_block():
    from emovox.timeline import ContextVad

    calls = []

    def vad(x):
        calls.append(x.size)
        return [(0.0, x.size / SR)]  # everything is speech

    cv = ContextVad(vad, context=1.0)
    assert cv(np.zeros(SR // 2, np.float32)) == [(0.0, 0.5)]
    assert cv(np.zeros(SR // 2, np.float32)) == [(0.0, 0.5)]  # judged with 0.5 s of context
    assert cv(np.zeros(SR, np.float32)) == [(0.0, 1.0)]
    assert calls == [SR // 2, SR, 2 * SR]  # context capped at 1 s


def test_cli_timeline_fixed_speakers_and_bad_values(tmp_path, capsys):
    import importlib.util

    import soundfile as sf

    from emovox.cli import main
    from tests.product_fixtures import make_tiny_model

    model = make_tiny_model(tmp_path / "model")
    rec = tmp_path / "talk.flac"  # tones: speech to the Sohn VAD alone
    sf.write(rec, signal(), SR)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["timeline", str(rec), "--model", str(model), "-o", str(out), "--speakers", "many"])
    assert exit_info.value.code == 2 and "auto, none or a number" in capsys.readouterr().err
    assert main(["timeline", str(rec), "--model", str(model), "--vad", "sohn", "-o", str(out), "--speakers", "none",
                 "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO((out / "talk.windows.csv").read_text())))
    assert all(r["speaker"] == "" for r in rows)
    if importlib.util.find_spec("resemblyzer") is None:
        pytest.skip("--speakers N needs resemblyzer (pip install --no-deps resemblyzer==0.1.4 librosa)")
    assert main(["timeline", str(rec), "--model", str(model), "--vad", "sohn", "-o", str(out), "--speakers", "1",
                 "--format", "csv,json"]) == 0
    data = json.loads((out / "talk.json").read_text())
    assert data["speakers"] == ["S1"] and {w["speaker"] for w in data["windows"] if w["label"]} == {"S1"}
    captured = capsys.readouterr()
    assert "1 speaker(s): S1" in captured.out and "counted automatically" not in captured.err
    assert main(["timeline", str(rec), "--model", str(model), "--vad", "sohn", "-o", str(out), "--format", "json"]) == 0
    assert "counted automatically; if you know how many people speak, --speakers N" in capsys.readouterr().err
