"""ResNet20 of seed 003 (Xi et al.), optionally with residual adapters (:class:`~emovox.models.layers.ConvBN`).

Input ``(B, T, F)`` viewed as a 1×F×T image: 7×7 conv 32 (stride 1) → 3×3 max-pool stride 2 →
three stages of 3 basic blocks with 32 / 64 / 128 channels → global average pooling → FC. As
the paper's text says ("the stride of the last convolutional layer of each stage is set to 2 and
the output dimension is doubled"; "outputs a 256-dimensional feature map with size 25×13"; FC
"256:classes"), the *last* 3×3 conv of each stage has stride 2 and doubles the channels
(32→64, 64→128, 128→256), with a 1×1 projection shortcut. Activations are ReLU (eq. 2). The 7×7
stem and the 1×1 shortcuts get no adapter (only 3×3 convs do) but their batch norms are
domain-specific like all others.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from emovox.models.base import SpeechClassifier, halve_lengths
from emovox.models.layers import DEFAULT_DOMAINS, ConvBN, set_domain
from emovox.models.pooling import build_pooling


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


__all__ = ["AdapterBlock", "ResNet20"]
