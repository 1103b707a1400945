"""Seed-000 chunk batching, padding, whole-utterance evaluation batches."""

from __future__ import annotations

import torch

from emovox.training.data import (ChunkBatchSampler, ChunkRequest, FeatureDataset, LengthBatchSampler, collate,
                                  eval_loader, pad_frames, take_chunk, train_loader)

T_SET = (150, 200, 250, 300)


def _features(lengths: list[int], n_mels: int = 8) -> list[torch.Tensor]:
    return [torch.arange(n * n_mels, dtype=torch.float32).reshape(n, n_mels) + 1000 * i for i, n in enumerate(lengths)]


def test_every_batch_has_one_chunk_length_from_the_set() -> None:
    lengths = [90, 120, 400, 310, 260, 180, 50, 500] * 5
    ds = FeatureDataset(_features(lengths), [i % 4 for i in range(len(lengths))])
    loader = train_loader(ds, batch_size=8, chunk_frames=T_SET, seed=3)
    seen = set()
    for x, y, idx in loader:
        assert x.ndim == 3 and x.shape[0] == len(y) == len(idx) and x.shape[2] == 8
        assert x.shape[1] in T_SET
        seen.add(x.shape[1])
    assert len(seen) >= 2  # T really varies between batches
    assert sum(1 for _ in loader) == len(loader) == 5


def test_chunks_are_real_frames_at_random_offsets() -> None:
    x = _features([400])[0]
    offsets = set()
    sampler = ChunkBatchSampler([400], batch_size=1, chunk_frames=[150], seed=0)
    for epoch in range(20):
        sampler.set_epoch(epoch)
        (req,), = sampler.batches()
        assert 0 <= req.offset <= 250
        chunk = take_chunk(x, req.frames, req.offset)
        assert torch.equal(chunk, x[req.offset: req.offset + 150])
        offsets.add(req.offset)
    assert len(offsets) > 5


def test_short_segments_are_padded_by_repeat_or_zero() -> None:
    x = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    rep = pad_frames(x, 7, "repeat")
    assert rep.shape == (7, 2) and torch.equal(rep[3:6], x) and torch.equal(rep[6], x[0])
    zero = pad_frames(x, 5, "zero")
    assert torch.equal(zero[:3], x) and not zero[3:].any()
    assert take_chunk(x, 10, 0, "repeat").shape == (10, 2)


def test_sampler_is_deterministic_per_epoch_and_covers_copies() -> None:
    lengths = [100 + i for i in range(10)]
    a = ChunkBatchSampler(lengths, 4, T_SET, copies=2, seed=7)
    b = ChunkBatchSampler(lengths, 4, T_SET, copies=2, seed=7)
    a.set_epoch(3), b.set_epoch(3)
    assert a.batches() == b.batches()
    b.set_epoch(4)
    assert a.batches() != b.batches()
    items = [r for batch in a.batches() for r in batch]
    assert len(items) == 30  # each utterance once clean + 2 augmented copies
    for i in range(10):
        mine = [r for r in items if r.index == i]
        assert sum(r.augment_seed is None for r in mine) == 1 and len(mine) == 3


def test_augmenter_is_applied_only_to_copies_with_their_seed() -> None:
    calls = []

    def aug(x: torch.Tensor, seed: int) -> torch.Tensor:
        calls.append(seed)
        return torch.zeros_like(x)

    ds = FeatureDataset(_features([200]), [1], augment=aug)
    clean, _, _ = ds[ChunkRequest(0, 150, 10, None)]
    masked, _, _ = ds[ChunkRequest(0, 150, 10, 42)]
    assert clean.abs().sum() > 0 and masked.abs().sum() == 0 and calls == [42]


def test_ddp_shards_are_disjoint_and_equal_sized() -> None:
    lengths = [150] * 22
    shards = []
    for rank in range(2):
        s = ChunkBatchSampler(lengths, 4, T_SET, seed=1, rank=rank, world_size=2)
        shards.append(list(s))
        assert len(shards[rank]) == len(s) == 3
    ids0 = {r.index for b in shards[0] for r in b}
    ids1 = {r.index for b in shards[1] for r in b}
    assert not ids0 & ids1


def test_eval_batches_whole_utterances_of_equal_length() -> None:
    lengths = [200, 200, 150, 200, 10]
    ds = FeatureDataset(_features(lengths), [0, 1, 2, 3, 0])
    seen = []
    for x, _y, idx in eval_loader(ds, batch_size=2):
        for row, i in zip(x, idx.tolist()):
            n = lengths[i]
            assert torch.equal(row[:n], ds.features[i])  # whole utterance, untouched
            seen.append(i)
    assert sorted(seen) == list(range(5))
    assert len(LengthBatchSampler([200, 200, 150, 200], 2)) == 3
    assert ds[4][0].shape[0] == 32  # too short for the convolutions: padded to MIN_FRAMES


