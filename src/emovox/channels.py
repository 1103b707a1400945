"""Calls recorded one side per channel: each channel is a speaker.

Call-centre and VoIP recorders, and interviews with one lavalier microphone per person, store each
party on its own channel. Mixed to mono, such a recording loses the one thing that tells the parties
apart for certain, and overlapping speech becomes one voice. :func:`split_timeline` makes one
timeline per channel instead and joins them: speaker = channel (``CH1``, ``CH2``, ...), windows of
two channels may overlap in time (both parties speaking), no clustering and no speaker count to
guess.

**Which files** (:func:`channel_layout`, ``--channels auto``): levels of 0.1 s frames of every
channel (the first :data:`LAYOUT_SECONDS`); frames within :data:`ACTIVE_DB` of the loudest frames
are *active* (someone talks). A channel *leads* a frame when it is at least :data:`LEAD_DB` louder
than every other channel. The file is split when the leader leads in at least
:data:`SPLIT_LEAD_SHARE` of the active frames **and** at least two channels each lead in at least
:data:`MIN_SIDE_SHARE` of them. Two microphones in one room (a stereo recorder, a phone's two mics,
the same signal on both channels) are a few dB apart, so nothing leads; a dead or hum-only channel
never leads, so a file with one live channel stays mixed.

**Crosstalk**: a call channel often carries the other side faintly (line echo, the headset hearing
the room). A channel's speech counts only in frames where its level is within :data:`CROSSTALK_DB`
of the loudest channel's (or half the crosstalk gap measured from that channel into this one, if
smaller: :func:`crosstalk_cuts`), and near the channel's *active* frames, those within
:data:`ACTIVE_DB` of its own speech level (95th percentile of its frames): pauses up to
:data:`BRIDGE` between them and :data:`HANG` around them (a longer pause that the VAD bridged,
noise on both lines, is nobody's). Windows left with less speech than ``min_speech`` get no emotion.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emovox.errors import ConfigError
from emovox.speaker_turns import Turn
from emovox.timeline import Timeline, join_regions, merge_regions, region_overlap

MODES = ("auto", "mix", "split")
#: Level frames (seconds; 1600 samples at 16 kHz).
FRAME = 0.1
#: ``auto`` decides on this much of the start of the file (a call's wiring does not change).
LAYOUT_SECONDS = 600.0
#: Frames within this of the loudest frames (95th percentile of every frame's loudest channel) are active.
ACTIVE_DB = 30.0
#: A channel leads a frame when it is this much louder than every other channel (chosen on the
#: calibration speakers, ``benchmarks/stereo_calls.py --calibrate``: docs/conversations.md).
LEAD_DB = 6.0
#: ``auto`` splits when some channel leads in at least this share of the active frames ...
SPLIT_LEAD_SHARE = 0.5
#: ... and at least two channels each lead in at least this share of them.
MIN_SIDE_SHARE = 0.1
#: A channel's speech counts where its level is within this of the loudest channel's (at most;
#: half the measured crosstalk gap when that is smaller, :func:`crosstalk_cuts`) ...
CROSSTALK_DB = 10.0
#: ... and never less than this.
MIN_CROSSTALK_DB = 3.0
#: Quiet frames count for a channel up to this long between its active frames (pauses inside a turn) ...
BRIDGE = 1.0
#: ... and this long before and after them (the VAD's hang-over; seconds).
HANG = 0.3
#: Speech left shorter than this by the crosstalk rule is dropped (seconds).
MIN_OWN = 0.3
#: At most this many channels are split (one speaker each); more are mixed.
MAX_SPLIT = 8
_FLOOR_DB = -120.0


@dataclass(frozen=True)
class ChannelLayout:
    """What :func:`channel_layout` found: ``split`` and the shares it decided on."""

    channels: int
    split: bool
    lead_share: float = 0.0
    side_shares: tuple[float, ...] = ()

    def describe(self) -> str:
        if self.channels < 2:
            return "one channel"
        sides = " / ".join(f"{s:.0%}" for s in self.side_shares)
        verdict = "one speaker per channel" if self.split else "channels mixed"
        return f"{self.channels} channels, {verdict} (a channel leads {self.lead_share:.0%} of active frames: {sides})"


def frame_levels(x: np.ndarray, frame: int = int(FRAME * 16000)) -> np.ndarray:
    """(n,) or (n, channels) samples -> (frames, channels) levels in dB (mean power per whole frame)."""
    x = np.asarray(x, dtype=np.float32)
    x = x[:, None] if x.ndim == 1 else x
    n = x.shape[0] // frame
    power = np.mean(np.square(x[:n * frame].reshape(n, frame, x.shape[1]), dtype=np.float64), axis=1)
    return np.maximum(10 * np.log10(np.maximum(power, 1e-30)), _FLOOR_DB)


def decide(levels: np.ndarray, lead_db: float | None = None) -> ChannelLayout:
    """The ``auto`` rule (module docstring) on (frames, channels) levels in dB (``lead_db``:
    :data:`LEAD_DB` unless given)."""
    lead_db = LEAD_DB if lead_db is None else lead_db
    channels = levels.shape[1] if levels.ndim == 2 else 1
    if channels < 2 or levels.shape[0] == 0 or channels > MAX_SPLIT:
        return ChannelLayout(channels, False)
    loudest = levels.max(axis=1)
    active = loudest >= np.percentile(loudest, 95) - ACTIVE_DB
    active &= loudest > _FLOOR_DB
    if not active.any():
        return ChannelLayout(channels, False, 0.0, (0.0,) * channels)
    ordered = np.sort(levels[active], axis=1)
    leads = ordered[:, -1] - ordered[:, -2] >= lead_db
    leader = np.argmax(levels[active], axis=1)
    n = int(active.sum())
    sides = tuple(float(np.sum(leads & (leader == c)) / n) for c in range(channels))
    lead_share = float(leads.mean())
    split = lead_share >= SPLIT_LEAD_SHARE and sum(s >= MIN_SIDE_SHARE for s in sides) >= 2
    return ChannelLayout(channels, split, round(lead_share, 4), tuple(round(s, 4) for s in sides))


def channel_count(recording: str | os.PathLike | np.ndarray, source: str | None = None) -> int:
    """Channels of a file (from its header) or of an (n,) / (n, channels) array."""
    from emovox.audio import read_header

    if isinstance(recording, np.ndarray):
        return recording.shape[1] if recording.ndim == 2 else 1
    return read_header(recording, source or recording).channels


def channel_layout(recording: str | os.PathLike | np.ndarray, sample_rate: int | None = None,
                   source: str | None = None) -> ChannelLayout:
    """Whether ``recording`` (a file, or an (n, channels) array) holds one speaker per channel."""
    channels = channel_count(recording, source)
    if channels < 2 or channels > MAX_SPLIT:
        return ChannelLayout(channels, False)
    levels = [channel_levels(recording, sample_rate, c, LAYOUT_SECONDS, source) for c in range(channels)]
    n = min(len(v) for v in levels)
    return decide(np.stack([v[:n] for v in levels], axis=1))


def channel_levels(recording: str | os.PathLike | np.ndarray, sample_rate: int | None, channel: int,
                   seconds: float | None = None, source: str | None = None) -> np.ndarray:
    """0.1 s frame levels (dB) of one channel at 16 kHz, of the first ``seconds`` (None: all),
    block by block for a file."""
    from emovox.audio import iter_blocks, prepare_array

    meter = Levels()
    if isinstance(recording, np.ndarray):
        head = recording if seconds is None else recording[:int(seconds * (sample_rate or 16000))]
        meter.feed(prepare_array(head, sample_rate, source=source or "<array>", channel=channel))
    else:
        for block in iter_blocks(recording, 60.0, channel=channel):  # a generator: closed (file too) on break
            meter.feed(block)
            if seconds is not None and meter.seconds >= seconds:
                break
    meter.finish()
    return meter.levels if seconds is None else meter.levels[:int(round(seconds / FRAME))]


class Levels:
    """The 0.1 s frame levels of a (one-channel) 16 kHz stream fed block by block."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.rest = np.zeros(0, np.float32)

    def feed(self, block: np.ndarray) -> None:
        joined = np.concatenate([self.rest, np.asarray(block, np.float32).reshape(-1)])
        frame = int(FRAME * 16000)
        whole = joined.size // frame * frame
        if whole:
            self.parts.append(frame_levels(joined[:whole])[:, 0])
        self.rest = joined[whole:]

    @property
    def seconds(self) -> float:
        return FRAME * sum(len(p) for p in self.parts) + self.rest.size / 16000

    def finish(self) -> None:
        if self.rest.size:
            self.parts.append(frame_levels(np.pad(self.rest, (0, int(FRAME * 16000) - self.rest.size)))[:, 0])
            self.rest = self.rest[:0]

    @property
    def levels(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0)


