"""Fixed-length segments of a clip and segment -> clip aggregation (Sahoo et al. 2021, §3.1, §3.3).

Segmentation
    A clip of ``N`` samples is cut into windows of ``W = window * sr`` samples every ``H = hop * sr``
    samples (non-overlapping: 1 s / 1 s; overlapping: 1 s / 0.5 s). Windows start at 0, H, 2H, ...
    and stop at the first window that reaches the end of the clip, so a clip gives
    ``1 + ceil(max(0, N - W) / H)`` segments; the last one is zero-padded to ``W`` samples. (The
    paper pads "the last segment with silence"; it does not say whether a trailing window lying
    wholly inside the previous one is kept. We do not keep it: it adds no audio. For the
    non-overlapping case both readings give ``ceil(N / W)`` segments, as in Table 1.) Every segment
    inherits its clip's label and keeps ``(clip_id, index, start, end)``; ``start``/``end`` are
    seconds relative to the clip start and ``end`` is where the real audio stops (padding excluded).

Aggregation (:data:`AGGREGATIONS`)
    ``mean_posteriors``      mean of the segments' posterior probabilities, then argmax.
    ``mean_log_posteriors``  mean of the segments' log-posteriors, then argmax. **This is the
                             paper's clip decision** (ALCA, "average logits", used for its headline
                             numbers and Table 5): a segment's log-posteriors are its logits minus a
                             class-independent constant, so averaging either gives the same argmax.
    ``majority_vote``        most frequent segment decision (the ``M`` set behind SCA and BCA);
                             ties are broken by the mean posterior of the tied classes.

Every rule takes ``(n_segments, C)`` log-posteriors of any model (logits are fine too: every rule
re-normalises with a log-softmax). :func:`iter_windows` applies the same windows to long
recordings block by block without holding the whole file (used by :mod:`emovox.timeline`, the
one timeline).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

from emovox.audio import SAMPLE_RATE
from emovox.errors import ConfigError, ModelError

AGGREGATIONS = ("mean_posteriors", "mean_log_posteriors", "majority_vote")
#: The rule behind the paper's headline clip accuracy (ALCA).
PAPER_AGGREGATION = "mean_log_posteriors"


# ------------------------------------------------------------------------------ segmentation
@dataclass(frozen=True)
class SegmentSpec:
    """Window and hop in seconds; ``hop == window`` is non-overlapping."""

    window: float = 1.0
    hop: float = 1.0
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        for name in ("window", "hop"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"segments: '{name}' must be a positive number of seconds, got {value!r}")
        if self.hop > self.window:
            raise ConfigError(
                f"segments: hop ({self.hop} s) is longer than the window ({self.window} s), which would "
                "skip audio; use hop <= window (hop = window: non-overlapping, hop = window/2: 50% overlap)"
            )
        if self.window_samples < 1 or self.hop_samples < 1:
            raise ConfigError(f"segments: window/hop shorter than one sample at {self.sample_rate} Hz")

    @classmethod
    def non_overlapping(cls, window: float = 1.0) -> "SegmentSpec":
        return cls(window=window, hop=window)

    @classmethod
    def overlapping(cls, window: float = 1.0, overlap: float = 0.5) -> "SegmentSpec":
        """Windows of ``window`` s that share ``overlap`` s with the previous one (paper: 1 s / 0.5 s)."""
        return cls(window=window, hop=window - overlap)

    @property
    def window_samples(self) -> int:
        return int(round(self.window * self.sample_rate))

    @property
    def hop_samples(self) -> int:
        return int(round(self.hop * self.sample_rate))

    @property
    def name(self) -> str:
        return "non-overlapping" if self.hop_samples == self.window_samples else f"hop {self.hop:g} s"

    def count(self, n_samples: int) -> int:
        """Number of segments of a clip of ``n_samples`` samples (at least 1)."""
        excess = max(0, int(n_samples) - self.window_samples)
        return 1 + -(-excess // self.hop_samples)

    def count_seconds(self, duration: float) -> int:
        return self.count(int(round(duration * self.sample_rate)))


def segment_bounds(n_samples: int, spec: SegmentSpec) -> np.ndarray:
    """``(n, 2)`` int array of ``[start, end)`` sample indices of the real audio in each segment."""
    starts = np.arange(spec.count(n_samples), dtype=np.int64) * spec.hop_samples
    ends = np.minimum(starts + spec.window_samples, max(int(n_samples), 0))
    return np.stack([starts, np.maximum(ends, starts)], axis=1)


def segment_array(wave: np.ndarray, spec: SegmentSpec) -> np.ndarray:
    """Cut a 1-D wave into ``(n, W)`` float32 segments; the last one is zero-padded."""
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim != 1:
        raise ConfigError(f"segments: expected a 1-D mono wave, got shape {x.shape}")
    bounds = segment_bounds(x.size, spec)
    out = np.zeros((len(bounds), spec.window_samples), dtype=np.float32)
    for i, (a, b) in enumerate(bounds):
        out[i, : b - a] = x[a:b]
    return out


# ---------------------------------------------------------------------------- Table 1 counts
def _duration(utt: Any) -> float:
    """Seconds of a manifest row (``duration``, else ``end - start``)."""
    if getattr(utt, "duration", None) is not None:
        return float(utt.duration)
    if utt.start is not None and utt.end is not None:
        return float(utt.end - utt.start)
    raise ConfigError(
        f"segments: utterance {utt.id!r} has no duration; fill it first "
        "(emovox.corpora.manifest.fill_durations reads it from the audio header)"
    )


def segment_counts(utterances: Iterable[Any], spec: SegmentSpec) -> Counter:
    """Segments per label for manifest rows (needs each row's duration; nothing is decoded)."""
    counts: Counter = Counter()
    for u in utterances:
        counts[u.label] += spec.count_seconds(_duration(u))
    return counts


def count_table(utterances: Sequence[Any], specs: Mapping[str, SegmentSpec],
                labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows like the paper's Table 1: clips and segments per label, totals and relevant fraction.

    ``labels`` are the relevant classes (default: all). Returns one dict per row (``"Total"``,
    ``"Relevant"``, ``"Rel. Frac."``, then one per label) with a ``"clips"`` column and one column
    per spec; label rows hold ``(count, fraction of relevant)``.
    """
    utts = list(utterances)
    relevant_labels = list(labels) if labels is not None else sorted({u.label for u in utts})
    relevant = [u for u in utts if u.label in set(relevant_labels)]
    columns: dict[str, tuple[Counter, Counter]] = {"clips": (Counter(u.label for u in utts),
                                                             Counter(u.label for u in relevant))}
    for name, spec in specs.items():
        columns[name] = (segment_counts(utts, spec), segment_counts(relevant, spec))
    rows: list[dict[str, Any]] = [{"row": "Total"}, {"row": "Relevant"}, {"row": "Rel. Frac."}]
    rows += [{"row": lab} for lab in relevant_labels]
    for col, (every, rel) in columns.items():
        total, n_rel = sum(every.values()), sum(rel.values())
        rows[0][col], rows[1][col] = total, n_rel
        rows[2][col] = n_rel / total if total else 0.0
        for row, lab in zip(rows[3:], relevant_labels):
            row[col] = (rel[lab], rel[lab] / n_rel if n_rel else 0.0)
    return rows


def format_count_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Markdown rendering of :func:`count_table` (counts and percentages)."""
    cols = [c for c in rows[0] if c != "row"]

    def cell(value: Any) -> str:
        if isinstance(value, tuple):
            return f"{value[0]} ({100 * value[1]:.2f}%)"
        if isinstance(value, float):
            return f"{100 * value:.2f}%"
        return str(value)

    lines = ["| | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += ["| " + " | ".join([str(r["row"])] + [cell(r[c]) for c in cols]) + " |" for r in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- aggregation
def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def _as_scores(log_posteriors: Any) -> np.ndarray:
    x = np.asarray(log_posteriors, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ModelError(f"segment scores must have shape (segments >= 1, classes >= 1), got {x.shape}")
    if not np.isfinite(x).all():
        raise ModelError("segment scores contain NaN/inf (the model diverged or got bad input)")
    return _log_softmax(x)


def _check_method(method: str) -> None:
    if method not in AGGREGATIONS:
        raise ConfigError(f"unknown aggregation {method!r} (choose one of {', '.join(AGGREGATIONS)})")


def aggregate(log_posteriors: Any, method: str = PAPER_AGGREGATION) -> np.ndarray:
    """One clip's ``(C,)`` posterior probabilities from its segments' ``(n, C)`` log-posteriors.

    ``majority_vote`` returns vote fractions; use :func:`decide` for its tie-broken decision.
    """
    _check_method(method)
    logp = _as_scores(log_posteriors)
    if method == "mean_posteriors":
        return np.exp(logp).mean(axis=0)
    if method == "mean_log_posteriors":
        return np.exp(_log_softmax(logp.mean(axis=0)))
    votes = np.bincount(logp.argmax(axis=1), minlength=logp.shape[1])
    return votes / votes.sum()


def decide(log_posteriors: Any, method: str = PAPER_AGGREGATION) -> int:
    """The clip's class index under ``method`` (majority-vote ties: highest mean posterior)."""
    post = aggregate(log_posteriors, method)
    if method != "majority_vote":
        return int(post.argmax())
    tied = np.flatnonzero(post == post.max())
    mean_post = np.exp(_as_scores(log_posteriors)).mean(axis=0)
    return int(tied[mean_post[tied].argmax()])


def group_by_clip(clip_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """Segment row indices per clip id, clips in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for i, cid in enumerate(clip_ids):
        groups.setdefault(cid, []).append(i)
    return {cid: np.asarray(rows) for cid, rows in groups.items()}


def aggregate_by_clip(log_posteriors: Any, clip_ids: Sequence[str], method: str = PAPER_AGGREGATION
                      ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(clip ids, (N, C) posteriors, (N,) decisions)`` from ``(S, C)`` segment scores."""
    _check_method(method)
    scores = np.asarray(log_posteriors)
    if scores.ndim != 2 or len(scores) != len(clip_ids):
        raise ModelError(f"got {len(clip_ids)} clip ids for segment scores of shape {scores.shape}")
    groups = group_by_clip(clip_ids)
    posts = np.stack([aggregate(scores[rows], method) for rows in groups.values()])
    decisions = np.asarray([decide(scores[rows], method) for rows in groups.values()], dtype=np.int64)
    return list(groups), posts, decisions


# ------------------------------------------------------------------ long recordings (streams)
def iter_windows(blocks: Iterable[np.ndarray], spec: SegmentSpec, offset: float = 0.0
                 ) -> Iterator[tuple[float, float, np.ndarray]]:
    """``(start s, end s, wave (W,))`` windows over consecutive blocks of one long recording.

    Same windows as :func:`segment_array` on the concatenated blocks, but memory stays
    O(block + window). ``end`` is where real audio stops; the last window is zero-padded.
    """
    W, H, sr = spec.window_samples, spec.hop_samples, spec.sample_rate
    buf = np.zeros(0, dtype=np.float32)
    buf_start = pos = total = 0  # buf[0] is sample buf_start; next window starts at pos
    emitted_end = -1
    for block in blocks:
        buf = np.concatenate([buf, np.asarray(block, dtype=np.float32).reshape(-1)])
        total += np.asarray(block).size
        while pos + W <= total:
            yield offset + pos / sr, offset + (pos + W) / sr, buf[pos - buf_start: pos - buf_start + W].copy()
            emitted_end, pos = pos + W, pos + H
        cut = min(pos, total) - buf_start
        buf, buf_start = buf[cut:], buf_start + cut
    if total == 0:
        return
    if emitted_end < total:  # the window reaching the end, zero-padded
        tail = np.zeros(W, dtype=np.float32)
        real = buf[pos - buf_start: total - buf_start]
        tail[: real.size] = real
        yield offset + pos / sr, offset + total / sr, tail
