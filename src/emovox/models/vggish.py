"""VGGish (seed 002 Table 2), its segment classifier, the paper's baseline MLP, and a weight loader.

Input everywhere: VGGish patches ``(P, 96, 64)`` — 96 log-mel frames (10 ms) × 64 mel bands, one
per 0.96–1 s segment (the front-end's ``vggish_input``). ``lengths`` is accepted and ignored
(patches have a fixed size).

:class:`VGGish` is Table 2 layer by layer: conv 64 / pool / conv 128 / pool / conv 256 ×2 / pool /
conv 512 ×2 / pool (3×3 convs stride 1 with bias, 2×2 max-pools stride 2) / flatten 12288 /
FC 4096 / FC 4096 / FC 128, ReLU after every conv and FC (72.1 M parameters; "~72 million"
in the paper). Module names and the flatten order follow harritaylor/torchvggish so its
public weights load unchanged (see :data:`VGGISH_LAYOUT`).

:class:`VGGishClassifier` — seed 002's "single layered neural network": VGGish 128-d embedding →
FC with N units (ReLU; N ∈ {100, 200, 400}, paper best 200) → logits.
:class:`PatchMLP` — the baseline: flattened 96×64 patch → N × [FC M units → BN → ReLU →
dropout 0.5] → logits (paper best N = 2, M = 200).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from emovox.errors import ModelError
from emovox.models.base import SpeechClassifier

log = logging.getLogger(__name__)

PATCH_FRAMES = 96
PATCH_BANDS = 64
EMBED_DIM = 128

#: The state-dict layout :func:`load_vggish_weights` expects (harritaylor/torchvggish release
#: ``vggish-10086976.pth``): key -> shape. ``features.N`` are the conv layers of the
#: ``nn.Sequential`` [conv, ReLU, (pool)]..., ``embeddings.N`` the three Linear layers.
#: Extra keys (e.g. torchvggish's ``pproc._pca_matrix`` / ``pproc._pca_means`` post-processor)
#: are ignored; a common prefix such as ``module.`` or ``vggish.`` is stripped.
VGGISH_LAYOUT: dict[str, tuple[int, ...]] = {
    "features.0.weight": (64, 1, 3, 3), "features.0.bias": (64,),
    "features.3.weight": (128, 64, 3, 3), "features.3.bias": (128,),
    "features.6.weight": (256, 128, 3, 3), "features.6.bias": (256,),
    "features.8.weight": (256, 256, 3, 3), "features.8.bias": (256,),
    "features.11.weight": (512, 256, 3, 3), "features.11.bias": (512,),
    "features.13.weight": (512, 512, 3, 3), "features.13.bias": (512,),
    "embeddings.0.weight": (4096, 12288), "embeddings.0.bias": (4096,),
    "embeddings.2.weight": (4096, 4096), "embeddings.2.bias": (4096,),
    "embeddings.4.weight": (128, 4096), "embeddings.4.bias": (128,),
}


def _check_patches(model: nn.Module, x: torch.Tensor) -> None:
    if x.dim() != 3 or x.shape[1] != PATCH_FRAMES or x.shape[2] != PATCH_BANDS:
        raise ModelError(f"{type(model).__name__} expects VGGish patches (P, {PATCH_FRAMES}, {PATCH_BANDS}), "
                         f"got shape {tuple(x.shape)} (use the VGGish front-end)")


class VGGish(nn.Module):
    """VGGish backbone: patches (P, 96, 64) -> 128-d embeddings (P, 128)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for v in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(v), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                channels = int(v)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 6 * 4, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True),
            nn.Linear(4096, EMBED_DIM), nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_patches(self, x)
        h = self.features(x.unsqueeze(1))  # (P, 512, 6, 4)
        h = h.permute(0, 2, 3, 1).flatten(1)  # TF's NHWC flatten order, as torchvggish
        return self.embeddings(h)


