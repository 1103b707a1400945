"""Recipe configuration: YAML -> typed dataclasses, validated once with clear errors.

A recipe is one YAML file with the sections below (every key optional except ``data``); unknown
keys are rejected, wrong types and values outside a fixed set raise :class:`ConfigError` naming
the dotted key and what is allowed. ``--override key=value`` edits are applied to the raw
mapping *before* validation, so they go through the same checks.

Names that other modules own (corpus, label set, protocol, front-end, model, pooling) are
checked against those modules' registries by :func:`emovox.training.experiment.run_experiment`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from emovox.errors import ConfigError
from emovox.models.transfer import TransferMode  # the transfer-mode registry owns the names

Schedule = Literal["constant", "halving", "multistep"]


@dataclass
class DataConfig:
    """Which utterances, which labels, which folds."""

    corpus: str | None = None  #: corpus loader name (emovox.corpora), e.g. ``emodb``, ``iemocap``
    root: str | None = None  #: corpus folder (relative paths resolve against the recipe's folder)
    manifest: str | None = None  #: a manifest file instead of corpus+root
    labels: str | dict[str, Any] | None = None  #: label preset (``iemocap_exp1``) or {classes, map, unmapped}
    protocol: str = "loso"  #: fold protocol name (emovox.protocols)
    protocol_args: dict[str, Any] = field(default_factory=dict)  #: extra protocol arguments (valid_fraction, k...)
    corpus_args: dict[str, Any] = field(default_factory=dict)  #: extra corpus loader arguments
    folds: list[int] | None = None  #: run only these fold indices (default: all)
    limit_per_fold: int | None = None  #: keep at most N training utterances per fold (smoke tests)


@dataclass
class FeatureConfig:
    """The feature pipeline, applied once per utterance (cached); read into the typed
    :class:`emovox.pipeline.PipelineConfig` that every exported model package keeps."""

    #: emovox.frontend name (logmel | mulaw_spec | vggish | upstream); an upstream name (whisper,
    #: ge2e) is shorthand for ``upstream`` with ``options: {upstream: NAME, options: <options>}``
    frontend: str = "logmel"
    n_mels: int = 128  #: n_mels of a front-end that takes it (logmel), unless options set it
    options: dict[str, Any] = field(default_factory=dict)  #: extra front-end keyword arguments
    vad: bool = False  #: drop non-speech frames (Sohn VAD with 500 ms hang-over) before MVN
    normalize: Literal["none", "segment", "speaker"] = "segment"  #: MVN scope; speaker = labelled in reports
    cache_dir: str | None = None  #: feature cache folder (default: <out>/cache)


@dataclass
class AugmentConfig:
    """SpecAugment on the fly (training only)."""

    policy: str = "none"  #: none | conservative | aggressive (emovox.augment policies)
    copies: int = 2  #: K augmented copies per original in each batch (seed 000 uses 2)


@dataclass
class ModelConfig:
    name: str = "resnet34"  #: emovox.models registry name
    pooling: str = "stats"  #: stats | avg | none | ...
    options: dict[str, Any] = field(default_factory=dict)  #: build_model keyword args (base_channels...)


@dataclass
class TransferConfig:
    mode: TransferMode = "scratch"
    backbone: str | None = None  #: model folder (safetensors + config.json) to start from
    reinit: Literal["classifier", "head"] = "head"  #: layers replaced by new random ones on transfer
    distill: bool = False  #: first distil the GE2E teacher into the model (emovox.training.distill)
    distill_epochs: int = 5
    distill_lr: float | None = None  #: SGD lr of the distillation (default: optim.lr)
    distill_manifests: list[str] = field(default_factory=list)  #: extra unlabelled speech (never test audio)


@dataclass
class OptimConfig:
    """SGD with one of three schedules. Epochs in ``milestones``/``constant_epochs`` are 1-based
    as in the papers ("divided by 10 at the 11th and 21st epochs")."""

    lr: float = 1e-2  #: learning rate of the body (convolutions, adapters, BN)
    head_lr: float | None = None  #: learning rate of the classifier head (default: lr)
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: Schedule = "halving"
    constant_epochs: int = 8  #: halving: lr constant for this many epochs ...
    halve_every: int = 2  #: ... then halved every this many epochs
    milestones: list[int] = field(default_factory=lambda: [11, 21])  #: multistep: 1-based epochs
    gamma: float = 0.1  #: multistep factor


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 32
    chunk_frames: list[int] = field(default_factory=lambda: [150, 200, 250, 300])
    pad: Literal["repeat", "zero"] = "repeat"  #: how chunks longer than the utterance are filled
    eval_frames: int | None = None  #: None = whole utterance; N = first N frames (pooling none)
    eval_batch_size: int = 16
    early_stopping: int | None = None  #: patience in epochs on ``monitor``; None = keep best only
    monitor: Literal["valid_ua", "valid_wa", "valid_loss"] = "valid_ua"
    loss: Literal["ce", "aam"] = "ce"  #: cross-entropy, or additive angular margin softmax (speaker pretraining)
    aam_margin: float = 0.2
    aam_scale: float = 30.0
    accelerator: str = "cpu"
    devices: int = 1
    strategy: str = "auto"
    num_workers: int = 0
    threads: int | None = None  #: torch.set_num_threads (None = leave as is)
    limit_train_batches: int | None = None  #: smoke tests only
    progress: bool = True


class RecipeLike(typing.Protocol):
    """What :meth:`Recipe.resolve` and :meth:`Recipe.to_dict` use; the segment and baseline recipes borrow them."""

    __dataclass_fields__: typing.ClassVar[dict[str, dataclasses.Field[Any]]]
    base_dir: str


@dataclass
class Recipe:
    name: str = "experiment"
    seed: int = 0
    description: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    base_dir: str = field(default=".", metadata={"internal": True})  #: folder relative paths resolve against

    @typing.overload
    def resolve(self: RecipeLike, path: str) -> Path: ...
    @typing.overload
    def resolve(self: RecipeLike, path: None) -> None: ...
    @typing.overload
    def resolve(self: RecipeLike, path: str | None) -> Path | None: ...
    def resolve(self: RecipeLike, path: str | None) -> Path | None:
        """A recipe path resolved against the recipe file's folder (absolute paths unchanged)."""
        if path is None:
            return None
        p = Path(path).expanduser()
        return p if p.is_absolute() else (Path(self.base_dir) / p)

    def to_dict(self: RecipeLike) -> dict[str, Any]:
        """Plain mapping (YAML/JSON-safe), without internal fields."""
        out = dataclasses.asdict(self)
        out.pop("base_dir", None)
        return out


