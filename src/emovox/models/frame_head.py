"""A head on frozen frame features (Whisper encoder frames, GE2E LSTM frames, ...).

``(B, T, F)`` -> temporal pooling (``stats`` = mean ‖ std by default, or ``attentive``/``avg``;
:mod:`emovox.models.pooling`) -> standardisation with statistics stored as buffers (fitted on the
training side, so they travel in ``model.safetensors``) -> optional MLP (``hidden`` units, ReLU,
dropout) -> ``Linear``. With ``hidden=0`` this is multinomial logistic regression on pooled
features (the bundled ``whisper`` model); with ``hidden>0`` it is the "pooling + MLP" head of
issue 3.

:meth:`FrameHead.fit_inputs` fits the standardisation from the training utterances' frames:
exact for the parameter-free poolings (``stats``, ``avg``); for ``attentive`` pooling it uses the
attention at initialisation (uniform-ish weights), a fixed data-scale normalisation.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from emovox.models.base import SpeechClassifier
from emovox.models.pooling import build_pooling


class FrameHead(SpeechClassifier):
    """Pooled frozen-frame features -> standardised -> [MLP] -> linear logits."""

    HEAD = ("mlp", "classifier")
    feature_mean: torch.Tensor  # buffers, registered in __init__
    feature_scale: torch.Tensor

    def __init__(self, num_classes: int, in_features: int = 384, pooling: str = "stats", hidden: int = 0,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.num_classes = int(in_features), int(num_classes)
        self.pooling = build_pooling(pooling, self.in_features)
        pooled = int(self.pooling.out_dim)
        self.register_buffer("feature_mean", torch.zeros(pooled))
        self.register_buffer("feature_scale", torch.ones(pooled))
        if hidden < 0 or not 0.0 <= dropout < 1.0:
            raise ValueError(f"FrameHead: hidden must be >= 0 and dropout in [0, 1), got {hidden}, {dropout}")
        self.mlp = (nn.Sequential(nn.Dropout(dropout), nn.Linear(pooled, hidden), nn.ReLU(), nn.Dropout(dropout))
                    if hidden else nn.Identity())
        self.embed_dim = int(hidden) if hidden else pooled
        self.classifier = nn.Linear(self.embed_dim, self.num_classes)

    def set_standardization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the training set's pooled-feature mean/std (zero std -> scale 1)."""
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        std = torch.as_tensor(std, dtype=torch.float32)
        self.feature_scale.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    @torch.no_grad()
    def fit_inputs(self, frames: Sequence[torch.Tensor]) -> None:
        """Fit the standardisation on training utterances' (T, F) frames (one pooled vector each)."""
        if not frames:
            raise ValueError("FrameHead.fit_inputs: no training utterances")
        pooled = torch.cat([self.pooling(f.float().T.unsqueeze(0)) for f in frames])
        self.set_standardization(pooled.mean(0), pooled.std(0, unbiased=False))

    def standardize(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, P) pooled vectors -> standardised (B, P)."""
        return (pooled - self.feature_mean) / self.feature_scale

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(x)
        return self.mlp(self.standardize(self.pooling(x.transpose(1, 2), lengths)))


__all__ = ["FrameHead"]
