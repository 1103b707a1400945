"""Frame-level scoring: the package graph's hidden states, the head graph, pieces, timelines from frames."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from emovox.audio_model import OnnxAudioModel, read_audio_config
from emovox.errors import ConfigError
from emovox.frame_scoring import FrameScorer, frame_scorer, reblock
from emovox.inference import Recognizer
from emovox.testing.whisper import write_tiny_package
from emovox.timeline import compute_timeline
from tests.conftest import make_voice as voice

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
LABELS = ["angry", "happy", "neutral", "sad"]
SR = 16000


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    return write_tiny_package(tmp_path_factory.mktemp("frames"), LABELS, hidden=16, name="tiny")


@pytest.fixture(scope="module")
def model(package):
    return OnnxAudioModel(package)


def test_package_has_hidden_states_and_the_head_graph(package, model):
    assert read_audio_config(package).head_graph == "head.onnx" and (package / "head.onnx").is_file()
    assert model.has_frames and model.layers == [1, 2]
    for n in (640, 16000, 16000 + 320, 16000 + 100):
        h = model.hidden(voice(n / SR)[:n] if n >= SR else np.ones(n, np.float32) * 0.1)
        assert h.shape == (3, -(-(n // 160) // 2), 32)  # states 0 (stem), 1, 2; one frame per 20 ms


def test_pooled_frames_through_the_head_give_the_graph_logits(model):
    for seconds, seed in [(0.7, 0), (2.0, 1), (4.3, 2)]:
        x = voice(seconds, seed=seed)
        h = model.hidden(x)[model.layers]
        pooled = np.concatenate([h.mean(axis=1), h.std(axis=1)], axis=-1)
        assert np.abs(model.head_logits(pooled[None])[0] - model.logits(x)).max() <= 1e-3


def test_a_window_equal_to_a_piece_scores_as_the_clip(model):
    x = voice(12.0)
    scorer = FrameScorer(model, piece=4.0)
    scorer.observe(x)
    probs = scorer.probabilities([(4.0, 8.0), (0.0, 4.0)])
    assert np.abs(probs[0] - model(x[4 * SR:8 * SR])).max() <= 1e-3
    assert np.abs(probs[1] - model(x[:4 * SR])).max() <= 1e-3
    sub = FrameScorer(model, index=[0, 2], piece=4.0)
    sub.observe(x)
    p = sub.probabilities([(0.0, 4.0)])[0]
    assert abs(p.sum() - 1) < 1e-9 and np.allclose(p, probs[1][[0, 2]] / probs[1][[0, 2]].sum())


def test_reblock_keeps_the_samples_in_piece_multiples():
    x = np.arange(10_000, dtype=np.float32)
    out = list(reblock((x[i:i + 777] for i in range(0, x.size, 777)), 640))
    assert all(b.size % 640 == 0 for b in out[:-1]) and np.array_equal(np.concatenate(out), x)
    assert list(reblock([], 640)) == []


def test_scorer_refuses_blocks_after_a_short_one_and_forgotten_pieces(model):
    s = FrameScorer(model, piece=1.0)
    s.observe(np.zeros(SR + 320, np.float32))
    with pytest.raises(ConfigError):
        s.observe(np.zeros(SR, np.float32))
    s.forget_before(1.5)
    with pytest.raises(ConfigError, match="forgotten"):
        s.frames(0.0, 0.5)
    with pytest.raises(ConfigError):
        FrameScorer(model, piece=0.0)


def energy_vad(block: np.ndarray) -> list[tuple[float, float]]:
    frames = block[: block.size // 160 * 160].reshape(-1, 160)
    active = np.append((frames ** 2).mean(axis=1) > 1e-6, False)
    edges = np.flatnonzero(np.diff(np.concatenate([[False], active]).astype(int)))
    return [(a * 0.01, b * 0.01) for a, b in zip(edges[::2], edges[1::2])]


def test_timeline_from_frames_is_block_size_independent_and_lazy(model):
    x = np.concatenate([voice(10.0), np.zeros(20 * SR, np.float32), voice(9.0, f0=220.0, seed=3)])
    results = []
    for block in (60.0, 8.0, 3.3):
        scorer = FrameScorer(model)
        tl = compute_timeline((x[i:i + int(block * SR)] for i in range(0, x.size, int(block * SR))),
                              lambda w: pytest.fail("the wave path must not run"), LABELS, energy_vad, scorer=scorer)
        results.append([(w.start, w.label, None if w.probabilities is None else round(w.probabilities["sad"], 5))
                        for w in tl.windows])
        assert scorer.encoded_seconds <= 24.0  # the 20 s of silence were never encoded
    assert results[0] == results[1] == results[2]
    assert sum(label is not None for _, label, _ in results[0]) >= 15


def test_scorer_memory_stays_bounded_on_a_long_stream(model):
    x = voice(4.0)
    scorer = FrameScorer(model, piece=4.0)
    kept = []

    def blocks():
        for _ in range(30):  # 2 minutes of speech
            yield x
            kept.append(scorer.pieces_kept)

    tl = compute_timeline(blocks(), lambda w: None, LABELS, None, scorer=scorer, batch_size=8, keep_windows=False)
    assert tl.duration == 120.0 and max(kept) <= 5  # a batch of 8 windows spans at most 3 pieces


def test_recognizer_uses_frames_when_it_can(package, tmp_path):
    x = np.concatenate([voice(6.0), voice(6.0, f0=200.0, seed=1)])
    r = Recognizer.load(package)
    frames = r.timeline(x, sample_rate=SR)
    windows = r.timeline(x, sample_rate=SR, scoring="window")
    assert [w.start for w in frames.windows] == [w.start for w in windows.windows]
    assert all(w.label in LABELS for w in frames.windows if w.is_speech)
    with pytest.raises(ConfigError):
        r.timeline(x, sample_rate=SR, scoring="frames")
    # a package exported before frames (no head graph) falls back to the window-by-window path
    old = tmp_path / "old"
    shutil.copytree(package, old)
    cfg = json.loads((old / "config.json").read_text())
    cfg.pop("head_graph")
    (old / "config.json").write_text(json.dumps(cfg))
    old_model = OnnxAudioModel(old)
    assert not old_model.has_frames and frame_scorer(old_model) is None
    tl = Recognizer.load(old).timeline(x, sample_rate=SR)
    assert [w.label for w in tl.windows] == [w.label for w in windows.windows]