# --------------------------------------------------------------------------- validation


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp).replace("typing.", ""))


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Check/convert one value against a type annotation; raise ConfigError naming ``key``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of " + "; ".join(errors))
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {allowed}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(typing.cast(type, tp), value, key)  # tp is an annotation: a dataclass type, not an instance
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): v for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {_type_name(tp)}")  # pragma: no cover


def _build(cls: type, raw: Any, prefix: str) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix or 'recipe'}: expected a mapping of keys, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    unknown = sorted(set(map(str, raw)) - set(fields))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(
            f"unknown key {where}{unknown[0]}; allowed keys{' under ' + prefix if prefix else ''}: "
            + ", ".join(sorted(fields))
        )
    kwargs = {name: _convert(raw[name], hints[name], f"{prefix}.{name}" if prefix else name)
              for name in fields if name in raw}
    return cls(**kwargs)


def _check_ranges(r: Recipe) -> None:
    """Value checks that types alone cannot express."""

    def need(ok: bool, key: str, what: str) -> None:
        if not ok:
            raise ConfigError(f"{key}: {what}")

    need(r.data.manifest is not None or r.data.corpus is not None, "data.corpus",
         "set data.corpus (with data.root) or data.manifest")
    need(r.features.n_mels > 0, "features.n_mels", "must be > 0")
    need(r.augment.copies >= 0, "augment.copies", "must be >= 0")
    need(r.optim.lr > 0, "optim.lr", "must be > 0")
    need(r.optim.head_lr is None or r.optim.head_lr > 0, "optim.head_lr", "must be > 0")
    need(0 <= r.optim.momentum < 1, "optim.momentum", "must be in [0, 1)")
    need(r.optim.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
    need(not r.optim.nesterov or r.optim.momentum > 0, "optim.nesterov", "needs optim.momentum > 0")
    need(r.optim.constant_epochs >= 0 and r.optim.halve_every >= 1, "optim.halve_every",
         "needs constant_epochs >= 0 and halve_every >= 1")
    need(all(m >= 1 for m in r.optim.milestones), "optim.milestones", "1-based epochs, each >= 1")
    need(0 < r.optim.gamma <= 1, "optim.gamma", "must be in (0, 1]")
    need(r.train.epochs >= 1, "train.epochs", "must be >= 1")
    need(r.train.batch_size >= 1, "train.batch_size", "must be >= 1")
    need(r.train.eval_batch_size >= 1, "train.eval_batch_size", "must be >= 1")
    need(r.train.threads is None or r.train.threads >= 1, "train.threads", "null or >= 1")
    need(r.train.num_workers >= 0, "train.num_workers", "must be >= 0")
    need(r.train.limit_train_batches is None or r.train.limit_train_batches >= 1, "train.limit_train_batches",
         "null or >= 1")
    need(r.transfer.distill_epochs >= 1, "transfer.distill_epochs", "must be >= 1")
    need(r.transfer.distill_lr is None or r.transfer.distill_lr > 0, "transfer.distill_lr", "null or > 0")
    need(r.train.aam_scale > 0 and 0 <= r.train.aam_margin < 1.6, "train.aam_margin",
         "aam_margin must be in [0, 1.6) radians and aam_scale > 0")
    need(len(r.train.chunk_frames) > 0 and all(t >= 8 for t in r.train.chunk_frames), "train.chunk_frames",
         "a non-empty list of frame counts, each >= 8")
    need(r.train.eval_frames is None or r.train.eval_frames >= 8, "train.eval_frames", "null or >= 8")
    need(r.train.devices >= 1, "train.devices", "must be >= 1")
    need(r.train.early_stopping is None or r.train.early_stopping >= 1, "train.early_stopping",
         "null or a patience >= 1")
    need(r.transfer.mode == "scratch" or r.transfer.backbone is not None or r.transfer.distill,
         "transfer.backbone", f"transfer.mode {r.transfer.mode!r} needs a backbone folder (or transfer.distill: true)")
    need(r.model.pooling != "none" or r.train.eval_frames is not None, "train.eval_frames",
         "model.pooling 'none' needs a fixed train.eval_frames (truncate/pad length)")
    if r.model.pooling == "none":
        need(len(set(r.train.chunk_frames)) == 1 and r.train.chunk_frames[0] == r.train.eval_frames,
             "train.chunk_frames", "with model.pooling 'none' use one chunk length equal to train.eval_frames")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"optim.lr=0.1"`` -> (["optim", "lr"], 0.1). Values are parsed as YAML scalars/lists."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value, e.g. train.epochs=2")
    key, _, value = text.partition("=")
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override {text!r}: empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc})") from None
    return parts, parsed


