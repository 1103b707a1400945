"""Classification metrics (WA, UA, F1, confusion) and seed 002's segment/clip accuracies.

* **WA** (weighted accuracy) = overall accuracy, the fraction of test utterances right.
* **UA** (unweighted accuracy) = mean per-class recall over the classes present in ``y_true``
  (classes absent from a test fold are skipped, as scikit-learn's balanced accuracy does).
* **macro-F1** / **weighted-F1** over the classes present in ``y_true`` or ``y_pred``.
* confusion matrix: rows = true class, columns = predicted class, in ``labels`` order; the
  row-normalised version divides each row by its total (rows with no samples stay 0).

Seed 002 §3.3 (``segment_clip_metrics``), for segments s_0..s_{k-1} of a clip c with true class
y and predictions P (argmax of each segment's logits); M = the set of classes predicted for the
maximum number of segments:

* **SA**: fraction of test *segments* predicted correctly;
* **ACA**: a clip is right if every segment is predicted y;
* **SCA**: right if |M| = 1 and M = {y} (a unique majority that is correct);
* **ALCA**: right if argmax of the segment-averaged logits is y;
* **BCA**: right if y ∈ M (ties count in the clip's favour).

All are fractions in [0, 1] (the paper prints them the same way).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Hashable, Sequence

import numpy as np

from emovox.errors import EmovoxError

METRIC_NAMES = ("wa", "ua", "macro_f1", "weighted_f1")
CLIP_METRIC_NAMES = ("sa", "aca", "sca", "alca", "bca")
LabelSeq = Sequence[Any] | np.ndarray  # label lists or 1-D label arrays


def _check_pair(y_true: LabelSeq, y_pred: LabelSeq) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(list(y_true)), np.asarray(list(y_pred))
    if t.shape != p.shape or t.ndim != 1:
        raise EmovoxError(f"metrics: y_true and y_pred must be 1-D of equal length, got {t.shape} and {p.shape}")
    if t.size == 0:
        raise EmovoxError("metrics: no samples to score (empty test set)")
    return t, p


def weighted_accuracy(y_true: LabelSeq, y_pred: LabelSeq) -> float:
    """WA: overall accuracy."""
    t, p = _check_pair(y_true, y_pred)
    return float(np.mean(t == p))


def unweighted_accuracy(y_true: LabelSeq, y_pred: LabelSeq) -> float:
    """UA: mean recall over the classes that occur in ``y_true``."""
    t, p = _check_pair(y_true, y_pred)
    return float(np.mean([np.mean(p[t == c] == c) for c in np.unique(t)]))


def confusion(y_true: LabelSeq, y_pred: LabelSeq, labels: Sequence[Hashable],
              normalize: bool = False) -> np.ndarray:
    """Confusion matrix (rows true, columns predicted) in ``labels`` order; optionally row-normalised."""
    from sklearn.metrics import confusion_matrix

    t, p = _check_pair(y_true, y_pred)
    unknown = (set(t.tolist()) | set(p.tolist())) - set(labels)
    if unknown:
        raise EmovoxError(f"metrics: label(s) {sorted(map(str, unknown))} not in the class list {list(labels)}")
    cm = confusion_matrix(t, p, labels=list(labels))
    return row_normalize(cm) if normalize else cm


def row_normalize(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (empty rows stay zero)."""
    cm = np.asarray(cm, dtype=float)
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums > 0)


def classification_metrics(y_true: LabelSeq, y_pred: LabelSeq,
                           labels: Sequence[Hashable] | None = None) -> dict[str, Any]:
    """WA, UA, macro/weighted F1, per-class recall and both confusion matrices as a JSON-ready dict."""
    from sklearn.metrics import f1_score

    t, p = _check_pair(y_true, y_pred)
    labels = list(labels) if labels is not None else sorted(set(t.tolist()) | set(p.tolist()))
    cm = confusion(t, p, labels)
    present = [c for c in labels if c in set(t.tolist()) | set(p.tolist())]
    recall = {str(c): (float(cm[i, i] / cm[i].sum()) if cm[i].sum() else None) for i, c in enumerate(labels)}
    return {
        "n": int(t.size),
        "labels": [str(c) for c in labels],
        "wa": weighted_accuracy(t, p),
        "ua": unweighted_accuracy(t, p),
        "macro_f1": float(f1_score(t, p, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(t, p, labels=present, average="weighted", zero_division=0)),
        "recall": recall,
        "confusion": cm.astype(int).tolist(),
        "confusion_normalized": row_normalize(cm).tolist(),
    }


def segment_clip_metrics(clip_ids: Sequence[Hashable], y_true: LabelSeq,
                         logits: np.ndarray) -> dict[str, Any]:
    """Seed 002's SA, ACA, SCA, ALCA, BCA from per-segment clip ids, true classes and logits.

    ``clip_ids[i]`` names the clip of segment i, ``y_true[i]`` its clip's class index and
    ``logits[i]`` its (n_classes,) logits. Also returns ``n_segments``, ``n_clips`` and
    ``clip_pred_alca`` / ``clip_true`` (per clip, in first-seen order) for a clip confusion matrix.
    """
    scores = np.asarray(logits, dtype=float)
    t = np.asarray(list(y_true))
    ids = list(clip_ids)
    if scores.ndim != 2 or scores.shape[0] != len(ids) or t.shape != (len(ids),):
        raise EmovoxError(f"segment metrics: need logits (n_segments, n_classes) with one clip id and label per "
                          f"segment, got logits {scores.shape}, {len(ids)} ids, labels {t.shape}")
    if not ids:
        raise EmovoxError("segment metrics: no segments to score")
    pred = scores.argmax(axis=1)
    clips: dict[Hashable, list[int]] = {}
    for i, c in enumerate(ids):
        clips.setdefault(c, []).append(i)
    aca = sca = alca = bca = 0
    clip_true, clip_pred = [], []
    for c, rows in clips.items():
        labels = set(t[rows].tolist())
        if len(labels) != 1:
            raise EmovoxError(f"segment metrics: clip {c!r} has segments with different labels {sorted(labels)}")
        y = int(t[rows[0]])
        p = pred[rows]
        counts = Counter(p.tolist())
        top = max(counts.values())
        majority = {k for k, v in counts.items() if v == top}
        avg_pred = int(scores[rows].mean(axis=0).argmax())
        aca += bool(np.all(p == y))
        sca += majority == {y}
        alca += avg_pred == y
        bca += y in majority
        clip_true.append(y)
        clip_pred.append(avg_pred)
    n = len(clips)
    return {
        "sa": float(np.mean(pred == t)),
        "aca": aca / n,
        "sca": sca / n,
        "alca": alca / n,
        "bca": bca / n,
        "n_segments": len(ids),
        "n_clips": n,
        "clip_true": clip_true,
        "clip_pred_alca": clip_pred,
    }


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0.0 for a single value) over folds or runs."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if v.size == 0:
        return float("nan"), float("nan")
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
