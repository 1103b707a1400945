"""Speaker diarisation from the timeline's own Whisper frames (no second model, no second pass).

The timeline of an audio-in package with frames (:mod:`emovox.frame_scoring`) already holds
Whisper hidden states of every piece it encodes. :class:`FrameSpeakers` watches the same blocks
(a :class:`emovox.timeline.BlockObserver`) and cuts the diariser's segments
(:class:`emovox.diarize.Diarizer`: 1.6 s every 0.8 s, each cut to the speech region it overlaps
most); a segment's embedding is the mean over its frames of Whisper hidden states
(:attr:`SpeakerProjection.layers`, concatenated), projected by a linear discriminant analysis
(:class:`SpeakerProjection`) trained on speakers of other corpora than the evaluation
(``recipes/speaker_lda``; the projection subtracts the training mean). Plain Whisper statistics
separate speakers poorly (they follow what is said); the projection keeps the directions that
vary between speakers rather than within one. Then the diariser's cosine clustering, automatic
count (threshold chosen on calibration speakers, stored with the projection) and turn
smoothing apply unchanged. Memory: 4 bytes x dimensions per segment.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emovox.diarize import Diarizer, Turn
from emovox.errors import ConfigError, ModelError
from emovox.frame_scoring import pool_frames

if TYPE_CHECKING:
    from emovox.frame_scoring import FrameScorer

#: Projections shipped with emovox, one per Whisper model (``<whisper_model>.safetensors`` + ``.json``).
ASSETS = Path(__file__).parent / "assets" / "speaker_lda"


@dataclass(frozen=True)
class SpeakerProjection:
    """``(n, len(layers) * d)`` mean hidden states -> ``(n, k)`` speaker embeddings: ``(x - mean) @ scalings``."""

    layers: list[int]
    mean: np.ndarray
    scalings: np.ndarray
    threshold: float
    info: dict

    @classmethod
    def load(cls, whisper_model: str, folder: Path = ASSETS) -> SpeakerProjection | None:
        """The projection for ``whisper_model`` (None when emovox has none for it, e.g. a folder of
        the user's own Whisper weights). Read once per process (archives ask for it per file)."""
        return _load_projection(whisper_model, Path(folder))

    @classmethod
    def _read(cls, whisper_model: str, folder: Path) -> SpeakerProjection | None:
        if not whisper_model or Path(whisper_model).name != whisper_model:
            return None
        meta, weights = folder / f"{whisper_model}.json", folder / f"{whisper_model}.safetensors"
        if not meta.is_file() or not weights.is_file():
            return None
        from safetensors.numpy import load_file

        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
            arrays = load_file(str(weights))
            proj = cls([int(i) for i in info["layers"]], arrays["mean"].astype(np.float32),
                       arrays["scalings"].astype(np.float32), float(info["threshold"]), info)
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error type for damaged files
            raise ModelError(f"{weights}: not a speaker projection ({type(exc).__name__}: {exc}); reinstall emovox") from None
        if proj.mean.shape != (proj.scalings.shape[0],) or proj.scalings.ndim != 2:
            raise ModelError(f"{weights}: mean {proj.mean.shape} and scalings {proj.scalings.shape} do not match")
        return proj

    def __call__(self, stats: np.ndarray) -> np.ndarray:
        return (np.asarray(stats, np.float32) - self.mean) @ self.scalings

    @property
    def split_share(self) -> float | None:
        """The two-way split share above which a recording counted as one speaker gets two
        (:class:`emovox.diarize.Diarizer`; chosen on the calibration conversations); None: never."""
        value = self.info.get("split_share")
        return None if value is None else float(value)

    @property
    def stats(self) -> str:
        """What is pooled over a span's frames: ``mean``, or ``mean_std`` (mean ‖ std, x-vector style)."""
        return str(self.info.get("stats", "mean"))

    def embed_frames(self, frames: np.ndarray) -> np.ndarray:
        """``(top + 1, T, d)`` hidden states of one span -> ``(k,)`` speaker embedding (the projected
        :func:`span_statistics` of :attr:`layers`)."""
        return self(span_statistics(np.asarray(frames)[self.layers], self.stats).reshape(1, -1))[0]


def span_statistics(hidden: np.ndarray, stats: str = "mean") -> np.ndarray:
    """``(L, T, d)`` hidden states of one span -> ``(L * d,)`` means over time, or ``(L * 2d,)``
    mean ‖ (population) std per layer with ``stats="mean_std"``: what the projection reads."""
    if stats not in ("mean", "mean_std"):
        raise ModelError(f"speaker projection statistics must be 'mean' or 'mean_std', got {stats!r}")
    if stats == "mean_std":  # the emotion head's pooling (emovox.frame_scoring.pool_frames), every layer given
        return pool_frames(hidden, range(len(hidden))).reshape(-1)
    return np.asarray(hidden).mean(axis=1, dtype=np.float64).reshape(-1)


@functools.lru_cache(maxsize=8)
def _load_projection(whisper_model: str, folder: Path) -> SpeakerProjection | None:
    return SpeakerProjection._read(whisper_model, folder)


class FrameSpeakers:
    """A timeline observer that diarises from the timeline's frames; :meth:`turns` after the timeline."""

    def __init__(self, projection: SpeakerProjection, *, speakers: int | None = None, threshold: float | None = None,
                 min_turn: float = 1.0) -> None:
        self.projection = projection
        self.diarizer = Diarizer(embed_spans=self._embed, speakers=speakers, min_turn=min_turn,
                                 threshold=projection.threshold if threshold is None else threshold,
                                 centre_known_count=True, split_share=projection.split_share)
        self.scorer: FrameScorer | None = None
        self._turns: list[Turn] | None = None

    @property
    def needs_from(self) -> float:
        return self.diarizer.needs_from

    def feed(self, block: np.ndarray, speech: Sequence[tuple[float, float]], scorer: FrameScorer | None) -> None:
        if scorer is None:
            raise ConfigError("speakers from frames need a model with frame outputs (the default model, onnx backend); "
                              "use the GE2E diariser instead")
        self.scorer = scorer
        self.diarizer.feed(block, speech)

    def finish(self, speech: Sequence[tuple[float, float]]) -> None:
        self._turns = self.diarizer.finish(speech)

    def _embed(self, spans: list[tuple[float, float]]) -> np.ndarray:
        assert self.scorer is not None
        return np.stack([self.projection.embed_frames(self.scorer.frames(s, e)) for s, e in spans])

    def turns(self) -> list[Turn]:
        """The speaker turns (after the timeline finished)."""
        if self._turns is None:
            raise ConfigError("FrameSpeakers.turns(): the timeline has not finished")
        return self._turns


__all__ = ["FrameSpeakers", "SpeakerProjection"]