#: Recipe keys that name files or folders. In the YAML a relative one resolves against the recipe's
#: folder; on the command line (``--override data.root=clips.csv``) against the current folder.
PATH_KEYS = ("root", "manifest", "cache_dir", "backbone", "distill_manifests")


def _from_here(value: Any) -> Any:
    if isinstance(value, str) and value:
        return os.path.abspath(os.path.expanduser(value))
    if isinstance(value, list):
        return [_from_here(v) for v in value]
    return value


def apply_overrides(raw: Mapping[str, Any], overrides: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """A copy of ``raw`` with each ``key=value`` override applied (keys are dotted paths); a relative
    path given for a :data:`PATH_KEYS` key is made absolute against the current folder."""
    out = copy.deepcopy(dict(raw))
    for text in overrides:
        parts, value = parse_override(text)
        if parts[-1] in PATH_KEYS:
            value = _from_here(value)
        node = out
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"override {text!r}: {p} is not a section")
            node = nxt
        node[parts[-1]] = value
    return out


def recipe_from_dict(raw: Mapping[str, Any] | None, base_dir: str | Path = ".",
                     overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Validate a raw mapping (plus overrides) into a :class:`Recipe`."""
    if raw is not None and not isinstance(raw, Mapping):
        raise ConfigError(f"recipe: expected a mapping of sections, got {type(raw).__name__}")
    recipe = _build(Recipe, apply_overrides(raw or {}, overrides), "")
    recipe.base_dir = str(base_dir)
    _check_ranges(recipe)
    return recipe


def read_recipe_yaml(path: str | Path, example: str = "recipes/emodb/loso.yaml") -> dict[str, Any]:
    """The mapping of sections in a recipe YAML file (``{}`` when it is empty); a ConfigError
    naming the file when it is missing, unreadable, not YAML or not a mapping."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: recipe file not found (give the path of a .yaml recipe, e.g. {example})")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the recipe ({exc.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc})") from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{p}: recipe: expected a mapping of sections, got {type(raw).__name__}")
    return raw or {}


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read and validate a recipe YAML file."""
    p = Path(path)
    raw = read_recipe_yaml(p)
    try:
        return recipe_from_dict(raw, base_dir=p.resolve().parent, overrides=overrides)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


__all__ = [
    "AugmentConfig", "DataConfig", "FeatureConfig", "ModelConfig", "OptimConfig", "Recipe", "TrainConfig",
    "TransferConfig", "apply_overrides", "load_recipe", "parse_override", "recipe_from_dict",
]
