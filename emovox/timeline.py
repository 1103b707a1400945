"""Emotion timelines for long recordings: sliding windows over a block stream, VAD, merged regions.

How a timeline is made (:func:`compute_timeline`):

1. The recording arrives as consecutive 16 kHz blocks (:func:`emovox.audio.iter_blocks` for a
   file), so memory stays O(block + window) whatever the length.
2. A VAD (Sohn or silero, :mod:`emovox.vad`) marks speech in each block; regions less than
   0.5 s apart (the VADs' own hang-over) are joined, which mends regions cut at block boundaries.
3. Fixed windows (default 2 s, hop 1 s) are cut from the stream by
   :func:`emovox.segments.iter_windows` (the segmentation of issue 5: the last window reaches the
   end of the recording; it is scored on its real audio only, without the zero padding, the way
   a short clip is). A window whose speech fraction (share of its real
   audio inside VAD speech) reaches ``min_speech`` is classified, in batches; the others are kept
   as non-speech windows without probabilities.
4. Consecutive speech windows with the same top emotion are merged into *regions* spanning
   their windows; where two regions of different emotions overlap (windows overlap when
   hop < window) the boundary is put halfway through the overlap. A region's probabilities
   are the segment→clip aggregation of its windows (:func:`emovox.segments.aggregate` with
   ``mean_posteriors``, so they read as the average height of the curves in the plot).

The result (:class:`Timeline`) writes CSV (one row per window), JSON (everything) and a PNG plot
(probabilities over time with speech regions shaded).
"""

from __future__ import annotations

import csv
import io
import logging
import os
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from emovox.audio import MIN_SAMPLES, SAMPLE_RATE
from emovox.errors import ConfigError
from emovox.io import atomic_path, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

#: How a region's windows are combined (emovox.segments.AGGREGATIONS).
REGION_AGGREGATION = "mean_posteriors"
#: (B, N) float32 windows at 16 kHz -> (B, C) probabilities.
PosteriorFn = Callable[[np.ndarray], np.ndarray]
#: mono 16 kHz block -> list of (start_s, end_s) speech regions relative to the block start.
VadFn = Callable[[np.ndarray], list[tuple[float, float]]]


@dataclass
class Window:
    """One analysis window. ``label``/``probabilities`` are None when it holds too little speech."""

    start: float
    end: float
    speech_fraction: float
    label: str | None = None
    probabilities: dict[str, float] | None = None

    @property
    def is_speech(self) -> bool:
        return self.label is not None


@dataclass
class Region:
    """A run of consecutive speech windows with the same top emotion."""

    start: float
    end: float
    label: str
    probabilities: dict[str, float]
    windows: int


@dataclass
class Timeline:
    """Per-window emotions, VAD speech regions and merged emotion regions of one recording."""

    source: str
    duration: float
    labels: list[str]
    window: float
    hop: float
    vad: str
    min_speech: float
    windows: list[Window] = field(default_factory=list)
    speech: list[tuple[float, float]] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)

    # ----------------------------------------------------------------------------- views
    def to_dict(self) -> dict:
        d = asdict(self)
        d["speech"] = [{"start": s, "end": e} for s, e in self.speech]
        d["speech_fraction"] = self.speech_fraction
        return d

    @property
    def speech_fraction(self) -> float:
        total = sum(e - s for s, e in self.speech)
        return float(min(1.0, total / self.duration)) if self.duration > 0 else 0.0

    def windows_csv(self) -> str:
        """One row per window: start, end, speech_fraction, label, one probability column per label."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["start", "end", "speech_fraction", "label", *self.labels])
        for win in self.windows:
            probs = [f"{win.probabilities[k]:.6f}" if win.probabilities else "" for k in self.labels]
            w.writerow([f"{win.start:.3f}", f"{win.end:.3f}", f"{win.speech_fraction:.3f}", win.label or "", *probs])
        return buf.getvalue()

    def regions_csv(self) -> str:
        """One row per merged region: start, end, label, windows, one probability column per label."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["start", "end", "label", "windows", *self.labels])
        for r in self.regions:
            w.writerow([f"{r.start:.3f}", f"{r.end:.3f}", r.label, r.windows,
                        *(f"{r.probabilities[k]:.6f}" for k in self.labels)])
        return buf.getvalue()

    # ----------------------------------------------------------------------------- files
    def write_json(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, self.to_dict())

    def write_csv(self, path: str | os.PathLike, what: str = "windows") -> None:
        """Write the windows (default) or the regions as CSV."""
        if what not in ("windows", "regions"):
            raise ConfigError(f"write_csv: what must be 'windows' or 'regions', got {what!r}")
        atomic_write_text(path, self.windows_csv() if what == "windows" else self.regions_csv())

    def plot(self, path: str | os.PathLike, title: str | None = None) -> None:
        """PNG: one probability curve per emotion over time, speech regions shaded, regions as a band."""
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        fig = Figure(figsize=(max(8.0, min(24.0, self.duration / 10)), 4.0), dpi=100)
        ax = fig.add_subplot(1, 1, 1)
        colors = {k: f"C{i % 10}" for i, k in enumerate(self.labels)}
        for s, e in self.speech:
            ax.axvspan(s, e, color="0.9", zorder=0, lw=0)
        speech_windows = [w for w in self.windows if w.probabilities]
        if speech_windows:
            centers = np.array([(w.start + w.end) / 2 for w in self.windows])
            for k in self.labels:
                ys = np.array([w.probabilities[k] if w.probabilities else np.nan for w in self.windows])
                ax.plot(centers, ys, color=colors[k], lw=1.2, label=k)
        for r in self.regions:
            ax.axvspan(r.start, r.end, ymin=0.97, ymax=1.0, color=colors[r.label], lw=0)
        ax.set_xlim(0, max(self.duration, 1e-3))
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("time (s)")
        ax.set_ylabel("probability")
        ax.set_title(title or f"{os.path.basename(self.source)}: emotion over time (grey = speech)")
        if speech_windows:
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)
        fig.tight_layout()
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png")


