"""Layer primitives shared by the models: the adapter conv (:class:`ConvBN`), its domains, and
the one batch-norm freezing and head lookup every transfer mode and trainer uses.

Adapter module (seed 003 eq. 1–3, Fig. 2): a k×k convolution ``ω`` (domain-agnostic) gets a
parallel 1×1 convolution ``α`` of the same stride and output size, one per *domain*; the sum
``ω * x + α_d * x`` goes through the batch norm of domain ``d``. :class:`ConvBN` implements
this for every 3×3 convolution; without domains it is a plain conv + BN.

A batch norm whose parameters are all frozen also freezes its running statistics
(:func:`sync_batchnorm_freezing`): it is turned into :class:`FrozenBatchNorm2d` / ``1d`` (same
parameters and buffers, always in eval mode), so ``model.train()`` cannot update them.
"""

from __future__ import annotations

from typing import Sequence, cast

import torch
from torch import nn

from emovox.errors import ConfigError

DEFAULT_DOMAINS = ("speaker", "emotion")


class ConvBN(nn.Module):
    """k×k conv (no bias) → BN; with ``domains``, per-domain BN and (if ``adapter``) a parallel
    per-domain 1×1 adapter whose output is added before the BN (seed 003 eq. 3)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 domains: Sequence[str] | None = None, adapter: bool | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False)
        self.domains = tuple(domains or ())
        self.domain: str | None = self.domains[0] if self.domains else None
        if adapter is None:
            adapter = kernel_size == 3
        self.adapters: nn.ModuleDict | None = None
        if self.domains:
            if adapter:
                self.adapters = nn.ModuleDict(
                    {d: nn.Conv2d(in_channels, out_channels, 1, stride, bias=False) for d in self.domains})
            self.bn: nn.Module = nn.ModuleDict({d: nn.BatchNorm2d(out_channels) for d in self.domains})
        else:
            self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if self.domain is None:
            return self.bn(y)
        if self.adapters is not None:
            y = y + self.adapters[self.domain](x)
        return cast(nn.ModuleDict, self.bn)[self.domain](y)  # with domains, bn is a ModuleDict


class _FrozenBatchNorm:
    """Mixin: a batch norm that stays in eval mode (running statistics never update)."""

    def train(self, mode: bool = True):  # noqa: ARG002 - always eval
        return super().train(False)  # type: ignore[misc]


class FrozenBatchNorm1d(_FrozenBatchNorm, nn.BatchNorm1d):
    """BatchNorm1d that always normalises with its running statistics."""


class FrozenBatchNorm2d(_FrozenBatchNorm, nn.BatchNorm2d):
    """BatchNorm2d that always normalises with its running statistics."""


_FROZEN = {nn.BatchNorm1d: FrozenBatchNorm1d, nn.BatchNorm2d: FrozenBatchNorm2d}
_THAWED = {v: k for k, v in _FROZEN.items()}


def sync_batchnorm_freezing(model: nn.Module) -> int:
    """Freeze the running statistics of every BN whose parameters are all frozen; thaw the rest.
    Returns how many are frozen. The one implementation: transfer modes and the trainer use it."""
    n = 0
    for module in model.modules():
        cls = type(module)
        if cls not in _FROZEN and cls not in _THAWED:
            continue
        params = list(module.parameters(recurse=False))
        frozen = bool(params) and not any(p.requires_grad for p in params)
        n += frozen
        module.__class__ = _FROZEN.get(cls, cls) if frozen else _THAWED.get(cls, cls)
        module.train(model.training and not frozen)
    return n


def head_modules(model: nn.Module) -> list[nn.Module]:
    """The segment-level head of ``model``: the children named in ``model.HEAD`` (emovox
    SpeechClassifier: pooling, embedding FC, classifier), else its ``classifier``."""
    names = getattr(model, "HEAD", None) or ("classifier",)
    return [m for m in (getattr(model, n, None) for n in names) if isinstance(m, nn.Module)]


# --------------------------------------------------------------------------- domains
def domains_of(model: nn.Module) -> tuple[str, ...]:
    """Domains of a model built with adapters (empty tuple otherwise)."""
    for m in model.modules():
        if isinstance(m, ConvBN) and m.domains:
            return m.domains
    return ()


def set_domain(model: nn.Module, domain: str) -> None:
    """Route every adapter conv/BN through ``domain``; other domains' parameters stop training."""
    known = domains_of(model)
    if domain not in known:
        raise ConfigError(f"unknown domain {domain!r}; this model has domains {list(known)} "
                          "(build it with adapters=True and domains=[...])")
    for m in model.modules():
        if isinstance(m, ConvBN) and m.domains:
            m.domain = domain
            for part in (m.adapters, m.bn):
                if isinstance(part, nn.ModuleDict):
                    for name, sub in part.items():
                        sub.requires_grad_(name == domain)
    model.domain = domain  # type: ignore[assignment]  # a plain attribute on the model, read by model_spec
    sync_batchnorm_freezing(model)


@torch.no_grad()
def copy_domain(model: nn.Module, source: str, target: str) -> None:
    """Initialise ``target``'s adapters and batch norms (incl. running stats) from ``source``'s."""
    for m in model.modules():
        if isinstance(m, ConvBN) and m.domains:
            for part in (m.adapters, m.bn):
                if isinstance(part, nn.ModuleDict):
                    part[target].load_state_dict(part[source].state_dict())


def unfreeze_active_adapters(model: nn.Module, zero_convs: bool) -> None:
    """Train the active domain's adapters and batch norms; ``zero_convs`` zeroes the adapted k×k weights."""
    for m in model.modules():
        if isinstance(m, ConvBN) and m.domains:
            assert m.domain is not None  # a ConvBN with domains always has an active one
            cast(nn.ModuleDict, m.bn)[m.domain].requires_grad_(True)
            if m.adapters is not None:
                m.adapters[m.domain].requires_grad_(True)
                if zero_convs:
                    with torch.no_grad():
                        m.conv.weight.zero_()


__all__ = ["ConvBN", "DEFAULT_DOMAINS", "FrozenBatchNorm1d", "FrozenBatchNorm2d", "copy_domain", "domains_of",
           "head_modules", "set_domain", "sync_batchnorm_freezing", "unfreeze_active_adapters"]