def own_frames(levels: Sequence[np.ndarray]) -> np.ndarray:
    """(channels, frames) bool: where each channel's speech is its own, not crosstalk (module docstring)."""
    n = min(len(x) for x in levels)
    x = np.stack([np.asarray(v[:n], np.float64) for v in levels])
    rel = x - np.array([np.percentile(v, 95) if v.size else 0.0 for v in x])[:, None]
    active = rel >= -ACTIVE_DB
    loudest = np.argmax(x, axis=0)
    cut = crosstalk_cuts(x, loudest, active)
    talk = x >= x[loudest, np.arange(n)] - cut[loudest].T  # cut[j, k]: k's frames while j is the loudest
    core = talk & active
    return talk & np.stack([_grow(_close(row, int(BRIDGE / FRAME)), int(HANG / FRAME)) for row in core])


def crosstalk_cuts(x: np.ndarray, loudest: np.ndarray, active: np.ndarray) -> np.ndarray:
    """(channels, channels) dB: while channel j is the loudest, channel k's frame is its own when
    it is at most ``cut[j, k]`` below j: half the median gap between them over the active frames
    that j leads (mostly j talking alone, so about the crosstalk's attenuation from j into k, the
    two channels' gains included), within [:data:`MIN_CROSSTALK_DB`, :data:`CROSSTALK_DB`]. Strong
    crosstalk (a lavalier microphone hearing the other person 10 dB down) then stays out too."""
    channels = x.shape[0]
    cut = np.full((channels, channels), CROSSTALK_DB)
    for j in range(channels):
        mine = (loudest == j) & active[j]
        for k in range(channels):
            if k != j and mine.any():
                cut[j, k] = np.clip(np.median(x[j, mine] - x[k, mine]) / 2, MIN_CROSSTALK_DB, CROSSTALK_DB)
    return cut


