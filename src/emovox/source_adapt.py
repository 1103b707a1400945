"""``emovox predict --adapt``: the clips of one source moved onto the training statistics (opt-in).

Recordings from one source — a corpus, a call centre's archive, one person's voice notes —
share a microphone, room, codec, language and speaking style, and these move the pooled Whisper
statistics of every clip the same way. Test-time, unlabelled: the mean of the source's pooled
statistics (mean ‖ std of the head's layers, :func:`emovox.frame_scoring.pool_frames`) over a
sample of its speech clips is compared with the training mean stored with the head, and
``strength`` times the difference (:class:`SourceShift`) is subtracted from every clip's
statistics before the head (:class:`ShiftedModel`). The graph's own pooling and head are used,
so a zero shift gives the model's ordinary output.

It assumes the sample is not dominated by one emotion: a source that is mostly neutral has
neutral moved towards the middle of the training data. Measured by nested leave-one-corpus-out
(``recipes/generalist/adapt.py``; table in ``recipes/generalist/README.md``), which also chose
:data:`STRENGTH` and the training mean it shifts onto, without reading the held-out corpus.
Off by default.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emovox.audio_budget import SAMPLE_RATE
from emovox.audio_model import clip_pieces
from emovox.errors import ConfigError, EmovoxError, ModelError
from emovox.frame_scoring import pool_frames

#: Fraction of the source's difference from the training mean that is removed (chosen by the nested rule).
STRENGTH = 0.75
#: Which pooled statistics are shifted: every one, or the frame means only (:func:`source_shift`).
PARTS = ("all", "means")
#: Speech clips the source's mean is estimated from (a seeded random sample of the inputs).
SAMPLE = 200
#: Seconds read from the start of each sampled file for the estimate (one graph piece).
ESTIMATE_SECONDS = 30.0
#: Fewer speech clips than this give no estimate (a mean of a handful of clips is mostly their emotion;
#: 20 is the smallest sample measured, about a point below the whole corpus's statistics).
MIN_CLIPS = 20


@dataclass(frozen=True)
class SourceShift:
    """``offset`` ``(L, 2d)``: subtracted from every clip's pooled statistics; ``clips``: how many
    speech clips the estimate used."""

    offset: np.ndarray
    clips: int

    def save(self, path: str | Path) -> None:
        """Write as safetensors (atomically), so that a resumed archive run uses the same shift."""
        from safetensors.numpy import save

        from emovox.io import atomic_write_bytes

        atomic_write_bytes(path, save({"offset": np.ascontiguousarray(self.offset, np.float32)},
                                      metadata={"clips": str(self.clips), "format": "emovox-source-shift/1"}))

    @classmethod
    def load(cls, path: str | Path) -> "SourceShift":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as f:
                meta = f.metadata() or {}
                offset = f.get_tensor("offset")
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for damaged files
            raise ModelError(f"{path}: not a readable --adapt shift ({type(exc).__name__}); delete it to estimate "
                             "the shift again") from None
        if meta.get("format") != "emovox-source-shift/1" or offset.ndim != 2:
            raise ModelError(f"{path}: not an emovox --adapt shift file; delete it to estimate the shift again")
        return cls(offset.astype(np.float32), int(meta.get("clips", "0")))


def source_shift(pooled: np.ndarray, target: np.ndarray, strength: float = STRENGTH, part: str = "all") -> SourceShift:
    """The shift of a source from its clips' pooled statistics ``(N, L, 2d)`` and the training mean ``(L, 2d)``.

    ``part``: ``all`` shifts every statistic, ``means`` only the frame means (the first ``d`` of each layer's ``2d``)."""
    if part not in PARTS:
        raise ConfigError(f"unknown shift part {part!r}; choose one of {', '.join(PARTS)}")
    x = np.asarray(pooled, np.float64)
    if x.ndim != 3 or x.shape[1:] != np.shape(target):
        raise ConfigError(f"pooled statistics {x.shape} do not match the training mean {np.shape(target)}")
    if len(x) < MIN_CLIPS:
        raise ConfigError(f"--adapt needs at least {MIN_CLIPS} speech clips from the source to estimate its "
                          f"statistics, got {len(x)}; predict without --adapt")
    offset = strength * (x.mean(axis=0) - np.asarray(target, np.float64))
    if part == "means":
        offset[:, offset.shape[1] // 2:] = 0.0
    return SourceShift(offset.astype(np.float32), len(x))


def require_frames(model: Any) -> None:
    """:class:`ConfigError` unless ``model`` gives hidden states and has its head alone (what a shift needs)."""
    if not getattr(model, "has_frames", False):
        raise ConfigError("--adapt needs the default model (or another audio model with frame outputs) on the "
                          "onnx backend")


def clip_pooled(model: Any, wave: np.ndarray) -> list[np.ndarray]:
    """The ``(L, 2d)`` pooled statistics of each graph piece (≤ 30 s) of one clip, as the graph pools them."""
    return [pool_frames(model.hidden(piece), model.layers) for piece in clip_pieces(wave, model.config)]


def source_statistics(recognizer: Any, wave: np.ndarray) -> np.ndarray | None:
    """The ``(L, 2d)`` pooled statistics one clip adds to a source's mean: those ``predict`` scores
    it by (:mod:`emovox.long_inputs`): the mean over its classified windows for a recording longer
    than an utterance, else the clip's own. None when ``predict`` would call it ``no_speech``, with
    its speech measured as ``predict`` measures it: once, by the timeline's VAD for a windowed recording."""
    from emovox.long_inputs import speech_summary, windowed
    from emovox.speaker_adapt import PooledWindows

    if windowed(recognizer, wave.size / SAMPLE_RATE):
        windows = PooledWindows()
        tl = recognizer.timeline(wave, SAMPLE_RATE, vad=recognizer.vad, observers=[windows])
        if speech_summary(recognizer, tl).no_speech:
            return None
        if windows.pooled:
            return np.mean(np.stack(list(windows.pooled.values())), axis=0)
    elif recognizer.speech_of(wave).no_speech:
        return None
    return np.mean(clip_pooled(recognizer.engine, wave), axis=0)


class ShiftedModel:
    """An audio model whose pooled statistics are shifted before its head: wave -> probabilities.

    Everything else (labels, config, ``probabilities``, frames) is the wrapped model's."""

    def __init__(self, model: Any, shift: SourceShift) -> None:
        require_frames(model)
        expected = (len(model.layers),)
        if shift.offset.shape[:1] != expected:
            raise ConfigError(f"the --adapt shift has {shift.offset.shape[0]} layers, the model pools {expected[0]}; "
                              "it was estimated for another model: delete it and run again")
        self.model, self.shift = model, shift

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)

    @property
    def tag(self) -> str:
        """``adapt-`` and 8 hex digits of the shift's SHA-256 (added to the model version of the results)."""
        return "adapt-" + hashlib.sha256(np.ascontiguousarray(self.shift.offset, np.float32).tobytes()).hexdigest()[:8]

    def head_logits(self, pooled: np.ndarray) -> np.ndarray:
        """The head on ``(B, L, 2d)`` pooled statistics moved by the shift (frame scoring, hence
        timelines and long recordings, goes through it too)."""
        return self.model.head_logits(np.asarray(pooled, np.float32) - self.shift.offset)

    def logits(self, wave: np.ndarray) -> np.ndarray:
        return np.mean(self.head_logits(np.stack(clip_pooled(self.model, wave))), axis=0)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        return self.model.probabilities(self.logits(wave))


def adapted(recognizer: Any, shift: SourceShift) -> Any:
    """The same recogniser (labels, VAD, batch size) with its model's pooled statistics shifted."""
    out = recognizer.with_labels(recognizer.labels)
    out.engine = ShiftedModel(recognizer.engine, shift)
    return out


def training_mean(folder: str | Path) -> np.ndarray:
    """The ``(L, 2d)`` mean of the head's training statistics (``head.safetensors``)."""
    from emovox.speaker_adapt import training_stats

    return training_stats(folder)[0]


def sample_paths(paths: Iterable[str], size: int = SAMPLE, seed: int = 0) -> list[str]:
    """A seeded uniform sample of ``size`` paths (reservoir sampling: one pass, ``size`` kept)."""
    rng = random.Random(seed)
    kept: list[str] = []
    for i, path in enumerate(paths):
        if i < size:
            kept.append(path)
        else:
            j = rng.randrange(i + 1)
            if j < size:
                kept[j] = path
    return kept


def estimate_shift(recognizer: Any, paths: Sequence[str], strength: float = STRENGTH) -> SourceShift:
    """The shift of the source the ``paths`` come from: the statistics (:func:`source_statistics`) of
    the first :data:`ESTIMATE_SECONDS` of each (files the recogniser would call ``no_speech`` there and
    unreadable files are left out)."""
    from emovox.audio import iter_blocks

    require_frames(recognizer.engine)
    target = training_mean(recognizer.folder)
    pooled: list[np.ndarray] = []
    for path in paths:
        blocks = None
        try:
            blocks = iter_blocks(path, ESTIMATE_SECONDS)
            wave = next(blocks, None)  # the first 30 s: an hour-long file costs no more than a clip
        except EmovoxError:
            continue  # the prediction pass reports it
        finally:
            getattr(blocks, "close", lambda: None)()  # the generator's file is closed now, not at collection
        stats = None if wave is None or wave.size == 0 else source_statistics(recognizer, wave)
        if stats is not None:
            pooled.append(stats)
    return source_shift(np.stack(pooled) if pooled else np.zeros((0, *target.shape)), target, strength)


__all__ = ["MIN_CLIPS", "SAMPLE", "STRENGTH", "ShiftedModel", "SourceShift", "adapted", "clip_pooled", "estimate_shift",
           "require_frames", "sample_paths", "source_shift", "source_statistics", "training_mean"]