def test_eval_frames_truncates_for_no_pooling_models() -> None:
    ds = FeatureDataset(_features([400, 120]), [0, 1], eval_frames=300)
    assert ds[0][0].shape[0] == 300 and torch.equal(ds[0][0], ds.features[0][:300])
    assert ds[1][0].shape[0] == 300


def test_collate_shapes() -> None:
    x, y, idx = collate([(torch.zeros(5, 3), 1, 0), (torch.ones(5, 3), 2, 4)])
    assert x.shape == (2, 5, 3) and y.tolist() == [1, 2] and idx.tolist() == [0, 4]


def test_a_last_batch_of_one_is_merged_for_batch_norm() -> None:
    s = ChunkBatchSampler([100] * 9, 4, [50])
    sizes = [len(b) for b in s]
    assert sizes == [4, 5] and len(s) == 2
    assert [len(b) for b in ChunkBatchSampler([100] * 10, 4, [50])] == [4, 4, 2]


def test_chunks_shorter_than_min_frames_are_widened_consistently() -> None:
    ds = FeatureDataset(_features([40, 31, 100]), [0, 1, 2])
    x, _, _ = collate([ds[ChunkRequest(i, 24, 16)] for i in range(3)])  # T=24 < MIN_FRAMES=32
    assert x.shape == (3, 32, 8)


def _utts(tmp_path, n: int = 4):
    import soundfile as sf

    from emovox.corpora import Utterance
    from tests.conftest import make_tone

    out = []
    for i in range(n):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, make_tone(0.5 + 0.1 * i, freq=150 + 30 * i, seed=i), 16000)
        out.append(Utterance(f"u{i}", str(path), f"spk{i % 2}", "sad"))
    return out


def test_load_features_caches_and_normalises(tmp_path) -> None:
    from emovox.config import FeatureConfig
    from emovox.training.data import load_features

    utts = _utts(tmp_path)
    cfg = FeatureConfig(n_mels=20, normalize="segment")
    feats = load_features(utts, cfg, tmp_path / "cache")
    assert [f.shape[1] for f in feats] == [20] * 4 and feats[0].shape[0] == 1 + 8000 // 160
    assert torch.allclose(feats[1].mean(0), torch.zeros(20), atol=1e-4)  # segment MVN
    entries = list((tmp_path / "cache").rglob("*.safetensors"))
    assert len(entries) == 4
    again = load_features(utts, cfg, tmp_path / "cache")  # read back from the cache
    assert all(torch.equal(a, b) for a, b in zip(feats, again))
    spk = load_features(utts, FeatureConfig(n_mels=20, normalize="speaker"), tmp_path / "cache")
    frames = torch.cat([spk[0], spk[2]])  # both utterances of spk0
    assert torch.allclose(frames.mean(0), torch.zeros(20), atol=1e-4)
    assert not torch.allclose(spk[0].mean(0), torch.zeros(20), atol=1e-3)
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 4  # raw features shared


def test_vad_drops_frames_and_unknown_frontend_is_named(tmp_path) -> None:
    import pytest

    from emovox.config import FeatureConfig
    from emovox.errors import ConfigError
    from emovox.training.data import load_features

    utts = _utts(tmp_path, 1)
    import numpy as np
    import soundfile as sf

    x, _ = sf.read(utts[0].path)
    sf.write(utts[0].path, np.concatenate([np.zeros(8000), x, np.zeros(8000)]), 16000)  # 0.5 s silence each side
    full = load_features(utts, FeatureConfig(n_mels=20, vad=False), tmp_path / "c")[0]
    speech = load_features(utts, FeatureConfig(n_mels=20, vad=True), tmp_path / "c")[0]
    assert speech.shape[0] < full.shape[0]
    with pytest.raises(ConfigError, match="features.frontend: 'mfcc'"):
        load_features(utts, FeatureConfig(frontend="mfcc"), tmp_path / "c")


def test_upstream_frames_are_features_and_share_the_upstream_cache(tmp_path) -> None:
    import pytest

    from emovox.config import FeatureConfig
    from emovox.errors import EmovoxError
    from emovox.training.data import load_features

    try:
        from emovox.upstreams.ge2e import weights_path

        weights_path()
    except EmovoxError as exc:
        pytest.skip(f"GE2E weights unavailable: {exc}")
    utts = _utts(tmp_path, 2)
    feats = load_features(utts, FeatureConfig(frontend="ge2e", normalize="none"), tmp_path / "cache")
    assert [f.shape[1] for f in feats] == [256, 256] and feats[0].shape[0] > 10
    from emovox.cache import FeatureCache, source_key
    from emovox.upstreams import build_upstream

    entry = FeatureCache(tmp_path / "cache", build_upstream("ge2e").key).get(source_key(utts[0].path))
    assert entry is not None and {"embedding", "frames"} <= set(entry)  # the upstream's own entry
