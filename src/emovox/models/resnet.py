"""ResNet34 (and ResNet18) for log-mel input, after seeds 000 §3 / 001 §3.2 and WeSpeaker's resnet.py.

Input ``(B, T, F)`` is viewed as a 1×F×T image. Frame-level part: 3×3 conv stem (``base_channels``)
→ four stages of basic blocks (ResNet34: [3, 4, 6, 3]) with base, 2·base, 4·base, 8·base channels,
the last three starting with a stride-2 block (so F and T shrink by 8) → the maps are flattened
to ``8·base·ceil(F/8)`` features per frame → temporal pooling by name (``stats`` by default) →
segment-level ``Linear → BatchNorm1d → PReLU`` embedding (512-d) → linear classifier.

Paper settings: 32 channels in the first block, PReLU in every layer except the output, batch
norm after every conv, 128 log-mels, 512-d embedding. ``base_channels`` (e.g. 16) is the width
multiplier for CPU work; ``n_mels`` is F.

Parameter counts (``tests/models/test_resnet.py`` checks them) — the paper reports 21.5 M
(seed 001 Table 3, "nearly 20 million" in its text). Of the configurations here the closest is
``ResNet34(n_mels=128, base_channels=32, pooling="stats")``; see the test for the exact numbers
and the configuration that matches 21.5 M best.

``lengths`` are in input frames; the model converts them to frame-level lengths (÷8, rounded up)
so statistics pooling ignores padding. Padding still influences the last few valid frames through
the convolutions' receptive field, so exact whole-utterance scores need batch size 1 (or
equal-length batches). ``adapters=True`` adds seed-003 residual adapters to every 3×3 conv (see
:mod:`emovox.models.layers`).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from emovox.errors import ConfigError
from emovox.models.layers import DEFAULT_DOMAINS, ConvBN, set_domain
from emovox.models.base import SpeechClassifier, halve_lengths, halve_size
from emovox.models.pooling import build_pooling, fit_length, pooling_name


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with PReLU and a (projection when needed) shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1,
                 domains: Sequence[str] | None = None) -> None:
        super().__init__()
        self.conv1 = ConvBN(in_channels, channels, 3, stride, domains)
        self.act1 = nn.PReLU(channels)
        self.conv2 = ConvBN(channels, channels, 3, 1, domains)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = ConvBN(in_channels, channels, 1, stride, domains, adapter=False)
        self.act2 = nn.PReLU(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.conv2(self.act1(self.conv1(x))) + self.shortcut(x))


class ResNet(SpeechClassifier):
    """ResNet with basic blocks, temporal pooling and a segment-level embedding (module doc)."""

    HEAD = ("pool", "embedding", "classifier")

    def __init__(self, num_blocks: Sequence[int], num_classes: int, n_mels: int = 128, base_channels: int = 32,
                 embed_dim: int = 512, pooling: str = "stats", pooling_kwargs: dict | None = None,
                 num_frames: int = 300, adapters: bool = False, domains: Sequence[str] = DEFAULT_DOMAINS,
                 domain: str | None = None) -> None:
        super().__init__()
        if len(num_blocks) != 4 or min(num_blocks) < 1 or base_channels < 1 or n_mels < 1:
            raise ConfigError(f"ResNet needs 4 stages of >= 1 block, base_channels >= 1 and n_mels >= 1; "
                              f"got num_blocks={list(num_blocks)}, base_channels={base_channels}, n_mels={n_mels}")
        doms = tuple(domains) if adapters else None
        self.in_features = n_mels
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.domain = None
        self.stem = ConvBN(1, base_channels, 3, 1, doms)
        self.stem_act = nn.PReLU(base_channels)
        widths = [base_channels * m for m in (1, 2, 4, 8)]
        layers, channels = [], base_channels
        for i, (width, count) in enumerate(zip(widths, num_blocks)):
            stride = 1 if i == 0 else 2
            blocks = [BasicBlock(channels, width, stride, doms)]
            blocks += [BasicBlock(width, width, 1, doms) for _ in range(count - 1)]
            layers.append(nn.Sequential(*blocks))
            channels = width
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.frame_dim = channels * halve_size(n_mels, 3)
        kwargs = dict(pooling_kwargs or {})
        # 'none' (no temporal pooling): the input is cut/padded to num_frames frames.
        self.num_frames = num_frames if pooling_name(pooling) == "none" else None
        if self.num_frames is not None:
            kwargs.setdefault("num_frames", halve_size(num_frames, 3))
        self.pool = build_pooling(pooling, self.frame_dim, **kwargs)
        self.embedding = nn.Sequential(nn.Linear(self.pool.out_dim, embed_dim), nn.BatchNorm1d(embed_dim),
                                       nn.PReLU(embed_dim))
        self.classifier = nn.Linear(embed_dim, num_classes)
        if doms:
            set_domain(self, domain or doms[0])

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> frame-level features (B, frame_dim, ceil(T/8))."""
        self.check_input(x)
        h = x.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T)
        if self.num_frames is not None:
            h = fit_length(h, self.num_frames)
        h = self.stem_act(self.stem(h))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        return h.flatten(1, 2)

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.frame_features(x)
        if lengths is not None:
            lengths = halve_lengths(lengths, 3)
        return self.embedding(self.pool(h, lengths))


def ResNet18(num_classes: int, **kwargs) -> ResNet:  # noqa: N802 - factory named like the model
    """ResNet18: basic blocks [2, 2, 2, 2]."""
    return ResNet([2, 2, 2, 2], num_classes, **kwargs)


def ResNet34(num_classes: int, **kwargs) -> ResNet:  # noqa: N802
    """ResNet34: basic blocks [3, 4, 6, 3] (seeds 000/001)."""
    return ResNet([3, 4, 6, 3], num_classes, **kwargs)


__all__ = ["BasicBlock", "ResNet", "ResNet18", "ResNet34"]
