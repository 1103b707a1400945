"""Speaker diarisation: clustering, cell labelling, turn smoothing, streaming; GE2E on real speakers."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from emovox.diarize import (
    Diarizer,
    Turn,
    cells_to_turns,
    check_options,
    clip_turns,
    cluster,
    diarize,
    label_cells,
    smooth_turns,
    speaker_at,
)
from emovox.errors import ConfigError

SR = 16000


def blobs(centres: list[np.ndarray], n: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + spread * rng.standard_normal((n, c.size)) for c in centres])
    return x, np.repeat(np.arange(len(centres)), n)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return len(set(zip(a.tolist(), b.tolist()))) == len(set(a.tolist())) == len(set(b.tolist()))


# ------------------------------------------------------------------------------ clustering
def test_cluster_counts_speakers_automatically():
    rng = np.random.default_rng(1)
    centres = [rng.standard_normal(32) for _ in range(3)]
    x, truth = blobs(centres, 20, 0.15)
    labels = cluster(x, threshold=0.5)
    assert len(set(labels)) == 3 and same_partition(labels, truth)
    assert len(set(cluster(x[:20], threshold=0.5))) == 1  # one speaker stays one


def test_cluster_fixed_count_and_edge_sizes():
    rng = np.random.default_rng(2)
    x, truth = blobs([rng.standard_normal(16) for _ in range(2)], 10, 0.1)
    assert same_partition(cluster(x, speakers=2), truth)
    assert len(set(cluster(x, speakers=4))) == 4
    assert cluster(np.zeros((0, 16))).size == 0 and cluster(x[:1]).tolist() == [0]


def test_small_clusters_fold_into_the_nearest():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    x, _ = blobs([a, b], 10, 0.05)
    x = np.concatenate([x, (a + 0.5 * rng.standard_normal(16))[None]])  # a stray segment near a
    loose = cluster(x, threshold=0.02)
    assert len(set(loose)) > 2
    folded = cluster(x, threshold=0.02, min_weight=3.0)
    assert len(set(folded)) == 2 and folded[-1] == folded[0]


def test_subsampled_clustering_assigns_everyone():
    rng = np.random.default_rng(4)
    x, truth = blobs([rng.standard_normal(8) for _ in range(2)], 60, 0.1)
    assert same_partition(cluster(x, threshold=0.5, max_clustered=25), truth)


@pytest.mark.parametrize("speakers,threshold,min_turn", [(0, 0.5, 1.0), (2.5, 0.5, 1.0), (None, 0.0, 1.0),
                                                          (None, 0.5, -1.0), (True, 0.5, 1.0)])
def test_bad_options(speakers, threshold, min_turn):
    with pytest.raises(ConfigError):
        check_options(speakers, threshold, min_turn)


# ------------------------------------------------------------------------- cells and turns
def test_label_cells_puts_the_change_between_segment_centres():
    # segments 0-2 (A), 1-3 (A), 2-4 (B), 3-5 (B): the change falls at 2.5 s, halfway between centres 2 and 3
    segs = [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (3.0, 5.0)]
    cells = label_cells(segs, [0, 0, 1, 1], [(0.0, 5.0)], 5.0, cell=0.5)
    assert cells.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    # outside speech: -1; uncovered speech takes the nearest labelled cell
    cells = label_cells([(0.0, 1.0)], [0], [(0.0, 2.0)], 3.0, cell=0.5)
    assert cells.tolist() == [0, 0, 0, 0, -1, -1]


def test_smooth_turns_gives_short_runs_to_the_longer_neighbour():
    #             A A A A B A A A B B B B B B  (0.1 s cells, -1 = pause)
    cells = np.array([0, 0, 0, 0, 1, 0, 0, 0, -1, 1, 1, 1, 1, 1, 1])
    out = smooth_turns(cells, min_turn=0.2, cell=0.1)
    assert out.tolist() == [0, 0, 0, 0, 0, 0, 0, 0, -1, 1, 1, 1, 1, 1, 1]
    assert smooth_turns(cells, min_turn=0.0, cell=0.1).tolist() == cells.tolist()
    assert smooth_turns(np.array([-1, -1]), 1.0).tolist() == [-1, -1]


def test_cells_to_turns_names_by_first_appearance():
    cells = np.array([1, 1, -1, 1, 0, 0, 0])
    turns = cells_to_turns(cells, 0.65, cell=0.1)
    assert [(t.start, t.end, t.speaker) for t in turns] == [(0.0, 0.2, "S1"), (0.3, 0.4, "S1"), (0.4, 0.65, "S2")]
    assert speaker_at(turns, 0.0, 0.65) == "S1" and speaker_at(turns, 0.3, 0.65) == "S2" and speaker_at(turns, 0.0, 0.3) == "S1"
    assert speaker_at(turns, 1.0, 2.0) is None


def test_clip_turns_cuts_turns_to_the_speech_regions():
    speech = [(0.04, 1.23), (1.5, 2.0), (2.31, 3.0)]
    cells = label_cells([(0.0, 1.6), (1.6, 3.2)], [0, 1], speech, 3.2)  # cells round regions outwards
    turns = cells_to_turns(cells, 3.2)
    assert (turns[0].start, turns[-1].end) == (0.0, 3.0)
    clipped = clip_turns(turns, speech)
    assert [(t.start, t.end, t.speaker) for t in clipped] == [(0.04, 1.23, "S1"), (1.5, 1.6, "S1"), (1.6, 2.0, "S2"),
                                                               (2.31, 3.0, "S2")]
    assert clip_turns([Turn(0.0, 5.0, "S1")], [(1.0, 2.0), (3.0, 4.0)]) == [Turn(1.0, 2.0, "S1"), Turn(3.0, 4.0, "S1")]
    assert clip_turns([Turn(1.0, 2.0, "S1")], []) == []


# ------------------------------------------------------------------------------ streaming
def tone_embed(segments: np.ndarray) -> np.ndarray:
    """Fake speaker encoder: the normalised magnitude spectrum in 32 bands (a tone's pitch = its 'voice')."""
    spec = np.abs(np.fft.rfft(segments, n=25600, axis=1))[:, : 32 * 100].reshape(len(segments), 32, -1).sum(axis=2)
    return spec / np.linalg.norm(spec, axis=1, keepdims=True)


def two_speakers(seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """A 220 Hz and a 700 Hz 'speaker' taking turns of 3-6 s, with 0.5 s pauses."""
    rng = np.random.default_rng(seed)
    parts, ref, t = [], [], 0.0
    for i, length in enumerate([4.0, 3.0, 6.0, 3.5, 5.0]):
        f = 220.0 if i % 2 == 0 else 700.0
        n = int(length * SR)
        parts.append(0.3 * np.sin(2 * np.pi * f * np.arange(n) / SR) + 0.01 * rng.standard_normal(n))
        ref.append((t, t + length, "A" if i % 2 == 0 else "B"))
        parts.append(np.zeros(SR // 2))
        t += length + 0.5
    return np.concatenate(parts).astype(np.float32), ref


def test_streaming_diarisation_finds_the_known_turns():
    x, ref = two_speakers()
    speech = [(s, e) for s, e, _ in ref]
    blocks = [x[i:i + 12345] for i in range(0, x.size, 12345)]
    turns = diarize(blocks, speech, tone_embed)
    assert [t.speaker for t in turns] == ["S1", "S2", "S1", "S2", "S1"]
    for t, (s, e, _) in zip(turns, ref):
        assert abs(t.start - s) <= 0.11 and abs(t.end - e) <= 0.11
    # the block size does not matter, and a fixed count of 2 agrees with the automatic one
    whole = diarize([x], speech, tone_embed, speakers=2)
    assert [(t.start, t.end, t.speaker) for t in whole] == [(t.start, t.end, t.speaker) for t in turns]


def test_diarizer_keeps_bounded_audio():
    x, ref = two_speakers(1)
    d = Diarizer(tone_embed, batch_size=4)
    for i in range(0, x.size, SR):
        d.feed(x[i:i + SR], [(s, e) for s, e, _ in ref])
        assert d._buf.size <= 2 * d.seg_n + SR  # the open segment, the tail and the newest block
    assert len(d.finish([(s, e) for s, e, _ in ref])) == 5
    assert d.embeddings().shape[1] == 32


def test_no_speech_gives_no_turns():
    assert diarize([np.zeros(3 * SR, np.float32)], [], tone_embed) == []
    assert diarize([], [], tone_embed) == []


def test_turn_to_dict():
    assert Turn(1.0, 2.0, "S1").to_dict() == {"start": 1.0, "end": 2.0, "speaker": "S1"}


# ------------------------------------------------------------------------- real speakers
@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None or importlib.util.find_spec("librosa") is None,
                    reason="GE2E needs resemblyzer and librosa (pip install --no-deps resemblyzer==0.1.4 librosa)")
def test_ge2e_separates_two_librispeech_speakers(corpora_dir):
    import soundfile as sf

    root = corpora_dir / "librispeech-samples"
    spk = [sorted((root / s).glob("*.flac")) for s in ("1688", "3005")]
    parts, ref, t = [], [], 0.0
    for i in range(6):
        x, sr = sf.read(spk[i % 2][i // 2], dtype="float32")
        assert sr == SR
        x = x[: 5 * SR]
        parts += [x, np.zeros(SR // 2, np.float32)]
        ref.append((t, t + x.size / SR))
        t += x.size / SR + 0.5
    audio = np.concatenate(parts)
    turns = diarize([audio], ref)
    assert len({t.speaker for t in turns}) == 2
    assert len(turns) == 6 and [t.speaker for t in turns] == ["S1", "S2"] * 3
    for turn, (s, e) in zip(turns, ref):
        assert abs(turn.start - s) <= 0.3 and abs(turn.end - e) <= 0.3


@pytest.mark.skipif(importlib.util.find_spec("librosa") is None, reason="the reference mel front-end needs librosa")
@pytest.mark.parametrize("n", [25600, 12345, 8000])
def test_numpy_mel_equals_the_librosa_one(n):
    from emovox.upstreams.ge2e import mel_power as librosa_mel
    from emovox.upstreams.ge2e import numpy_mel_power

    x = (0.1 * np.random.default_rng(n).standard_normal(n)).astype(np.float32)
    ours, theirs = numpy_mel_power(x), librosa_mel(x)
    assert ours.shape == theirs.shape == (1 + n // 160, 40)
    assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max()
