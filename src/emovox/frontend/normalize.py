"""Mean/variance normalisation of (T, F) / (B, T, F) features.

* :func:`mvn` — segment level (the papers' default): every utterance/segment is normalised
  with its own per-bin mean and standard deviation over time, so each segment is independent.
* :func:`conversation_mvn` — conversation level: statistics pooled over *all* segments of a
  group (dialogue, session). Seed paper 000 (§4.2) reports it helps on IEMOCAP but **it
  violates the independence of test segments** (a segment's features depend on its
  neighbours), so it is off by default (``level="segment"``) and must be asked for.

Standard deviations are population std (divide by T) with a floor ``eps`` so constant bins
map to 0 instead of inf. Padded frames (``lengths``) are ignored by the statistics and set to 0
in the output.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import torch

LEVELS = ("segment", "conversation", "none")
DEFAULT_LEVEL = "segment"


def _valid_mask(feats: torch.Tensor, lengths: torch.Tensor | Sequence[int]) -> torch.Tensor:
    lengths = torch.as_tensor(lengths, device=feats.device).reshape(-1)
    if lengths.numel() != feats.shape[0]:
        raise ValueError(f"got {lengths.numel()} lengths for a batch of {feats.shape[0]}")
    if bool((lengths < 0).any()) or bool((lengths > feats.shape[1]).any()):
        raise ValueError(f"lengths must lie in [0, {feats.shape[1]}], got {lengths.tolist()}")
    return torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]


def mvn(feats: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None,
        eps: float = 1e-5) -> torch.Tensor:
    """Segment-level normalisation: per utterance, per feature bin, over time. Returns a new tensor."""
    if feats.ndim not in (2, 3):
        raise ValueError(f"expected (T, F) or (B, T, F) features, got shape {tuple(feats.shape)}")
    single = feats.ndim == 2
    x = feats[None] if single else feats
    if lengths is None:
        mean = x.mean(dim=1, keepdim=True)
        std = x.std(dim=1, keepdim=True, correction=0)
        out = (x - mean) / std.clamp_min(eps)
    else:
        valid = _valid_mask(x, lengths)[..., None].to(x.dtype)
        count = valid.sum(dim=1, keepdim=True).clamp_min(1.0)
        mean = (x * valid).sum(dim=1, keepdim=True) / count
        var = (((x - mean) * valid) ** 2).sum(dim=1, keepdim=True) / count
        out = (x - mean) / var.sqrt().clamp_min(eps) * valid
    return out[0] if single else out


def conversation_mvn(segments: Sequence[torch.Tensor], groups: Sequence[Hashable] | None = None,
                     eps: float = 1e-5) -> list[torch.Tensor]:
    """Conversation-level normalisation of a list of (T_i, F) segments.

    Statistics are pooled over every frame of every segment sharing a group key (all segments
    form one group when ``groups`` is None). Violates segment independence; see module doc.
    """
    if groups is not None and len(groups) != len(segments):
        raise ValueError(f"got {len(groups)} group keys for {len(segments)} segments")
    keys = list(groups) if groups is not None else [None] * len(segments)
    out: list[torch.Tensor | None] = [None] * len(segments)
    for key in dict.fromkeys(keys):
        idx = [i for i, k in enumerate(keys) if k == key]
        pooled = torch.cat([segments[i] for i in idx], dim=0)
        mean = pooled.mean(dim=0)
        std = pooled.std(dim=0, correction=0).clamp_min(eps)
        for i in idx:
            out[i] = (segments[i] - mean) / std
    return out  # type: ignore[return-value]


def normalize_segments(segments: Sequence[torch.Tensor], level: str = DEFAULT_LEVEL,
                       groups: Sequence[Hashable] | None = None) -> list[torch.Tensor]:
    """Normalise a list of (T_i, F) segments at ``level`` ("segment", "conversation" or "none")."""
    if level == "segment":
        return [mvn(s) for s in segments]
    if level == "conversation":
        return conversation_mvn(segments, groups)
    if level == "none":
        return list(segments)
    from emovox.errors import ConfigError

    raise ConfigError(f"unknown normalisation level {level!r}; choose one of {', '.join(LEVELS)}")
