"""Residual adapters (seed 003, Xi et al.), ResNet20, and transfer modes for every emovox model.

Adapter module (seed 003 eq. 1–3, Fig. 2): a k×k convolution ``ω`` (domain-agnostic) gets a
parallel 1×1 convolution ``α`` of the same stride and output size, one per *domain*; the sum
``ω * x + α_d * x`` goes through the batch norm of domain ``d``. :class:`ConvBN` implements
this for every 3×3 convolution; without domains it is a plain conv + BN.

ResNet20 (seed 003 Table I), input ``(B, T, F)`` viewed as a 1×F×T image: 7×7 conv 32 (stride 1)
→ 3×3 max-pool stride 2 → three stages of 3 basic blocks with 32 / 64 / 128 channels → global
average pooling → FC. As the paper's text says ("the stride of the last convolutional layer of
each stage is set to 2 and the output dimension is doubled"; "outputs a 256-dimensional feature
map with size 25×13"; FC "256:classes"), the *last* 3×3 conv of each stage has stride 2 and
doubles the channels (32→64, 64→128, 128→256), with a 1×1 projection shortcut. Activations are
ReLU (eq. 2). The 7×7 stem and the 1×1 shortcuts get no adapter (only 3×3 convs do) but their
batch norms are domain-specific like all others.

Transfer modes (:func:`apply_transfer_mode`), for any :class:`SpeechClassifier`:

==================  =========================================================================
scratch (plain)     everything trains
feature_extractor   only the output layer (``classifier``) trains (seed 003 "feature extractor")
linear_probe        frame-level trunk frozen; the segment-level layers in ``model.HEAD``
                    (pooling, embedding FC, classifier) train — seed 000/001 "re-train the new
                    FC layers" with frozen convolutional weights
fine_tune           everything trains (the recipe gives the trunk a smaller learning rate)
residual_adapter    k×k convs, 1×1 shortcuts and trunk PReLUs frozen; the active domain's
                    adapters and batch norms plus ``HEAD`` train (needs ``adapters=True``)
adapter_only        as residual_adapter, and every 3×3 weight with an adapter is zeroed
                    (seed 003 "Adapter": domain-agnostic filters carry no information)
==================  =========================================================================

A batch norm whose parameters are all frozen also freezes its running statistics: it is turned
into :class:`FrozenBatchNorm2d` / ``1d`` (same parameters and buffers, always in eval mode), so
``model.train()`` cannot update them.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from emovox.errors import ConfigError
from emovox.models.base import SpeechClassifier, halve_lengths
from emovox.models.pooling import build_pooling

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
        return self.bn[self.domain](y)


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


def sync_batchnorm_freezing(model: nn.Module) -> None:
    """Freeze the running statistics of every BN whose parameters are all frozen; thaw the rest."""
    for module in model.modules():
        cls = type(module)
        if cls not in _FROZEN and cls not in _THAWED:
            continue
        frozen = not any(p.requires_grad for p in module.parameters(recurse=False))
        module.__class__ = _FROZEN.get(cls, cls) if frozen else _THAWED.get(cls, cls)
        module.train(model.training and not frozen)


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
    model.domain = domain
    sync_batchnorm_freezing(model)


@torch.no_grad()
def copy_domain(model: nn.Module, source: str, target: str) -> None:
    """Initialise ``target``'s adapters and batch norms (incl. running stats) from ``source``'s."""
    for m in model.modules():
        if isinstance(m, ConvBN) and m.domains:
            for part in (m.adapters, m.bn):
                if isinstance(part, nn.ModuleDict):
                    part[target].load_state_dict(part[source].state_dict())


# --------------------------------------------------------------------------- transfer modes
TRANSFER_MODES = ("scratch", "feature_extractor", "linear_probe", "fine_tune", "residual_adapter", "adapter_only")
_MODE_ALIASES = {
    "plain": "scratch", "none": "scratch", "frozen": "feature_extractor", "feature-extractor": "feature_extractor",
    "linear-probe": "linear_probe", "probe": "linear_probe", "finetune": "fine_tune", "fine-tune": "fine_tune",
    "adapter": "residual_adapter", "adapters": "residual_adapter", "res_adapter": "residual_adapter",
    "residual_adapters": "residual_adapter", "residual-adapter": "residual_adapter", "adapter-only": "adapter_only",
}


def transfer_mode_name(mode: str) -> str:
    """Canonical transfer mode (resolves aliases such as ``plain``, ``adapter``); ConfigError if unknown."""
    key = _MODE_ALIASES.get(str(mode).lower(), str(mode).lower())
    if key not in TRANSFER_MODES:
        raise ConfigError(f"unknown transfer mode {mode!r}; choose one of {list(TRANSFER_MODES)} "
                          f"(aliases: {sorted(_MODE_ALIASES)})")
    return key


def _head_modules(model: nn.Module) -> list[nn.Module]:
    names = getattr(model, "HEAD", ("classifier",))
    return [getattr(model, n) for n in names if isinstance(getattr(model, n, None), nn.Module)]


def apply_transfer_mode(model: SpeechClassifier, mode: str, domain: str | None = None) -> SpeechClassifier:
    """Set which parameters train for ``mode`` (see the module doc); returns ``model``.

    ``domain`` (adapter models only) switches the active domain first; a domain not used before
    is initialised from the current one (e.g. speaker → emotion), as in seed 003 where emotion
    adapters start from the speaker-trained model.
    """
    key = transfer_mode_name(mode)
    doms = domains_of(model)
    if key in ("residual_adapter", "adapter_only") and not doms:
        raise ConfigError(f"transfer mode {key!r} needs a model built with adapters=True "
                          f"({type(model).__name__} has no adapters)")
    model.requires_grad_(True)
    if doms:
        current = getattr(model, "domain", None) or doms[0]
        if domain is not None and domain != current:
            if domain in doms:
                copy_domain(model, current, domain)
            current = domain
        set_domain(model, current)  # validates, freezes other domains
    elif domain is not None:
        raise ConfigError(f"domain {domain!r} given but {type(model).__name__} was built without adapters")

    if key in ("feature_extractor", "linear_probe", "residual_adapter", "adapter_only"):
        model.requires_grad_(False)
        train = [model.classifier] if key == "feature_extractor" else _head_modules(model)
        for m in train:
            m.requires_grad_(True)
        if key in ("residual_adapter", "adapter_only"):
            _unfreeze_active_adapters(model, zero_convs=key == "adapter_only")
    sync_batchnorm_freezing(model)
    model.transfer_mode = key
    return model


def _unfreeze_active_adapters(model: nn.Module, zero_convs: bool) -> None:
    for m in model.modules():
        if isinstance(m, ConvBN) and m.domains:
            m.bn[m.domain].requires_grad_(True)
            if m.adapters is not None:
                m.adapters[m.domain].requires_grad_(True)
                if zero_convs:
                    with torch.no_grad():
                        m.conv.weight.zero_()


# --------------------------------------------------------------------------- ResNet20
class AdapterBlock(nn.Module):
    """Basic block of seed 003: 3×3 conv-BN-ReLU, 3×3 conv-BN (stride/width change here), + shortcut, ReLU."""

    def __init__(self, channels: int, out_channels: int, stride: int, domains: Sequence[str] | None) -> None:
        super().__init__()
        self.conv1 = ConvBN(channels, channels, 3, 1, domains)
        self.conv2 = ConvBN(channels, out_channels, 3, stride, domains)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or out_channels != channels:
            self.shortcut = ConvBN(channels, out_channels, 1, stride, domains, adapter=False)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv2(self.relu(self.conv1(x))) + self.shortcut(x))


class ResNet20(SpeechClassifier):
    """ResNet20 of seed 003 Table I (optionally with residual adapters); see the module doc.

    ``in_features`` is F (any value works: global average pooling removes the frequency axis;
    it is only checked). ``pooling`` pools the frequency-averaged maps over time (``avg`` = GAP).
    """

    HEAD = ("pool", "classifier")

    def __init__(self, num_classes: int, in_features: int | None = None, widths: Sequence[int] = (32, 64, 128),
                 blocks_per_stage: int = 3, stem_channels: int = 32, pooling: str = "avg",
                 pooling_kwargs: dict | None = None, adapters: bool = False,
                 domains: Sequence[str] = DEFAULT_DOMAINS, domain: str | None = None) -> None:
        super().__init__()
        doms = tuple(domains) if adapters else None
        self.in_features = in_features
        self.num_classes = num_classes
        self.domain = None
        self.stem = nn.Sequential(ConvBN(1, stem_channels, 7, 1, doms, adapter=False), nn.ReLU(),
                                  nn.MaxPool2d(3, stride=2, padding=1))
        stages, channels = [], stem_channels
        for width in widths:
            blocks = []
            for i in range(blocks_per_stage):
                last = i == blocks_per_stage - 1
                blocks.append(AdapterBlock(channels, 2 * width if last else width, 2 if last else 1, doms))
                channels = 2 * width if last else width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.time_halvings = 1 + len(widths)
        self.pool = build_pooling(pooling, channels, **(pooling_kwargs or {}))
        self.embed_dim = self.pool.out_dim
        self.classifier = nn.Linear(self.embed_dim, num_classes)
        if doms:
            set_domain(self, domain or doms[0])

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        self.check_input(x)
        h = self.stages(self.stem(x.transpose(1, 2).unsqueeze(1)))  # (B, C, F', T')
        if lengths is not None:
            lengths = halve_lengths(lengths, self.time_halvings)
        return self.pool(h.mean(dim=2), lengths)


__all__ = [
    "AdapterBlock",
    "ConvBN",
    "DEFAULT_DOMAINS",
    "FrozenBatchNorm1d",
    "FrozenBatchNorm2d",
    "ResNet20",
    "TRANSFER_MODES",
    "apply_transfer_mode",
    "copy_domain",
    "domains_of",
    "set_domain",
    "sync_batchnorm_freezing",
    "transfer_mode_name",
]
