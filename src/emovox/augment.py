"""SpecAugment time/frequency masking (Park et al. 2019) with the policies of seed paper 000.

Per item and per mask (seed paper 000, §3.4):

* frequency mask: ``f ~ U{0, …, F}`` (capped at ν), ``f0 ~ U{0, …, ν − f}``, bins ``[f0, f0 + f)``;
* time mask: ``W' = min(W, ⌊p·T⌋)``, ``t ~ U{0, …, W'}``, ``t0 ~ U{0, …, T − t}``, frames ``[t0, t0 + t)``;

with ν the number of feature bins and T the item's *valid* length (``lengths``; padded frames
are never masked). Masks of one kind may overlap. Masked cells are set to ``mask_value`` = 0:
SpecAugment runs after mean/variance normalisation, where 0 is the per-bin mean.

Policies (Table 1): ``none``, ``conservative`` (F=15, W=50, p=0.2, Nf=Nt=2) and
``aggressive`` (F=27, W=70, p=0.2, Nf=Nt=2). Draws come from a ``torch.Generator`` seeded with
``seed`` (None: fresh entropy), so a seeded augmenter replays the same masks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from emovox.errors import ConfigError

POLICIES: dict[str, dict[str, float]] = {
    "none": {"F": 0, "W": 0, "p": 0.0, "n_freq_masks": 0, "n_time_masks": 0},
    "conservative": {"F": 15, "W": 50, "p": 0.2, "n_freq_masks": 2, "n_time_masks": 2},
    "aggressive": {"F": 27, "W": 70, "p": 0.2, "n_freq_masks": 2, "n_time_masks": 2},
}


@dataclass(frozen=True)
class Masks:
    """Sampled masks of a batch: widths and starts, shapes (B, n_freq_masks) and (B, n_time_masks)."""

    f: torch.Tensor
    f0: torch.Tensor
    t: torch.Tensor
    t0: torch.Tensor

    def frequency_mask(self, n_bins: int) -> torch.Tensor:
        """(B, n_bins) boolean, True where some frequency mask covers the bin."""
        return _cover(self.f0, self.f, n_bins)

    def time_mask(self, n_frames: int) -> torch.Tensor:
        """(B, n_frames) boolean, True where some time mask covers the frame."""
        return _cover(self.t0, self.t, n_frames)


def _cover(start: torch.Tensor, width: torch.Tensor, size: int) -> torch.Tensor:
    idx = torch.arange(size)[None, None, :]
    return ((idx >= start[..., None]) & (idx < (start + width)[..., None])).any(dim=1)


def _uniform_int(high: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Integers uniform on {0, …, high} (inclusive), element-wise; ``high`` >= 0."""
    u = torch.rand(high.shape, generator=generator, dtype=torch.float64)
    return torch.minimum((u * (high + 1)).floor().long(), high)


class SpecAugment:
    """Random time and frequency masks on (T, F) or (B, T, F) features; returns a masked copy."""

    def __init__(self, F: int, W: int, p: float, n_freq_masks: int = 2, n_time_masks: int = 2,
                 seed: int | None = None, mask_value: float = 0.0) -> None:
        if min(F, W, n_freq_masks, n_time_masks) < 0 or not 0.0 <= p <= 1.0:
            raise ConfigError(f"SpecAugment: F, W and mask counts must be >= 0 and 0 <= p <= 1 "
                              f"(got F={F}, W={W}, p={p}, Nf={n_freq_masks}, Nt={n_time_masks})")
        self.F, self.W, self.p = int(F), int(W), float(p)
        self.n_freq_masks, self.n_time_masks = int(n_freq_masks), int(n_time_masks)
        self.mask_value = float(mask_value)
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    @classmethod
    def from_policy(cls, name: str, seed: int | None = None) -> "SpecAugment":
        """An augmenter for a named policy of :data:`POLICIES`."""
        if name not in POLICIES:
            raise ConfigError(f"unknown SpecAugment policy {name!r}; choose one of {', '.join(POLICIES)}")
        return cls(**POLICIES[name], seed=seed)  # type: ignore[arg-type]

    def sample(self, n_frames: int | Sequence[int] | torch.Tensor, n_bins: int) -> Masks:
        """Draw masks for a batch whose items have ``n_frames`` valid frames (one int per item)."""
        T = torch.as_tensor(n_frames, dtype=torch.long).reshape(-1)
        B = T.numel()
        f = _uniform_int(torch.full((B, self.n_freq_masks), min(self.F, n_bins)), self.generator)
        f0 = _uniform_int(n_bins - f, self.generator)
        w_max = torch.clamp(torch.floor(self.p * T.double()).long(), max=self.W)
        t = _uniform_int(w_max[:, None].expand(B, self.n_time_masks), self.generator)
        t0 = _uniform_int(T[:, None] - t, self.generator)
        return Masks(f=f, f0=f0, t=t, t0=t0)

    def __call__(self, feats: torch.Tensor, lengths: Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
        """A masked copy of (T, F) or (B, T, F) ``feats``; ``lengths`` gives each item's valid frames."""
        if feats.ndim not in (2, 3):
            raise ValueError(f"expected (T, F) or (B, T, F) features, got shape {tuple(feats.shape)}")
        x = feats[None] if feats.ndim == 2 else feats
        B, T, F = x.shape
        if lengths is None:
            n_frames = torch.full((B,), T, dtype=torch.long)
        else:
            n_frames = torch.as_tensor(lengths, dtype=torch.long).reshape(-1).cpu()
            if n_frames.numel() != B or bool((n_frames < 0).any()) or bool((n_frames > T).any()):
                raise ValueError(f"lengths must be {B} values in [0, {T}], got {n_frames.tolist()}")
        masks = self.sample(n_frames, F)
        valid = torch.arange(T)[None, :] < n_frames[:, None]
        cover = (masks.time_mask(T)[:, :, None] | masks.frequency_mask(F)[:, None, :]) & valid[:, :, None]
        out = x.masked_fill(cover.to(x.device), self.mask_value)
        return out[0] if feats.ndim == 2 else out

    def copies(self, feats: torch.Tensor, k: int, lengths: Sequence[int] | torch.Tensor | None = None,
               stack: bool = False) -> list[torch.Tensor] | torch.Tensor:
        """``k`` independently augmented copies of ``feats`` (list, or a (k, ...) tensor if ``stack``)."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        out = [self(feats, lengths) for _ in range(k)]
        if stack:
            return torch.stack(out) if out else feats.new_empty((0, *feats.shape))
        return out

    def __repr__(self) -> str:
        return (f"SpecAugment(F={self.F}, W={self.W}, p={self.p}, n_freq_masks={self.n_freq_masks}, "
                f"n_time_masks={self.n_time_masks}, mask_value={self.mask_value})")
