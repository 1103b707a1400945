"""Audio input: any supported file or array -> 16 kHz mono float32.

One entry point per source (:func:`load_audio` for files, :func:`decode_bytes` for uploads,
:func:`prepare_array` for in-memory arrays, :func:`iter_blocks` for long recordings,
:func:`read_header` for what a header declares). Every failure surfaces as
:class:`emovox.errors.AudioError`; nothing else escapes.

Formats (:data:`SUPPORTED_FORMATS`): soundfile (libsndfile) first, then PyAV (FFmpeg inside its
wheels, :mod:`emovox.audio_av`) for M4A/AAC and the audio track of MP4/MOV/WEBM/MKV videos.

Limits that keep hostile or broken input from exhausting memory or poisoning the model:
sample rates within [:data:`MIN_RATE`, :data:`MAX_RATE`], at most :data:`MAX_CHANNELS`
channels, sample magnitudes up to :data:`MAX_ABS` (float audio lives in [-1, 1]; integer PCM
stored as floats stays far below). Files are decoded block by block and each block is resampled
to 16 kHz before the next is read, so peak memory is the 16 kHz output plus one block whatever
the input rate; a :class:`DecodeBudget` (output seconds, input samples x channels, a cancel hook
run between blocks) is checked from the header before decoding and again as decoding goes.
Arrays need their sample rate; :func:`check_length` is the one minimum-length rule.
"""

from __future__ import annotations

import io
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from emovox.audio_budget import HINT_SMALLER, SAMPLE_RATE, AudioHeader, BlockOutput, DecodeBudget, check_budget
from emovox.errors import AudioError, AudioTooLong, Cancelled

log = logging.getLogger(__name__)

__all__ = ["SAMPLE_RATE", "MIN_SAMPLES", "SUPPORTED_FORMATS", "AudioHeader", "DecodeBudget", "check_budget",
           "check_length", "check_rate", "decode_bytes", "load_audio", "read_header", "prepare_array", "iter_blocks",
           "audio_duration"]

#: One analysis frame (25 ms at 16 kHz): anything shorter cannot give a single feature frame.
MIN_SAMPLES = 400
SUPPORTED_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".m4a", ".aac", ".mp4",
                        ".mov", ".webm", ".mkv", ".mka")
#: What users can bring, for messages: soundfile reads WAV to AIFF, PyAV (FFmpeg) the rest.
SUPPORTED_FORMATS = "WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, M4A/AAC and the audio track of MP4/MOV/WEBM/MKV"
#: Accepted input sample rates (Hz): below 4 kHz there is no speech band left to classify;
#: above 384 kHz (the highest rate of studio converters) is a corrupt or hostile header.
MIN_RATE, MAX_RATE = 4_000, 384_000
#: More channels than any real recording (mic arrays included); usually a (channels, samples) array.
MAX_CHANNELS = 256
#: Largest accepted |sample|: 2**32 covers integer PCM stored as floats; beyond it the
#: front-end's power spectrum overflows float32 (corrupt or mis-scaled data).
MAX_ABS = float(2**32)
#: Samples (all channels) decoded per read (4 MB as float32): memory stays bounded whatever a
#: header claims; each block is resampled to the output rate before the next one is read.
_BLOCK_SAMPLES = 1 << 20

_TRUNCATED_DATA = re.compile(r"^data\s*:\s*\d+\s*\(should be", re.MULTILINE)
_HINT_FORMAT = f"emovox reads {SUPPORTED_FORMATS}; convert other formats first, e.g. with ffmpeg"
_HINT_NO_AV = ("emovox reads WAV, FLAC, OGG/Vorbis/Opus, MP3 and AIFF; M4A/AAC and MP4/MOV/WEBM/MKV need the "
               "package av (pip install av)")


def _soundfile():
    import soundfile as sf

    return sf


