"""The interface every frozen feature extractor ("upstream") implements.

An upstream turns a 16 kHz mono float32 array into named arrays (cached per utterance) and
reduces those arrays to one fixed-length vector for utterance-level classifiers (the SVM
baseline). Frame features are time-major ``(T, F)`` float32, as everywhere in emovox.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Mapping

import numpy as np

from emovox.audio import SAMPLE_RATE
from emovox.cache import extractor_key


class Upstream(ABC):
    """A frozen feature extractor. Subclasses set ``name`` and ``dim`` (pooled vector size)."""

    name: str = "upstream"
    #: Size of :meth:`pooled`'s output.
    dim: int = 0
    #: Frames per second of the ``"frames"`` array, or None when there is none.
    frame_rate: float | None = None
    #: Size of each ``"frames"`` row, or None when there is none.
    frame_dim: int | None = None

    def num_frames(self, num_samples: int) -> int:
        """Rows of the ``"frames"`` array for ``num_samples`` samples (upstreams with frames override)."""
        raise NotImplementedError(f"upstream {self.name!r} has no frame features")

    def params(self) -> dict[str, Any]:
        """Everything that changes the output; part of the cache key."""
        return {}

    @property
    def key(self) -> str:
        """Cache folder name: the extractor name and a hash of :meth:`params`."""
        return extractor_key(self.name, self.params())

    @abstractmethod
    def extract(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
        """Named float32 arrays for one utterance (what the feature cache stores)."""

    @abstractmethod
    def pooled(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """One fixed ``(dim,)`` float32 vector from the arrays :meth:`extract` returned."""

    def __call__(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
        """Shortcut: the pooled vector of one array."""
        return self.pooled(self.extract(samples, sample_rate))

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({opts})"


def check_sample_rate(sample_rate: int, source: str) -> None:
    """Upstreams take 16 kHz input only; resampling belongs to :mod:`emovox.audio`."""
    if sample_rate != SAMPLE_RATE:
        from emovox.errors import AudioError

        raise AudioError(source, f"expected {SAMPLE_RATE} Hz samples, got {sample_rate} Hz",
                         "load it with emovox.audio.load_audio or prepare_array first")
