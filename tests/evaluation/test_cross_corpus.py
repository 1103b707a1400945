"""Cross-corpus scoring: own-label and 4-class restriction, collapse visible, summary table."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.errors import EmovoxError
from emovox.evaluation.cross_corpus import (
    markdown_table,
    predicted_distribution,
    score_fold_scores,
    score_held_out,
    summarize_cross_corpus,
)
from emovox.scores import ScoreSet

CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def scores_for(truth, first, second=None, rng=None):
    """Log-posterior-like scores: ``first[i]`` ranks top, ``second[i]`` (if given) second."""
    rng = rng or np.random.default_rng(0)
    s = rng.uniform(-6, -4, size=(len(truth), len(CLASSES)))
    for i in range(len(truth)):
        s[i, CLASSES.index(first[i])] = -0.1
        if second is not None:
            s[i, CLASSES.index(second[i])] = -0.5
    return s


def test_collapse_is_visible_and_own_labels_rescue_it():
    truth = ["angry", "fear", "happy", "neutral", "sad"] * 4
    # the plain argmax says "disgust" for everything (a class this corpus does not have);
    # the runner-up is the true label
    s = scores_for(truth, ["disgust"] * 20, truth)
    r = score_held_out(truth, s, CLASSES, corpus="ased")
    assert r["corpus_labels"] == ["angry", "fear", "happy", "neutral", "sad"]
    assert r["predicted_distribution"]["disgust"] == 1.0 and r["top_class"] == "disgust" and r["max_share"] == 1.0
    assert sum(r["predicted_distribution"].values()) == pytest.approx(1.0)
    assert r["unrestricted"]["ua"] == 0.0
    assert r["own"]["ua"] == 1.0 and r["own"]["n"] == 20
    assert r["shared"]["n"] == 16 and r["shared"]["ua"] == 1.0  # fear rows left out of the 4-class score
    assert r["shared_predicted_distribution"] == {c: 0.25 for c in ("angry", "happy", "neutral", "sad")}


def test_ua_values_by_hand():
    truth = ["angry", "angry", "sad", "sad", "surprise", "surprise"]
    top = ["angry", "sad", "sad", "sad", "happy", "surprise"]
    r = score_held_out(truth, scores_for(truth, top), CLASSES, corpus="x")
    # own labels {angry, sad, surprise}: the 'happy' prediction is re-decided among those three
    assert r["corpus_labels"] == ["angry", "sad", "surprise"]
    assert r["unrestricted"]["ua"] == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert r["shared"]["n"] == 4 and r["shared"]["ua"] == pytest.approx((0.5 + 1.0) / 2)
    assert r["shared"]["wa"] == pytest.approx(3 / 4)
    assert r["predicted_distribution"]["sad"] == pytest.approx(3 / 6)


def test_unscorable_labels_counted():
    truth = ["angry", "calm", "sad", "calm"]
    r = score_held_out(truth, scores_for(truth, ["angry", "neutral", "sad", "neutral"]), CLASSES)
    assert r["unscorable"] == {"calm": 2} and r["n"] == 4
    assert r["own"]["n"] == 2 and r["own"]["ua"] == 1.0


def test_summary_and_table():
    rng = np.random.default_rng(1)
    results = []
    for name, correct in (("emodb", 1.0), ("nemo", 0.5)):
        truth = ["angry", "happy", "neutral", "sad"] * 5
        top = [t if rng.random() < correct or correct == 1.0 else "neutral" for t in truth]
        results.append(score_held_out(truth, scores_for(truth, top, rng=rng), CLASSES, corpus=name))
    summary = summarize_cross_corpus(results)
    ua = {n: r["shared_ua"] for n, r in summary["corpora"].items()}
    assert ua["emodb"] == 1.0 and ua["nemo"] < 1.0
    assert summary["mean_shared_ua"] == pytest.approx(np.mean(list(ua.values())))
    assert summary["min_shared_ua"] == ua["nemo"] and summary["worst_corpus_shared"] == "nemo"
    table = markdown_table(summary, "leave-one-corpus-out")
    assert "| emodb | 20 | 100.0 |" in table and "| **mean** |" in table and "| **min** |" in table
    with pytest.raises(EmovoxError, match="repeat"):
        summarize_cross_corpus(results + results[:1])


def test_score_set_adapter():
    truth = ["angry", "happy", "neutral", "sad"] * 2
    ss = ScoreSet(CLASSES, meta={})
    ss.add("test", [f"u{i}" for i in range(8)], [CLASSES.index(t) for t in truth], scores_for(truth, truth))
    r = score_fold_scores(ss, {"test_corpus": "tess"})
    assert r["corpus"] == "tess" and r["shared"]["ua"] == 1.0
    nan = scores_for(truth, truth)
    nan[0] = np.nan
    ss.add("test", [f"u{i}" for i in range(8)], [CLASSES.index(t) for t in truth], nan)
    with pytest.raises(EmovoxError, match="1 utterance"):
        score_fold_scores(ss)


def test_bad_inputs():
    truth = ["angry", "sad"]
    with pytest.raises(EmovoxError, match="shape"):
        score_held_out(truth, np.zeros((3, 7)), CLASSES)
    with pytest.raises(EmovoxError, match="NaN"):
        score_held_out(truth, np.full((2, 7), np.nan), CLASSES)
    with pytest.raises(EmovoxError, match="no class"):
        score_held_out(truth, np.zeros((2, 3)), ["angry", "sad", "fear"])
    with pytest.raises(EmovoxError, match="not in the classes"):
        predicted_distribution(["joy"], CLASSES)
