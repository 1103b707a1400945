"""Models by name, so a recipe can say ``model: resnet34``, ``pooling: stats``, ``transfer: adapter``.

``build_model(name, num_classes, **kwargs)`` builds the model and records the call in
``model.spec`` (``{"name": ..., "kwargs": {...}}``, JSON-ready) so :mod:`emovox.models.io` can
rebuild it. Pooling and adapters are constructor kwargs (``pooling="stats"``,
``adapters=True``); the transfer mode is applied afterwards with
:func:`emovox.models.transfer.apply_transfer_mode` (re-exported here).

==========  ================================================================  ==================
name        model                                                             input (B, T, F)
==========  ================================================================  ==================
resnet34    ResNet34 + pooling + 512-d embedding (seeds 000/001)              log-mels, F=n_mels
resnet18    same with [2, 2, 2, 2] blocks (lighter CPU option)                log-mels, F=n_mels
resnet20    ResNet20 (+ residual adapters with ``adapters=True``; seed 003)   any F (μ-law spec)
vggish      VGGish + one hidden layer (N units) + logits (seed 002)           patches (P, 96, 64)
vggish_mlp  seed 002 baseline MLP: N layers × M units, BN, dropout 0.5        patches (P, 96, 64)
frame_head  stats pooling + stored standardisation + linear (frozen frames)   any F (``in_features``)
==========  ================================================================  ==================
"""

from __future__ import annotations

import inspect
import json
from typing import Any, Callable

from torch import nn

from emovox.errors import ConfigError
from emovox.models.base import SpeechClassifier
from emovox.models.transfer import TRANSFER_MODES, apply_transfer_mode, transfer_mode_name
from emovox.models.pooling import POOLINGS


def _vggish(num_classes: int, **kwargs: Any) -> SpeechClassifier:
    from emovox.models.vggish import VGGishClassifier

    return VGGishClassifier(num_classes, **kwargs)


def _vggish_mlp(num_classes: int, **kwargs: Any) -> SpeechClassifier:
    from emovox.models.vggish import PatchMLP

    return PatchMLP(num_classes, **kwargs)


def _resnet(factory: str) -> Callable[..., SpeechClassifier]:
    def build(num_classes: int, **kwargs: Any) -> SpeechClassifier:
        from emovox.models import resnet

        return getattr(resnet, factory)(num_classes, **kwargs)

    build.__name__ = factory
    return build


def _resnet20(num_classes: int, **kwargs: Any) -> SpeechClassifier:
    from emovox.models.resnet20 import ResNet20

    return ResNet20(num_classes, **kwargs)


def _frame_head(num_classes: int, **kwargs: Any) -> SpeechClassifier:
    from emovox.models.frame_head import FrameHead

    return FrameHead(num_classes, **kwargs)


MODELS: dict[str, Callable[..., SpeechClassifier]] = {
    "resnet34": _resnet("ResNet34"),
    "resnet18": _resnet("ResNet18"),
    "resnet20": _resnet20,
    "vggish": _vggish,
    "vggish_mlp": _vggish_mlp,
    "frame_head": _frame_head,
}
_ALIASES = {"resnet20_adapter": "resnet20", "mlp": "vggish_mlp", "baseline_mlp": "vggish_mlp"}


def model_name(name: str) -> str:
    """Canonical model name; ConfigError naming the choices for an unknown one."""
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in MODELS:
        raise ConfigError(f"unknown model {name!r}; choose one of {sorted(MODELS)}")
    return key


def _accepted(name: str) -> list[str]:
    from emovox.models.resnet20 import ResNet20
    from emovox.models.frame_head import FrameHead
    from emovox.models.resnet import ResNet
    from emovox.models.vggish import PatchMLP, VGGishClassifier

    cls: type[nn.Module] = {"resnet20": ResNet20, "vggish": VGGishClassifier, "vggish_mlp": PatchMLP,
           "frame_head": FrameHead}.get(name, ResNet)
    return [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "num_blocks", "num_classes")]


def build_model(name: str, num_classes: int, **kwargs: Any) -> SpeechClassifier:
    """Build model ``name`` with ``num_classes`` outputs; ConfigError for bad names/arguments."""
    key = model_name(name)
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    try:
        json.dumps(kwargs)
    except TypeError as exc:
        raise ConfigError(f"model kwargs for {key!r} must be plain JSON values (numbers, strings, lists, "
                          f"dicts): {exc}") from None
    try:
        model = MODELS[key](num_classes, **kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad arguments for model {key!r}: {exc}; accepted: {_accepted(key)}") from None
    model.spec = {"name": key, "kwargs": {"num_classes": num_classes, **kwargs}}  # type: ignore[assignment]  # plain attribute
    return model


def model_spec(model: nn.Module) -> dict[str, Any]:
    """``{"name", "kwargs"}`` to rebuild ``model`` (from :func:`build_model`), with its current
    adapter domain; ConfigError for a model not built by name."""
    spec = getattr(model, "spec", None)
    if not spec:
        raise ConfigError(f"{type(model).__name__} was not built with emovox.models.build_model, "
                          "so its architecture cannot be recorded; build it by name")
    kwargs: dict[str, Any] = dict(spec["kwargs"])
    kwargs["num_classes"] = int(getattr(model, "num_classes", kwargs["num_classes"]))
    if getattr(model, "domain", None) is not None:
        kwargs["domain"] = model.domain
    return {"name": spec["name"], "kwargs": kwargs}


__all__ = [
    "MODELS",
    "POOLINGS",
    "TRANSFER_MODES",
    "apply_transfer_mode",
    "build_model",
    "model_name",
    "model_spec",
    "transfer_mode_name",
]
