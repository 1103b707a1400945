"""Temporal pooling: frame-level features ``(B, D, T)`` -> one vector per utterance ``(B, P)``.

Every pooling takes optional ``lengths`` (B,) — the number of valid frames of each padded row,
in the frame rate of its input — and ignores the padding, so a padded batch pools the same
frames as each utterance alone. ``P`` is the layer's ``out_dim``.

Names for recipes (:func:`build_pooling`):

* ``stats``     — statistics pooling (x-vector, Snyder et al. 2018; seed 000 §3.3): mean ‖ std
  over time. Population std (divide by n), the same as :func:`emovox.upstreams.pooling.mean_std`;
  the variance is floored at 1e-8 so the gradient stays finite on constant input.
* ``avg``       — mean over time (global average pooling).
* ``attentive`` — attentive statistics pooling (Okabe et al. 2018): softmax attention over frames,
  weighted mean ‖ weighted std.
* ``none``      — no temporal pooling: the ``num_frames`` frame vectors are flattened (the
  fixed-length, truncated-input ablation "without SP" of seed 000 Fig. 4). The model must be fed
  exactly that many frames; :func:`fit_length` truncates/zero-pads input to that length.

All code is plain tensor ops on the time axis, so export with a dynamic time axis works.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

from emovox.errors import ConfigError

VAR_FLOOR = 1e-8


def length_mask(x: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor | None:
    """(B, 1, T) float mask, 1 on valid frames of ``x`` (B, D, T); None when ``lengths`` is None."""
    if lengths is None:
        return None
    steps = torch.arange(x.shape[-1], device=x.device)
    valid = steps.unsqueeze(0) < lengths.to(x.device).unsqueeze(1)
    return valid.unsqueeze(1).to(x.dtype)


def masked_mean_std(x: torch.Tensor, weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted mean and population std over the last axis; ``weights`` (B, 1|D, T) sum to 1 per row
    after normalisation here (None = uniform)."""
    if weights is None:
        mean = x.mean(dim=-1)
        var = x.var(dim=-1, unbiased=False)
    else:
        w = weights / weights.sum(dim=-1, keepdim=True).clamp(min=1e-12)
        mean = (x * w).sum(dim=-1)
        var = (((x - mean.unsqueeze(-1)) ** 2) * w).sum(dim=-1)
    return mean, torch.sqrt(var.clamp(min=VAR_FLOOR))


class StatsPooling(nn.Module):
    """Mean ‖ std over valid frames: (B, D, T) -> (B, 2D)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = 2 * in_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        mean, std = masked_mean_std(x, length_mask(x, lengths))
        return torch.cat([mean, std], dim=-1)


class AvgPooling(nn.Module):
    """Mean over valid frames: (B, D, T) -> (B, D)."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = in_dim

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        mask = length_mask(x, lengths)
        if mask is None:
            return x.mean(dim=-1)
        return (x * mask).sum(dim=-1) / mask.sum(dim=-1).clamp(min=1.0)


class AttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling (Okabe et al. 2018): (B, D, T) -> (B, 2D).

    Scores ``v^T tanh(W h_t + b)`` per frame (one weight per frame and channel when
    ``channel_wise``), softmax over the valid frames, then weighted mean ‖ weighted std.
    """

    def __init__(self, in_dim: int, attention_dim: int = 128, channel_wise: bool = False) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = 2 * in_dim
        self.attention = nn.Sequential(
            nn.Conv1d(in_dim, attention_dim, kernel_size=1),
            nn.Tanh(),
            nn.Conv1d(attention_dim, in_dim if channel_wise else 1, kernel_size=1),
        )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.attention(x)
        mask = length_mask(x, lengths)
        if mask is not None:
            scores = scores.masked_fill(mask == 0, torch.finfo(scores.dtype).min)
        weights = torch.softmax(scores, dim=-1)
        mean, std = masked_mean_std(x, weights)
        return torch.cat([mean, std], dim=-1)


def fit_length(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Truncate or zero-pad ``x`` (..., T) on its last axis to exactly ``num_frames``."""
    x = x[..., :num_frames]
    return F.pad(x, (0, num_frames - x.shape[-1]))


class FlattenPooling(nn.Module):
    """No temporal pooling: (B, D, num_frames) -> (B, D * num_frames); ``lengths`` is ignored.

    Input of another length is truncated / zero-padded to ``num_frames`` first (sequence
    truncation, the approach statistics pooling replaces).
    """

    def __init__(self, in_dim: int, num_frames: int) -> None:
        super().__init__()
        if num_frames < 1:
            raise ConfigError(f"pooling 'none' needs num_frames >= 1, got {num_frames}")
        self.in_dim = in_dim
        self.num_frames = num_frames
        self.out_dim = in_dim * num_frames

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return fit_length(x, self.num_frames).flatten(1)


PoolingLayer = StatsPooling | AvgPooling | AttentiveStatsPooling | FlattenPooling  # each has ``out_dim``
POOLINGS: dict[str, Callable[..., PoolingLayer]] = {
    "stats": StatsPooling,
    "avg": AvgPooling,
    "attentive": AttentiveStatsPooling,
    "none": FlattenPooling,
}
ALIASES = {"statistics": "stats", "mean_std": "stats", "mean": "avg", "gap": "avg", "asp": "attentive",
           "flatten": "none"}


def pooling_name(name: str) -> str:
    """Canonical pooling name (resolves aliases); ConfigError for an unknown one."""
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in POOLINGS:
        raise ConfigError(f"unknown pooling {name!r}; choose one of {sorted(POOLINGS)}")
    return key


def build_pooling(name: str, in_dim: int, **kwargs) -> PoolingLayer:
    """Pooling layer by name for ``in_dim``-channel frames; the result has ``out_dim``."""
    key = pooling_name(name)
    try:
        return POOLINGS[key](in_dim, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for pooling {key!r}: {exc}") from None


__all__ = [
    "AttentiveStatsPooling",
    "AvgPooling",
    "FlattenPooling",
    "POOLINGS",
    "StatsPooling",
    "build_pooling",
    "fit_length",
    "length_mask",
    "pooling_name",
]
