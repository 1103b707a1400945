"""Speakers from the timeline's Whisper frames, speaker-aware timelines in one call, ``--adapt``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emovox.audio_model import OnnxAudioModel
from emovox.conversation import speaker_observer, speaker_timeline, uses_frames
from emovox.errors import ConfigError, ModelError
from emovox.frame_scoring import FrameScorer
from emovox.frame_speakers import FrameSpeakers, SpeakerProjection
from emovox.inference import Recognizer
from emovox.speaker_adapt import MIN_WINDOWS, PooledWindows, adapt_timeline
from emovox.testing.whisper import write_tiny_package
from emovox.timeline import compute_timeline

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
LABELS = ["angry", "happy", "neutral", "sad"]
SR = 16000


def voice(seconds: float, f0: float, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    phase = 2 * np.pi * np.cumsum(f0 * (1 + 0.05 * np.sin(2 * np.pi * 0.5 * t + seed))) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2)
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


def two_voices() -> tuple[np.ndarray, list[tuple[float, float]]]:
    """A low and a high 'voice' taking five turns of 3-5 s with 0.6 s pauses (tones: speech to the Sohn
    VAD alone, so the timelines below ask for vad="sohn"; the default, gated by Silero, hears none)."""
    parts, ref, t = [], [], 0.0
    for i, length in enumerate([4.0, 3.0, 5.0, 3.5, 4.5]):
        parts += [voice(length, 110.0 if i % 2 == 0 else 330.0, seed=i), np.zeros(int(0.6 * SR), np.float32)]
        ref.append((round(t, 3), round(t + length, 3)))
        t += length + 0.6
    return np.concatenate(parts), ref


def package_at(root):
    """The tiny two-layer Whisper package with frame outputs, written under ``root``."""
    return write_tiny_package(root, LABELS, seed=1, name="tiny")


def projection_for(package, folder):
    """A projection for the tiny model: the mean of states 1-2 minus the mean over the two voices."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    model = OnnxAudioModel(package)
    x, _ = two_voices()
    mean = model.hidden(x[: 10 * SR])[[1, 2]].mean(axis=1).reshape(-1)
    save_file({"mean": mean.astype(np.float32), "scalings": np.eye(64, dtype=np.float32)}, str(folder / "tiny.safetensors"))
    (folder / "tiny.json").write_text(json.dumps({"layers": [1, 2], "threshold": 0.5}))
    return SpeakerProjection.load("tiny", folder)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return package_at(tmp_path_factory.mktemp("speakers"))


@pytest.fixture(scope="module")
def projection(tmp_path_factory, package):
    return projection_for(package, tmp_path_factory.mktemp("proj"))


def energy_vad(block: np.ndarray) -> list[tuple[float, float]]:
    frames = block[: block.size // 160 * 160].reshape(-1, 160)
    active = np.append((frames ** 2).mean(axis=1) > 1e-6, False)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], active]).astype(int)))
    return [(a * 0.01, b * 0.01) for a, b in zip(edges[::2], edges[1::2])]


def test_shipped_projection_for_whisper_base():
    proj = SpeakerProjection.load("base")
    assert proj is not None and proj.layers == [1, 2, 3, 4] and proj.scalings.shape == (4 * 512, 64)
    assert 0 < proj.threshold < 2 and proj.mean.shape == (2048,)
    assert proj.split_share is not None and 0 < proj.split_share < 1 and proj.stats == "mean"
    assert FrameSpeakers(proj).diarizer.split_share == proj.split_share  # the automatic count uses it
    assert SpeakerProjection.load("no-such-whisper") is None


