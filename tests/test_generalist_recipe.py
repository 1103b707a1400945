"""recipes/generalist/train.py: one fold of the default model's recipe learns, alone and as an ensemble."""

from __future__ import annotations


import numpy as np
import pytest

from emovox.corpora.manifest import Utterance
from emovox.protocols import leave_one_corpus_out
from tests.conftest import REPO, import_script


@pytest.fixture(scope="module")
def recipe():
    with import_script(REPO / "recipes" / "generalist" / "train.py", "generalist_train") as module:
        yield module


def corpora(n_per_speaker: int = 80, seed: int = 0):
    """Three corpora x 6 speakers; features ``(N, 5, 16)``: the label along layer 2-4 dimensions, a
    corpus offset on other dimensions (what cross-corpus training must see past)."""
    rng = np.random.default_rng(seed)
    labels = ["angry", "happy", "neutral", "sad"]
    utts, rows = [], []
    for c, corpus in enumerate(("a", "b", "c")):
        for s in range(6):
            for i in range(n_per_speaker):
                label = labels[i % 4]
                utts.append(Utterance(f"{corpus}{s}_{i}", f"{corpus}/{s}/{i}.wav", f"{corpus}:{s}", label, corpus))
                x = rng.normal(0, 1, (5, 16))
                x[:, 8:] += 2.0 * c  # the corpus, away from the label dimensions
                x[:, labels.index(label)] += 3.0
                rows.append(x)
    return utts, np.array(rows, np.float32)


@pytest.mark.parametrize("members", [None, [{"seed": 0}, {"seed": 1, "adversarial": 0.3}]])
def test_a_cross_corpus_fold_learns(recipe, members):
    from data import balanced_weights, label_ids

    utts, feats = corpora()
    y, w = label_ids(utts), balanced_weights(utts)
    cand = {"layers": [2, 3, 4], "hidden": 32, "dropout": 0.1, "epochs": 40, "lr": 3e-3}
    if members:
        cand["members"] = members
    fold = leave_one_corpus_out(utts, valid_fraction=0.2, seed=0)[0]
    head, hist, (tr, va, te), _, logits = recipe.run_fold(feats, y, w, utts, fold, cand)
    held = y[te]
    ua = np.mean([(logits.argmax(1)[held == k] == k).mean() for k in np.unique(held)])
    assert ua >= 0.9 and hist["valid_ua"] >= 0.9
    assert len(head.others) == (len(members) - 1 if members else 0)
