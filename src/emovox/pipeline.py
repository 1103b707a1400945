"""The feature pipeline of a model, as a typed description: 16 kHz samples -> the model's input.

One :class:`PipelineConfig` names each step once; training (``emovox experiment``) builds it
from the recipe's ``features`` section, saves it in every model package it exports, and
:class:`emovox.Recognizer`, the timeline and the ONNX export run that saved description through
:class:`emovox.frontend.pipeline.FeaturePipeline`, unchanged.

=============  ================================================================================
step           values
=============  ================================================================================
``frontend``   ``logmel`` | ``mulaw_spec`` | ``vggish`` (the :mod:`emovox.frontend` modules);
               ``upstream``: the frames of a frozen :mod:`emovox.upstreams` encoder, options
               ``{"upstream": "whisper" | "ge2e", "options": {...that encoder's options}}``;
               ``waves``: samples in (an audio-in model whose front-end is inside its graph,
               :mod:`emovox.audio_model`)
``options``    the front-end's keyword options, complete (``logmel``: ``n_mels``, ...)
``vad``        true: frames the Sohn VAD marks as non-speech are dropped before normalisation
``normalize``  ``segment`` (per-clip MVN) | ``speaker`` (over a speaker's clips: training only)
               | ``none``
=============  ================================================================================

In a package's ``config.json`` (format ``emovox-model/1``) the pipeline is the three keys
``frontend`` (``{"name": ..., "kwargs": {...options}}``), ``vad`` and ``normalize``
(:meth:`PipelineConfig.to_dict`). Old spellings are still read; :data:`ALIASES` is the one
table of them, and reading rewrites them to the names above.
"""

from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Mapping, cast

from emovox.errors import ConfigError, EmovoxError, ModelError, short_repr
from emovox.upstreams import UPSTREAMS

if TYPE_CHECKING:
    from emovox.config import FeatureConfig

Normalize = Literal["segment", "speaker", "none"]
NORMALIZE_LEVELS: tuple[str, ...] = ("segment", "speaker", "none")
#: Front-end of audio-in models: the model takes the samples themselves.
WAVES = "waves"
#: Front-end whose frames come from a frozen upstream encoder (not a torch graph: no ONNX export).
UPSTREAM = "upstream"
#: Front-ends :class:`emovox.Recognizer` can drive (frame sequences; VGGish patches are training-only).
PREDICTABLE = ("logmel", "mulaw_spec", UPSTREAM, WAVES)

#: Old spellings that are still read, in one table: ``(where, old) -> what it reads as``.
ALIASES: dict[tuple[str, str], str] = {
    ("package", "frontend.name: whisper_encoder"):
        "upstream, options {upstream: whisper, options: {pad_to_30s: false, compute_type}} "
        "(the retired bundled Whisper model; its `threads` option is a runtime setting and is dropped)",
    ("recipe", "features.frontend: whisper | ge2e | <any upstream>"):
        "upstream, options {upstream: <name>, options: <features.options>}",
    ("recipe", "features.n_mels"): "options.n_mels of a front-end that takes n_mels (logmel)",
}

#: Bounds on front-end sizes (they size filterbank/window allocations: n_mels x n_fft < 10 M floats).
OPTION_MAX = {"n_mels": 1024, "n_fft": 16_384, "win_length": 16_384, "hop_length": 16_384,
              "sample_rate": 384_000, "threads": 256, "f_min": 192_000.0, "f_max": 192_000.0}
_NUMBER_MAX = 1e6


