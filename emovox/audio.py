"""Audio input: any supported file or array -> 16 kHz mono float32.

One entry point per source (:func:`load_audio` for files, :func:`decode_bytes` for uploads,
:func:`prepare_array` for in-memory arrays, :func:`iter_blocks` for long recordings).
Every failure surfaces as :class:`emovox.errors.AudioError`; nothing else escapes.

Limits that keep hostile or broken input from exhausting memory or poisoning the model:
sample rates within [:data:`MIN_RATE`, :data:`MAX_RATE`], at most :data:`MAX_CHANNELS`
channels, sample magnitudes up to :data:`MAX_ABS` (float audio lives in [-1, 1]; integer PCM
stored as floats stays far below), and files are decoded block by block (never trusting the
frame count a header declares), optionally stopping at ``max_seconds``.
"""

from __future__ import annotations

import io
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from emovox.errors import AudioError

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
#: One analysis frame (25 ms at 16 kHz): anything shorter cannot give a single feature frame.
MIN_SAMPLES = 400
SUPPORTED_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus")
#: Accepted input sample rates (Hz): below 4 kHz there is no speech band left to classify;
#: above 768 kHz is not audio equipment. Bounds also cap the resampling blow-up (4x at most).
MIN_RATE, MAX_RATE = 4_000, 768_000
#: More channels than any real recording (mic arrays included); usually a (channels, samples) array.
MAX_CHANNELS = 256
#: Largest accepted |sample|: 2**32 covers integer PCM stored as floats; beyond it the
#: front-end's power spectrum overflows float32 (corrupt or mis-scaled data).
MAX_ABS = float(2**32)
#: Samples (all channels) decoded per read: memory stays bounded whatever a header claims.
_BLOCK_SAMPLES = 1 << 22

_TRUNCATED_DATA = re.compile(r"^data\s*:\s*\d+\s*\(should be", re.MULTILINE)
_HINT_FORMAT = "emovox reads WAV, FLAC and OGG; convert other formats first, e.g. with ffmpeg or sox"


def _soundfile():
    import soundfile as sf

    return sf


# ------------------------------------------------------------------------------ validation
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


def _check_channels(channels: int, source: object, shape: tuple | None = None) -> None:
    if channels == 0:
        raise AudioError(source, "audio has zero channels")
    if channels > MAX_CHANNELS:
        what = f"an array of shape {shape}" if shape is not None else "the file"
        raise AudioError(source, f"{what} would have {channels} channels (at most {MAX_CHANNELS} supported)",
                         "arrays must be (samples,) or (samples, channels); transpose a (channels, samples) "
                         "array with x.T" if shape is not None else "the header is corrupt")


def _to_mono(block: np.ndarray, source: object, offset: float = 0.0) -> np.ndarray:
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
    return block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)


