"""Recipe checks against other modules' registries, done before any feature or training work.

:mod:`emovox.config` validates types, ranges and fixed choices. Names owned by other modules
(model, pooling, model options, front-end and its options, SpecAugment policy, label map,
protocol and its options, backbone package, Lightning accelerator/strategy) are checked here by
asking those modules, and every failure is re-raised as :class:`ConfigError` prefixed with the
recipe key, so ``emovox experiment`` exits 2 with a message that says which key to fix.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Iterator

from emovox.config import Recipe
from emovox.errors import ConfigError, EmovoxError
from emovox.frontend import build_frontend
from emovox.pipeline import UPSTREAM, PipelineConfig

#: Lightning accelerators emovox accepts in ``train.accelerator``.
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")


@contextlib.contextmanager
def key(name: str) -> Iterator[None]:
    """Re-raise any emovox error (or TypeError/ValueError from a registry) as ConfigError naming ``name``."""
    try:
        yield
    except ConfigError as exc:
        msg = str(exc)
        raise ConfigError(msg if msg.startswith(f"{name}:") else f"{name}: {msg}") from None
    except (EmovoxError, TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: {exc}") from None


def feature_dim(recipe: Recipe) -> int | None:
    """Feature size F the front-end produces (None for upstream frame features: not built here)."""
    pipeline = PipelineConfig.from_recipe(recipe.features)  # its errors name the recipe key
    if pipeline.frontend == UPSTREAM:
        return None
    with key("features.options"):
        frontend: Any = build_frontend(pipeline.frontend, **pipeline.options)  # duck-typed: has n_features
        return int(frontend.n_features)


def check_recipe(recipe: Recipe) -> None:
    """ConfigError (naming the recipe key) for any name or option another module would refuse."""
    r = recipe
    n_features = feature_dim(r)
    cache = r.resolve(r.features.cache_dir)
    if cache is not None and cache.exists() and not cache.is_dir():
        raise ConfigError(f"features.cache_dir: {cache} is a file; give a folder for the feature cache")
    _check_model(r, n_features)
    if r.augment.policy != "none":
        from emovox.augment import SpecAugment

        with key("augment.policy"):
            SpecAugment.from_policy(r.augment.policy, seed=0)
    with key("data.labels"):
        from emovox.corpora import label_map_from_config

        label_map_from_config(r.data.labels)
    _check_protocol(r)
    if r.transfer.backbone is not None:
        from emovox.models.io import read_config

        with key("transfer.backbone"):
            read_config(r.resolve(r.transfer.backbone))
    _check_trainer(r)


def _check_model(r: Recipe, n_features: int | None) -> None:
    from emovox.models.pooling import pooling_name
    from emovox.models.registry import build_model, model_name

    with key("model.name"):
        model_name(r.model.name)
    with key("model.pooling"):
        pooling_name(r.model.pooling)
    if n_features is None:
        return
    from emovox.training.transfer import model_kwargs

    with key("model.options"):
        build_model(r.model.name, 2, **model_kwargs(r, n_features))


def _check_protocol(r: Recipe) -> None:
    from emovox.protocols import PROTOCOLS

    if r.data.protocol not in PROTOCOLS:
        raise ConfigError(f"data.protocol: unknown protocol {r.data.protocol!r}; choose one of {', '.join(sorted(PROTOCOLS))}")
    params = inspect.signature(PROTOCOLS[r.data.protocol]).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    allowed = sorted(n for n in params if n not in ("utterances", "utts", "seed"))
    unknown = sorted(set(r.data.protocol_args) - set(allowed))
    if unknown and not takes_any:
        raise ConfigError(f"data.protocol_args: protocol {r.data.protocol!r} has no option {unknown[0]!r}; "
                          f"its options: {', '.join(allowed) or 'none'}")


def _check_trainer(r: Recipe) -> None:
    t = r.train
    if t.accelerator not in ACCELERATORS:
        raise ConfigError(f"train.accelerator: {t.accelerator!r} is not allowed; choose one of {', '.join(ACCELERATORS)}")
    from lightning.pytorch.strategies import StrategyRegistry

    if t.strategy != "auto" and t.strategy not in StrategyRegistry:
        raise ConfigError(f"train.strategy: unknown strategy {t.strategy!r}; use auto, ddp, ddp_spawn, ... "
                          f"(one of {', '.join(sorted(StrategyRegistry)[:12])}, ...)")


__all__ = ["ACCELERATORS", "check_recipe", "feature_dim", "key"]
