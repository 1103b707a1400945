"""Top-k Whisper fine-tuning: the frozen-state cache, the trainable top, learning on separable data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from emovox.corpora.manifest import Utterance
from emovox.errors import ConfigError
from emovox.protocols import leave_one_speaker_out
from emovox.testing.whisper import write_tiny_whisper
from emovox.whisper.encoder import WhisperLayers, load_encoder
from emovox.whisper.finetune import FineTuneConfig, FineTuneRun, fine_tune_folds
from emovox.whisper.frozen import FrozenCache, TopBlocks, collate, masked_mean_std
from emovox.whisper.mel import log_mel
from tests.conftest import import_script

SR = 16000


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_tiny_whisper(tmp_path_factory.mktemp("w"), n_layers=3, dtype="float32")


def _clip(label: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(SR * rng.uniform(0.4, 0.7))) / SR
    if label == 0:  # low steady tone
        x = np.sin(2 * np.pi * rng.uniform(180, 260) * t)
    else:  # high tone with noise
        x = np.sin(2 * np.pi * rng.uniform(1800, 2600) * t) + 0.3 * rng.standard_normal(t.size)
    return (rng.uniform(0.1, 0.4) * x).astype(np.float32)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[Utterance]:
    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    utts = []
    for spk in range(4):
        for n in range(8):
            label = n % 2
            path = root / f"s{spk}_{n}.wav"
            sf.write(path, _clip(label, rng), SR, subtype="PCM_16")
            utts.append(Utterance(f"s{spk}_{n}", str(path), f"s{spk}", ["low", "high"][label], "synthetic"))
    return utts


def test_cached_frozen_output_equals_running_the_frozen_blocks(tiny, corpus, tmp_path, monkeypatch):
    encoder, dims = load_encoder(str(tiny))
    cache = FrozenCache(encoder, dims, str(tiny), split=2, cache_dir=tmp_path / "c")
    utt = corpus[3]
    (chunk,) = cache.get(utt)
    assert chunk.dtype == np.float16
    x, _ = sf.read(utt.path, dtype="float32")
    with torch.inference_mode():
        ref = WhisperLayers(encoder, dims, [2])(torch.from_numpy(log_mel(x))[None])[0, 0].numpy()
    assert chunk.shape == ref.shape == ((len(x) // 160 + 1) // 2, 32)
    np.testing.assert_allclose(chunk.astype(np.float32), ref, rtol=2e-3, atol=2e-3)
    assert len(list((tmp_path / "c").rglob("*.safetensors"))) == 1
    # a second read comes from the file, not from the encoder
    monkeypatch.setattr(cache, "compute", lambda samples: pytest.fail("recomputed a cached clip"))
    np.testing.assert_array_equal(cache.get(utt)[0], chunk)
    # another split point is another cache entry
    other = FrozenCache(encoder, dims, str(tiny), split=1, cache_dir=tmp_path / "c")
    assert other.cache.folder != cache.cache.folder


def test_clips_over_30_s_are_chunked(tiny, tmp_path):
    encoder, dims = load_encoder(str(tiny))
    cache = FrozenCache(encoder, dims, str(tiny), split=0, cache_dir=tmp_path)
    out = cache.compute(np.random.default_rng(0).standard_normal(31 * SR).astype(np.float32) * 0.1)
    assert out["chunks"].tolist() == [1500, 50] and out["hidden"].shape == (1550, 32)


def test_padded_top_blocks_match_the_unpadded_encoder(tiny):
    encoder, dims = load_encoder(str(tiny))
    rng = np.random.default_rng(1)
    mels = [torch.from_numpy(log_mel(rng.standard_normal(n).astype(np.float32) * 0.1))[None] for n in (8000, 12800)]
    with torch.inference_mode():
        full = [WhisperLayers(encoder, dims, [1, 2, 3])(m)[:, 0] for m in mels]  # (3, T, d) each
        top = TopBlocks(encoder, dims, split=1, top=3, layers=[1, 3])
        x, mask, owner = collate([[f[0].numpy()] for f in full])
        hs = top(x, mask)
        pooled = masked_mean_std(hs, mask, owner, 2)
    for i, f in enumerate(full):
        n = f.shape[1]
        np.testing.assert_allclose(hs[1, i, :n].numpy(), f[2].numpy(), atol=1e-4)
        ref = torch.cat([f[2].mean(0), f[2].std(0, unbiased=False)]).numpy()
        np.testing.assert_allclose(pooled[1, i].numpy(), ref, atol=1e-4)
    assert not mask[0, full[0].shape[1]:].any()
    # the trainable copy does not share parameters with the frozen encoder
    assert all(p.requires_grad for p in top.blocks.parameters())
    assert not any(p.requires_grad for p in encoder.parameters())


@pytest.mark.parametrize("bad", [{"k": 0}, {"k": 4}, {"top": 4}, {"head_layers": [0]}, {"combine": "sum"}])
def test_bad_fine_tune_config_is_a_config_error(bad):
    with pytest.raises(ConfigError):
        FineTuneConfig(**bad).resolve(3)


def test_top_k_fine_tuning_learns_separable_data(tiny, corpus, tmp_path):
    folds = leave_one_speaker_out(corpus, valid_fraction=0.34, seed=0)[:2]
    cfg = FineTuneConfig(model=str(tiny), k=1, head_layers=[2, 3], epochs=8, batch_size=8,
                         lr_encoder=1e-3, lr_head=1e-2, seed=0)
    run = FineTuneRun(cfg, tmp_path / "cache")
    before = {k: v.clone() for k, v in run.encoder.state_dict().items()}
    seen = []
    results = fine_tune_folds(corpus, folds, ["low", "high"], cfg, run=run, on_fold=seen.append)
    assert [r["fold"] for r in results] == [f.name for f in folds] and seen == results
    for r in results:
        assert r["metrics"]["ua"] >= 0.9, r["metrics"]
        assert len(r["history"]["epochs"]) == 8 and 1 <= r["history"]["best_epoch"] <= 8
        assert len(r["pred"]) == len(r["test"]) == 8
    # the loaded encoder is never modified (the top blocks train as copies)
    for k, v in run.encoder.state_dict().items():
        assert torch.equal(v, before[k]), k
    # seeded: the same run again gives the same predictions; a reused fold is not retrained
    again = fine_tune_folds(corpus, folds[:1], ["low", "high"], cfg, run=run)
    assert again[0]["pred"] == results[0]["pred"]
    reused = fine_tune_folds(corpus, folds[:1], ["low", "high"], cfg, run=run, skip=lambda f: results[0])
    assert reused == [results[0]]


def test_runner_takes_any_corpus_as_a_manifest_and_writes_results_per_fold(tiny, corpus, tmp_path):
    import json

    from emovox.corpora.manifest import write_manifest

    recipe_dir = Path(__file__).resolve().parents[2] / "recipes" / "whisper_ft"
    manifest = write_manifest(tmp_path / "m.csv", corpus)
    with import_script(recipe_dir / "run.py", "whisper_ft_run") as run:
        argv = ["--manifest", str(manifest), "--model", str(tiny), "--k", "1", "--epochs", "2", "--folds", "1",
                "--batch-size", "8", "--cache", str(tmp_path / "cache"), "-o", str(tmp_path / "out")]
        assert run.main(argv) == 0
        with pytest.raises(ConfigError, match="unknown key"):
            run.finetune_config({"finetune": {"kk": 1}}, run.argparse.Namespace(
                **{n: None for n in run.OVERRIDES}, head_layers=None))
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    assert res["folds_done"] == 1 and res["folds_total"] == 4 and res["partial"] is True
    assert res["settings"]["finetune"]["k"] == 1 and res["settings"]["finetune"]["epochs"] == 2
    fold = json.loads((tmp_path / "out" / "folds" / "test-s1.json").read_text())
    assert fold["metrics"]["ua"] == res["per_fold"][0]["ua"] and len(fold["history"]["epochs"]) == 2
    assert {u for u in fold["test"]} == {u.id for u in corpus if u.speaker == "s1"}