# --------------------------------------------------------------------------------- computing
def check_window(window: float, hop: float, min_speech: float) -> None:
    """Raise ConfigError for impossible window settings."""
    if not (isinstance(window, (int, float)) and 0.1 <= window <= 60):
        raise ConfigError(f"window must be between 0.1 and 60 seconds, got {window!r}")
    if not (isinstance(hop, (int, float)) and 0 < hop <= window):
        raise ConfigError(f"hop must be > 0 and <= the window ({window} s), got {hop!r}")
    if not (isinstance(min_speech, (int, float)) and 0 <= min_speech <= 1):
        raise ConfigError(f"min_speech must be a fraction between 0 and 1, got {min_speech!r}")


#: Speech regions closer than this are joined across block boundaries: the VADs already bridge
#: pauses shorter than 0.5 s inside a block (hang-over), so this only mends cuts at block edges.
JOIN_GAP = 0.5


def _join(regions: list[tuple[float, float]], new: Iterable[tuple[float, float]], tol: float = JOIN_GAP) -> None:
    """Append ``new`` (sorted) to ``regions`` in place, joining regions less than ``tol`` s apart."""
    for s, e in new:
        if e <= s:
            continue
        if regions and s <= regions[-1][1] + tol:
            regions[-1] = (regions[-1][0], max(regions[-1][1], e))
        else:
            regions.append((s, e))


def _overlap(regions: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """Seconds of ``regions`` inside [start, end] (regions sorted, disjoint)."""
    total = 0.0
    for s, e in reversed(regions):  # windows ask about the recent past: scan from the end
        if e <= start:
            break
        total += max(0.0, min(e, end) - max(s, start))
    return total


def compute_timeline(
    blocks: Iterable[np.ndarray],
    posteriors: PosteriorFn,
    labels: Sequence[str],
    vad: VadFn | None,
    *,
    source: str = "<array>",
    vad_name: str = "sohn",
    window: float = 2.0,
    hop: float = 1.0,
    min_speech: float = 0.3,
    batch_size: int = 32,
) -> Timeline:
    """Stream ``blocks`` (mono float32 at 16 kHz) through VAD and windowed classification."""
    from emovox.segments import SegmentSpec, iter_windows

    check_window(window, hop, min_speech)
    sr = SAMPLE_RATE
    labels = list(labels)
    speech: list[tuple[float, float]] = []
    windows: list[Window] = []
    pending: list[tuple[Window, np.ndarray]] = []
    seen = 0

    def vad_pass(stream: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Run the VAD on each block as it goes by (before its windows are cut)."""
        nonlocal seen
        for block in stream:
            block = np.asarray(block, dtype=np.float32).reshape(-1)
            if vad is not None and block.size:
                offset = seen / sr
                _join(speech, ((offset + a, offset + b) for a, b in vad(block)))
            seen += block.size
            yield block

    def flush() -> None:
        by_length: dict[int, list[tuple[Window, np.ndarray]]] = {}
        for item in pending:  # all windows but a short last one have the same length
            by_length.setdefault(item[1].size, []).append(item)
        for items in by_length.values():
            probs = posteriors(np.stack([x for _, x in items]))
            for (w, _), p in zip(items, probs):
                w.probabilities = {k: float(v) for k, v in zip(labels, p)}
                w.label = labels[int(np.argmax(p))]
        pending.clear()

    for start, end, wave in iter_windows(vad_pass(blocks), SegmentSpec(window, hop, sr)):
        frac = _overlap(speech, start, end) / (end - start) if vad is not None else 1.0
        w = Window(round(start, 3), round(end, 3), round(min(1.0, frac), 4))
        windows.append(w)
        real = int(round((end - start) * sr))
        if real >= MIN_SAMPLES and (vad is None or frac >= min_speech):
            pending.append((w, wave[:real]))  # a short last window is scored without its padding
            if len(pending) >= batch_size:
                flush()
    flush()
    duration = seen / sr
    if vad is None:
        speech = [(0.0, duration)] if duration > 0 else []
    return Timeline(
        source=str(source), duration=round(duration, 3), labels=labels, window=float(window), hop=float(hop),
        vad=vad_name if vad is not None else "none", min_speech=float(min_speech), windows=windows,
        speech=[(round(s, 3), round(e, 3)) for s, e in speech], regions=merge_regions(windows, labels),
    )


def merge_regions(windows: Sequence[Window], labels: Sequence[str]) -> list[Region]:
    """Merge consecutive speech windows with the same top label (see the module docstring)."""
    from emovox.segments import aggregate

    runs: list[list[Window]] = []
    prev: Window | None = None
    for w in windows:
        if w.is_speech:
            joined = prev is not None and prev.is_speech and w.start <= prev.end and w.label == prev.label
            if joined:
                runs[-1].append(w)
            else:
                runs.append([w])
        prev = w
    regions = []
    for run in runs:
        probs = np.array([[w.probabilities[k] for k in labels] for w in run], dtype=np.float64)
        probs = aggregate(np.log(np.clip(probs, 1e-12, 1.0)), REGION_AGGREGATION)
        regions.append(Region(run[0].start, run[-1].end, run[0].label,
                              {k: float(v) for k, v in zip(labels, probs)}, len(run)))
    for a, b in zip(regions, regions[1:]):
        if a.end > b.start:  # overlapping windows of two emotions: cut between them
            a.end = b.start = round((a.end + b.start) / 2, 3)
    return regions
