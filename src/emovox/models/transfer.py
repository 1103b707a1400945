"""Transfer modes: which parts of a pretrained model train, for every emovox model.

==================  =========================================================================
scratch             everything trains (seed 003 "Plain")
feature_extractor   only the output layer (``classifier``) trains (seed 003 "Feature Extractor")
linear_probe        frame-level trunk frozen; the segment-level layers in ``model.HEAD``
                    (pooling, embedding FC, classifier) train — seed 000/001 "re-train the new
                    FC layers" with frozen convolutional weights
fine_tune           everything trains (the recipe gives the trunk a smaller learning rate)
residual_adapter    k×k convs, 1×1 shortcuts and trunk PReLUs frozen; the active domain's
                    adapters and batch norms plus ``HEAD`` train (needs ``adapters=True``;
                    seed 003 "Res. Adapter")
adapter_only        as residual_adapter, and every 3×3 weight with an adapter is zeroed
                    (seed 003 "Adapter": domain-agnostic filters carry no information)
==================  =========================================================================

:data:`TransferMode` is the single source of the names (the recipe's ``transfer.mode`` type is
this Literal); :data:`PAPER_TERMS` is the one alias table: a paper's name for a mode where it
differs from ours. This module imports no torch; applying a mode does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal, get_args

from emovox.errors import ConfigError

if TYPE_CHECKING:
    from emovox.models.base import SpeechClassifier

TransferMode = Literal["scratch", "feature_extractor", "linear_probe", "fine_tune", "residual_adapter", "adapter_only"]
TRANSFER_MODES: tuple[str, ...] = get_args(TransferMode)

#: Paper terms (spelling-normalised: lower case, ``_`` between words) -> canonical mode.
PAPER_TERMS = {
    "plain": "scratch",  # seed 003 Table II
    "fine_tuning": "fine_tune",  # seed 003 Table II
    "res_adapter": "residual_adapter",  # seed 003 Table II ("Res. Adapter")
}
#: Modes that freeze the model and train only some of its parts.
PARTIAL = ("feature_extractor", "linear_probe", "residual_adapter", "adapter_only")
#: Modes that need a model built with ``adapters=True``.
ADAPTER_MODES = ("residual_adapter", "adapter_only")


def transfer_mode_name(mode: str) -> str:
    """Canonical transfer mode (a paper's term such as ``Plain`` or ``Res. Adapter`` is resolved);
    ConfigError naming the choices for an unknown one."""
    key = re.sub(r"[^a-z0-9]+", "_", str(mode).lower()).strip("_")
    key = PAPER_TERMS.get(key, key)
    if key not in TRANSFER_MODES:
        raise ConfigError(f"unknown transfer mode {mode!r}; choose one of {list(TRANSFER_MODES)} "
                          f"(papers' terms: {sorted(PAPER_TERMS)})")
    return key


def apply_transfer_mode(model: "SpeechClassifier", mode: str, domain: str | None = None) -> "SpeechClassifier":
    """Set which parameters train for ``mode`` (see the module doc); returns ``model``.

    ``domain`` (adapter models only) switches the active domain first; a domain not used before
    is initialised from the current one (e.g. speaker → emotion), as in seed 003 where emotion
    adapters start from the speaker-trained model.
    """
    from emovox.models import layers  # torch: only when a model is changed

    key = transfer_mode_name(mode)
    doms = layers.domains_of(model)
    if key in ADAPTER_MODES and not doms:
        raise ConfigError(f"transfer mode {key!r} needs a model built with adapters=True "
                          f"({type(model).__name__} has no adapters)")
    model.requires_grad_(True)
    if doms:
        current = getattr(model, "domain", None) or doms[0]
        if domain is not None and domain != current:
            if domain in doms:
                layers.copy_domain(model, current, domain)
            current = domain
        layers.set_domain(model, current)  # validates, freezes other domains
    elif domain is not None:
        raise ConfigError(f"domain {domain!r} given but {type(model).__name__} was built without adapters")

    if key in PARTIAL:
        model.requires_grad_(False)
        train = [model.classifier] if key == "feature_extractor" else layers.head_modules(model)
        for m in train:
            m.requires_grad_(True)
        if key in ADAPTER_MODES:
            layers.unfreeze_active_adapters(model, zero_convs=key == "adapter_only")
    layers.sync_batchnorm_freezing(model)
    model.transfer_mode = key  # type: ignore[assignment]  # a plain attribute on the model
    return model


__all__ = ["ADAPTER_MODES", "PAPER_TERMS", "PARTIAL", "TRANSFER_MODES", "TransferMode", "apply_transfer_mode",
           "transfer_mode_name"]