def _grow(mask: np.ndarray, n: int) -> np.ndarray:
    """``mask`` widened by ``n`` frames on both sides."""
    return np.convolve(mask.astype(np.int32), np.ones(2 * n + 1, np.int32), mode="same") > 0 if n else mask


def _close(mask: np.ndarray, n: int) -> np.ndarray:
    """``mask`` with gaps of up to ``n`` frames filled (morphological closing)."""
    half = (n + 1) // 2
    grown = _grow(mask, half)
    return ~_grow(~grown, half) | mask


def own_speech(speech: Sequence[tuple[float, float]], own: np.ndarray) -> list[tuple[float, float]]:
    """``speech`` regions cut to the frames where ``own`` is true; pieces under :data:`MIN_OWN` dropped."""
    out = []
    for s, e in speech:
        a, b = int(s / FRAME), int(np.ceil(e / FRAME))
        mask = np.zeros(max(0, b - a), bool)
        known = own[a:b]
        mask[:known.size] = known
        mask[known.size:] = True  # past the shortest channel's end: nothing to compare with
        edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
        for i, j in zip(edges[::2], edges[1::2]):
            piece = (float(max(s, (a + i) * FRAME)), float(min(e, (a + j) * FRAME)))
            if piece[1] - piece[0] >= MIN_OWN:
                out.append((round(piece[0], 3), round(piece[1], 3)))
    return out


