"""The typed ``config.json`` of a model package (format ``emovox-model/1``).

::

    {
      "format": "emovox-model/1",
      "model": {"name": "resnet34", "kwargs": {"num_classes": 4, "n_mels": 128, ...}},
      "frontend": {"name": "logmel", "kwargs": {...}},   # \\
      "vad": false,                                      #  > the feature pipeline (emovox.pipeline)
      "normalize": "segment",                            # /
      "labels": ["angry", "happy", "neutral", "sad"],
      "name": "…", "uncertain_below": 0.5,              # optional
      "weights_sha256": "…",                             # written by save_model, checked by load_model
      ...                                                # free extra keys (training info, card, ...)
    }

:meth:`PackageConfig.from_dict` checks everything once (types, bounded plain values, the
pipeline's options against its front-end) and raises :class:`ModelError` naming the file and
the key; :meth:`PackageConfig.to_dict` writes the canonical form (old spellings rewritten, see
:data:`emovox.pipeline.ALIASES`). Audio-in packages (:mod:`emovox.audio_model`) are described in
the same terms by :meth:`PackageConfig.of_audio_model` (front-end ``waves``). Torch-free.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from emovox.errors import ModelError, short_repr
from emovox.pipeline import PipelineConfig

if TYPE_CHECKING:
    from emovox.audio_model import AudioModelConfig

FORMAT = "emovox-model/1"
#: Bounds on numbers in model/front-end kwargs: sizes of real networks are far below.
MAX_KWARG_INT, MAX_KWARG_FLOAT = 1 << 16, 1e6
MAX_CLASSES = 10_000
_KNOWN = ("format", "model", "frontend", "vad", "normalize", "labels", "name", "uncertain_below", "weights_sha256")


@dataclass(frozen=True)
class ModelSpec:
    """What :func:`emovox.models.build_model` takes: a registry name and keyword arguments."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PackageConfig:
    """Everything in a package's ``config.json`` except the weights."""

    model: ModelSpec
    labels: list[str]
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    name: str | None = None
    uncertain_below: float | None = None  #: calibrated top probability below this: ``uncertain``
    weights_sha256: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  #: free keys (training, card, ...)
    format: str = FORMAT

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "config.json") -> "PackageConfig":
        """A validated config; ModelError naming ``where`` and the key for anything off."""
        if d.get("format") != FORMAT:
            raise ModelError(f"{where}: model format {short_repr(d.get('format'))} is not supported (this emovox reads "
                             f"{FORMAT!r}; re-export the model with this version)")
        spec = d.get("model")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str) \
                or not isinstance(spec.get("kwargs"), Mapping):
            raise ModelError(f"{where}: 'model' must be {{\"name\": str, \"kwargs\": {{...}}}}, got {short_repr(spec)}")
        front = d.get("frontend")
        if isinstance(front, Mapping) and isinstance(front.get("kwargs", {}), Mapping):
            check_plain(front.get("kwargs", {}), f"{where}: frontend.kwargs", nested=True)
        pipeline = PipelineConfig.from_dict(d, where)
        labels = _labels(d.get("labels"), where)
        check_plain(spec["kwargs"], f"{where}: model.kwargs")
        classes = spec["kwargs"].get("num_classes")
        if classes is not None and classes != len(labels):
            raise ModelError(f"{where}: {len(labels)} labels for a model with {short_repr(classes)} outputs "
                             "(model.kwargs.num_classes)")
        sha = d.get("weights_sha256")
        if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
            raise ModelError(f"{where}: 'weights_sha256' must be 64 hex digits, got {short_repr(sha)}")
        name = d.get("name")
        if name is not None and not isinstance(name, str):
            raise ModelError(f"{where}: 'name' must be a string, got {short_repr(name)}")
        below = d.get("uncertain_below")
        if below is not None and (isinstance(below, bool) or not isinstance(below, (int, float))
                                  or not 0.0 <= below <= 1.0):
            raise ModelError(f"{where}: 'uncertain_below' must be a number in [0, 1], got {short_repr(below)}")
        return cls(ModelSpec(spec["name"], dict(spec["kwargs"])), labels, pipeline, name,
                   None if below is None else float(below), sha, {k: v for k, v in d.items() if k not in _KNOWN})

    @classmethod
    def of_audio_model(cls, cfg: "AudioModelConfig") -> "PackageConfig":
        """An audio-in package described in the same terms: samples in, the rest inside its graph."""
        return cls(ModelSpec(f"whisper-{cfg.whisper_model}-head", {}), list(cfg.labels), PipelineConfig.samples_in(),
                   cfg.name, cfg.uncertain_below, None, {"audio_model": cfg.to_dict()}, cfg.format)

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` mapping (canonical spellings; optional keys only when set)."""
        out: dict[str, Any] = {**self.extra, "format": self.format,
                               "model": {"name": self.model.name, "kwargs": dict(self.model.kwargs)},
                               **self.pipeline.to_dict(), "labels": list(self.labels)}
        for key in ("name", "uncertain_below", "weights_sha256"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


def _labels(labels: Any, where: str) -> list[str]:
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelError(f"{where}: 'labels' must be a non-empty list of class names, got {short_repr(labels)}")
    if len(labels) > MAX_CLASSES or len(set(labels)) != len(labels):
        raise ModelError(f"{where}: 'labels' must be at most {MAX_CLASSES} distinct names ({len(labels)} given)")
    return list(labels)


def check_plain(kwargs: Mapping[str, Any], where: str, nested: bool = False) -> None:
    """ModelError for a kwarg that is not a plain, bounded JSON value (checked before building)."""
    for key, value in kwargs.items():
        if nested and isinstance(value, Mapping):  # the upstream front-end's options
            check_plain(value, f"{where}.{key}")
            continue
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) > 4096:
            raise ModelError(f"{where}.{key}: a list of {len(value)} values is too long (at most 4096)")
        for v in items:
            if v is None or isinstance(v, (bool, str)):
                if isinstance(v, str) and len(v) > 200:
                    raise ModelError(f"{where}.{key}: string of {len(v)} characters is too long")
                continue
            if isinstance(v, int):
                bound = MAX_CLASSES if key == "num_classes" else MAX_KWARG_INT
                if not 0 <= v <= bound:
                    raise ModelError(f"{where}.{key} = {v} is out of range (0..{bound}); the config is corrupt")
            elif isinstance(v, float):
                if not math.isfinite(v) or abs(v) > MAX_KWARG_FLOAT:
                    raise ModelError(f"{where}.{key} = {v!r} is not a usable number; the config is corrupt")
            else:
                raise ModelError(f"{where}.{key} must be a number, string, boolean or list of them, "
                                 f"got {type(v).__name__}")


__all__ = ["FORMAT", "ModelSpec", "PackageConfig", "check_plain"]
