"""Metrics against hand-computed values (see the comments for each number)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.errors import EmovoxError
from emovox.evaluation.metrics import (
    classification_metrics,
    confusion,
    mean_std,
    segment_clip_metrics,
    unweighted_accuracy,
    weighted_accuracy,
)

# true a a a b b c ; pred a a b b c c
Y_TRUE = ["a", "a", "a", "b", "b", "c"]
Y_PRED = ["a", "a", "b", "b", "c", "c"]


def test_wa_ua_by_hand():
    assert weighted_accuracy(Y_TRUE, Y_PRED) == pytest.approx(4 / 6)
    # recalls a 2/3, b 1/2, c 1/1
    assert unweighted_accuracy(Y_TRUE, Y_PRED) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)


def test_ua_differs_from_wa_on_imbalance():
    # 9 of class 0 right, 1 of class 1 wrong: WA 0.9, UA 0.5
    t, p = [0] * 9 + [1], [0] * 10
    assert weighted_accuracy(t, p) == pytest.approx(0.9)
    assert unweighted_accuracy(t, p) == pytest.approx(0.5)


def test_classification_metrics_by_hand():
    m = classification_metrics(Y_TRUE, Y_PRED, labels=["a", "b", "c"])
    assert m["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    np.testing.assert_allclose(m["confusion_normalized"], [[2 / 3, 1 / 3, 0], [0, 0.5, 0.5], [0, 0, 1]])
    # F1: a P=1 R=2/3 -> 0.8 ; b P=1/2 R=1/2 -> 0.5 ; c P=1/2 R=1 -> 2/3
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    assert m["recall"] == pytest.approx({"a": 2 / 3, "b": 0.5, "c": 1.0})
    assert m["n"] == 6 and m["labels"] == ["a", "b", "c"]


def test_confusion_keeps_label_order_and_empty_rows():
    cm = confusion(["x", "x"], ["x", "y"], labels=["z", "y", "x"], normalize=True)
    np.testing.assert_allclose(cm, [[0, 0, 0], [0, 0, 0], [0, 0.5, 0.5]])


def test_confusion_rejects_unknown_label():
    with pytest.raises(EmovoxError, match="not in the class list"):
        confusion(["a"], ["q"], labels=["a", "b"])


def test_metrics_reject_mismatched_lengths():
    with pytest.raises(EmovoxError, match="equal length"):
        weighted_accuracy([0, 1], [0])
    with pytest.raises(EmovoxError, match="empty"):
        weighted_accuracy([], [])


def test_segment_clip_metrics_by_hand():
    # clip A (y=0): preds 0,1,0 -> M={0}; avg logits [5/3,1/3,0] -> 0 : SCA ALCA BCA
    # clip B (y=1): preds 1,2   -> M={1,2} (tie); avg [0,1,.5] -> 1 : ALCA BCA (not SCA)
    # clip C (y=2): preds 2,2   -> all right : ACA SCA ALCA BCA
    # clip D (y=0): pred 1      -> nothing
    # clip E (y=1): preds 0,0,1 -> M={0}; avg [2/3,10/3,0] -> 1 : ALCA only
    clips = ["A"] * 3 + ["B"] * 2 + ["C"] * 2 + ["D"] + ["E"] * 3
    y = [0] * 3 + [1] * 2 + [2] * 2 + [0] + [1] * 3
    logits = np.array([
        [2, 0, 0], [0, 1, 0], [3, 0, 0],
        [0, 2, 0], [0, 0, 1],
        [0, 0, 1], [0, 0, 4],
        [0, 5, 0],
        [1, 0, 0], [1, 0, 0], [0, 10, 0],
    ], dtype=float)
    m = segment_clip_metrics(clips, y, logits)
    assert m["sa"] == pytest.approx(6 / 11)  # right segments: A2 B1 C2 D0 E1
    assert m["aca"] == pytest.approx(1 / 5)
    assert m["sca"] == pytest.approx(2 / 5)
    assert m["alca"] == pytest.approx(4 / 5)
    assert m["bca"] == pytest.approx(3 / 5)
    assert m["n_clips"] == 5 and m["n_segments"] == 11
    assert m["clip_true"] == [0, 1, 2, 0, 1] and m["clip_pred_alca"] == [0, 1, 2, 1, 1]


def test_segment_metrics_ordering_invariants():
    rng = np.random.default_rng(0)
    clips = np.repeat(np.arange(20), 4)
    y = np.repeat(rng.integers(0, 4, 20), 4)
    m = segment_clip_metrics(clips.tolist(), y, rng.normal(size=(80, 4)))
    assert m["aca"] <= m["sca"] <= m["bca"]


def test_segment_metrics_reject_inconsistent_clip_labels():
    with pytest.raises(EmovoxError, match="different labels"):
        segment_clip_metrics(["a", "a"], [0, 1], np.eye(2))


def test_mean_std_sample_deviation():
    assert mean_std([1.0, 3.0]) == pytest.approx((2.0, np.sqrt(2.0)))
    assert mean_std([5.0]) == (5.0, 0.0)
