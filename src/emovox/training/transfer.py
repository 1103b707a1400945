"""Build the emotion model of a recipe: from scratch, or from a pretrained backbone package.

Transfer modes (recipe ``transfer.mode``; trainable parts set by
:func:`emovox.models.apply_transfer_mode`):

==================  ==========================================================================
scratch             new model, everything trains (seed 003 "plain")
feature_extractor   backbone frozen, only the output layer trains (seed 003)
linear_probe        frame-level convolutions frozen; new pooling/embedding/classifier train
                    (seed 000 §3.2 / seed 001 "linear probing", lr 1e-1)
fine_tune           everything trains; recipe gives the body a smaller lr (seed 001: 1e-3)
residual_adapter    3×3 convs frozen; emotion-domain adapters + BN + head train (seed 003)
adapter_only        as residual_adapter with every adapted 3×3 weight zeroed (seed 003)
==================  ==========================================================================

The backbone is a model package (``model.safetensors`` + ``config.json``, e.g. written by
``emovox pretrain-speaker`` or by :mod:`emovox.training.distill`). Its architecture wins over the
recipe's ``model`` section (a different model name is an error). Re-initialised on transfer
(``transfer.reinit``): ``classifier`` — only the output layer (seed 003: "the FC layer of the
network is replaced"), or ``head`` — every segment-level layer after pooling (seeds 000/001:
"replace the FC layers of the pre-trained model with new randomly initialized FC layers").
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from torch import nn

from emovox.config import Recipe
from emovox.errors import ConfigError, ModelError
from emovox.models.base import SpeechClassifier
from emovox.models.io import load_model
from emovox.models.layers import domains_of
from emovox.models.pooling import pooling_name
from emovox.models.registry import build_model, model_name
from emovox.models.transfer import apply_transfer_mode

log = logging.getLogger(__name__)

#: Adapter domain that emotion training uses (initialised from the backbone's speaker domain).
EMOTION_DOMAIN = "emotion"


def model_kwargs(recipe: Recipe, n_features: int) -> dict[str, Any]:
    """``build_model`` keyword arguments of the recipe for ``n_features``-dim input frames."""
    kwargs = dict(recipe.model.options)
    name = recipe.model.name.lower()
    if name in ("resnet34", "resnet18"):
        kwargs.setdefault("n_mels", n_features)
        kwargs.setdefault("pooling", recipe.model.pooling)
        if recipe.model.pooling == "none" and recipe.train.eval_frames is not None:
            kwargs.setdefault("num_frames", recipe.train.eval_frames)
    elif name in ("resnet20", "resnet20_adapter"):
        kwargs.setdefault("in_features", n_features)
        kwargs.setdefault("pooling", recipe.model.pooling)
    elif not name.startswith("vggish"):
        # any other frame-level model (e.g. a pooling + MLP head over upstream frames) is
        # expected to take the frame size as ``in_features`` and a pooling name.
        kwargs.setdefault("in_features", n_features)
        kwargs.setdefault("pooling", recipe.model.pooling)
    return kwargs


def reinit_modules(modules: Sequence[nn.Module]) -> None:
    """Fresh random initialisation of every layer (with ``reset_parameters``) inside ``modules``."""
    for top in modules:
        for m in top.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()


def load_backbone(folder: str | Path, recipe: Recipe, num_classes: int, n_features: int) -> SpeechClassifier:
    """The backbone package's model with a new ``num_classes`` output (and head, per ``reinit``)."""
    model, config = load_model(folder)
    assert isinstance(model, SpeechClassifier)  # packages hold models built by name (emovox.models.registry)
    name = config["model"]["name"]

    if model_name(recipe.model.name) != name:
        raise ConfigError(f"transfer.backbone: {folder} holds a {name!r} model but model.name is "
                          f"{recipe.model.name!r}; set model.name: {name}")

    has = config["model"]["kwargs"].get("pooling")
    if has is not None and pooling_name(has) != pooling_name(recipe.model.pooling):
        raise ConfigError(f"model.pooling: the backbone {folder} uses pooling {has!r} but the recipe asks for "
                          f"{recipe.model.pooling!r}; pretrain a backbone with that pooling "
                          f"(emovox pretrain-speaker --override model.pooling={recipe.model.pooling})")
    expect = getattr(model, "in_features", None)
    if expect is not None and expect != n_features:
        raise ModelError(f"{folder}: the backbone expects {expect}-dim input frames but the recipe's front-end "
                         f"gives {n_features} (set features.n_mels / features.options to the backbone's front-end: "
                         f"{config.get('frontend')})")
    model.replace_classifier(num_classes)
    if recipe.transfer.reinit == "head":
        reinit_modules([getattr(model, n) for n in getattr(model, "HEAD", ()) if n != "classifier"])
    log.info("loaded backbone %s (%s), new %d-class output, re-initialised %s", folder, name, num_classes,
             recipe.transfer.reinit)
    return model.train()


def build_emotion_model(recipe: Recipe, num_classes: int, n_features: int,
                        backbone: str | Path | None = None) -> SpeechClassifier:
    """The model to train for ``recipe``: new (scratch) or from ``backbone``, with its transfer mode."""
    mode = recipe.transfer.mode
    folder = backbone if backbone is not None else recipe.resolve(recipe.transfer.backbone)
    if folder is None:
        if mode != "scratch":
            raise ConfigError(f"transfer.mode {mode!r} needs transfer.backbone (a model folder)")
        model = build_model(recipe.model.name, num_classes, **model_kwargs(recipe, n_features))
    else:
        model = load_backbone(folder, recipe, num_classes, n_features)
    domain = EMOTION_DOMAIN if EMOTION_DOMAIN in domains_of(model) else None
    return apply_transfer_mode(model, mode, domain=domain)


__all__ = ["EMOTION_DOMAIN", "build_emotion_model", "load_backbone", "model_kwargs", "reinit_modules"]
