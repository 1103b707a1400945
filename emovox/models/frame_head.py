"""A linear head on frozen frame features (e.g. Whisper encoder frames, ``whisper_encoder`` front-end).

``(B, T, F)`` -> stats pooling (mean ‖ std, :class:`emovox.models.pooling.StatsPooling`) ->
standardisation with statistics stored as buffers (fitted on the training set, so they travel in
``model.safetensors``) -> ``Linear(2F, C)``: multinomial logistic regression on pooled features.
"""

from __future__ import annotations

import torch
from torch import nn

from emovox.models.base import SpeechClassifier
from emovox.models.pooling import build_pooling


class FrameHead(SpeechClassifier):
    """Pooled frozen-frame features -> standardised -> linear logits."""

    def __init__(self, num_classes: int, in_features: int = 384, pooling: str = "stats") -> None:
        super().__init__()
        self.in_features, self.num_classes = int(in_features), int(num_classes)
        self.pooling = build_pooling(pooling, self.in_features)
        self.embed_dim = int(self.pooling.out_dim)
        self.register_buffer("feature_mean", torch.zeros(self.embed_dim))
        self.register_buffer("feature_scale", torch.ones(self.embed_dim))
        self.classifier = nn.Linear(self.embed_dim, self.num_classes)

    def set_standardization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store the training set's pooled-feature mean/std (zero std -> scale 1)."""
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        std = torch.as_tensor(std, dtype=torch.float32)
        self.feature_scale.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def standardize(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, 2F) pooled vectors -> standardised (B, 2F)."""
        return (pooled - self.feature_mean) / self.feature_scale

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(x)
        return self.standardize(self.pooling(x.transpose(1, 2), lengths))


__all__ = ["FrameHead"]