def test_damaged_projection_is_a_model_error(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    (tmp_path / "x.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError):
        SpeakerProjection.load("x", tmp_path)


@pytest.mark.parametrize("block", [60.0, 2.5])
def test_frame_speakers_find_the_known_turns_in_one_pass(package, projection, block):
    x, ref = two_voices()
    model = OnnxAudioModel(package)
    speakers = FrameSpeakers(projection, speakers=2)
    scorer = FrameScorer(model)
    step = int(block * SR)
    compute_timeline((x[i:i + step] for i in range(0, x.size, step)), lambda w: None, LABELS, energy_vad,
                     scorer=scorer, observers=[speakers], batch_size=4)
    turns = speakers.turns()
    assert [t.speaker for t in turns] == ["S1", "S2", "S1", "S2", "S1"]
    for t, (s, e) in zip(turns, ref):
        assert abs(t.start - s) <= 0.3 and abs(t.end - e) <= 0.3
    assert scorer.pieces_kept <= 3  # frames were forgotten as the stream went by


def test_frame_speakers_need_frames_and_finish(projection):
    fs = FrameSpeakers(projection)
    with pytest.raises(ConfigError, match="frame outputs"):
        fs.feed(np.zeros(SR, np.float32), [], None)
    with pytest.raises(ConfigError, match="not finished"):
        fs.turns()


def test_speaker_timeline_whisper_diarizer(package, projection, monkeypatch):
    x, ref = two_voices()
    r = Recognizer.load(package, vad=None)
    assert speaker_observer(r) is None  # a Whisper model given as a folder has no shipped projection
    with pytest.raises(ConfigError, match="ge2e"):
        speaker_timeline(r, x, SR, vad="sohn", diarizer="whisper")
    assert uses_frames(r) is False and uses_frames(r, "ge2e") is False
    # an archive's worker refuses the same setting once, before any file
    from emovox.archive import ModelSpec
    from emovox.archive_timeline import TimelineTask, TimelineWorker

    with pytest.raises(ConfigError, match="use --diarizer ge2e"):
        TimelineWorker(TimelineTask(ModelSpec(model=str(package), vad="none"), speakers="auto", diarizer="whisper"))
    monkeypatch.setattr(SpeakerProjection, "load", classmethod(lambda cls, name, folder=None: projection))
    assert uses_frames(r) is True and uses_frames(r, scoring="window") is False
    tl = speaker_timeline(r, x, SR, vad="sohn", speakers=2, diarizer="whisper")
    assert tl.speakers == ["S1", "S2"] and len(tl.turns) == 5
    assert all(w.speaker in ("S1", "S2") for w in tl.windows if w.is_speech)
    assert set(tl.summary()) == {"S1", "S2"}
    # window-by-window scoring has no frames: auto falls back to GE2E (here a fake), whisper says why
    with pytest.raises(ConfigError, match="--scoring window"):
        speaker_timeline(r, x, SR, vad="sohn", speakers=2, diarizer="whisper", scoring="window")
    from tests.test_diarize import tone_embed

    by_window = speaker_timeline(r, x, SR, vad="sohn", speakers=2, scoring="window", ge2e=tone_embed)
    assert by_window.speakers == ["S1", "S2"] and [t.speaker for t in by_window.turns][:3] == ["S1", "S2", "S1"]
    bare = speaker_timeline(r, x, SR, vad="sohn", speakers=None)
    assert bare.speakers == [] and [w.label for w in bare.windows] == [w.label for w in tl.windows]
    with pytest.raises(ConfigError):
        speaker_timeline(r, x, SR, vad="sohn", diarizer="pyannote")
    with pytest.raises(ConfigError, match="needs speakers"):
        speaker_timeline(r, x, SR, vad="sohn", speakers=None, adapt=True)
    # the torch backend scores window by window: no frames, so no whisper speakers
    assert speaker_observer(Recognizer.load(package, backend="torch", vad=None)) is None


def test_adapt_normalises_each_speakers_windows(package, projection, monkeypatch):
    x, _ = two_voices()
    r = Recognizer.load(package, vad=None)
    monkeypatch.setattr(SpeakerProjection, "load", classmethod(lambda cls, name, folder=None: projection))
    plain = speaker_timeline(r, x, SR, vad="sohn", speakers=2, diarizer="whisper")
    adapted = speaker_timeline(r, x, SR, vad="sohn", speakers=2, diarizer="whisper", adapt=True)
    assert [w.speaker for w in plain.windows] == [w.speaker for w in adapted.windows]
    changed = [a.probabilities != p.probabilities for a, p in zip(adapted.windows, plain.windows) if a.is_speech]
    assert any(changed)
    # by hand: z-scored per speaker, mapped onto the head's training statistics
    from emovox.speaker_adapt import training_stats

    kept = PooledWindows()
    tl = r.timeline(x, SR, vad="sohn", observers=[kept])
    tl.attach_speakers(plain.turns)
    mean, std = training_stats(package)
    s1 = [w for w in tl.windows if w.speaker == "S1"]
    pooled = np.stack([kept.pooled[(w.start, w.end)] for w in s1]).astype(np.float64)
    z = (pooled - pooled.mean(axis=0)) / np.maximum(pooled.std(axis=0), 1e-4)
    expected = r.engine.probabilities(r.engine.head_logits((z * std + mean).astype(np.float32)))
    adapt_timeline(tl, kept, r)
    got = np.array([[w.probabilities[k] for k in LABELS] for w in tl.windows if w.speaker == "S1"])
    assert np.abs(got - expected).max() <= 1e-6


def test_adapt_leaves_speakers_with_few_windows(package):
    from emovox.diarize import Turn

    r = Recognizer.load(package, vad=None)
    x, _ = two_voices()
    kept = PooledWindows()
    tl = r.timeline(x[: 8 * SR], SR, vad="sohn", observers=[kept])
    before = [w.probabilities for w in tl.windows]
    tl.attach_speakers([Turn(0.0, 8.0, "S1")])
    assert sum(w.is_speech for w in tl.windows) >= MIN_WINDOWS
    tl.attach_speakers([Turn(0.0, 3.0, "S1"), Turn(3.0, 8.0, "S2")])  # fewer than MIN_WINDOWS each? S1: 2-3
    adapt_timeline(tl, kept, r)
    few = [w for w in tl.windows if w.speaker == "S1"]
    assert len(few) < MIN_WINDOWS and all(w.probabilities == b for w, b in zip(tl.windows, before) if w.speaker == "S1")


@pytest.mark.shared
@pytest.mark.slow
def test_whisper_frames_separate_two_librispeech_speakers(corpora_dir):
    """The default model and the shipped projection on two LibriSpeech speakers (as the GE2E test)."""
    import soundfile as sf

    root = corpora_dir / "librispeech-samples"
    spk = [sorted((root / s).glob("*.flac")) for s in ("1688", "3005")]
    parts, ref, t = [], [], 0.0
    for i in range(6):
        x, sr = sf.read(spk[i % 2][i // 2], dtype="float32")
        x = x[: 5 * SR]
        parts += [x, np.zeros(SR // 2, np.float32)]
        ref.append((t, t + x.size / SR))
        t += x.size / SR + 0.5
    tl = speaker_timeline(Recognizer.load(), np.concatenate(parts), SR, diarizer="whisper")
    assert [t.speaker for t in tl.turns] == ["S1", "S2"] * 3
    for turn, (s, e) in zip(tl.turns, ref):  # each turn inside its clip and the 0.5 s pause after it
        assert s - 0.3 <= turn.start < turn.end <= e + 0.55 and turn.end - turn.start >= 0.6 * (e - s)


def test_span_statistics_mean_or_mean_and_std():
    from emovox.frame_speakers import span_statistics

    h = np.random.default_rng(0).normal(size=(2, 80, 3))
    h[1] *= 3.0
    assert np.allclose(span_statistics(h), h.mean(axis=1).reshape(-1))
    both = span_statistics(h, "mean_std").reshape(2, 6)
    assert np.allclose(both[:, :3], h.mean(axis=1)) and np.allclose(both[:, 3:], h.std(axis=1))
    assert both[1, 3:].mean() > 2 * both[0, 3:].mean()
    with pytest.raises(ModelError, match="mean_std"):
        span_statistics(h, "max")


def test_a_mean_std_projection_reads_both_statistics(tmp_path):
    from safetensors.numpy import save_file

    save_file({"mean": np.zeros(8, np.float32), "scalings": np.eye(8, dtype=np.float32)}, str(tmp_path / "ms.safetensors"))
    (tmp_path / "ms.json").write_text(json.dumps({"layers": [0, 1], "threshold": 0.5, "stats": "mean_std"}))
    proj = SpeakerProjection.load("ms", tmp_path)
    frames = np.random.default_rng(1).normal(size=(3, 40, 2))  # (top + 1, T, d): layers 0 and 1 are read
    emb = proj.embed_frames(frames)
    assert proj.stats == "mean_std" and emb.shape == (8,) and proj.split_share is None
    assert np.allclose(emb, np.concatenate([frames[:2].mean(1), frames[:2].std(1)], axis=-1).reshape(-1), atol=1e-5)
