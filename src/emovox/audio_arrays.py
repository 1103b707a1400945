"""In-memory audio: the checks every sample array passes, and arrays -> 16 kHz mono float32.

:func:`prepare_array` is the entry point for arrays; :mod:`emovox.audio` (soundfile) and
:mod:`emovox.audio_av` (PyAV) run each decoded block through the same :func:`check_rate`,
:func:`check_channels` and :func:`to_mono`, and every clip through :func:`check_length`, so a
file, an upload and an array meet one set of limits. Every failure is
:class:`emovox.errors.AudioError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emovox.audio_budget import SAMPLE_RATE
from emovox.errors import AudioError

__all__ = ["MIN_SAMPLES", "MIN_RATE", "MAX_RATE", "MAX_CHANNELS", "MAX_ABS", "check_length", "check_rate",
           "check_channels", "to_mono", "downmix", "prepare_array"]

#: One analysis frame (25 ms at 16 kHz): anything shorter cannot give a single feature frame.
MIN_SAMPLES = 400
#: Accepted input sample rates (Hz): below 4 kHz there is no speech band left to classify;
#: above 384 kHz (the highest rate of studio converters) is a corrupt or hostile header.
MIN_RATE, MAX_RATE = 4_000, 384_000
#: More channels than any real recording (mic arrays included); usually a (channels, samples) array.
MAX_CHANNELS = 256
#: Largest accepted |sample|: 2**32 covers integer PCM stored as floats; beyond it the
#: front-end's power spectrum overflows float32 (corrupt or mis-scaled data).
MAX_ABS = float(2**32)
#: The channels cancel in their mean when it keeps under this share of their power (-20 dB).
CANCELLED = 0.01


def check_length(n_samples: int, source: object = "<array>", rate: int = SAMPLE_RATE) -> None:
    """The one minimum-length rule of ``predict`` and ``timeline``: at least one 25 ms analysis frame."""
    if n_samples < MIN_SAMPLES * rate // SAMPLE_RATE:
        raise AudioError(source, f"audio is {1000 * n_samples / rate:.1f} ms long, shorter than one 25 ms "
                                 "analysis frame", "emotion needs at least a fraction of a second of speech")


def check_rate(sample_rate: Any, source: object = "<array>") -> int:
    """``sample_rate`` as an int in [MIN_RATE, MAX_RATE], else :class:`AudioError`."""
    ok_type = isinstance(sample_rate, (int, np.integer, float, np.floating)) and not isinstance(sample_rate, bool)
    if not ok_type or not np.isfinite(sample_rate) or sample_rate != int(sample_rate):
        raise AudioError(source, f"invalid sample rate {sample_rate!r}", "pass a positive whole number of Hz")
    rate = int(sample_rate)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(source, f"sample rate {rate} Hz is outside the supported range {MIN_RATE}-{MAX_RATE} Hz",
                         "the header is corrupt, or the rate was not given in Hz (e.g. 16000)")
    return rate


def check_channels(channels: int, source: object, shape: tuple | None = None) -> None:
    if channels == 0:
        raise AudioError(source, "audio has zero channels")
    if channels > MAX_CHANNELS:
        what = f"an array of shape {shape}" if shape is not None else "the file"
        raise AudioError(source, f"{what} would have {channels} channels (at most {MAX_CHANNELS} supported)",
                         "arrays must be (samples,) or (samples, channels); transpose a (channels, samples) "
                         "array with x.T" if shape is not None else "the header is corrupt")


def check_channel(channel: int | None, channels: int, source: object) -> None:
    """``channel`` (0-based, or None for the down-mix) must be one of the ``channels`` of ``source``."""
    if channel is not None and not 0 <= channel < channels:
        raise AudioError(source, f"has {channels} channel(s), so there is no channel {channel + 1}",
                         "leave channels mixed (--channels mix) or pick an existing one")


def to_mono(block: np.ndarray, source: object, offset: float = 0.0) -> np.ndarray:
    """(n, channels) float32 -> (n,) float32 after checking for NaN/inf and absurd magnitudes."""
    finite = np.isfinite(block)
    if not finite.all():
        bad = int(block.size - np.count_nonzero(finite))
        where = f" near {offset:.1f} s" if offset else ""
        raise AudioError(source, f"audio contains {bad} NaN/inf samples{where}", "the file is corrupt; re-export it")
    peak = float(np.abs(block).max()) if block.size else 0.0
    if peak > MAX_ABS:
        raise AudioError(source, f"sample values reach {peak:.3g}, far outside audio range",
                         "float audio should lie in [-1, 1]; the data is corrupt or mis-scaled")
    if block.ndim == 1:
        return block
    return block[:, 0] if block.shape[1] == 1 else downmix(block)


def downmix(block: np.ndarray) -> np.ndarray:
    """(n, channels) -> (n,): the mean of the channels, unless they cancel in it (a channel wired
    with inverted polarity: the mean of x and -x is silence) -- then the loudest channel. Cancelling
    means the mean keeps under :data:`CANCELLED` of the channels' mean power; channels that merely
    differ (two people on two channels) keep about half of it."""
    mean = block.mean(axis=1, dtype=np.float32)
    power = np.mean(np.square(block, dtype=np.float64), axis=0)
    if float(np.mean(np.square(mean, dtype=np.float64))) < CANCELLED * float(power.mean()):
        return np.ascontiguousarray(block[:, int(np.argmax(power))], dtype=np.float32)
    return mean


def prepare_array(
    samples: np.ndarray,
    sample_rate: int | None,
    source: object = "<array>",
    target_rate: int = SAMPLE_RATE,
    channel: int | None = None,
) -> np.ndarray:
    """Validate, down-mix (or keep channel ``channel`` alone, 0-based) and resample an array of
    shape (n,) or (n, channels).

    Integer arrays are scaled to [-1, 1]. Raises :class:`AudioError` for empty, too short,
    NaN/inf, out-of-range or malformed input (bad dtype, shape or sample rate). An array carries
    no rate of its own, so ``sample_rate`` is required: ``None`` is refused rather than guessed
    (a 44.1 kHz clip taken as 16 kHz gives a confident, wrong answer).
    """
    if sample_rate is None:
        raise AudioError(source, "an array needs its sample rate",
                         "pass sample_rate=... (e.g. predict(x, sample_rate=44100)); emovox resamples it")
    try:
        x = np.asarray(samples)
    except Exception as exc:  # ragged lists, exotic array-likes  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise AudioError(source, f"cannot convert to an array ({type(exc).__name__}: {exc})") from None
    if x.dtype.kind not in "iuf":
        raise AudioError(source, f"samples must be numeric, got dtype {x.dtype}")
    rate = check_rate(sample_rate, source)
    if x.ndim == 0 or x.ndim > 2:
        raise AudioError(source, f"expected shape (samples,) or (samples, channels), got {x.shape}")
    if x.ndim == 2:
        check_channels(x.shape[1], source, x.shape)
    check_channel(channel, x.shape[1] if x.ndim == 2 else 1, source)
    if channel is not None and x.ndim == 2:
        x = x[:, channel]
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        x = (x.astype(np.float64) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    if x.size == 0:
        raise AudioError(source, "no audio samples could be decoded (empty or corrupt file)",
                         "re-export it or skip it")
    x = to_mono(x if x.dtype == np.float32 else _as_float32(x, source), source)
    return _finish(x, rate, source, target_rate)


def _as_float32(x: np.ndarray, source: object) -> np.ndarray:
    """float16/64/128 -> float32, refusing values float32 cannot hold (instead of turning them to inf)."""
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(x)
        if finite.all() and x.size and np.abs(x).max() > MAX_ABS:
            raise AudioError(source, f"sample values reach {float(np.abs(x).max()):.3g}, far outside audio range",
                             "float audio should lie in [-1, 1]; the data is corrupt or mis-scaled")
        return x.astype(np.float32)


def _finish(mono: np.ndarray, rate: int, source: object, target_rate: int) -> np.ndarray:
    """Resample a checked mono signal and refuse one shorter than an analysis frame."""
    if mono.size == 0:
        raise AudioError(source, "no audio samples could be decoded (empty or corrupt file)",
                         "re-export it or skip it")
    x = _resample(mono, rate, target_rate, source) if rate != target_rate else mono
    check_length(x.size, source, target_rate)
    return np.ascontiguousarray(x, dtype=np.float32)


def _resample(x: np.ndarray, rate_in: int, rate_out: int, source: object) -> np.ndarray:
    import soxr

    try:
        return soxr.resample(x, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)
    except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise AudioError(source, f"resampling from {rate_in} Hz failed ({exc})") from None