class VGGishClassifier(SpeechClassifier):
    """VGGish → FC(``hidden`` units, ReLU) → logits (seed 002). ``embed`` is the hidden layer."""

    HEAD = ("hidden", "classifier")

    def __init__(self, num_classes: int, hidden: int = 200) -> None:
        super().__init__()
        self.in_features = PATCH_BANDS
        self.num_classes = num_classes
        self.embed_dim = hidden
        self.vggish = VGGish()
        self.hidden = nn.Sequential(nn.Linear(EMBED_DIM, hidden), nn.ReLU())
        self.classifier = nn.Linear(hidden, num_classes)

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return self.hidden(self.vggish(x))


class PatchMLP(SpeechClassifier):
    """Seed 002 baseline: flattened patch → ``num_layers`` × [FC ``hidden`` → BN → ReLU → dropout] → logits."""

    def __init__(self, num_classes: int, num_layers: int = 2, hidden: int = 200, dropout: float = 0.5) -> None:
        super().__init__()
        self.in_features = PATCH_BANDS
        self.num_classes = num_classes
        self.embed_dim = hidden
        blocks: list[nn.Module] = []
        width = PATCH_FRAMES * PATCH_BANDS
        for _ in range(num_layers):
            blocks += [nn.Linear(width, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.layers = nn.Sequential(*blocks)
        self.classifier = nn.Linear(width, num_classes)

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        _check_patches(self, x)
        return self.layers(x.flatten(1))


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ModelError(f"{path}: VGGish weights file not found (expected a .pth/.pt or .safetensors state dict)")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path))  # or torch.load's object, checked below
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a bad file
        raise ModelError(f"{path}: cannot read VGGish weights ({type(exc).__name__}: {exc}); expected a plain "
                         "state dict saved with torch.save or safetensors") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{path}: not a state dict of tensors (expected keys like 'features.0.weight')")
    return state


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if "features.0.weight" in state:
        return state
    for key in state:
        if key.endswith("features.0.weight"):
            prefix = key[: -len("features.0.weight")]
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    return state


def load_vggish_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load public VGGish weights (torchvggish layout, :data:`VGGISH_LAYOUT`) into ``model``.

    ``model`` is a :class:`VGGish` or a :class:`VGGishClassifier` (its backbone is filled; the
    classifier head is untouched). ``.pth``/``.pt`` files are read with
    ``torch.load(weights_only=True)`` (no pickle code runs), ``.safetensors`` with safetensors.
    ModelError names the file and the missing / mis-shaped keys.
    """
    path = Path(path)
    target = model.vggish if isinstance(model, VGGishClassifier) else model
    if not isinstance(target, VGGish):
        raise ModelError(f"load_vggish_weights needs a VGGish or VGGishClassifier, got {type(model).__name__}")
    state = _strip_prefix(_read_state_dict(path))
    missing = [k for k in VGGISH_LAYOUT if k not in state]
    if missing:
        raise ModelError(f"{path}: not VGGish weights in the torchvggish layout; missing {missing[:4]}"
                         f"{' ...' if len(missing) > 4 else ''} (see emovox.models.vggish.VGGISH_LAYOUT)")
    wrong = [f"{k} {tuple(state[k].shape)} != {shape}" for k, shape in VGGISH_LAYOUT.items()
             if tuple(state[k].shape) != shape]
    if wrong:
        raise ModelError(f"{path}: VGGish weights with wrong shapes: {'; '.join(wrong[:3])}")
    extra = sorted(set(state) - set(VGGISH_LAYOUT))
    if extra:
        log.info("%s: ignoring %d extra keys (%s ...)", path, len(extra), extra[0])
    target.load_state_dict({k: state[k].float() for k in VGGISH_LAYOUT})
    return model


__all__ = ["PatchMLP", "VGGISH_LAYOUT", "VGGish", "VGGishClassifier", "load_vggish_weights"]
