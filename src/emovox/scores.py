"""Per-utterance log posteriors of one model on one fold: :class:`ScoreSet` (``scores.json``).

Every ``emovox experiment`` fold and every ``emovox text-train`` fold writes one; ``emovox fuse``
(:mod:`emovox.fusion`) reads two of them and fuses them fold by fold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from emovox.errors import FusionError

log = logging.getLogger(__name__)


def check_scores(scores: Any, name: str) -> np.ndarray | None:
    """``None`` stays ``None``; otherwise a float64 ``(N, C)`` array whose rows are finite or all-NaN."""
    if scores is None:
        return None
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] < 2:
        raise FusionError(f"{name} scores must have shape (utterances, classes>=2), got {s.shape}")
    nan_rows = np.isnan(s).all(axis=1)
    bad = ~np.isfinite(s[~nan_rows]).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(~nan_rows)[np.flatnonzero(bad)[0]])
        raise FusionError(f"{name} scores row {row} has inf or partial NaN values ({s[row].tolist()}); scores "
                          "must be finite log posteriors (a whole NaN row means 'no score')")
    return s


def available(scores: np.ndarray | None, n: int) -> np.ndarray:
    """Boolean mask of rows that have a score."""
    return np.zeros(n, bool) if scores is None else ~np.isnan(scores).all(axis=1)


@dataclass
class ScorePart:
    """One part (``valid`` or ``test``) of a fold: utterance ids, true class indices, scores."""

    ids: list[str]
    y: np.ndarray
    scores: np.ndarray


class ScoreSet:
    """Per-utterance log posteriors of one model on one fold (the file ``emovox fuse`` reads).

    JSON: ``{"kind": "emovox-scores", "classes": [...], "meta": {...}, "parts": {"valid": {"ids":
    [...], "labels": [class names], "scores": [[...] or null]}, "test": {...}}}``; ``null`` marks an
    utterance without a score (NaN row in memory).
    """

    KIND = "emovox-scores"

    def __init__(self, classes: Sequence[str], meta: dict[str, Any] | None = None) -> None:
        self.classes = [str(c) for c in classes]
        self.meta = dict(meta or {})
        self.parts: dict[str, ScorePart] = {}
        self.source = "<scores>"

    def add(self, name: str, ids: Sequence[str], y: Sequence[int] | np.ndarray, scores: Any) -> None:
        s = check_scores(scores, f"{self.source} part {name!r}")
        assert s is not None, f"{self.source} part {name!r}: scores are required"
        if s.shape != (len(ids), len(self.classes)) or len(y) != len(ids):
            raise FusionError(f"{self.source} part {name!r}: {len(ids)} ids, {len(y)} labels and scores of shape "
                              f"{s.shape} do not match {len(self.classes)} classes")
        self.parts[name] = ScorePart([str(i) for i in ids], np.asarray(y, dtype=int), s)

    def part(self, name: str) -> ScorePart:
        if name not in self.parts:
            raise FusionError(f"{self.source} has no {name!r} part (has: {', '.join(self.parts) or 'none'}); "
                              "fusion needs validation and test scores of every fold")
        return self.parts[name]

    def aligned(self, name: str, ids: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        """This set's ``name`` scores reordered to ``ids`` (utterances it lacks get NaN rows)."""
        if list(classes) != self.classes:
            raise FusionError(f"{self.source}: classes {self.classes} differ from {list(classes)}; both modalities "
                              "must score the same classes in the same order")
        part = self.part(name)
        row = {u: i for i, u in enumerate(part.ids)}
        out = np.full((len(ids), len(self.classes)), np.nan)
        found = [(j, row[u]) for j, u in enumerate(ids) if u in row]
        if not found:
            raise FusionError(f"{self.source} part {name!r} shares no utterance id with the other modality")
        if len(found) < len(ids):
            log.warning("%s part %r lacks %d of %d utterances; they use the other modality only",
                        self.source, name, len(ids) - len(found), len(ids))
        dst, src = map(list, zip(*found))
        out[dst] = part.scores[src]
        return out

    def metrics(self, name: str) -> dict[str, Any]:
        """WA/UA/F1/confusion of the argmax over the utterances that have a score."""
        from emovox.evaluation.metrics import classification_metrics

        part = self.part(name)
        has = available(part.scores, len(part.ids))
        if not has.any():
            raise FusionError(f"{self.source} part {name!r} has no scored utterance")
        out = classification_metrics(part.y[has], part.scores[has].argmax(1), labels=list(range(len(self.classes))))
        out["labels"] = list(self.classes)
        out["n_without_score"] = int((~has).sum())
        return out

    def to_dict(self) -> dict[str, Any]:
        def rows(s: np.ndarray) -> list:
            return [None if np.isnan(r).all() else [float(v) for v in r] for r in s]

        return {"kind": self.KIND, "classes": self.classes, "meta": self.meta,
                "parts": {n: {"ids": p.ids, "labels": [self.classes[i] for i in p.y], "scores": rows(p.scores)}
                          for n, p in self.parts.items()}}

    def save(self, path: str | Path) -> Path:
        from emovox.io import atomic_write_json

        return atomic_write_json(path, self.to_dict(), indent=None)

    @classmethod
    def load(cls, path: str | Path) -> "ScoreSet":
        from emovox.io import read_json

        p = Path(path)
        try:
            raw = read_json(p)
        except FileNotFoundError:
            raise FusionError(f"score file not found: {p}") from None
        except (OSError, ValueError) as exc:
            raise FusionError(f"{p}: not a readable score file ({exc})") from None
        if not isinstance(raw, dict) or raw.get("kind") != cls.KIND:
            raise FusionError(f"{p}: not an emovox score file (expected kind {cls.KIND!r})")
        out = cls(raw.get("classes", []), raw.get("meta"))
        out.source = str(p)
        index = {c: i for i, c in enumerate(out.classes)}
        for name, part in (raw.get("parts") or {}).items():
            try:
                y = [index[label] for label in part["labels"]]
                scores = [[np.nan] * len(out.classes) if r is None else r for r in part["scores"]]
                out.add(name, part["ids"], y, np.asarray(scores, dtype=float).reshape(len(scores), len(out.classes)))
            except (KeyError, TypeError, ValueError) as exc:
                raise FusionError(f"{p}: part {name!r} is malformed ({type(exc).__name__}: {exc})") from None
        return out


# ------------------------------------------------------------------------------ whole runs
def score_files(path: str | Path) -> dict[str, Path]:
    """``{fold folder name: scores.json}`` for a run folder (``*/scores.json``) or one score file."""
    p = Path(path)
    if p.is_file():
        return {p.parent.name: p}
    found = {f.parent.name: f for f in sorted(p.glob("*/scores.json"))}
    if not found:
        raise FusionError(f"{p}: no score files (expected <run>/fold_*/scores.json or a scores.json file)")
    return found


__all__ = ["ScorePart", "ScoreSet", "available", "check_scores", "score_files"]
