"""Recognizer: loading, predicting files/arrays/batches, label subsets, bad inputs, timelines."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.errors import AudioError, ConfigError, ModelError
from emovox.inference import Prediction, Recognizer
from tests.conftest import make_tone
from tests.product_fixtures import LABELS


def _write(path: Path, x: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> Path:
    sf.write(path, x, sr, subtype=subtype)
    return path


def test_predict_file_returns_typed_result(recognizer, wav_file):
    p = recognizer.predict(wav_file)
    assert isinstance(p, Prediction) and p.ok
    assert p.source == str(wav_file)
    assert list(p.probabilities) == LABELS
    assert math.isclose(sum(p.probabilities.values()), 1.0, abs_tol=1e-4)
    assert p.label == max(p.probabilities, key=p.probabilities.get)
    assert p.duration == pytest.approx(1.0, abs=1e-3)
    assert p.speech_fraction is None and not p.no_speech  # scored without a VAD
    assert p.to_dict()["label"] == p.label


def test_array_input_any_rate_and_channels(recognizer):
    x16 = make_tone(2.0)
    ref = recognizer.predict(x16, sample_rate=16000)
    x48 = np.stack([make_tone(2.0, sr=48000)] * 2, axis=1)  # stereo 48 kHz
    p = recognizer.predict(x48, sample_rate=48000, source="stereo")
    assert p.source == "stereo" and p.duration == pytest.approx(2.0, abs=1e-3)
    assert ref.source == "<array>"
    # same tone, resampled: the decision is a property of the content, not the rate
    assert p.label == ref.label


def test_batch_equals_single_and_keeps_order(recognizer, tmp_path, examples_dir):
    files = sorted(examples_dir.glob("*.flac"))[:3]
    same_len = [_write(tmp_path / f"t{i}.wav", make_tone(1.5, freq=150 + 60 * i, seed=i)) for i in range(3)]
    inputs = [files[0], same_len[0], files[1], same_len[1], same_len[2], files[2]]
    batch = recognizer.predict(inputs)
    assert [p.source for p in batch] == [str(x) for x in inputs]
    for item, got in zip(inputs, batch):
        alone = recognizer.predict(item)
        assert got.label == alone.label
        for k in LABELS:
            assert got.probabilities[k] == pytest.approx(alone.probabilities[k], abs=1e-5)


def test_bad_files_in_a_batch_do_not_stop_it(recognizer, tmp_path, wav_file):
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    short = _write(tmp_path / "short.wav", make_tone(0.01))
    silent = _write(tmp_path / "zeros.wav", np.zeros(16000, np.float32))
    nan = np.full(16000, np.nan, np.float32)
    results = recognizer.predict([wav_file, text, empty, tmp_path / "missing.wav", short, nan, silent], sample_rate=16000)
    ok = [r.ok for r in results]
    assert ok == [True, False, False, False, False, False, True]
    assert "not a readable audio file" in results[1].error
    assert "empty" in results[2].error
    assert "not found" in results[3].error
    assert "shorter than one 25 ms" in results[4].error
    assert "NaN" in results[5].error
    assert results[6].ok and results[6].label is not None  # without a VAD even silence is scored
    assert all(r.label is None and r.probabilities == {} for r in results if not r.ok)


def test_single_bad_input_raises_audio_error(recognizer, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"%PDF-1.4 not audio")
    with pytest.raises(AudioError, match="bad.wav"):
        recognizer.predict(bad)
    with pytest.raises(AudioError, match="NaN"):
        recognizer.predict(np.array([0.0, np.inf] * 1000, np.float32), sample_rate=16000)


def test_label_subset_renormalises(recognizer, wav_file):
    full = recognizer.predict(wav_file)
    four = ["angry", "happy", "neutral", "sad"]
    sub = recognizer.predict(wav_file, labels=four)
    assert list(sub.probabilities) == four
    total = sum(full.probabilities[k] for k in four)
    for k in four:
        assert sub.probabilities[k] == pytest.approx(full.probabilities[k] / total, abs=1e-5)
    assert sub.label == max(four, key=full.probabilities.get)
    r4 = recognizer.with_labels(four)
    assert r4.labels == four and r4.predict(wav_file).probabilities == sub.probabilities


def test_label_subset_errors(recognizer, tiny_model):
    with pytest.raises(ConfigError, match="unknown label.*calm.*knows angry"):
        recognizer.with_labels(["angry", "calm"])
    with pytest.raises(ConfigError, match="duplicate labels"):
        recognizer.with_labels(["sad", "sad"])
    with pytest.raises(ConfigError, match="at least two labels"):  # one label would always get probability 1
        recognizer.with_labels(["sad"])
    r = Recognizer.load(tiny_model, labels="angry, sad")
    assert r.labels == ["angry", "sad"]
    assert recognizer.with_labels(["Angry", "SAD"]).labels == ["angry", "sad"]  # case does not matter


@pytest.mark.parametrize("bad,needle", [(list(np.zeros(800)), "a list of 800 numbers"), (np.float32(0.5), "got float32"),
                                       (b"RIFF....", "got bytes"), (3, "got int")])
def test_predict_says_what_to_pass_instead(recognizer, bad, needle):
    """Samples in a list, a scalar, a file's bytes: a ConfigError naming what predict() takes."""
    from emovox.conversation import speaker_timeline

    with pytest.raises(ConfigError, match=needle) as info:
        recognizer.predict(bad, sample_rate=16000)
    assert "numpy array" in str(info.value)
    for call, name in [(recognizer.timeline, "timeline"), (lambda x, **kw: speaker_timeline(recognizer, x, **kw),
                                                          "speaker_timeline")]:
        with pytest.raises(ConfigError, match=rf"{name}\(\) got .*numpy array"):
            call(bad, sample_rate=16000)