def keep_own(tl: Timeline, own: np.ndarray, speaker: str) -> Timeline:
    """One channel's timeline with crosstalk taken out: speech, windows (unlabelled below
    ``min_speech``), speaker ``speaker`` on every window, turns = its speech regions."""
    tl.speech = own_speech(tl.speech, own)
    for w in tl.windows:
        frac = region_overlap(tl.speech, w.start, w.end) / max(w.end - w.start, 1e-9)
        w.speaker = speaker
        if tl.vad == "none":
            continue
        w.speech_fraction = round(min(1.0, frac), 4)
        if w.is_speech and frac < tl.min_speech:
            w.label, w.probabilities = None, None
    tl.turns = [Turn(s, e, speaker) for s, e in tl.speech]
    tl.speakers = [speaker] if tl.turns else []
    tl.regions = merge_regions(tl.windows, tl.labels)
    return tl


def join(parts: Sequence[Timeline], source: str) -> Timeline:
    """One timeline of the channels' timelines: windows, turns and regions in time order."""
    first = parts[0]
    speech: list[tuple[float, float]] = []
    join_regions(speech, sorted(r for tl in parts for r in tl.speech), tol=0.0)  # the union of the channels' speech
    return Timeline(
        source=source, duration=max(tl.duration for tl in parts), labels=first.labels, window=first.window,
        hop=first.hop, vad=first.vad, min_speech=first.min_speech,
        windows=sorted((w for tl in parts for w in tl.windows), key=lambda w: (w.start, w.speaker or "")),
        speech=speech, regions=sorted((r for tl in parts for r in tl.regions), key=lambda r: r.start),
        speakers=[s for tl in parts for s in tl.speakers],
        turns=sorted((t for tl in parts for t in tl.turns), key=lambda t: t.start), split_channels=len(parts))


class MaskedVad:
    """A timeline VAD whose speech regions are cut to the frames where ``own`` is true (crosstalk
    is never scored). The timeline calls it once per block, in order, so it counts the time."""

    def __init__(self, vad: Callable[[np.ndarray], list[tuple[float, float]]], own: np.ndarray) -> None:
        self.vad, self.own, self.offset = vad, own, 0.0

    def __call__(self, block: np.ndarray) -> list[tuple[float, float]]:
        offset, self.offset = self.offset, self.offset + block.size / 16000
        regions = [(offset + a, offset + b) for a, b in self.vad(block)]
        return [(a - offset, b - offset) for a, b in own_speech(regions, self.own)]


def split_timeline(recognizer: Any, recording: str | os.PathLike | np.ndarray, sample_rate: int | None,
                   channels: int, adapt: bool = False, **options: Any) -> Timeline:
    """One timeline per channel of ``recording`` (``recognizer.timeline(..., channel=c)``), speaker
    ``CH<c+1>``, optionally adapted per channel, joined in time order. The channels' levels are
    measured first, so the VAD never hands crosstalk to the model (:class:`MaskedVad`)."""
    source = options.get("source")
    own = own_frames([channel_levels(recording, sample_rate, c, source=source) for c in range(channels)])
    parts = []
    for c in range(channels):
        kept = None
        observers = list(options.get("observers", ()))
        if adapt:
            from emovox.speaker_adapt import PooledWindows

            kept = PooledWindows()
            observers.append(kept)
        tl = recognizer.timeline(recording, sample_rate, **{**options, "observers": observers}, channel=c,
                                 vad_filter=lambda vad, mask=own[c]: MaskedVad(vad, mask))
        keep_own(tl, own[c], f"CH{c + 1}")  # regions the timeline joined across a removed piece are cut again
        if kept is not None:
            from emovox.speaker_adapt import adapt_timeline

            adapt_timeline(tl, kept, recognizer)
        parts.append(tl)
    return join(parts, source_name(recording, source))


def source_name(recording: str | os.PathLike | np.ndarray, source: str | None = None) -> str:
    """What messages and results call ``recording``: ``source``, the path, or ``<array>``."""
    return str(source or ("<array>" if isinstance(recording, np.ndarray) else recording))


def check_mode(channels: str) -> None:
    if channels not in MODES:
        raise ConfigError(f"unknown channels mode {channels!r}; choose one of {', '.join(MODES)}")


__all__ = ["MODES", "ChannelLayout", "Levels", "MaskedVad", "channel_count", "channel_layout", "channel_levels", "check_mode", "crosstalk_cuts", "decide", "frame_levels", "join",
           "keep_own", "own_frames", "own_speech", "source_name", "split_timeline"]