def check_length(n_samples: int, source: object = "<array>", rate: int = SAMPLE_RATE) -> None:
    """The one minimum-length rule of ``predict`` and ``timeline``: at least one 25 ms analysis frame."""
    if n_samples < MIN_SAMPLES * rate // SAMPLE_RATE:
        raise AudioError(source, f"audio is {1000 * n_samples / rate:.1f} ms long, shorter than one 25 ms "
                                 "analysis frame", "emotion needs at least a fraction of a second of speech")


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
    sample_rate: int | None,
    source: object = "<array>",
    target_rate: int = SAMPLE_RATE,
) -> np.ndarray:
    """Validate, down-mix and resample an array of shape (n,) or (n, channels).

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
    check_length(x.size, source, target_rate)
    return np.ascontiguousarray(x, dtype=np.float32)


def _resample(x: np.ndarray, rate_in: int, rate_out: int, source: object) -> np.ndarray:
    import soxr

    try:
        return soxr.resample(x, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)
    except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
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
    except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        rate = _declared_wav_rate(handle)
        if rate is not None:
            check_rate(rate, source)  # libsndfile's "SF_INFO struct incomplete" for a 0 Hz header
        detail = exc.error_string if isinstance(exc, sf.LibsndfileError) else type(exc).__name__
        raise AudioError(source, f"{_UNREADABLE} ({detail})", _HINT_FORMAT) from None
    try:
        check_rate(f.samplerate, source)
        _check_channels(f.channels, source)
    except AudioError:
        f.close()
        raise
    return f


_UNREADABLE = "not a readable audio file, or corrupt"


def _open_or_av(handle: Any, source: object) -> Any:
    """An open soundfile.SoundFile, or None when libsndfile cannot open the data but PyAV can.

    When neither can, libsndfile's error (with the list of formats) is raised.
    """
    try:
        return _open(handle, source)
    except AudioError as exc:
        if not exc.problem.startswith(_UNREADABLE):
            raise  # a bad rate or channel count: libsndfile read the header
        from emovox import audio_av

        if audio_av.container_format(audio_av.head(handle)) not in audio_av.FALLBACK_FORMATS:
            raise  # WAV/FLAC/OGG/AIFF are libsndfile's: its diagnosis stands
        if not audio_av.available():
            raise AudioError(source, exc.problem, _HINT_NO_AV) from None
        try:
            audio_av.read_header(handle, source)
        except AudioError as av_exc:
            if av_exc.problem.startswith("not a readable"):
                raise exc from None  # neither decoder knows it
            raise
        return None


def _declared_wav_rate(handle: Any) -> int | None:
    """The sample rate a RIFF/WAVE header declares (None when it is not one), read without libsndfile."""
    try:
        if isinstance(handle, io.BytesIO):
            head = handle.getbuffer()[:4096].tobytes()
        else:
            with open(handle, "rb") as fh:
                head = fh.read(4096)
    except (OSError, ValueError, TypeError):
        return None
    at = head.find(b"fmt ", 12)
    if not head.startswith((b"RIFF", b"RF64")) or at < 0 or len(head) < at + 16:
        return None
    return int.from_bytes(head[at + 12:at + 16], "little")


def _blocks(f: Any, source: object, block_frames: int) -> Iterator[np.ndarray]:
    """Consecutive mono float32 blocks of an open file at its own rate (checked for NaN/range)."""
    done = 0
    while True:
        try:
            chunk = f.read(block_frames, dtype="float32", always_2d=True)
        except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            raise AudioError(source, f"decoding failed after {done / f.samplerate:.1f} s "
                                     f"({type(exc).__name__}: {exc})", "the file is corrupt") from None
        if len(chunk):
            yield _to_mono(chunk, source, done / f.samplerate)
        done += len(chunk)
        if len(chunk) < block_frames:
            return


def _read(handle: Any, source: object, budget: DecodeBudget | None = None,
          target_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a whole file/stream to mono float32 at ``target_rate``, resampling block by block.

    Peak memory is the output at ``target_rate`` plus one input block, whatever the input rate.
    Every failure is AudioError (:class:`AudioTooLong` past the budget); ``budget.cancel`` runs
    between blocks.
    """
    budget = budget or DecodeBudget()
    f = _open_or_av(handle, source)
    if f is None:
        from emovox import audio_av

        return audio_av.decode(handle, source, budget, target_rate)
    with f:
        header = _header(f)
        check_budget(header, budget, source)
        out = BlockOutput(header, budget, target_rate, source)
        read = 0
        for block in _blocks(f, source, max(1, _BLOCK_SAMPLES // f.channels)):
            if budget.cancel is not None:
                budget.cancel()
            read += block.size
            if budget.max_input_samples is not None and read * f.channels > budget.max_input_samples:
                raise AudioTooLong(source, f"audio holds more than {budget.max_input_samples} samples at "
                                           f"{f.samplerate} Hz (this server's decoding budget)", HINT_SMALLER)
            out.add(block)
        if _looks_truncated(f, header.frames, read):
            raise AudioError(source, "file is truncated or corrupt (fewer samples than its header declares)",
                             "re-export or re-download it")
        return out.finish()


def _looks_truncated(f, expected: int, got: int) -> bool:
    if expected > 0 and got < expected:
        return True
    # libsndfile silently shortens a WAV whose data chunk runs past the end of the file, but
    # logs e.g. "data : 32000 (should be 15978)"; that is a truncated file, not a short one.
    info = (getattr(f, "extra_info", "") or "").lower()
    return bool(_TRUNCATED_DATA.search(info)) or "exceeds file length" in info


def load_audio(path: str | os.PathLike, target_rate: int = SAMPLE_RATE, *,
               max_seconds: float | None = None, budget: DecodeBudget | None = None) -> np.ndarray:
    """Load any supported file (:data:`SUPPORTED_FORMATS`) as mono float32 at ``target_rate``.

    ``max_seconds`` (or a whole :class:`DecodeBudget`) stops decoding with :class:`AudioTooLong`
    once the audio is longer than that.
    """
    p = Path(path)
    budget = _merge(budget, max_seconds)
    try:
        _check_path(p)
        return _checked(_read(str(p), p, budget, target_rate), p, target_rate)
    except (AudioError, Cancelled):
        raise
    except Exception as exc:  # nothing but AudioError leaves this function  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise AudioError(p, f"unexpected failure while reading ({type(exc).__name__})") from None


def decode_bytes(data: bytes, name: str = "<upload>", target_rate: int = SAMPLE_RATE, *,
                 max_seconds: float | None = None, budget: DecodeBudget | None = None) -> np.ndarray:
    """Decode an in-memory audio file (e.g. an HTTP upload); never touches the file system.

    The header is checked against the budget before decoding, and the budget again while decoding
    block by block (a guard against decompression bombs and lying headers).
    """
    budget = _merge(budget, max_seconds)
    try:
        if not data:
            raise AudioError(name, "upload is empty (0 bytes)")
        return _checked(_read(io.BytesIO(data), name, budget, target_rate), name, target_rate)
    except (AudioError, Cancelled):
        raise
    except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise AudioError(name, f"unexpected failure while decoding ({type(exc).__name__})") from None


def read_header(data: bytes | str | os.PathLike, source: object = "<upload>") -> AudioHeader:
    """The header of an in-memory file (bytes) or a path, with its rate and channels checked."""
    handle: Any = io.BytesIO(data) if isinstance(data, (bytes, bytearray, memoryview)) else str(data)
    if not isinstance(handle, io.BytesIO):
        _check_path(Path(handle))
    elif not data:
        raise AudioError(source, "upload is empty (0 bytes)")
    try:
        f = _open_or_av(handle, source)
        if f is None:
            from emovox import audio_av

            return audio_av.read_header(handle, source)
        with f:
            return _header(f)
    except (AudioError, Cancelled):
        raise
    except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise AudioError(source, f"unexpected failure while reading the header ({type(exc).__name__})") from None


def _header(f: Any) -> AudioHeader:
    return AudioHeader(int(f.samplerate), int(f.channels), max(0, int(f.frames)), str(f.format))


def _merge(budget: DecodeBudget | None, max_seconds: float | None) -> DecodeBudget:
    budget = budget or DecodeBudget()
    if max_seconds is not None and (budget.max_seconds is None or max_seconds < budget.max_seconds):
        budget = DecodeBudget(max_seconds, budget.max_input_samples, budget.cancel)
    return budget


def _checked(x: np.ndarray, source: object, rate: int) -> np.ndarray:
    if x.size == 0:
        raise AudioError(source, "no audio samples could be decoded (empty or corrupt file)", "re-export it or skip it")
    check_length(x.size, source, rate)
    return x


def audio_duration(path: str | os.PathLike) -> float:
    """Duration in seconds from the header (cheap; does not decode)."""
    return read_header(path, Path(path)).seconds


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
    f = _open_or_av(str(p), p)
    if f is None:  # PyAV formats (M4A, video tracks): decoded whole at 16 kHz, then cut in blocks
        from emovox import audio_av

        wave = _checked(audio_av.decode(str(p), p, DecodeBudget(), target_rate), p, target_rate)
        step = max(1, int(block_seconds * target_rate))
        yield from (wave[i:i + step] for i in range(0, wave.size, step))
        return
    with f:
        rate = f.samplerate
        try:
            stream = soxr.ResampleStream(rate, target_rate, 1, dtype="float32") if rate != target_rate else None
        except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
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
        check_length(total * target_rate // rate, p, target_rate)  # the rule predict applies too
        if _looks_truncated(f, expected, total):
            # a long recording cut short (a crashed recorder) is still worth its first part
            log.warning("%s: file is truncated or corrupt; using the %.1f s that could be read", p, total / rate)
        assert pending is not None  # total > 0: at least one block was read
        yield from _emit(stream, pending, last=True)


def _emit(stream: Any, mono: np.ndarray, last: bool) -> Iterator[np.ndarray]:
    out = stream.resample_chunk(mono, last=last) if stream is not None else mono
    if out.size:
        yield np.ascontiguousarray(out, dtype=np.float32)
