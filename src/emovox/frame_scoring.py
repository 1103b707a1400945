"""Timeline windows scored from one encoding of the recording (audio-in packages with frames).

The window-by-window timeline runs the whole graph on every window, so with 2 s windows every
1 s each second of audio goes through the Whisper encoder twice. Here (:class:`FrameScorer`)
the stream is cut into consecutive *pieces* of :data:`PIECE` seconds on a fixed grid from the
start; a piece goes through the graph the first time a window needs it (pieces without scored
windows are never encoded) and its hidden states (one frame per 20 ms) are kept until the
timeline has moved past them. A window's statistics are the mean ‖ population std over its
frames of each of the head's layers — what the graph computes over its own input — and the
package's head graph turns them into logits.

Why 2 s pieces (measured on synthetic conversations of held-out speakers, docs/conversations.md):
a frame sees the audio of its whole piece, and the head was trained on statistics of short clips
encoded alone. 30 s pieces cost 20 points of window UA and 4-6 s pieces lose up to 6 points on
one of the two models measured; 2 s pieces are as accurate as encoding each window alone, for
half the encoder work.

The same frames give speaker statistics for diarisation (:meth:`FrameScorer.span_stats`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np

from emovox.audio import SAMPLE_RATE
from emovox.errors import ConfigError

#: Seconds per encoded piece (a multiple of the 20 ms frame): the default 2 s windows every 1 s
#: then either equal a piece or take the second half of one and the first half of the next.
PIECE = 2.0
#: Samples per encoder frame (Whisper: 10 ms mel hop, stride-2 convolution).
FRAME = 320
#: The graph's shortest input (4 encoder frames).
MIN_PIECE = 640


class FrameModel(Protocol):
    """What :class:`FrameScorer` needs of a model (:class:`emovox.audio_model.OnnxAudioModel`)."""

    @property
    def layers(self) -> list[int]: ...

    def hidden(self, piece: np.ndarray) -> np.ndarray: ...

    def head_logits(self, pooled: np.ndarray) -> np.ndarray: ...

    def probabilities(self, logits: np.ndarray) -> np.ndarray: ...


def reblock(blocks: Iterable[np.ndarray], multiple: int) -> Iterator[np.ndarray]:
    """The same samples in blocks whose lengths are multiples of ``multiple`` (only the last one
    is shorter), so that no piece of the fixed grid is split between two blocks."""
    rest = np.zeros(0, np.float32)
    for block in blocks:
        joined = np.concatenate([rest, np.asarray(block, np.float32).reshape(-1)])
        cut = joined.size // multiple * multiple
        if cut:
            yield joined[:cut]
        rest = joined[cut:]
    if rest.size:
        yield rest


class FrameScorer:
    """Encode a recording in pieces once; score windows and pool spans from the frames.

    Feed the blocks with :meth:`observe` (block lengths multiples of :attr:`piece_samples`, but
    the last: :func:`reblock`), ask for :meth:`probabilities` of windows and :meth:`span_stats`
    of spans inside the audio seen so far, and :meth:`forget_before` what is no longer needed
    (memory: the audio and frames of the pieces kept, about 0.6 MB per second for Whisper base).
    """

    def __init__(self, model: FrameModel, index: Sequence[int] | None = None, piece: float = PIECE) -> None:
        if not (isinstance(piece, (int, float)) and 0.1 <= piece <= 30):
            raise ConfigError(f"the frame piece must be between 0.1 and 30 seconds, got {piece!r}")
        self.model = model
        self.index = None if index is None else list(index)
        self.piece_samples = max(1, int(round(piece * SAMPLE_RATE / FRAME))) * FRAME
        self.frames_per_piece = self.piece_samples // FRAME
        self._audio: dict[int, np.ndarray] = {}
        self._frames: dict[int, np.ndarray] = {}
        self._seen = 0
        self._ended = False
        self.encoded_seconds = 0.0
        #: called with (start, end, pooled statistics) of every window scored (``--adapt`` keeps them)
        self.on_pooled: Callable[[float, float, np.ndarray], None] | None = None

    # ----------------------------------------------------------------------------- input
    def observe(self, block: np.ndarray) -> None:
        """Add the next block (its length a multiple of :attr:`piece_samples`, except the last)."""
        x = np.asarray(block, np.float32).reshape(-1)
        if self._ended and x.size:
            raise ConfigError("FrameScorer: a block after a short one; blocks must be multiples of the piece "
                              "length except the last (use frame_scoring.reblock)")
        for i in range(0, x.size, self.piece_samples):
            self._audio[(self._seen + i) // self.piece_samples] = x[i:i + self.piece_samples].copy()
        self._seen += x.size
        self._ended = self._ended or x.size % self.piece_samples != 0

    def forget_before(self, seconds: float) -> None:
        """Drop the pieces that end at or before ``seconds``."""
        last = int(seconds * SAMPLE_RATE) // self.piece_samples  # the piece holding `seconds` stays
        for k in [k for k in self._audio if k < last]:
            del self._audio[k]
            self._frames.pop(k, None)

    @property
    def pieces_kept(self) -> int:
        return len(self._audio)

    # ---------------------------------------------------------------------------- frames
    def _piece_frames(self, k: int) -> np.ndarray:
        if k not in self._frames:
            if k not in self._audio:
                raise ConfigError(f"FrameScorer: piece {k} ({k * self.piece_samples / SAMPLE_RATE:.1f} s) was "
                                  "forgotten or not seen yet")
            x = self._audio[k]
            self.encoded_seconds += x.size / SAMPLE_RATE
            hidden = self.model.hidden(np.pad(x, (0, max(0, MIN_PIECE - x.size))))
            self._frames[k] = hidden[:, : max(1, -(-x.size // FRAME))]
        return self._frames[k]

    def frames(self, start: float, end: float) -> np.ndarray:
        """``(top + 1, n, d)`` hidden states of the frames inside [start, end] s (at least one)."""
        a = max(0, int(round(start * SAMPLE_RATE / FRAME)))
        total = -(-self._seen // FRAME)
        b = min(total, max(a + 1, int(round(end * SAMPLE_RATE / FRAME))))
        a = min(a, b - 1)
        parts = []
        for k in range(a // self.frames_per_piece, (b - 1) // self.frames_per_piece + 1):
            lo = k * self.frames_per_piece
            parts.append(self._piece_frames(k)[:, max(a, lo) - lo: b - lo])
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def span_stats(self, start: float, end: float, layers: Sequence[int]) -> np.ndarray:
        """``(len(layers), 2d)`` mean ‖ population std over the span's frames of each layer."""
        return pool_frames(self.frames(start, end), layers)

    # ----------------------------------------------------------------------------- scores
    def probabilities(self, spans: Sequence[tuple[float, float]]) -> np.ndarray:
        """``(B, C)`` calibrated probabilities of windows ``[(start, end), ...]`` (over ``index``,
        renormalised, when given)."""
        if not spans:
            return np.zeros((0, len(self.index) if self.index is not None else 0))
        pooled = np.stack([self.span_stats(s, e, self.model.layers) for s, e in spans])
        if self.on_pooled is not None:
            for (s, e), p in zip(spans, pooled):
                self.on_pooled(s, e, p)
        return pooled_probabilities(self.model, pooled, self.index)


