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

Speakers (opt-in, :mod:`emovox.diarize`): :meth:`Timeline.attach_speakers` gives each speech
window the speaker with the most speech inside it, regions then also break where the speaker
changes, and :meth:`Timeline.summary` reports each speaker's share of speech per emotion.

The result (:class:`Timeline`) writes CSV (one row per window), JSON (everything) and a PNG plot
(:mod:`emovox.timeline_plot`: one lane per speaker, dominant emotion as colour, confidence as
opacity, smoothed probabilities per speaker and a summary table).
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol, cast

import numpy as np

from emovox.audio import MIN_SAMPLES, SAMPLE_RATE
from emovox.speaker_turns import Turn, speaker_at
from emovox.errors import ConfigError
from emovox.io import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from emovox.frame_scoring import FrameScorer

log = logging.getLogger(__name__)

#: How a region's windows are combined (emovox.segments.AGGREGATIONS).
REGION_AGGREGATION = "mean_posteriors"
#: A classified window whose top probability is below this is marked ``uncertain``.
UNCERTAIN_BELOW = 0.4
#: (B, N) float32 windows at 16 kHz -> (B, C) probabilities.
PosteriorFn = Callable[[np.ndarray], np.ndarray]
#: mono 16 kHz block -> list of (start_s, end_s) speech regions relative to the block start.
VadFn = Callable[[np.ndarray], list[tuple[float, float]]]


class BlockObserver(Protocol):
    """Sees the blocks of a timeline as they go by (e.g. speaker statistics for diarisation)."""

    #: seconds: frames from here on may still be asked for
    needs_from: float

    def feed(self, block: np.ndarray, speech: Sequence[tuple[float, float]], scorer: FrameScorer | None) -> None: ...

    def finish(self, speech: Sequence[tuple[float, float]]) -> None: ...


@dataclass
class Window:
    """One analysis window. ``label``/``probabilities`` are None when it holds too little speech."""

    start: float
    end: float
    speech_fraction: float
    label: str | None = None
    probabilities: dict[str, float] | None = None
    speaker: str | None = None

    @property
    def is_speech(self) -> bool:
        return self.label is not None

    @property
    def no_speech(self) -> bool:
        """Too little speech to classify."""
        return self.label is None

    @property
    def uncertain(self) -> bool:
        """Classified, but the top probability is below :data:`UNCERTAIN_BELOW`."""
        return bool(self.probabilities) and max(self.probabilities.values()) < UNCERTAIN_BELOW  # type: ignore[union-attr]

    def to_dict(self) -> dict:
        return {**asdict(self), "probabilities": _rounded(self.probabilities), "no_speech": self.no_speech,
                "uncertain": self.uncertain}


def _rounded(probabilities: dict[str, float] | None) -> dict[str, float] | None:
    """Probabilities to 6 decimals for JSON, as a prediction's (an hour's windows: half the bytes)."""
    return None if probabilities is None else {k: round(v, 6) for k, v in probabilities.items()}