@dataclass(frozen=True)
class PipelineConfig:
    """What turns 16 kHz mono float32 samples into a model's input (see the module table)."""

    frontend: str = "logmel"
    options: dict[str, Any] = field(default_factory=dict)
    vad: bool = False
    normalize: Normalize = "segment"

    # ---------------------------------------------------------------------------- reading
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "config.json",
                  error: type[EmovoxError] = ModelError) -> "PipelineConfig":
        """The pipeline keys (``frontend``, ``vad``, ``normalize``) of a package config; old
        spellings (:data:`ALIASES`) are rewritten; ``error`` (ModelError) names ``where`` and the key."""
        front = d.get("frontend")
        if not isinstance(front, Mapping) or not isinstance(front.get("name"), str) \
                or not isinstance(front.get("kwargs", {}), Mapping):
            raise error(f"{where}: 'frontend' must be {{\"name\": str, \"kwargs\": {{...}}}}, got {short_repr(front)}")
        vad = d.get("vad", False)
        if not isinstance(vad, bool):
            raise error(f"{where}: 'vad' must be true or false, got {short_repr(vad)}")
        normalize = d.get("normalize", "segment")
        if normalize not in NORMALIZE_LEVELS:
            raise error(f"{where}: 'normalize' must be one of {', '.join(NORMALIZE_LEVELS)}, got {short_repr(normalize)}")
        name, options = canonical_frontend(front["name"], dict(front.get("kwargs", {})))
        config = cls(name, options, vad, cast(Normalize, normalize))
        config.check(where, error)
        return config

    @classmethod
    def from_recipe(cls, features: "FeatureConfig") -> "PipelineConfig":
        """The pipeline of a recipe's ``features`` section (ConfigError naming the recipe key)."""
        from emovox.frontend import FRONTENDS  # torch: training only

        name, options = canonical_frontend(features.frontend, dict(features.options))
        if name not in FRONTENDS:
            raise ConfigError(f"features.frontend: {features.frontend!r} is neither a front-end "
                              f"({', '.join(FRONTENDS)}) nor an upstream with frame features ({', '.join(UPSTREAMS)})")
        if "n_mels" in inspect.signature(FRONTENDS[name].__init__).parameters:
            options.setdefault("n_mels", features.n_mels)
        config = cls(name, options, features.vad, features.normalize)
        config.check("features.options", ConfigError, "")
        return config

    @classmethod
    def samples_in(cls) -> "PipelineConfig":
        """The pipeline of an audio-in model: samples go into its graph as they are."""
        return cls(WAVES, {}, False, "none")

    # ---------------------------------------------------------------------------- writing
    def to_dict(self) -> dict[str, Any]:
        """The package keys: ``{"frontend": {"name", "kwargs"}, "vad", "normalize"}``."""
        return {"frontend": {"name": self.frontend, "kwargs": dict(self.options)}, "vad": self.vad,
                "normalize": self.normalize}

    def with_options(self, **options: Any) -> "PipelineConfig":
        return replace(self, options={**self.options, **options})

    # ---------------------------------------------------------------------------- facts
    @property
    def upstream(self) -> str | None:
        """The upstream encoder of an ``upstream`` front-end (None otherwise)."""
        return str(self.options["upstream"]) if self.frontend == UPSTREAM else None

    @property
    def takes_waves(self) -> bool:
        """True for audio-in models (no feature pipeline outside the model's graph)."""
        return self.frontend == WAVES

    @property
    def torch_only(self) -> bool:
        """True when the front-end is not a torch graph (a frozen upstream), so no ONNX export."""
        return self.frontend == UPSTREAM

    def check_predictable(self, where: str) -> None:
        """ModelError unless :class:`emovox.Recognizer` can run this pipeline on single clips."""
        if self.frontend not in PREDICTABLE:
            raise ModelError(f"{where}: front-end {self.frontend!r} is not supported for prediction "
                             f"(supported: {', '.join(PREDICTABLE)})")
        if self.normalize == "speaker":
            raise ModelError(f"{where}: normalize 'speaker' cannot be used for prediction "
                             "(per-recording 'segment' or 'none' only)")

    # ---------------------------------------------------------------------------- checks
    def check(self, where: str, error: type[EmovoxError] = ModelError, key: str = "frontend.kwargs.") -> None:
        """Option types against the front-end's constructor (:func:`check_frontend_options`);
        ``key`` prefixes option names in messages."""
        if self.frontend == WAVES:
            if self.options or self.vad or self.normalize != "none":
                raise error(f"{where}: the 'waves' front-end (samples in) takes no options, vad or normalize")
            return
        if self.frontend == UPSTREAM:
            up, opts = self.options.get("upstream"), self.options.get("options", {})
            if not isinstance(up, str) or not isinstance(opts, Mapping) or set(self.options) - {"upstream", "options"}:
                raise error(f"{where}: the 'upstream' front-end takes {{\"upstream\": name, \"options\": {{...}}}}, "
                            f"got {short_repr(self.options)}")
            return
        check_frontend_options(self.frontend, self.options, where, error, key)


def canonical_frontend(name: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name, options)`` with an old spelling (:data:`ALIASES`) rewritten to the canonical one."""
    if name == "whisper_encoder":
        kept = {k: v for k, v in options.items() if k != "threads"}
        return UPSTREAM, {"upstream": "whisper", "options": {"pad_to_30s": False, **kept}}
    if name in UPSTREAMS:
        return UPSTREAM, {"upstream": name, "options": options}
    return name, options


def check_frontend_options(name: str, options: Mapping[str, Any], where: str,
                           error: type[EmovoxError] = ModelError, key: str = "frontend.kwargs.") -> None:
    """Front-end options against the annotations of its constructor: ints are positive ints,
    floats finite and >= 0 (bounded by :data:`OPTION_MAX`), bools bools, strings strings (None
    only where the signature allows it). Unknown front-ends and options are left to
    :func:`emovox.frontend.build_frontend`, which names the valid ones."""
    from emovox.frontend import FRONTENDS  # torch: only feature models get here

    cls = FRONTENDS.get(name)
    if cls is None:
        return
    params = inspect.signature(cls.__init__).parameters
    for option, value in options.items():
        if option in params:
            problem = _option_problem(option, value, str(params[option].annotation))
            if problem:
                raise error(f"{where}: {key}{option} {problem}")


def _option_problem(key: str, value: Any, note: str) -> str | None:
    kinds = set(re.findall(r"\b(int|float|bool|str|None)\b", note))
    if (isinstance(value, Mapping) and re.search(r"\b(Mapping|dict)\b", note)) or (value is None and "None" in kinds):
        return None
    if kinds & {"int", "float"} and not ({"str", "bool"} & kinds):
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or ("float" not in kinds and not isinstance(value, int)):
            return f"must be {'a number' if 'float' in kinds else 'an integer'}, got {short_repr(value)}"
        top = OPTION_MAX.get(key, _NUMBER_MAX)
        if not math.isfinite(value) or not 0 <= value <= top or ("float" not in kinds and value < 1):
            return f"= {short_repr(value)} is out of range (at most {top:g})"
    elif kinds == {"bool"} and not isinstance(value, bool):
        return f"must be true or false, got {short_repr(value)}"
    elif "str" in kinds and not isinstance(value, str):
        return f"must be a string, got {short_repr(value)}"
    return None


__all__ = ["ALIASES", "NORMALIZE_LEVELS", "PREDICTABLE", "PipelineConfig", "UPSTREAM", "WAVES",
           "canonical_frontend", "check_frontend_options"]
