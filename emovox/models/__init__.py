"""The model zoo: pure torch modules (no file reading, no corpus knowledge).

Every classifier takes time-major features ``(B, T, F)`` float32 and optional ``lengths`` (B,)
in frames, returns logits ``(B, C)``, and offers ``embed(x, lengths) -> (B, D)``.
Build by name with :func:`build_model`; package with :func:`save_model` / :func:`load_model`.
"""

from __future__ import annotations

from emovox.models.adapters import TRANSFER_MODES, ResNet20, apply_transfer_mode, set_domain
from emovox.models.base import SpeechClassifier, count_parameters
from emovox.models.io import load_model, read_config, save_model
from emovox.models.pooling import POOLINGS, build_pooling
from emovox.models.registry import MODELS, build_model, model_spec
from emovox.models.resnet import ResNet, ResNet18, ResNet34
from emovox.models.vggish import PatchMLP, VGGish, VGGishClassifier, load_vggish_weights

__all__ = [
    "MODELS",
    "POOLINGS",
    "TRANSFER_MODES",
    "PatchMLP",
    "ResNet",
    "ResNet18",
    "ResNet20",
    "ResNet34",
    "SpeechClassifier",
    "VGGish",
    "VGGishClassifier",
    "apply_transfer_mode",
    "build_model",
    "build_pooling",
    "count_parameters",
    "load_model",
    "load_vggish_weights",
    "model_spec",
    "read_config",
    "save_model",
    "set_domain",
]