@dataclass
class Region:
    """A run of consecutive speech windows with the same top emotion."""

    start: float
    end: float
    label: str
    probabilities: dict[str, float]
    windows: int
    speaker: str | None = None


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
    speakers: list[str] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    #: channels that got a speaker each (a call recorded one side per channel, :mod:`emovox.channels`); 0: mixed
    split_channels: int = 0

    # ----------------------------------------------------------------------------- views
    def to_dict(self) -> dict:
        d = asdict(self)
        d["windows"] = [w.to_dict() for w in self.windows]
        for region in d["regions"]:
            region["probabilities"] = _rounded(region["probabilities"])
        d["speech"] = [{"start": s, "end": e} for s, e in self.speech]
        d["speech_fraction"] = self.speech_fraction
        d["summary"] = self.summary()
        return d

    def attach_speakers(self, turns: Sequence[Turn]) -> Timeline:
        """Give each speech window its main speaker (most speech time inside it); regions are re-merged."""
        self.turns = list(turns)
        self.speakers = list(dict.fromkeys(t.speaker for t in self.turns))
        for w in self.windows:
            w.speaker = speaker_at(self.turns, w.start, w.end) if w.is_speech else None
        self.regions = merge_regions(self.windows, self.labels)
        return self

    def summary(self) -> dict[str, dict]:
        """Per speaker (``"all"`` without diarisation): speech seconds, windows and share per emotion.

        A classified window counts with weight ``speech_fraction x hop`` (the new speech it adds),
        so the shares read as the share of that speaker's speech time per top emotion.
        """
        out: dict[str, dict] = {}
        for w in self.windows:
            if not w.is_speech:
                continue
            key = w.speaker or "all"
            entry = out.setdefault(key, {"windows": 0, "weight": 0.0, "shares": {k: 0.0 for k in self.labels}})
            weight = max(w.speech_fraction, 1e-6) * self.hop
            entry["windows"] += 1
            entry["weight"] += weight
            entry["shares"][w.label] += weight
        for key, entry in out.items():
            total = entry.pop("weight")
            entry["speech_seconds"] = round(sum(t.end - t.start for t in self.turns if t.speaker == key), 3) \
                if self.turns else round(sum(e - s for s, e in self.speech), 3)
            entry["shares"] = {k: round(v / total, 4) for k, v in entry["shares"].items()}
            entry["dominant"] = max(entry["shares"], key=lambda k: entry["shares"][k])
        order = [*self.speakers, "all"]
        return {k: out[k] for k in order if k in out}

    @property
    def speech_fraction(self) -> float:
        total = sum(e - s for s, e in self.speech)
        return float(min(1.0, total / self.duration)) if self.duration > 0 else 0.0

    def windows_csv(self) -> str:
        """One row per window: start, end, speech_fraction, label, one probability column per label."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["start", "end", "speech_fraction", "speaker", "label", "no_speech", "uncertain", *self.labels])
        for win in self.windows:
            probs = [f"{win.probabilities[k]:.6f}" if win.probabilities else "" for k in self.labels]
            w.writerow([f"{win.start:.3f}", f"{win.end:.3f}", f"{win.speech_fraction:.3f}", win.speaker or "",
                        win.label or "", int(win.no_speech), int(win.uncertain), *probs])
        return buf.getvalue()

    def regions_csv(self) -> str:
        """One row per merged region: start, end, label, windows, one probability column per label."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["start", "end", "speaker", "label", "windows", *self.labels])
        for r in self.regions:
            w.writerow([f"{r.start:.3f}", f"{r.end:.3f}", r.speaker or "", r.label, r.windows,
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
        """PNG: speaker lanes, smoothed probabilities per speaker, summary table (:mod:`emovox.timeline_plot`)."""
        from emovox.timeline_plot import plot_timeline

        plot_timeline(self, path, title)


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


def join_regions(regions: list[tuple[float, float]], new: Iterable[tuple[float, float]], tol: float = JOIN_GAP) -> None:
    """Append ``new`` (sorted) to ``regions`` in place, joining regions less than ``tol`` s apart."""
    for s, e in new:
        if e <= s:
            continue
        if regions and s <= regions[-1][1] + tol:
            regions[-1] = (regions[-1][0], max(regions[-1][1], e))
        else:
            regions.append((s, e))


def region_overlap(regions: Sequence[tuple[float, float]], start: float, end: float) -> float:
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
    vad_name: str = "gated",
    window: float = 2.0,
    hop: float = 1.0,
    min_speech: float = 0.3,
    batch_size: int = 32,
    on_window: Callable[[Window], None] | None = None,
    keep_windows: bool = True,
    scorer: FrameScorer | None = None,
    observers: Sequence[BlockObserver] = (),
) -> Timeline:
    """Stream ``blocks`` (mono float32 at 16 kHz) through VAD and windowed classification.

    ``on_window`` is called with each window as soon as it is scored (speech windows after their
    batch, so ``batch_size=1`` for live use). ``keep_windows=False`` keeps neither the windows
    nor old speech regions (bounded memory for an endless stream; the result then has no
    windows, regions or speech). With a ``scorer`` (:mod:`emovox.frame_scoring`) the recording
    is encoded once in pieces and windows are pooled from its frames instead of ``posteriors``.
    ``observers`` see every block after the VAD, with the speech regions so far, and may pool
    frames of the scorer (speaker statistics for diarisation, :mod:`emovox.speakers`).
    """
    from emovox.segments import SegmentSpec, iter_windows

    check_window(window, hop, min_speech)
    sr = SAMPLE_RATE
    labels = list(labels)
    speech: list[tuple[float, float]] = []
    windows: list[Window] = []
    pending: list[tuple[Window, np.ndarray]] = []
    seen = 0
    if scorer is not None:
        from emovox.frame_scoring import reblock

        blocks = reblock(blocks, scorer.piece_samples)

    def vad_pass(stream: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Run the VAD on each block as it goes by (before its windows are cut)."""
        nonlocal seen
        for block in stream:
            block = np.asarray(block, dtype=np.float32).reshape(-1)
            if vad is not None and block.size:
                offset = seen / sr
                join_regions(speech, ((offset + a, offset + b) for a, b in vad(block)))
            seen += block.size
            if scorer is not None:
                scorer.observe(block)
            for observer in observers:
                observer.feed(block, speech if vad is not None else [(0.0, seen / sr)], scorer)
            yield block

    def flush() -> None:
        by_length: dict[int, list[tuple[Window, np.ndarray]]] = {}
        for item in pending:  # all windows but a short last one have the same length
            by_length.setdefault(item[1].size if scorer is None else 0, []).append(item)
        for items in by_length.values():
            if scorer is None:
                probs = posteriors(np.stack([x for _, x in items]))
            else:
                probs = scorer.probabilities([(w.start, w.end) for w, x in items])
            for (w, _), p in zip(items, probs):
                w.probabilities = {k: float(v) for k, v in zip(labels, p)}
                w.label = labels[int(np.argmax(p))]
                if on_window is not None:
                    on_window(w)
        pending.clear()

    def forget(next_start: float) -> None:
        """The scorer keeps only what pending windows, later windows and the observers still need."""
        if scorer is not None:
            keep = min([pending[0][0].start if pending else next_start, *(o.needs_from for o in observers)])
            scorer.forget_before(keep)

    for start, end, wave in iter_windows(vad_pass(blocks), SegmentSpec(window, hop, sr)):
        frac = region_overlap(speech, start, end) / (end - start) if vad is not None else 1.0
        w = Window(round(start, 3), round(end, 3), round(min(1.0, frac), 4))
        if keep_windows:
            windows.append(w)
        else:
            while len(speech) > 1 and speech[0][1] <= start:  # older regions are never asked about again
                speech.pop(0)
        real = int(round((end - start) * sr))
        if real >= MIN_SAMPLES and (vad is None or frac >= min_speech):
            pending.append((w, wave[:real]))  # a short last window is scored without its padding
            if len(pending) >= batch_size:
                flush()
        elif on_window is not None:
            on_window(w)
        forget(start + hop)
    flush()
    for observer in observers:
        observer.finish(speech if vad is not None else [(0.0, seen / sr)])
    duration = seen / sr
    if vad is None:
        speech = [(0.0, duration)] if duration > 0 else []
    if not keep_windows:
        speech = []
    return Timeline(
        source=str(source), duration=round(duration, 3), labels=labels, window=float(window), hop=float(hop),
        vad=vad_name if vad is not None else "none", min_speech=float(min_speech), windows=windows,
        speech=[(round(s, 3), round(e, 3)) for s, e in speech], regions=merge_regions(windows, labels),
    )


class ContextVad:
    """A VAD for small live blocks: each block is judged together with up to ``context`` s of the
    audio before it (a statistical VAD needs some noise to measure), regions of the block only."""

    def __init__(self, vad: VadFn, context: float = 5.0) -> None:
        self.vad, self.keep = vad, int(context * SAMPLE_RATE)
        self.history = np.zeros(0, np.float32)

    def __call__(self, block: np.ndarray) -> list[tuple[float, float]]:
        joined = np.concatenate([self.history, block])
        lead = self.history.size / SAMPLE_RATE
        self.history = joined[-self.keep:] if self.keep else joined[:0]
        end = joined.size / SAMPLE_RATE
        return [(max(a, lead) - lead, min(b, end) - lead) for a, b in self.vad(joined) if b > lead]


def merge_regions(windows: Sequence[Window], labels: Sequence[str]) -> list[Region]:
    """Merge consecutive speech windows with the same top label (see the module docstring)."""
    from emovox.segments import aggregate

    runs: list[list[Window]] = []
    prev: Window | None = None
    for w in windows:
        if w.is_speech:
            joined = (prev is not None and prev.is_speech and w.start <= prev.end and w.label == prev.label
                      and w.speaker == prev.speaker)
            if joined:
                runs[-1].append(w)
            else:
                runs.append([w])
        prev = w
    regions = []
    for run in runs:
        label = run[0].label
        assert label is not None  # runs hold speech windows: labelled, with probabilities
        probs = np.array([[cast(dict, w.probabilities)[k] for k in labels] for w in run], dtype=np.float64)
        probs = aggregate(np.log(np.clip(probs, 1e-12, 1.0)), REGION_AGGREGATION)
        regions.append(Region(run[0].start, run[-1].end, label,
                              {k: float(v) for k, v in zip(labels, probs)}, len(run), run[0].speaker))
    for a, b in zip(regions, regions[1:]):
        if a.end > b.start:  # overlapping windows of two emotions: cut between them
            a.end = b.start = round((a.end + b.start) / 2, 3)
    return regions
