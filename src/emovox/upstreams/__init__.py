"""Frozen pretrained feature extractors ("upstreams") chosen by name.

=========  ===============================================  ================================
name       what                                             pooled vector
=========  ===============================================  ================================
egemaps    openSMILE eGeMAPSv02 functionals                 88
compare    openSMILE ComParE_2016 functionals               6373
ge2e       GE2E speaker encoder (resemblyzer weights)       256 (utterance embedding)
whisper    Whisper tiny.en encoder frames, 50/s x 384       768 (mean ‖ std over the clip)
=========  ===============================================  ================================

``build_upstream("whisper", pad_to_30s=True)`` passes options to the extractor's constructor.
Heavy libraries are imported only when an upstream is built.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

from emovox.errors import ConfigError
from emovox.upstreams.base import Upstream


def _egemaps(**kw: Any) -> Upstream:
    from emovox.upstreams.opensmile import OpenSmileFunctionals

    return OpenSmileFunctionals("egemaps", **kw)


def _compare(**kw: Any) -> Upstream:
    from emovox.upstreams.opensmile import OpenSmileFunctionals

    return OpenSmileFunctionals("compare", **kw)


def _ge2e(**kw: Any) -> Upstream:
    from emovox.upstreams.ge2e import GE2EEncoder

    return GE2EEncoder(**kw)


def _whisper(**kw: Any) -> Upstream:
    from emovox.upstreams.whisper import WhisperEncoder

    return WhisperEncoder(**kw)


UPSTREAMS: dict[str, Callable[..., Upstream]] = {
    "egemaps": _egemaps,
    "compare": _compare,
    "ge2e": _ge2e,
    "whisper": _whisper,
}

#: The class behind each name, for option validation without loading models.
_CLASSES = {
    "egemaps": ("emovox.upstreams.opensmile", "OpenSmileFunctionals"),
    "compare": ("emovox.upstreams.opensmile", "OpenSmileFunctionals"),
    "ge2e": ("emovox.upstreams.ge2e", "GE2EEncoder"),
    "whisper": ("emovox.upstreams.whisper", "WhisperEncoder"),
}


def upstream_options(name: str) -> set[str]:
    """The options ``build_upstream(name, ...)`` accepts (imports the upstream's module, not its model)."""
    if name not in UPSTREAMS:
        raise ConfigError(f"unknown upstream {name!r}; choose one of {sorted(UPSTREAMS)}")
    module, cls = _CLASSES[name]
    return set(inspect.signature(getattr(importlib.import_module(module), cls)).parameters) - {"feature_set"}


def build_upstream(name: str, **options: Any) -> Upstream:
    """The upstream called ``name`` with constructor ``options``; ConfigError for unknown ones."""
    accepted = upstream_options(name) if options else set()
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigError(f"upstream {name!r} has no option(s) {unknown}; it accepts {sorted(accepted) or 'none'}")
    if name not in UPSTREAMS:
        raise ConfigError(f"unknown upstream {name!r}; choose one of {sorted(UPSTREAMS)}")
    return UPSTREAMS[name](**options)


__all__ = ["UPSTREAMS", "Upstream", "build_upstream", "upstream_options"]
