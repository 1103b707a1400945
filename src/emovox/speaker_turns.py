"""Speaker turns from segment embeddings: clustering, labelling on a grid, smoothing (steps 3-5 of
:mod:`emovox.diarize`, which cuts the segments and embeds them).

:func:`cluster` groups embeddings (cosine, average linkage; automatic count by :data:`THRESHOLD`
or a fixed count), :func:`label_cells` spreads segment labels over a 0.1 s grid of speech,
:func:`smooth_turns` folds runs shorter than ``min_turn`` into a neighbour, and
:func:`cells_to_turns` + :func:`clip_turns` give :class:`Turn` stretches cut to the speech
regions. :func:`speaker_at` is who speaks most in a window. Numpy and scikit-learn only.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: Average-linkage cosine-distance threshold for the automatic speaker count (docs/conversations.md).
THRESHOLD = 0.50
MIN_TURN = 1.0
#: Labelling grid (seconds).
CELL = 0.1
#: At most this many segments go through the O(n^2) clustering; the rest join the nearest centroid.
MAX_CLUSTERED = 2500


@dataclass
class Turn:
    """One speaker's uninterrupted stretch of speech."""

    start: float
    end: float
    speaker: str

    def to_dict(self) -> dict:
        return asdict(self)


def unit_length(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean length (zero rows stay near zero)."""
    return x / np.clip(np.linalg.norm(x, axis=1, keepdims=True), 1e-12, None)


def cluster(embeddings: np.ndarray, speakers: int | None = None, threshold: float = THRESHOLD,
            weights: np.ndarray | None = None, min_weight: float = 0.0,
            max_clustered: int = MAX_CLUSTERED, refine: int = 0) -> np.ndarray:
    """(n, D) embeddings -> (n,) cluster ids 0..k-1 (agglomerative, cosine, average linkage).

    ``speakers`` fixes the count, else clusters closer than ``threshold`` merge. Clusters whose
    total ``weights`` (e.g. seconds) is below ``min_weight`` join the nearest other cluster
    (never below ``speakers`` clusters). ``refine`` nearest-centroid passes follow.
    """
    from sklearn.cluster import AgglomerativeClustering

    x = unit_length(np.asarray(embeddings, dtype=np.float64))
    n = len(x)
    if n == 0:
        return np.zeros(0, dtype=int)
    if n == 1 or speakers == 1:
        return np.zeros(n, dtype=int)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    pick = np.arange(n) if n <= max_clustered else np.linspace(0, n - 1, max_clustered).round().astype(int)
    if speakers is not None:
        algo = AgglomerativeClustering(n_clusters=min(speakers, len(pick)), metric="cosine", linkage="average")
    else:
        algo = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, metric="cosine",
                                       linkage="average")
    sub = algo.fit_predict(x[pick])
    if len(pick) < n:
        cents = _centroids(x[pick], sub)
        labels = _nearest(x, np.stack([cents[i] for i in sorted(cents)]))
    else:
        labels = sub
    floor = speakers or 1
    while True:
        ids = np.unique(labels)
        totals = np.array([w[labels == i].sum() for i in ids])
        if len(ids) <= floor or totals.min() >= min_weight:
            break
        small = ids[int(np.argmin(totals))]
        keep = ids[ids != small]
        cents = _centroids(x, labels)
        moved = labels == small
        labels[moved] = keep[_nearest(x[moved], np.stack([cents[k] for k in keep]))]
    for _ in range(refine):  # k-means steps: average linkage chains; nearest centroid mends it
        ids = np.unique(labels)
        cents = _centroids(x, labels)
        new = ids[_nearest(x, np.stack([cents[int(k)] for k in ids]))]
        if np.array_equal(new, labels):
            break
        labels = new
    _, labels = np.unique(labels, return_inverse=True)
    return labels


def two_way_share(embeddings: np.ndarray) -> float:
    """Share of the embeddings' scatter around their mean that the best split in two explains
    (1 - within / total sum of squares of 2-means): near 0.1 for one speaker's segments in the
    Whisper speaker projection, higher when two voices are there (docs/conversations.md)."""
    from sklearn.cluster import KMeans

    x = np.asarray(embeddings, dtype=np.float64)
    if len(x) < 3:  # nothing to split (and no mean of an empty set)
        return 0.0
    x = x - x.mean(axis=0)
    total = float((x ** 2).sum())
    if total <= 0:
        return 0.0
    return 1.0 - float(KMeans(2, n_init=5, random_state=0).fit(x).inertia_) / total


def _centroids(x: np.ndarray, labels: np.ndarray) -> dict[int, np.ndarray]:
    """Cluster id -> L2-normalised mean embedding."""
    return {int(i): unit_length(x[labels == i].mean(axis=0, keepdims=True))[0] for i in np.unique(labels)}


def _nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return np.argmax(x @ np.asarray(centroids).T, axis=1)


# ------------------------------------------------------------------------- labels -> turns
def label_cells(segments: Sequence[tuple[float, float]], labels: Sequence[int] | np.ndarray, speech: Sequence[tuple[float, float]],
                duration: float, cell: float = CELL) -> np.ndarray:
    """(n_cells,) speaker id per ``cell``-second cell; -1 outside speech.

    Each cell takes the label with the largest sum of triangular weights of the segments
    covering it; speech cells no segment covers take the nearest labelled cell's speaker.
    """
    n = max(0, int(np.ceil(duration / cell - 1e-9)))
    is_speech = np.zeros(n, dtype=bool)
    for s, e in speech:
        is_speech[int(np.floor(s / cell + 1e-9)):int(np.ceil(e / cell - 1e-9))] = True
    out = np.full(n, -1, dtype=int)
    if not len(labels) or n == 0:
        return out
    k = int(max(labels)) + 1
    votes = np.zeros((n, k))
    centres = (np.arange(n) + 0.5) * cell
    for (s, e), lab in zip(segments, labels):
        a, b = int(np.floor(s / cell)), min(n, int(np.ceil(e / cell)))
        half = max((e - s) / 2, 1e-6)
        votes[a:b, lab] += np.clip(1 - np.abs(centres[a:b] - (s + e) / 2) / half, 1e-3, None)
    covered = votes.sum(axis=1) > 0
    out[covered] = np.argmax(votes[covered], axis=1)
    known = np.flatnonzero(covered)
    fill = is_speech & ~covered
    if fill.any():
        pos = np.flatnonzero(fill)
        j = np.clip(np.searchsorted(known, pos), 0, len(known) - 1)
        jl = np.clip(j - 1, 0, len(known) - 1)
        nearer = np.where(np.abs(known[jl] - pos) <= np.abs(known[j] - pos), known[jl], known[j])
        out[pos] = out[nearer]
    out[~is_speech] = -1
    return out


def smooth_turns(cells: np.ndarray, min_turn: float = MIN_TURN, cell: float = CELL) -> np.ndarray:
    """Give speaker runs (over speech cells, pauses ignored) shorter than ``min_turn`` s to a neighbour.

    The shortest run goes first; it joins the neighbouring run (before or after) that is longer.
    """
    cells = np.asarray(cells, dtype=int).copy()
    idx = np.flatnonzero(cells >= 0)
    seq = cells[idx]
    min_cells = int(round(min_turn / cell))
    while len(seq):
        edges = np.flatnonzero(np.diff(seq)) + 1
        starts = np.concatenate([[0], edges])
        stops = np.concatenate([edges, [len(seq)]])
        if len(starts) == 1:
            break
        lengths = stops - starts
        r = int(np.argmin(lengths))
        if lengths[r] >= min_cells:
            break
        before = lengths[r - 1] if r > 0 else -1
        after = lengths[r + 1] if r + 1 < len(starts) else -1
        seq[starts[r]:stops[r]] = seq[starts[r - 1]] if before >= after else seq[starts[r + 1]]
    cells[idx] = seq
    return cells


def cells_to_turns(cells: np.ndarray, duration: float, cell: float = CELL,
                   names: Sequence[str] | None = None) -> list[Turn]:
    """Maximal runs of one speaker id (>= 0) -> turns; ids are renamed S1, S2... by first appearance."""
    order: dict[int, str] = {}
    turns: list[Turn] = []
    padded = np.concatenate([[-1], cells, [-1]])
    change = np.flatnonzero(padded[1:] != padded[:-1])
    for a, b in zip(change[:-1], change[1:]):
        sid = int(padded[a + 1])
        if sid < 0:
            continue
        name = order.setdefault(sid, names[sid] if names else f"S{len(order) + 1}")
        turns.append(Turn(round(float(a * cell), 3), round(float(min(b * cell, duration)), 3), name))
    return turns


def clip_turns(turns: Sequence[Turn], speech: Sequence[tuple[float, float]]) -> list[Turn]:
    """Turns cut to the speech regions (the 0.1 s cells round a region outwards by up to a cell at
    each end; pauses inside a turn that the cells bridged are cut out again)."""
    regions = sorted(speech)
    ends = [e for _, e in regions]
    out: list[Turn] = []
    for t in turns:
        for s, e in regions[bisect.bisect_right(ends, t.start):]:
            if s >= t.end:
                break
            a, b = max(s, t.start), min(e, t.end)
            if b > a:
                out.append(Turn(round(float(a), 3), round(float(b), 3), t.speaker))
    return out


# ------------------------------------------------------------------------------ streaming
def speaker_at(turns: Sequence[Turn], start: float, end: float) -> str | None:
    """The speaker with the most speech inside [start, end] (None when no turn overlaps it)."""
    totals: dict[str, float] = {}
    for t in turns:
        if t.end <= start or t.start >= end:
            continue
        totals[t.speaker] = totals.get(t.speaker, 0.0) + min(t.end, end) - max(t.start, start)
    return max(totals, key=lambda k: totals[k]) if totals else None