def test_unknown_model_name_lists_the_bundled_ones():
    from emovox.inference import model_folder

    with pytest.raises(ModelError, match="unknown model 'defualt': the bundled models are default, fast"):
        model_folder("defualt")
    with pytest.raises(ModelError, match="no model folder here"):  # a path: about the folder
        Recognizer.load("runs/no_such_model")


def test_load_errors(tmp_path, tiny_model, monkeypatch):
    import emovox.inference as inference

    monkeypatch.setattr(inference, "DEFAULT_MODEL", tmp_path / "nowhere")
    with pytest.raises(ModelError, match="bundled default model is missing"):
        Recognizer.load()
    with pytest.raises(ModelError, match="config.json is missing"):
        Recognizer.load(tmp_path)
    with pytest.raises(ConfigError, match="backend"):
        Recognizer.load(tiny_model, backend="tensorflow")
    with pytest.raises(ConfigError, match="VAD"):
        Recognizer.load(tiny_model, vad="webrtc")


def test_without_vad_no_speech_fraction(tiny_model, wav_file):
    r = Recognizer.load(tiny_model, vad=None, threads=1)
    assert r.predict(wav_file).speech_fraction is None


@pytest.mark.parametrize("vad", ["silero", "sohn"])
def test_silence_and_tones_are_no_speech(tiny_model, tmp_path, vad):
    r = Recognizer.load(tiny_model, threads=1, vad=vad)
    silent = _write(tmp_path / "zeros.wav", np.zeros(16000, np.float32))
    for p in (r.predict(silent), r.predict(make_tone(2.0), sample_rate=16000)):
        assert p.ok and p.no_speech and p.label is None and p.probabilities == {}
        assert p.speech_fraction is not None and p.speech_fraction < 0.05


def test_long_file_is_read_in_pieces(tiny_model, tmp_path):
    r = Recognizer.load(tiny_model, threads=1, vad=None)
    r.max_clip_seconds = 1.0  # anything over 4 s is read block by block
    x = np.concatenate([make_tone(3.0, freq=200), np.zeros(8000, np.float32), make_tone(2.5, freq=300)])
    path = _write(tmp_path / "long.flac", x)
    p = r.predict(path)
    assert p.ok and p.duration == pytest.approx(x.size / 16000, abs=1e-3)
    # the result is the mean log-posterior of its 1 s pieces
    stored = sf.read(path, dtype="float32")[0]  # 16-bit quantised, as the reader sees it
    pieces = [stored[i:i + 16000] for i in range(0, stored.size, 16000)]
    logp = np.mean([np.log([r.predict(c, sample_rate=16000).probabilities[k] for k in LABELS]) for c in pieces], axis=0)
    expected = np.exp(logp) / np.exp(logp).sum()
    assert [p.probabilities[k] for k in LABELS] == pytest.approx(expected.tolist(), abs=1e-4)


