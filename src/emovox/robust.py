"""Robust waveform augmentation for training: codecs, telephone band, noise, reverberation, speed.

Training side only (the evaluation paths never call it); every effect is switchable and drawn
with its own probability from a seeded generator, so a seed and an item key replay exactly the
same audio. The chain (in this order, each effect applied with probability ``p``):

1. **speed** perturbation by a factor in ``factors`` (0.9–1.1): soxr resampling, tempo and pitch
   change together (Kaldi-style), the length becomes ``len / factor``;
2. **reverb**: convolution with a room impulse response of RT60 in ``rt60`` seconds, from
   pyroomacoustics' image-source shoebox model (random room, source and microphone; a bank of
   ``n_rirs`` responses is built once per augmenter) when it is installed
   (``pip install emovox[robust]``), else from the synthetic model (``method: synthetic``): a unit
   direct path followed after 2–10 ms by Gaussian noise under an exponential envelope
   ``exp(-6.91 t / RT60)`` (60 dB of decay at RT60) — Schroeder's statistical model of a diffuse
   late tail. The output keeps the input's RMS;
3. **noise** at an SNR in ``snr_db`` (0–20 dB): generated coloured noise (white, pink 1/f,
   brown 1/f²) or, with probability ``babble``, babble = the sum of 3–6 random crops of other
   clips (pass clips of *other* speakers); SNR = 10·log10(P_speech / P_noise) exactly;
4. **telephone** band: soxr down to 8 kHz and back (nothing left above 4 kHz) and, with
   probability ``mulaw``, 8-bit μ-law companding (μ = 255, the law G.711 approximates in segments);
5. **codec** round trip through soundfile's in-memory encoder at ``kbps`` (8–32 kbit/s):
   Opus (libsndfile sets ``(1 - level) · 250 + 6`` kbit/s), MP3 (constant bit rate
   ``160 - level · 152`` kbit/s at 16 kHz, LAME rounds to its rates) and Vorbis (quality
   based: at 16 kHz mono libsndfile's Vorbis cannot go below about 31 kbit/s, so Vorbis always
   runs at its lowest quality, ~31–35 kbit/s). The decoded audio is aligned to the input (MP3's
   encoder delay removed) and cut to the input length.

The ``robust`` section of a recipe is parsed by :mod:`emovox.robust_config`.
"""

from __future__ import annotations

import io
from typing import Literal, Sequence, overload

import numpy as np

from emovox.errors import ConfigError, DependencyError
from emovox.robust_config import (CODECS, COLORS, CodecConfig, NoiseConfig, ReverbConfig,
                                  RobustConfig, SpeedConfig, TelephoneConfig, robust_config)

SAMPLE_RATE = 16_000


