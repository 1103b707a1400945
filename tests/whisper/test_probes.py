"""recipes/whisper_ft/probes.py: pooled-feature loading, the baseline-SVM probe, the weighted-layer head."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emovox.corpora.manifest import Utterance
from emovox.errors import ConfigError
from emovox.protocols import leave_one_speaker_out
from tests.conftest import import_script

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes" / "whisper_ft"


@pytest.fixture(scope="module")
def probes():
    with import_script(RECIPE_DIR / "probes.py", "whisper_ft_probes") as module:
        yield module


def _data(n_layers: int = 3, dim: int = 8, informative: int = 1, seed: int = 0):
    """5 speakers x 12 clips, 3 classes; only hidden state ``informative`` carries the class."""
    rng = np.random.default_rng(seed)
    utts, feats = [], []
    centres = rng.standard_normal((3, dim)) * 2.0
    for s in range(5):
        for n in range(12):
            c = n % 3
            f = rng.standard_normal((n_layers, dim))
            f[informative] += centres[c]
            feats.append(f)
            utts.append(Utterance(f"s{s}_{n}", f"/x/s{s}_{n}.wav", f"s{s}", "abc"[c]))
    return utts, np.array(feats, np.float32)


def test_load_pooled_maps_relative_paths_and_names_missing_clips(probes, tmp_path):
    root = tmp_path / "corpora"
    folder = tmp_path / "feats" / "tiny.en-none" / "emodb"
    folder.mkdir(parents=True)
    feats = np.arange(3 * 2 * 4, dtype=np.float16).reshape(3, 2, 4)
    np.savez(folder / "0000.npz", paths=np.array(["emodb/wav/a.flac", "emodb/wav/b.flac"]), feats=feats[:2])
    np.savez(folder / "0001.npz", paths=np.array(["emodb/wav/c.flac"]), feats=feats[2:])
    paths = [str(root / "emodb" / "wav" / f) for f in ("c.flac", "a.flac")]
    x = probes.load_pooled(tmp_path / "feats", "tiny.en", "emodb", root, paths)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, feats[[2, 0]].astype(np.float32))
    with pytest.raises(ConfigError, match="1 of 2 clips.*emodb/wav/d.flac.*features.py"):
        probes.load_pooled(tmp_path / "feats", "tiny.en", "emodb", root, [paths[0], str(root / "emodb/wav/d.flac")])


def test_linear_probe_separates_the_informative_layer_only(probes):
    utts, x = _data()
    folds = leave_one_speaker_out(utts, valid_fraction=0.25, seed=0)
    index = {u.id: i for i, u in enumerate(utts)}
    labels = np.array([u.label for u in utts])
    good = probes.probe(x[:, 1], labels, index, folds)
    noise = probes.probe(x[:, 0], labels, index, folds)
    assert len(good) == 5 and all(r["C"] in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0) for r in good)
    assert np.mean([r["ua"] for r in good]) >= 0.9
    assert np.mean([r["ua"] for r in noise]) < 0.6


def test_weighted_head_puts_its_weight_on_the_informative_layer(probes):
    utts, x = _data(informative=2)
    folds = leave_one_speaker_out(utts, valid_fraction=0.25, seed=0)[:2]
    index = {u.id: i for i, u in enumerate(utts)}
    y = np.array(["abc".index(u.label) for u in utts])
    rows, weights = probes.weighted_head(x, y, index, folds, 3, epochs=150, lrs=(1e-4, 1e-2), batch_size=16)
    assert np.mean([r["ua"] for r in rows]) >= 0.9
    assert all(r["lr"] == 1e-2 for r in rows)  # 1e-4 barely moves in 150 small epochs: validation picks 1e-2
    for w in weights:
        assert len(w) == 3 and abs(sum(w) - 1) < 1e-5 and int(np.argmax(w)) == 2
