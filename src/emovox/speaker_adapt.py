"""``--adapt``: per-speaker test-time normalisation of a speaker-aware timeline (opt-in).

Each classified window's pooled statistics (mean ‖ std of the head's Whisper layers over its
frames, :mod:`emovox.frame_scoring`) are kept during the timeline (:class:`PooledWindows`, 12 KB
per window for Whisper base). Once the speakers are known, every speaker's windows are z-scored
with that speaker's own mean and standard deviation over its windows in the recording, mapped
onto the training statistics (the head's standardisation: ``z * std_train + mean_train``) and
scored again by the head graph (:func:`adapt_timeline`). Unlabelled and test-time: it uses
only the recording itself. Speakers with fewer than :data:`MIN_WINDOWS` windows are left as they are.

It assumes each speaker's windows are balanced over emotions; a speaker who is mostly neutral
has neutral moved to the middle of the training distribution. Measured (docs/conversations.md):
off by default because it does not win on the skewed (70 % neutral) mix.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from emovox.errors import ConfigError, ModelError

if TYPE_CHECKING:
    from emovox.frame_scoring import FrameScorer
    from emovox.timeline import Timeline

#: A speaker needs at least this many classified windows to be normalised.
MIN_WINDOWS = 5


class PooledWindows:
    """A timeline observer that keeps every scored window's pooled statistics (by start, end)."""

    needs_from = float("inf")

    def __init__(self) -> None:
        self.pooled: dict[tuple[float, float], np.ndarray] = {}

    def feed(self, block: np.ndarray, speech: Sequence[tuple[float, float]], scorer: FrameScorer | None) -> None:
        if scorer is None:
            raise ConfigError("--adapt needs a model with frame outputs (the default model, onnx backend)")
        scorer.on_pooled = self.add

    def add(self, start: float, end: float, pooled: np.ndarray) -> None:
        self.pooled[(round(start, 3), round(end, 3))] = np.asarray(pooled, np.float32)

    def finish(self, speech: Sequence[tuple[float, float]]) -> None:
        pass


def training_stats(folder: Any) -> tuple[np.ndarray, np.ndarray]:
    """The head's standardisation ``(L, 2d)`` mean and std (``head.safetensors``)."""
    from pathlib import Path

    from safetensors.numpy import load_file

    path = Path(folder) / "head.safetensors"
    if not path.is_file():
        raise ModelError(f"{folder}: head.safetensors is missing, so --adapt cannot map onto the training statistics")
    state = load_file(str(path))
    return state["mean"][:, 0].astype(np.float32), state["std"][:, 0].astype(np.float32)


def adapt_timeline(tl: Timeline, kept: PooledWindows, recognizer: Any) -> Timeline:
    """Re-score each speaker's windows after per-speaker normalisation; regions are re-merged."""
    from emovox.timeline import merge_regions

    engine = recognizer.engine
    mean, std = training_stats(recognizer.folder)
    index = [recognizer.model_labels.index(k) for k in tl.labels]
    by_speaker: dict[str, list] = {}
    for w in tl.windows:
        if w.is_speech and w.speaker is not None and (w.start, w.end) in kept.pooled:
            by_speaker.setdefault(w.speaker, []).append(w)
    for windows in by_speaker.values():
        if len(windows) < MIN_WINDOWS:
            continue
        x = np.stack([kept.pooled[(w.start, w.end)] for w in windows]).astype(np.float64)
        z = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-4)
        probs = engine.probabilities(engine.head_logits((z * std + mean).astype(np.float32)))[:, index]
        probs /= np.clip(probs.sum(axis=1, keepdims=True), 1e-30, None)
        for w, p in zip(windows, probs):
            w.probabilities = {k: float(v) for k, v in zip(tl.labels, p)}
            w.label = tl.labels[int(np.argmax(p))]
    tl.regions = merge_regions(tl.windows, tl.labels)
    return tl


__all__ = ["MIN_WINDOWS", "PooledWindows", "adapt_timeline", "training_stats"]