# ----------------------------------------------------------------------------- effects
def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def speed_perturb(x: np.ndarray, factor: float, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Play ``x`` ``factor`` times faster (pitch and tempo together): length ``len(x) / factor``."""
    import soxr

    return soxr.resample(x.astype(np.float32), sr * factor, sr, quality="HQ").astype(np.float32)


def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with power spectral density ~ 1/f^k (white k=0, pink k=1, brown k=2)."""
    if color not in COLORS:
        raise ConfigError(f"noise colour {color!r} unknown (choose from {', '.join(COLORS)})")
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    spec *= f ** (-COLORS[color] / 2)
    spec[0] = 0.0
    noise = np.fft.irfft(spec, n)
    return (noise / max(_rms(noise), 1e-12)).astype(np.float32)


def babble_noise(n: int, clips: Sequence[np.ndarray], rng: np.random.Generator,
                 talkers: tuple[int, int] = (3, 6)) -> np.ndarray:
    """Unit-RMS babble: the sum of ``talkers`` random crops (looped when short) of ``clips``."""
    usable = [c for c in clips if c.size and _rms(c) > 0]
    if not usable:
        raise ConfigError("babble noise needs at least one non-silent clip of other speakers")
    out = np.zeros(n, np.float64)
    for _ in range(int(rng.integers(talkers[0], talkers[1] + 1))):
        c = usable[int(rng.integers(len(usable)))]
        reps = int(np.ceil((n + c.size) / c.size))
        start = int(rng.integers(c.size))
        out += np.tile(c, reps)[start:start + n] / _rms(c)
    return (out / max(_rms(out), 1e-12)).astype(np.float32)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``x`` plus ``noise`` scaled to 10·log10(P_x / P_noise) = ``snr_db`` (silent ``x``: unchanged)."""
    px, pn = _rms(x) ** 2, _rms(noise) ** 2
    if px == 0 or pn == 0:
        return x.astype(np.float32)
    return (x + noise * np.sqrt(px / (pn * 10 ** (snr_db / 10)))).astype(np.float32)


def synthetic_rir(rt60: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Direct path + exponentially decaying Gaussian tail (60 dB down at ``rt60`` s), 1.2·RT60 long."""
    n = max(2, int(1.2 * rt60 * sr))
    t = np.arange(n) / sr
    delay = int(rng.uniform(0.002, 0.010) * sr)
    tail = rng.standard_normal(n) * np.exp(-6.91 * t / rt60)
    tail[: delay + 1] = 0.0
    h = tail * 0.3 / max(np.abs(tail).max(), 1e-12)  # tail peak 10 dB below the direct path
    h[0] = 1.0
    return h.astype(np.float32)


def pyroomacoustics_rir(rt60: float, rng: np.random.Generator, sr: int = SAMPLE_RATE, max_order: int = 60) -> np.ndarray:
    """RIR of a random shoebox room with Sabine absorption for ``rt60`` (image sources, order <= ``max_order``)."""
    try:
        import pyroomacoustics as pra
    except ImportError:
        raise DependencyError("pyroomacoustics", "reverberation with method 'pyroomacoustics'",
                              "pip install 'emovox[robust]' (or use reverb.method: synthetic)") from None
    dims = np.array([rng.uniform(3, 10), rng.uniform(3, 8), rng.uniform(2.4, 4)])
    try:
        absorption, order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # RT60 too long for so small a room: use a larger one
        dims = dims * 2
        absorption, order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims.tolist(), fs=sr, materials=pra.Material(absorption), max_order=min(order, max_order))
    room.add_source((dims * rng.uniform(0.15, 0.85, 3)).tolist())
    room.add_microphone((dims * rng.uniform(0.15, 0.85, 3)).tolist())
    room.compute_rir()
    h = np.asarray(room.rir[0][0], dtype=np.float64)
    h = h[int(np.argmax(np.abs(h))):]  # start at the direct path
    return (h / np.abs(h).max()).astype(np.float32)


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``x`` convolved with ``rir`` (cut to ``len(x)``), rescaled to the RMS of ``x``."""
    from scipy.signal import fftconvolve

    y = fftconvolve(x.astype(np.float64), rir.astype(np.float64))[: x.size]
    ry = _rms(y)
    return (y * (_rms(x) / ry) if ry > 0 else y).astype(np.float32)


def mulaw_companding(x: np.ndarray, mu: int = 255, bits: int = 8) -> np.ndarray:
    """Compress with the μ-law, quantise to ``bits`` bits and expand (G.711-like distortion)."""
    c = np.clip(x, -1.0, 1.0).astype(np.float64)
    y = np.sign(c) * np.log1p(mu * np.abs(c)) / np.log1p(mu)
    levels = 2 ** (bits - 1) - 1
    y = np.round(y * levels) / levels
    return (np.sign(y) * np.expm1(np.abs(y) * np.log1p(mu)) / mu).astype(np.float32)


def telephone_band(x: np.ndarray, sr: int = SAMPLE_RATE, mulaw: bool = False) -> np.ndarray:
    """Resample to 8 kHz (optionally μ-law companded there) and back to ``sr``; same length."""
    import soxr

    narrow = soxr.resample(x.astype(np.float32), sr, 8000, quality="HQ")
    if mulaw:
        narrow = mulaw_companding(narrow)
    y = soxr.resample(narrow, 8000, sr, quality="HQ")
    return _fit(y, x.size)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    y = y[:n]
    return np.pad(y, (0, n - y.size)).astype(np.float32) if y.size < n else y.astype(np.float32)


def codec_level(codec: str, kbps: float, sr: int = SAMPLE_RATE) -> tuple[float, str | None]:
    """libsndfile's (compression_level, bitrate_mode) for ``codec`` at about ``kbps`` kbit/s."""
    if codec == "opus":
        return float(np.clip(1 - (kbps - 6) / 250, 0, 1)), None
    if codec == "mp3":
        top, low = (320.0, 32.0) if sr >= 32000 else (160.0, 8.0) if sr >= 16000 else (64.0, 8.0)
        return float(np.clip((top - kbps) / (top - low), 0, 0.999)), "CONSTANT"  # level 1.0 is refused
    if codec == "vorbis":
        return 1.0, None  # lowest Vorbis quality; ~31 kbit/s at 16 kHz mono, nothing lower is reachable
    raise ConfigError(f"codec {codec!r} unknown (choose from {', '.join(CODECS)})")