def pool_frames(frames: np.ndarray, layers: Sequence[int]) -> np.ndarray:
    """``(top + 1, T, d)`` hidden states -> ``(len(layers), 2d)`` mean ‖ population std over time."""
    x = np.asarray(frames)[list(layers)].astype(np.float64)
    return np.concatenate([x.mean(axis=1), x.std(axis=1)], axis=-1).astype(np.float32)


def pooled_probabilities(model: FrameModel, pooled: np.ndarray, index: Sequence[int] | None = None) -> np.ndarray:
    """``(B, L, 2d)`` pooled statistics -> ``(B, C)`` calibrated probabilities (over ``index``,
    renormalised, when given): the head alone, as the graph applies it to its own input."""
    probs = model.probabilities(model.head_logits(pooled))
    if index is None:
        return probs
    sub = probs[:, list(index)]
    return sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-30, None)


def frame_scorer(engine: object, index: Sequence[int] | None = None, piece: float | None = None) -> FrameScorer | None:
    """A :class:`FrameScorer` for a recogniser's engine (pieces of ``piece`` s, default :data:`PIECE`),
    or None when it cannot score frames (feature models, the torch backend, packages exported
    before frames)."""
    if not getattr(engine, "has_frames", False):
        return None
    return FrameScorer(engine, index, PIECE if piece is None else piece)  # type: ignore[arg-type]


__all__ = ["FRAME", "PIECE", "FrameModel", "FrameScorer", "frame_scorer", "pool_frames", "pooled_probabilities",
           "reblock"]
