"""The model zoo: pure torch modules (no file reading, no corpus knowledge).

Every classifier takes time-major features ``(B, T, F)`` float32 and optional ``lengths`` (B,)
in frames, returns logits ``(B, C)``, and offers ``embed(x, lengths) -> (B, D)``.
Build by name with :func:`build_model`; package with :func:`save_model` / :func:`load_model`.

==================  ================================================================
``layers``          layer primitives: adapter conv (ConvBN), domains, BN freezing, heads
``transfer``        transfer-mode policy (torch-free; the ``transfer.mode`` names)
``resnet``          ResNet18/34 (seeds 000/001); ``resnet20``: ResNet20 (seed 003)
``vggish``          VGGish + patch MLP (seed 002); ``frame_head``: head on frozen frames
``pooling``         temporal pooling layers; ``registry``: models by name
``io``                model packages (safetensors + config.json); ``package``: their typed config
==================  ================================================================

Names below are loaded on first use, so ``import emovox.models.transfer`` (the recipe schema)
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TRANSFER_MODES": "transfer", "apply_transfer_mode": "transfer",
    "ResNet20": "resnet20", "set_domain": "layers",
    "SpeechClassifier": "base", "count_parameters": "base",
    "load_model": "io", "load_package": "io", "read_config": "io", "read_package": "io", "save_model": "io",
    "ModelSpec": "package", "PackageConfig": "package",
    "POOLINGS": "pooling", "build_pooling": "pooling",
    "MODELS": "registry", "build_model": "registry", "model_spec": "registry",
    "ResNet": "resnet", "ResNet18": "resnet", "ResNet34": "resnet",
    "PatchMLP": "vggish", "VGGish": "vggish", "VGGishClassifier": "vggish", "load_vggish_weights": "vggish",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'emovox.models' has no attribute {name!r}")
    return getattr(importlib.import_module(f"emovox.models.{_EXPORTS[name]}"), name)


__all__ = sorted(_EXPORTS)