@overload
def codec_roundtrip(x: np.ndarray, codec: str, kbps: float, sr: int = ...,
                    return_size: Literal[False] = ...) -> np.ndarray: ...
@overload
def codec_roundtrip(x: np.ndarray, codec: str, kbps: float, sr: int = ..., *,
                    return_size: Literal[True]) -> tuple[np.ndarray, int]: ...
@overload
def codec_roundtrip(x: np.ndarray, codec: str, kbps: float, sr: int = ...,
                    return_size: bool = ...) -> np.ndarray | tuple[np.ndarray, int]: ...
def codec_roundtrip(x: np.ndarray, codec: str, kbps: float, sr: int = SAMPLE_RATE,
                    return_size: bool = False) -> np.ndarray | tuple[np.ndarray, int]:
    """Encode ``x`` in memory with ``codec`` at ~``kbps`` kbit/s, decode, align and cut to ``len(x)``.

    ``return_size=True`` also returns the encoded size in bytes (to check the bit rate).
    """
    import soundfile as sf

    fmt, subtype = CODECS.get(codec, (None, None))
    level, mode = codec_level(codec, kbps, sr)
    buf = io.BytesIO()
    sf.write(buf, np.clip(x, -1, 1).astype(np.float32), sr, format=fmt, subtype=subtype,
             compression_level=level, bitrate_mode=mode)
    size = buf.tell()
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    if codec == "mp3":  # LAME's encoder delay is not removed on decoding (Ogg's pre-skip is)
        y = y[_lag(y, x, max_lag=int(0.1 * sr)):]
    y = _fit(y, x.size)
    return (y, size) if return_size else y


def _lag(y: np.ndarray, x: np.ndarray, max_lag: int) -> int:
    """The delay (0..max_lag samples) of ``y`` against ``x`` by cross-correlation of the first second."""
    n = min(x.size, y.size, SAMPLE_RATE)
    if n == 0 or _rms(x[:n]) == 0:
        return 0
    from scipy.signal import correlate

    c = correlate(y[: n + max_lag], x[:n], mode="valid", method="fft")
    return int(np.argmax(c[: max_lag + 1]))


