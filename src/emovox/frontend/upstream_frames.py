"""``upstream`` front-end: the frame features of a frozen :mod:`emovox.upstreams` upstream.

A model trained on upstream frames (recipe ``features.frontend: upstream`` with
``options: {upstream: whisper, options: {...}}``, or the shorthand ``features.frontend: whisper``
e.g. ``recipes/emodb/loso_whisper_head.yaml``) is saved with the front-end
``{"name": "upstream", "kwargs": {"upstream": "whisper", "options": {...}}}``
(:class:`emovox.pipeline.PipelineConfig`), so ``Recognizer`` and ``emovox predict --model FOLDER``
compute the very features the model was trained on. The upstreams are not torch graphs, so such
a model runs with the torch backend only. (The retired ``whisper_encoder`` front-end is read as
``upstream`` with ``upstream: whisper``, unpadded: :data:`emovox.pipeline.ALIASES`.)
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from emovox.audio import SAMPLE_RATE
from emovox.upstreams import build_upstream


class UpstreamFrames(nn.Module):
    """(N,) or (B, N) 16 kHz waves -> (T, F) or (B, T, F) frames of the upstream ``upstream``."""

    def __init__(self, upstream: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.upstream = build_upstream(upstream, **dict(options or {}))
        if not self.upstream.frame_rate or not self.upstream.frame_dim:
            raise ValueError(f"upstream {upstream!r} has no frame features (only pooled vectors); "
                             "use 'whisper' or 'ge2e'")
        self.hop_length = int(round(SAMPLE_RATE / self.upstream.frame_rate))
        self.n_features = int(self.upstream.frame_dim)

    def num_frames(self, num_samples: int) -> int:
        """Rows the upstream gives for ``num_samples`` samples (its own framing rule)."""
        return int(self.upstream.num_frames(num_samples))

    def forward(self, waves: torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(waves, torch.Tensor):
            waves = waves.detach().cpu().numpy()
        x = np.asarray(waves, dtype=np.float32)
        if x.ndim == 1:
            return torch.from_numpy(np.ascontiguousarray(self.upstream.extract(x)["frames"], dtype=np.float32))
        return torch.stack([self.forward(row) for row in x])


__all__ = ["UpstreamFrames"]