def syllables(seconds: float, seed: int = 0) -> np.ndarray:
    """Speech-like bursts: 250 ms voiced tone, 150 ms near-silence (VADs need pauses to see noise)."""
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(int(seconds / 0.4)):
        parts += [make_tone(0.25, freq=180 + 20 * (i % 4), seed=i), 0.001 * rng.standard_normal(2400).astype(np.float32)]
    return np.concatenate(parts)


def test_recognizer_timeline_on_a_file(recognizer, tmp_path):
    x = np.concatenate([np.zeros(3 * 16000, np.float32), syllables(4.0), np.zeros(3 * 16000, np.float32)])
    path = _write(tmp_path / "rec.wav", x)
    tl = recognizer.timeline(path, window=2.0, hop=1.0, block_seconds=1.7, vad="sohn")  # tones: speech to Sohn only
    assert tl.duration == pytest.approx(10.0) and tl.labels == LABELS
    assert len(tl.speech) == 1 and tl.speech[0][0] == pytest.approx(3.0, abs=0.15)
    assert tl.speech[0][1] == pytest.approx(7.0, abs=0.6)  # hang-over may extend it
    speech_windows = [w for w in tl.windows if w.is_speech]
    assert speech_windows and all(2.0 <= w.start <= 6.0 for w in speech_windows)
    assert not tl.windows[0].is_speech and tl.windows[0].probabilities is None
    assert tl.regions and tl.regions[0].start >= 2.0
    arr = recognizer.timeline(x, sample_rate=16000, source="arr", vad="sohn")
    assert [w.label for w in arr.windows] == [w.label for w in tl.windows]


def test_timeline_label_subset(recognizer):
    tl = recognizer.timeline(make_tone(3.0), sample_rate=16000, vad=None, labels=["happy", "sad"])
    assert tl.labels == ["happy", "sad"] and tl.vad == "none"
    assert all(set(w.probabilities) == {"happy", "sad"} for w in tl.windows if w.is_speech)


def test_model_trained_with_vad_drops_nonspeech_frames(tmp_path):
    import json

    from tests.product_fixtures import make_tiny_model

    folder = make_tiny_model(tmp_path / "vadmodel")
    config = json.loads((folder / "config.json").read_text())
    config["vad"] = True
    (folder / "config.json").write_text(json.dumps(config))
    r = Recognizer.load(folder, vad=None, threads=1)
    speech = syllables(2.0)
    noise = 0.0005 * np.random.default_rng(1).standard_normal(16000).astype(np.float32)
    padded = np.concatenate([noise, speech, noise])
    plain = Recognizer.load(make_tiny_model(tmp_path / "plain"), vad=None, threads=1)  # same weights, no VAD

    def change(rec):  # how much 2 s of added silence moves the posteriors
        a, b = rec.predict(speech, sample_rate=16000), rec.predict(padded, sample_rate=16000)
        return max(abs(a.probabilities[k] - b.probabilities[k]) for k in LABELS)

    # silence is dropped before normalisation: the padding barely matters
    assert change(r) < change(plain) / 3


# ------------------------------------------------------------------------ the bundled model
def test_bundled_fast_model(examples_dir):
    from emovox.inference import FAST_MODEL

    assert (FAST_MODEL / "model.safetensors").stat().st_size <= 25 * 1024 * 1024
    assert (FAST_MODEL / "MODEL_CARD.md").is_file()
    r = Recognizer.load("fast", threads=1, vad=None)
    assert r.labels == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    results = r.predict(sorted(examples_dir.glob("*.flac")))
    assert len(results) == 6 and all(p.ok and p.label in r.labels for p in results)
    four = Recognizer.load("fast", labels=["angry", "happy", "neutral", "sad"], threads=1).predict(results[0].source)
    assert list(four.probabilities) == ["angry", "happy", "neutral", "sad"]


def test_zero_or_negative_sample_rate_is_refused(recognizer):
    for rate in (0, -8000):
        with pytest.raises(AudioError, match="sample rate"):
            recognizer.predict(make_tone(1.0), sample_rate=rate)
    with pytest.raises(AudioError, match="sample rate"):
        recognizer.timeline(make_tone(3.0), sample_rate=0)