# --------------------------------------------------------------------------- augmenter
class RobustAugmenter:
    """Applies :class:`RobustConfig` to waveforms; ``augment(x, key)`` is deterministic per (seed, key)."""

    def __init__(self, config: RobustConfig, seed: int = 0, sr: int = SAMPLE_RATE,
                 babble_clips: Sequence[np.ndarray] = ()) -> None:
        self.config, self.seed, self.sr = config, int(seed), sr
        self.babble_clips = list(babble_clips)
        method = config.reverb.method
        if method == "auto":
            try:
                import pyroomacoustics  # noqa: F401

                method = "pyroomacoustics"
            except ImportError:
                method = "synthetic"
        self.reverb_method = method
        self._bank: list[np.ndarray] | None = None

    def _rir(self, rng: np.random.Generator) -> np.ndarray:
        cfg = self.config.reverb
        if self.reverb_method == "synthetic":
            return synthetic_rir(rng.uniform(*cfg.rt60), rng, self.sr)
        if self._bank is None:
            bank_rng = np.random.default_rng([self.seed, 0x52_49_52])
            self._bank = [pyroomacoustics_rir(bank_rng.uniform(*cfg.rt60), bank_rng, self.sr) for _ in range(cfg.n_rirs)]
        return self._bank[int(rng.integers(len(self._bank)))]

    def augment(self, x: np.ndarray, key: int | Sequence[int] = 0,
                babble_clips: Sequence[np.ndarray] | None = None) -> tuple[np.ndarray, list[str]]:
        """(augmented copy of ``x``, names of the effects applied). ``key``: e.g. (epoch, item index)."""
        cfg = self.config
        rng = np.random.default_rng([self.seed, *([key] if isinstance(key, int) else key)])
        y = np.asarray(x, dtype=np.float32)
        applied: list[str] = []
        if y.size == 0:
            return y.copy(), applied
        if rng.random() < cfg.speed.p:
            factor = rng.uniform(*cfg.speed.factors)
            y = speed_perturb(y, factor, self.sr)
            applied.append(f"speed {factor:.3f}")
        if rng.random() < cfg.reverb.p:
            y = reverberate(y, self._rir(rng))
            applied.append(f"reverb {self.reverb_method}")
        if rng.random() < cfg.noise.p:
            snr = rng.uniform(*cfg.noise.snr_db)
            clips = self.babble_clips if babble_clips is None else list(babble_clips)
            if clips and rng.random() < cfg.noise.babble:
                noise, kind = babble_noise(y.size, clips, rng), "babble"
            else:
                kind = cfg.noise.colors[int(rng.integers(len(cfg.noise.colors)))]
                noise = colored_noise(y.size, kind, rng)
            y = add_noise(y, noise, snr)
            applied.append(f"noise {kind} {snr:.1f} dB")
        if rng.random() < cfg.telephone.p:
            mulaw = bool(rng.random() < cfg.telephone.mulaw)
            y = telephone_band(y, self.sr, mulaw)
            applied.append("telephone" + (" mulaw" if mulaw else ""))
        if rng.random() < cfg.codec.p:
            codec = cfg.codec.codecs[int(rng.integers(len(cfg.codec.codecs)))]
            kbps = rng.uniform(*cfg.codec.kbps)
            y = codec_roundtrip(y, codec, kbps, self.sr)
            applied.append(f"codec {codec} {kbps:.0f} kbps")
        peak = float(np.abs(y).max()) if y.size else 0.0
        if peak > 0.99:
            y = y * (0.99 / peak)
        return y.astype(np.float32), applied

    def __call__(self, x: np.ndarray, key: int | Sequence[int] = 0,
                 babble_clips: Sequence[np.ndarray] | None = None) -> np.ndarray:
        return self.augment(x, key, babble_clips)[0]


__all__ = ["CodecConfig", "NoiseConfig", "ReverbConfig", "RobustAugmenter", "RobustConfig", "SpeedConfig",
           "TelephoneConfig", "add_noise", "babble_noise", "codec_level", "codec_roundtrip", "colored_noise",
           "mulaw_companding", "pyroomacoustics_rir", "reverberate", "robust_config", "speed_perturb",
           "synthetic_rir", "telephone_band"]
