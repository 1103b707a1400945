"""Audio input: any supported file or array -> 16 kHz mono float32.

One entry point per source (:func:`load_audio` for files, :func:`decode_bytes` for uploads,
:func:`prepare_array` for in-memory arrays, :func:`iter_blocks` for long recordings).
Every failure surfaces as :class:`emovox.errors.AudioError`; nothing else escapes.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from emovox.errors import AudioError

SAMPLE_RATE = 16_000
#: One analysis frame (25 ms at 16 kHz): anything shorter cannot give a single feature frame.
MIN_SAMPLES = 400
SUPPORTED_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus")

_TRUNCATED_DATA = re.compile(r"^data\s*:\s*\d+\s*\(should be", re.MULTILINE)
_HINT_FORMAT = "emovox reads WAV, FLAC and OGG; convert other formats first, e.g. with ffmpeg or sox"


def _soundfile():
    import soundfile as sf

    return sf


def prepare_array(
    samples: np.ndarray,
    sample_rate: int,
    source: object = "<array>",
    target_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Validate, down-mix and resample an array of shape (n,) or (n, channels).

    Integer arrays are scaled to [-1, 1]. Raises :class:`AudioError` for empty, too short,
    NaN/inf or malformed input.
    """
    try:
        x = np.asarray(samples)
    except Exception as exc:  # pragma: no cover - exotic array-likes
        raise AudioError(source, f"cannot convert to an array ({exc})") from None
    if x.dtype.kind not in "iuf":
        raise AudioError(source, f"samples must be numeric, got dtype {x.dtype}")
    if not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise AudioError(source, f"invalid sample rate {sample_rate!r}", "pass a positive integer in Hz")
    if x.ndim == 0 or x.ndim > 2:
        raise AudioError(source, f"expected shape (samples,) or (samples, channels), got {x.shape}")
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        x = (x.astype(np.float64) - (info.max + info.min + 1) / 2) / ((info.max - info.min + 1) / 2)
    x = x.astype(np.float32, copy=False)
    if x.ndim == 2:
        if x.shape[1] == 0:
            raise AudioError(source, "audio has zero channels")
        x = x.mean(axis=1, dtype=np.float32)
    if x.size == 0:
        raise AudioError(source, "no audio samples could be decoded (empty or corrupt file)",
                         "re-export it or skip it")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise AudioError(source, f"audio contains {bad} NaN/inf samples", "the file is corrupt; re-export it")
    if sample_rate != target_rate:
        x = _resample(x, int(sample_rate), target_rate, source)
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


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(path, "file not found", "check the path")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if not os.access(path, os.R_OK):
        raise AudioError(path, "file is not readable (permission denied)", "check its permissions")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)", "re-export or skip it")


def _read(handle, source: object) -> tuple[np.ndarray, int]:
    """Read a whole file/stream with soundfile; map every failure to AudioError."""
    sf = _soundfile()
    try:
        with sf.SoundFile(handle) as f:
            expected = f.frames
            rate = f.samplerate
            data = f.read(dtype="float32", always_2d=True)
            truncated = _looks_truncated(f, expected, len(data))
    except AudioError:
        raise
    except sf.LibsndfileError as exc:
        raise AudioError(source, f"not a readable audio file, or corrupt ({exc.error_string})", _HINT_FORMAT) from None
    except Exception as exc:
        raise AudioError(source, f"could not decode audio ({type(exc).__name__}: {exc})", _HINT_FORMAT) from None
    if truncated:
        raise AudioError(source, "file is truncated or corrupt (fewer samples than its header declares)",
                         "re-export or re-download it")
    return data, rate


def _looks_truncated(f, expected: int, got: int) -> bool:
    if expected > 0 and got < expected:
        return True
    # libsndfile silently shortens a WAV whose data chunk runs past the end of the file, but
    # logs e.g. "data : 32000 (should be 15978)"; that is a truncated file, not a short one.
    info = (getattr(f, "extra_info", "") or "").lower()
    return bool(_TRUNCATED_DATA.search(info)) or "exceeds file length" in info


def load_audio(path: str | os.PathLike, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Load WAV/FLAC/OGG at any rate, bit depth and channel count as mono float32 at ``target_rate``."""
    p = Path(path)
    try:
        _check_path(p)
        data, rate = _read(str(p), p)
        return prepare_array(data, rate, source=p, target_rate=target_rate)
    except AudioError:
        raise
    except Exception as exc:  # nothing but AudioError leaves this function
        raise AudioError(p, f"unexpected failure while reading ({type(exc).__name__}: {exc})") from None


def decode_bytes(data: bytes, name: str = "<upload>", target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an in-memory audio file (e.g. an HTTP upload); never touches the file system."""
    try:
        if not data:
            raise AudioError(name, "upload is empty (0 bytes)")
        samples, rate = _read(io.BytesIO(data), name)
        return prepare_array(samples, rate, source=name, target_rate=target_rate)
    except AudioError:
        raise
    except Exception as exc:
        raise AudioError(name, f"unexpected failure while decoding ({type(exc).__name__}: {exc})") from None


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the header (cheap; does not decode)."""
    p = Path(path)
    _check_path(p)
    sf = _soundfile()
    try:
        info = sf.info(str(p))
    except Exception as exc:
        raise AudioError(p, f"not a readable audio file ({exc})", _HINT_FORMAT) from None
    return info.frames / info.samplerate if info.samplerate else 0.0


def iter_blocks(
    path: str | os.PathLike, block_seconds: float = 60.0, target_rate: int = SAMPLE_RATE
) -> Iterator[np.ndarray]:
    """Yield consecutive mono float32 blocks at ``target_rate`` without loading the whole file.

    Memory stays O(block): the file is read block by block and resampled with a streaming
    resampler, so an hour-long recording never sits in memory at once.
    """
    import soxr

    p = Path(path)
    _check_path(p)
    sf = _soundfile()
    try:
        f = sf.SoundFile(str(p))
    except Exception as exc:
        raise AudioError(p, f"not a readable audio file ({exc})", _HINT_FORMAT) from None
    with f:
        rate = f.samplerate
        stream = soxr.ResampleStream(rate, target_rate, 1, dtype="float32") if rate != target_rate else None
        block = max(1, int(block_seconds * rate))
        total = 0
        while True:
            try:
                chunk = f.read(block, dtype="float32", always_2d=True)
            except Exception as exc:
                raise AudioError(p, f"decoding failed after {total / rate:.1f} s ({exc})") from None
            last = len(chunk) < block
            mono = chunk.mean(axis=1, dtype=np.float32) if chunk.size else np.zeros(0, np.float32)
            if not np.isfinite(mono).all():
                raise AudioError(p, f"NaN/inf samples near {total / rate:.1f} s", "the file is corrupt")
            total += len(chunk)
            out = stream.resample_chunk(mono, last=last) if stream is not None else mono
            if out.size:
                yield np.ascontiguousarray(out, dtype=np.float32)
            if last:
                break
        if total == 0:
            raise AudioError(p, "audio has zero samples", "the file is empty; re-export or skip it")
