"""The ``robust`` section of a recipe: which training augmentations run, how often, how strong.

In a recipe::

    robust:
      speed: {p: 0.3, factors: [0.9, 1.1]}
      reverb: {p: 0.3, rt60: [0.2, 0.8], method: auto}
      noise: {p: 0.5, snr_db: [0, 20], colors: [white, pink, brown], babble: 0.3}
      telephone: {p: 0.2, mulaw: 0.5}
      codec: {p: 0.3, codecs: [opus, mp3, vorbis], kbps: [8, 32]}

A bare number is the probability (``speed: 0.3``), ``false`` or 0 switches an effect off;
unknown keys raise :class:`ConfigError`.

The effects themselves are in :mod:`emovox.robust`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Sequence

from emovox.errors import ConfigError

COLORS = {"white": 0.0, "pink": 1.0, "brown": 2.0}  # PSD ~ 1 / f**exponent
CODECS = {"opus": ("OGG", "OPUS"), "vorbis": ("OGG", "VORBIS"), "mp3": ("MP3", "MPEG_LAYER_III")}
REVERB_METHODS = ("auto", "pyroomacoustics", "synthetic")

@dataclass(frozen=True)
class SpeedConfig:
    p: float = 0.0
    factors: tuple[float, float] = (0.9, 1.1)


@dataclass(frozen=True)
class ReverbConfig:
    p: float = 0.0
    rt60: tuple[float, float] = (0.2, 0.8)
    method: str = "auto"  #: auto | pyroomacoustics | synthetic
    n_rirs: int = 16  #: size of the pyroomacoustics bank (built once per augmenter)


@dataclass(frozen=True)
class NoiseConfig:
    p: float = 0.0
    snr_db: tuple[float, float] = (0.0, 20.0)
    colors: tuple[str, ...] = ("white", "pink", "brown")
    babble: float = 0.0  #: probability that the noise is babble (when babble clips are given)


@dataclass(frozen=True)
class TelephoneConfig:
    p: float = 0.0
    mulaw: float = 0.5  #: probability of μ-law companding inside the telephone band


@dataclass(frozen=True)
class CodecConfig:
    p: float = 0.0
    codecs: tuple[str, ...] = ("opus", "mp3", "vorbis")
    kbps: tuple[float, float] = (8.0, 32.0)


@dataclass(frozen=True)
class RobustConfig:
    """Probabilities and ranges of each effect (all off by default)."""

    speed: SpeedConfig = field(default_factory=SpeedConfig)
    reverb: ReverbConfig = field(default_factory=ReverbConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    telephone: TelephoneConfig = field(default_factory=TelephoneConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)

    @property
    def enabled(self) -> bool:
        return any(getattr(self, f.name).p > 0 for f in fields(self))


_SECTIONS: dict[str, Callable[[], Any]] = {f.name: f.default_factory for f in fields(RobustConfig)}  # type: ignore[misc]  # all have factories


def _range(v: Any, where: str, lo: float, hi: float) -> tuple[float, float]:
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v)):
        raise ConfigError(f"{where} must be a [low, high] pair of numbers, got {v!r}")
    a, b = float(v[0]), float(v[1])
    if not lo <= a <= b <= hi:
        raise ConfigError(f"{where} = {[a, b]} must satisfy {lo} <= low <= high <= {hi}")
    return a, b


def _prob(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
        raise ConfigError(f"{where} must be a probability between 0 and 1, got {v!r}")
    return float(v)


def _names(v: Any, where: str, allowed: Sequence[str]) -> tuple[str, ...]:
    if not isinstance(v, (list, tuple)) or not v or not all(x in allowed for x in v):
        raise ConfigError(f"{where} must be a non-empty list from {list(allowed)}, got {v!r}")
    return tuple(v)


_RANGES = {("speed", "factors"): (0.5, 2.0), ("reverb", "rt60"): (0.05, 3.0), ("noise", "snr_db"): (-10.0, 60.0),
           ("codec", "kbps"): (6.0, 256.0)}
_NAMES = {("noise", "colors"): tuple(COLORS), ("codec", "codecs"): tuple(CODECS)}


def robust_config(raw: Mapping[str, Any] | None, where: str = "robust") -> RobustConfig:
    """A :class:`RobustConfig` from a recipe's ``robust`` section (None or {} = everything off)."""
    if raw is None:
        return RobustConfig()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping of effects ({', '.join(_SECTIONS)}), got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown effect(s) {unknown} (allowed: {', '.join(_SECTIONS)})")
    sections: dict[str, Any] = {}
    for name, spec in raw.items():
        default = _SECTIONS[name]()
        if spec is None or spec is False:
            spec = {"p": 0.0}
        elif spec is True:
            spec = {"p": 1.0}
        elif isinstance(spec, (int, float)):
            spec = {"p": spec}
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}.{name} must be a probability or a mapping, got {spec!r}")
        allowed = [f.name for f in fields(default)]
        bad = sorted(set(spec) - set(allowed))
        if bad:
            raise ConfigError(f"{where}.{name}: unknown key(s) {bad} (allowed: {', '.join(allowed)})")
        values: dict[str, Any] = {}
        for key, v in spec.items():
            at = f"{where}.{name}.{key}"
            if (name, key) in _RANGES:
                values[key] = _range(v, at, *_RANGES[(name, key)])
            elif (name, key) in _NAMES:
                values[key] = _names(v, at, _NAMES[(name, key)])
            elif key == "method":
                if v not in REVERB_METHODS:
                    raise ConfigError(f"{at} must be one of {list(REVERB_METHODS)}, got {v!r}")
                values[key] = v
            elif key == "n_rirs":
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise ConfigError(f"{at} must be a positive integer, got {v!r}")
                values[key] = v
            else:
                values[key] = _prob(v, at)
        sections[name] = type(default)(**values)
    return RobustConfig(**sections)