def prepare_array(
    samples: np.ndarray,
    sample_rate: int,
    source: object = "<array>",
    target_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Validate, down-mix and resample an array of shape (n,) or (n, channels).

    Integer arrays are scaled to [-1, 1]. Raises :class:`AudioError` for empty, too short,
    NaN/inf, out-of-range or malformed input (bad dtype, shape or sample rate).
    """
    try:
        x = np.asarray(samples)
    except Exception as exc:  # ragged lists, exotic array-likes
        raise AudioError(source, f"cannot convert to an array ({type(exc).__name__}: {exc})") from None
    if x.dtype.kind not in "iuf":
        raise AudioError(source, f"samples must be numeric, got dtype {x.dtype}")
    rate = check_rate(sample_rate, source)
    if x.ndim == 0 or x.ndim > 2:
        raise AudioError(source, f"expected shape (samples,) or (samples, channels), got {x.shape}")
    if x.ndim == 2:
        _check_channels(x.shape[1], source, x.shape)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        x = (x.astype(np.float64) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    if x.size == 0:
        raise AudioError(source, "no audio samples could be decoded (empty or corrupt file)",
                         "re-export it or skip it")
    x = _to_mono(x if x.dtype == np.float32 else _as_float32(x, source), source)
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
    if x.size < MIN_SAMPLES * target_rate // SAMPLE_RATE:
        ms = 1000 * x.size / target_rate
        raise AudioError(
            source,
            f"audio is {ms:.1f} ms long, shorter than one 25 ms analysis frame",
            "emotion needs at least a fraction of a second of speech",
        )
    return np.ascontiguousarray(x, dtype=np.float32)


def _resample(x: np.ndarray, rate_in: int, rate_out: int, source: object) -> np.ndarray:
    import soxr

    try:
        return soxr.resample(x, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)
    except Exception as exc:
        raise AudioError(source, f"resampling from {rate_in} Hz failed ({exc})") from None


# ----------------------------------------------------------------------------------- files
def _check_path(path: Path) -> None:
    try:
        if not path.exists():
            raise AudioError(path, "file not found", "check the path")
        if path.is_dir():
            raise AudioError(path, "is a directory, not an audio file")
        if not path.is_file():
            raise AudioError(path, "is not a regular file (device, pipe or socket)", "pass an audio file")
        if not os.access(path, os.R_OK):
            raise AudioError(path, "file is not readable (permission denied)", "check its permissions")
        if path.stat().st_size == 0:
            raise AudioError(path, "file is empty (0 bytes)", "re-export or skip it")
    except (OSError, ValueError) as exc:  # name too long, permission denied on a parent, NUL byte...
        raise AudioError(path, f"cannot access the file ({getattr(exc, 'strerror', None) or exc})",
                         "check the path and its permissions") from None


def _open(handle: Any, source: object):
    """An open soundfile.SoundFile with a sane rate and channel count, else AudioError."""
    sf = _soundfile()
    try:
        f = sf.SoundFile(handle)
    except sf.LibsndfileError as exc:
        raise AudioError(source, f"not a readable audio file, or corrupt ({exc.error_string})", _HINT_FORMAT) from None
    except Exception as exc:
        raise AudioError(source, f"not a readable audio file ({type(exc).__name__}: {exc})", _HINT_FORMAT) from None
    try:
        check_rate(f.samplerate, source)
        _check_channels(f.channels, source)
    except AudioError:
        f.close()
        raise
    return f


def _blocks(f: Any, source: object, block_frames: int) -> Iterator[np.ndarray]:
    """Consecutive mono float32 blocks of an open file at its own rate (checked for NaN/range)."""
    done = 0
    while True:
        try:
            chunk = f.read(block_frames, dtype="float32", always_2d=True)
        except Exception as exc:
            raise AudioError(source, f"decoding failed after {done / f.samplerate:.1f} s "
                                     f"({type(exc).__name__}: {exc})", "the file is corrupt") from None
        if len(chunk):
            yield _to_mono(chunk, source, done / f.samplerate)
        done += len(chunk)
        if len(chunk) < block_frames:
            return


def _read(handle: Any, source: object, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Decode a whole file/stream to mono float32 at its own rate; every failure is AudioError."""
    with _open(handle, source) as f:
        rate, expected = f.samplerate, f.frames
        limit = None if max_seconds is None else int(max_seconds * rate)
        parts, total = [], 0
        for block in _blocks(f, source, max(1, _BLOCK_SAMPLES // f.channels)):
            parts.append(block)
            total += block.size
            if limit is not None and total > limit:
                raise AudioError(source, f"audio is longer than the limit of {max_seconds:g} s",
                                 "cut the recording, or use `emovox timeline` for long recordings")
        if _looks_truncated(f, expected, total):
            raise AudioError(source, "file is truncated or corrupt (fewer samples than its header declares)",
                             "re-export or re-download it")
    data = np.concatenate(parts) if len(parts) > 1 else (parts[0] if parts else np.zeros(0, np.float32))
    return data, rate


def _looks_truncated(f, expected: int, got: int) -> bool:
    if expected > 0 and got < expected:
        return True
    # libsndfile silently shortens a WAV whose data chunk runs past the end of the file, but
    # logs e.g. "data : 32000 (should be 15978)"; that is a truncated file, not a short one.
    info = (getattr(f, "extra_info", "") or "").lower()
    return bool(_TRUNCATED_DATA.search(info)) or "exceeds file length" in info


def load_audio(path: str | os.PathLike, target_rate: int = SAMPLE_RATE, *,
               max_seconds: float | None = None) -> np.ndarray:
    """Load WAV/FLAC/OGG at any rate, bit depth and channel count as mono float32 at ``target_rate``.

    ``max_seconds`` stops decoding (AudioError) once the audio is longer than that.
    """
    p = Path(path)
    try:
        _check_path(p)
        data, rate = _read(str(p), p, max_seconds)
        return _finish(data, rate, p, target_rate)
    except AudioError:
        raise
    except Exception as exc:  # nothing but AudioError leaves this function
        raise AudioError(p, f"unexpected failure while reading ({type(exc).__name__}: {exc})") from None


def decode_bytes(data: bytes, name: str = "<upload>", target_rate: int = SAMPLE_RATE, *,
                 max_seconds: float | None = None) -> np.ndarray:
    """Decode an in-memory audio file (e.g. an HTTP upload); never touches the file system.

    ``max_seconds`` stops decoding (AudioError) once the audio is longer than that, whatever
    the header claims (a guard against decompression bombs).
    """
    try:
        if not data:
            raise AudioError(name, "upload is empty (0 bytes)")
        samples, rate = _read(io.BytesIO(data), name, max_seconds)
        return _finish(samples, rate, name, target_rate)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(name, f"unexpected failure while decoding ({type(exc).__name__}: {exc})") from None


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the header (cheap; does not decode)."""
    p = Path(path)
    _check_path(p)
    with _open(str(p), p) as f:
        return f.frames / f.samplerate


def iter_blocks(
    path: str | os.PathLike, block_seconds: float = 60.0, target_rate: int = SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """Yield consecutive mono float32 blocks at ``target_rate`` without loading the whole file.

    Memory stays O(block): the file is read block by block and resampled with a streaming
    resampler, so an hour-long recording never sits in memory at once. A truncated file (fewer
    samples than its header declares) yields what can be read and logs a warning.
    """
    import soxr

    p = Path(path)
    _check_path(p)
    if not (isinstance(block_seconds, (int, float)) and block_seconds > 0):
        raise AudioError(p, f"block_seconds must be a positive number, got {block_seconds!r}")
    with _open(str(p), p) as f:
        rate = f.samplerate
        try:
            stream = soxr.ResampleStream(rate, target_rate, 1, dtype="float32") if rate != target_rate else None
        except Exception as exc:
            raise AudioError(p, f"cannot resample from {rate} Hz ({exc})") from None
        block = max(1, int(block_seconds * rate))
        total, expected = 0, f.frames
        pending: np.ndarray | None = None
        for mono in _blocks(f, p, block):
            if pending is not None:  # hold one block back so the resampler knows which one is last
                yield from _emit(stream, pending, last=False)
            pending = mono
            total += mono.size
        if total == 0:
            raise AudioError(p, "audio has zero samples", "the file is empty; re-export or skip it")
        if _looks_truncated(f, expected, total):
            # a long recording cut short (a crashed recorder) is still worth its first part
            log.warning("%s: file is truncated or corrupt; using the %.1f s that could be read", p, total / rate)
        yield from _emit(stream, pending, last=True)


def _emit(stream: Any, mono: np.ndarray, last: bool) -> Iterator[np.ndarray]:
    out = stream.resample_chunk(mono, last=last) if stream is not None else mono
    if out.size:
        yield np.ascontiguousarray(out, dtype=np.float32)
