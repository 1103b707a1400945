"""Scoring a leave-one-corpus-out fold: the held-out corpus's own labels, the 4 shared classes, collapse.

A model trained on other corpora predicts over *its* classes; a held-out corpus has only some of
them (nEMO has no disgust, ASED no surprise). :func:`score_held_out` therefore reports, from the
per-utterance scores (log posteriors or probabilities, shape ``(N, C)`` in ``classes`` order):

* ``own``: the decision restricted to the classes the held-out corpus has (argmax over those
  columns only), WA/UA over its utterances — "scored on the labels that corpus has";
* ``shared``: only utterances whose true label is one of :data:`SHARED_CLASSES` (angry, happy,
  neutral, sad — the classes every corpus has), argmax over those 4 columns — comparable across
  corpora, so its UA is the headline number (mean over corpora, and the worst corpus);
* ``unrestricted``: the plain argmax over all model classes, as a user gets it;
* ``predicted_distribution``: the fraction of the held-out utterances predicted as each model
  class by the plain argmax (and ``max_share`` / ``top_class``), so a collapse onto one or two
  classes is visible; ``shared_predicted_distribution`` is the same for the 4-class decision.

Utterances whose true label is not a model class cannot be scored and are counted in
``unscorable``. :func:`summarize_cross_corpus` turns per-corpus results into the table (per
corpus, mean, minimum); :func:`markdown_table` prints it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np

from emovox.errors import EmovoxError
from emovox.evaluation.metrics import classification_metrics

SHARED_CLASSES = ("angry", "happy", "neutral", "sad")


def predicted_distribution(predicted: Sequence[str], classes: Sequence[str]) -> dict[str, float]:
    """Fraction of ``predicted`` labels per class (every class listed, in ``classes`` order)."""
    counts = Counter(predicted)
    n = max(1, len(predicted))
    unknown = set(counts) - set(classes)
    if unknown:
        raise EmovoxError(f"cross-corpus: predicted label(s) {sorted(unknown)} not in the classes {list(classes)}")
    return {c: counts.get(c, 0) / n for c in classes}


def _restricted(y_true: np.ndarray, scores: np.ndarray, classes: Sequence[str],
                allowed: Sequence[str]) -> tuple[dict[str, Any], list[str]] | None:
    """Metrics of the argmax over the ``allowed`` columns, on rows whose truth is allowed."""
    rows = np.isin(y_true, list(allowed))
    if not rows.any():
        return None
    cols = [list(classes).index(c) for c in allowed]
    pred = [allowed[i] for i in scores[rows][:, cols].argmax(axis=1)]
    return classification_metrics(y_true[rows].tolist(), pred, labels=list(allowed)), pred


def score_held_out(y_true: Sequence[str], scores: Any, classes: Sequence[str], corpus: str = "",
                   shared: Sequence[str] = SHARED_CLASSES) -> dict[str, Any]:
    """Score one held-out corpus (see the module docstring for the parts of the result).

    ``y_true``: the true label names; ``scores``: ``(N, C)`` log posteriors or probabilities in
    ``classes`` order (any monotone score works: only argmaxes are taken).
    """
    classes = [str(c) for c in classes]
    truth = np.asarray([str(y) for y in y_true])
    s = np.asarray(scores, dtype=np.float64)
    where = f"cross-corpus scoring of {corpus or 'the held-out corpus'}"
    if s.ndim != 2 or s.shape != (truth.size, len(classes)):
        raise EmovoxError(f"{where}: scores must have shape ({truth.size}, {len(classes)}) = (utterances, classes), "
                          f"got {s.shape}")
    if truth.size == 0:
        raise EmovoxError(f"{where}: no utterances to score")
    if not np.isfinite(s).all():
        raise EmovoxError(f"{where}: scores contain NaN or inf; score every utterance before evaluating")
    missing = [c for c in shared if c not in classes]
    if missing:
        raise EmovoxError(f"{where}: the model has no class {missing} of the shared set {list(shared)}")
    scorable = np.isin(truth, classes)
    own_labels = [c for c in classes if c in set(truth.tolist())]
    full_pred = [classes[i] for i in s.argmax(axis=1)]
    dist = predicted_distribution(full_pred, classes)
    top = max(dist, key=dist.__getitem__)
    result: dict[str, Any] = {
        "corpus": corpus,
        "n": int(truth.size),
        "corpus_labels": own_labels,
        "unscorable": dict(Counter(truth[~scorable].tolist())),
        "predicted_distribution": dist,
        "top_class": top,
        "max_share": dist[top],
        "unrestricted": classification_metrics(truth[scorable].tolist(),
                                               [p for p, ok in zip(full_pred, scorable) if ok], labels=classes)
        if scorable.any() else None,
    }
    own = _restricted(truth, s, classes, own_labels) if own_labels else None
    result["own"] = own[0] if own else None
    four = _restricted(truth, s, classes, list(shared))
    result["shared"] = four[0] if four else None
    result["shared_predicted_distribution"] = predicted_distribution(four[1], list(shared)) if four else None
    return result


def score_fold_scores(score_set: Any, fold_info: Mapping[str, Any] | None = None, part: str = "test",
                      shared: Sequence[str] = SHARED_CLASSES) -> dict[str, Any]:
    """:func:`score_held_out` for one part of a :class:`emovox.scores.ScoreSet` (a fold's scores.json).

    The corpus name comes from ``fold_info['test_corpus']`` (a leave-one-corpus-out
    :class:`~emovox.protocols.Fold`'s ``info``) or the score set's ``meta``.
    """
    p = score_set.part(part)
    has = ~np.isnan(p.scores).all(axis=1)
    if not has.all():
        raise EmovoxError(f"{score_set.source} part {part!r}: {int((~has).sum())} utterance(s) have no score; "
                          "cross-corpus scoring needs every held-out utterance scored")
    corpus = str((fold_info or {}).get("test_corpus") or score_set.meta.get("test_corpus") or "")
    y = [score_set.classes[i] for i in p.y]
    return score_held_out(y, p.scores, score_set.classes, corpus, shared)


def summarize_cross_corpus(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per-corpus UA/WA (own labels, 4 shared classes) with their mean and minimum, plus collapse."""
    if not results:
        raise EmovoxError("cross-corpus summary: no fold results")
    names = [str(r.get("corpus") or f"fold{i + 1}") for i, r in enumerate(results)]
    if len(set(names)) != len(names):
        raise EmovoxError(f"cross-corpus summary: corpus names repeat {names}; give each fold its held-out corpus")
    rows = {}
    for name, r in zip(names, results):
        rows[name] = {
            "n": r["n"],
            "own_ua": r["own"]["ua"] if r.get("own") else None,
            "own_wa": r["own"]["wa"] if r.get("own") else None,
            "own_labels": list(r.get("corpus_labels", [])),
            "shared_ua": r["shared"]["ua"] if r.get("shared") else None,
            "shared_wa": r["shared"]["wa"] if r.get("shared") else None,
            "top_class": r["top_class"],
            "max_share": r["max_share"],
        }
    out: dict[str, Any] = {"corpora": rows}
    for key in ("own_ua", "shared_ua", "own_wa", "shared_wa"):
        vals = [v[key] for v in rows.values() if v[key] is not None]
        out[f"mean_{key}"] = float(np.mean(vals)) if vals else None
        out[f"min_{key}"] = float(np.min(vals)) if vals else None
    worst = [n for n, v in rows.items() if v["shared_ua"] is not None]
    out["worst_corpus_shared"] = min(worst, key=lambda n: rows[n]["shared_ua"]) if worst else None
    return out


def markdown_table(summary: Mapping[str, Any], title: str = "") -> str:
    """The summary as a Markdown table (percentages, one decimal): one row per corpus, then mean and min."""
    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f}"

    lines = [f"### {title}", ""] if title else []
    lines += ["| held-out corpus | n | UA own labels | WA own labels | UA 4-class | WA 4-class | most predicted (share) |",
              "|---|---:|---:|---:|---:|---:|---|"]
    for name, r in summary["corpora"].items():
        lines.append(f"| {name} | {r['n']} | {pct(r['own_ua'])} | {pct(r['own_wa'])} | {pct(r['shared_ua'])} | "
                     f"{pct(r['shared_wa'])} | {r['top_class']} ({pct(r['max_share'])} %) |")
    lines.append(f"| **mean** | | {pct(summary['mean_own_ua'])} | {pct(summary['mean_own_wa'])} | "
                 f"{pct(summary['mean_shared_ua'])} | {pct(summary['mean_shared_wa'])} | |")
    lines.append(f"| **min** | | {pct(summary['min_own_ua'])} | {pct(summary['min_own_wa'])} | "
                 f"{pct(summary['min_shared_ua'])} | {pct(summary['min_shared_wa'])} | |")
    return "\n".join(lines) + "\n"


__all__ = ["SHARED_CLASSES", "markdown_table", "predicted_distribution", "score_fold_scores", "score_held_out",
           "summarize_cross_corpus"]
