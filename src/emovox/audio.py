"""Audio input: any supported file or array -> 16 kHz mono float32.

One entry point per source (:func:`load_audio` for files, :func:`decode_bytes` for uploads,
:func:`prepare_array` for in-memory arrays, :func:`iter_blocks` for long recordings,
:func:`read_header` for what a header declares). Every failure surfaces as
:class:`emovox.errors.AudioError`; nothing else escapes.

Formats (:data:`SUPPORTED_FORMATS`): soundfile (libsndfile) first, then PyAV (FFmpeg inside its
wheels, :mod:`emovox.audio_av`) for M4A/AAC, AMR voice recordings and the audio track of MP4/MOV/3GP/WEBM/MKV
videos.

Limits that keep hostile or broken input from exhausting memory or poisoning the model:
sample rates within [:data:`MIN_RATE`, :data:`MAX_RATE`], at most :data:`MAX_CHANNELS`
channels, sample magnitudes up to :data:`MAX_ABS` (float audio lives in [-1, 1]; integer PCM
stored as floats stays far below). Files are decoded block by block and each block is resampled
to 16 kHz before the next is read, so peak memory is the 16 kHz output plus one block whatever
the input rate; a :class:`DecodeBudget` (output seconds, input samples x channels, a cancel hook
run between blocks) is checked from the header before decoding and again as decoding goes.
Arrays need their sample rate; :func:`check_length` is the one minimum-length rule. The array
checks and these limits live in :mod:`emovox.audio_arrays`.
"""

from __future__ import annotations

import io
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from emovox.audio_arrays import (MAX_ABS, MAX_CHANNELS, MAX_RATE, MIN_RATE, MIN_SAMPLES, check_channel,
                                 check_channels, check_length, check_rate, prepare_array, to_mono)
from emovox.audio_budget import HINT_SMALLER, SAMPLE_RATE, AudioHeader, BlockOutput, DecodeBudget, check_budget
from emovox.errors import AudioError, AudioTooLong, Cancelled, ConfigError

log = logging.getLogger(__name__)

__all__ = ["SAMPLE_RATE", "MIN_SAMPLES", "SUPPORTED_FORMATS", "AudioHeader", "DecodeBudget", "check_budget",
           "check_length", "check_rate", "decode_bytes", "load_audio", "read_header", "prepare_array", "iter_blocks",
           "audio_duration", "MIN_RATE", "MAX_RATE", "MAX_CHANNELS", "MAX_ABS"]

SUPPORTED_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".m4a", ".aac", ".mp4",
                        ".mov", ".webm", ".mkv", ".mka", ".amr", ".3gp", ".caf", ".wma", ".wmv", ".wv",
                        # the same containers under other names (a folder walk goes by the name)
                        ".aifc", ".au", ".snd", ".w64", ".rf64", ".mp2", ".mpga", ".m4b", ".m4v", ".3g2")
#: What users can bring, for messages: soundfile reads WAV to AIFF, PyAV (FFmpeg) the rest.
SUPPORTED_FORMATS = ("WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF, M4A/AAC, AMR, WMA, WavPack and the audio track of "
                     "MP4/MOV/3GP/WEBM/MKV/WMV")
#: Samples (all channels) decoded per read (4 MB as float32): memory stays bounded whatever a
#: header claims; each block is resampled to the output rate before the next one is read.
_BLOCK_SAMPLES = 1 << 20

#: libsndfile's log line for a data chunk longer than the file. Its declared size 4294967295 (or 0) is
#: the streaming convention (``ffmpeg -f wav pipe:``, recorders that never finalise): read to the end.
_TRUNCATED_DATA = re.compile(r"^data\s*:\s*(?!4294967295\b|0\b)\d+\s*\(should be", re.MULTILINE)
_UNSIZED_DATA = re.compile(r"^data\s*:\s*0\s*$", re.MULTILINE)
_HINT_FORMAT = f"emovox reads {SUPPORTED_FORMATS}; convert other formats first, e.g. with ffmpeg"
_HINT_NO_AV = ("emovox reads WAV, FLAC, OGG/Vorbis/Opus, MP3 and AIFF; M4A/AAC, AMR, WMA, WavPack and "
               "MP4/MOV/3GP/WEBM/MKV/WMV need the package av (pip install av)")


def _soundfile():
    import soundfile as sf

    return sf


# ----------------------------------------------------------------------------------- files
#: What the readers take, said by every refusal of something else.
TAKES = "pass a path, or a numpy array of samples with its sample_rate"


def check_recording(recording: object, caller: str) -> None:
    """ConfigError unless ``recording`` is a path or a numpy array: the readers take nothing else."""
    if isinstance(recording, (str, os.PathLike, np.ndarray)):
        return
    what = f"a list of {len(recording)} items" if isinstance(recording, (list, tuple)) else type(recording).__name__
    extra = (" (file contents: emovox.audio.decode_bytes(data, name) gives 16 kHz samples)"
             if isinstance(recording, (bytes, bytearray, memoryview)) else "")
    raise ConfigError(f"{caller}() got {what}: {TAKES}{extra}")


def _check_path(path: Path) -> None:
    try:
        if not path.exists():
            if path.is_symlink():
                raise AudioError(path, f"a link to a missing file ({os.readlink(path)})", "restore the file or remove the link")
            raise AudioError(*_not_found(str(path)))
        if path.is_dir():
            raise AudioError(path, "is a directory, not an audio file",
                             "predict the files in it: emovox predict FOLDER, or in Python "
                             "emovox.archive.iter_inputs([FOLDER]) lists them for Recognizer.predict")
        if not path.is_file():
            raise AudioError(path, "is not a regular file (device, pipe or socket)", "pass an audio file")
        if not os.access(path, os.R_OK):
            raise AudioError(path, "file is not readable (permission denied)", "check its permissions")
        if path.stat().st_size == 0:
            raise AudioError(path, "file is empty (0 bytes)", "re-export or skip it")
    except (OSError, ValueError) as exc:  # name too long, permission denied on a parent, NUL byte...
        raise AudioError(path, f"cannot access the file ({getattr(exc, 'strerror', None) or exc})",
                         "check the path and its permissions") from None


def _handle(path: Path) -> str | bytes:
    """What the decoders open for ``path``: its text, or its bytes when the name is not UTF-8 (the
    undecodable bytes are surrogates in the text, which libsndfile and FFmpeg cannot take)."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return text


def _not_found(name: str) -> tuple[str, str, str]:
    """Source, problem and hint for a path that does not exist: a URL and ``-`` (standard input) are common."""
    if name == "-":
        return name, "standard input is not read", "save the audio to a file and pass its path"
    if (url := re.match(r"([A-Za-z][A-Za-z0-9+.-]+):/+", name)) is not None:  # Path("https://x") is "https:/x"
        return (f"{url.group(1)}://{name[url.end():]}", "is a URL; emovox reads local files only (it works offline)",
                "download the file and pass its path")
    if name.startswith("~"):
        return name, "file not found", "'~' is a shell shorthand that is not expanded here: give the full path " \
                                       "(in Python, os.path.expanduser(path))"
    return name, "file not found", "check the path"


def _open(handle: Any, source: object):
    """An open soundfile.SoundFile with a sane rate and channel count, else AudioError."""
    sf = _soundfile()
    try:
        f = sf.SoundFile(handle)
    except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        rate = _declared_wav_rate(handle)
        if rate is not None:
            check_rate(rate, source)  # libsndfile's "SF_INFO struct incomplete" for a 0 Hz header
        if Path(str(source)).suffix.lower() in _RAW_SUFFIXES:
            raise AudioError(source, "headerless raw PCM: the file does not say its sample rate or sample format",
                             _HINT_RAW) from None
        detail = exc.error_string if isinstance(exc, sf.LibsndfileError) else type(exc).__name__
        raise AudioError(source, f"{_UNREADABLE} ({detail})", _HINT_FORMAT) from None
    try:
        check_rate(f.samplerate, source)
        check_channels(f.channels, source)
    except AudioError:
        f.close()
        raise
    return f


_UNREADABLE = "not a readable audio file, or corrupt"
#: Headerless sample dumps (telephony systems: Asterisk's .sln, dictation and call recorders' .raw/.pcm).
_RAW_SUFFIXES = (".raw", ".pcm", ".sln", ".s16", ".l16")
_HINT_RAW = ("convert it with the settings it was recorded with, e.g. ffmpeg -f s16le -ar 8000 -ac 1 -i FILE "
             "FILE.wav; or read it with soundfile.read(FILE, samplerate=8000, channels=1, subtype='PCM_16') and "
             "predict the array with its sample_rate")


def _open_or_av(handle: Any, source: object) -> Any:
    """An open soundfile.SoundFile, or None when libsndfile cannot open the data but PyAV can.

    When libsndfile cannot and the data's signature is one FFmpeg's containers (:data:`emovox.audio_av.
    FALLBACK_FORMATS`), PyAV's diagnosis is raised (it names the container); otherwise libsndfile's,
    with the list of formats.
    """
    try:
        f = _open(handle, source)
    except AudioError as exc:
        if not exc.problem.startswith(_UNREADABLE):
            raise  # a bad rate or channel count: libsndfile read the header
        from emovox import audio_av

        if audio_av.container_format(audio_av.head(handle)) not in audio_av.FALLBACK_FORMATS:
            raise  # WAV/FLAC/OGG/AIFF are libsndfile's: its diagnosis stands
        if not audio_av.available():
            raise AudioError(source, exc.problem, _HINT_NO_AV) from None
        audio_av.read_header(handle, source)  # its signature is FFmpeg's: PyAV's diagnosis names the container
        return None
    if f.frames == 0 and _UNSIZED_DATA.search(getattr(f, "extra_info", "") or ""):
        from emovox import audio_av  # a WAV whose header says 0 bytes of data, followed by data: FFmpeg reads to the end

        if audio_av.available():
            f.close()
            return None
    return f


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


def _blocks(f: Any, source: object, block_frames: int, channel: int | None = None) -> Iterator[np.ndarray]:
    """Consecutive mono float32 blocks of an open file at its own rate (checked for NaN/range):
    the down-mix, or channel ``channel`` (0-based) alone."""
    done = 0
    while True:
        try:
            chunk = f.read(block_frames, dtype="float32", always_2d=True)
        except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            raise AudioError(source, f"decoding failed after {done / f.samplerate:.1f} s "
                                     f"({type(exc).__name__}: {exc})", "the file is corrupt") from None
        if len(chunk):
            yield to_mono(chunk if channel is None else chunk[:, channel:channel + 1], source, done / f.samplerate)
        done += len(chunk)
        if len(chunk) < block_frames:
            return


def _read(handle: Any, source: object, budget: DecodeBudget | None = None,
          target_rate: int = SAMPLE_RATE, channel: int | None = None) -> np.ndarray:
    """Decode a whole file/stream to mono float32 at ``target_rate`` (the down-mix, or channel
    ``channel`` alone), resampling block by block.

    Peak memory is the output at ``target_rate`` plus one input block, whatever the input rate.
    Every failure is AudioError (:class:`AudioTooLong` past the budget); ``budget.cancel`` runs
    between blocks.
    """
    budget = budget or DecodeBudget()
    f = _open_or_av(handle, source)
    if f is None:
        from emovox import audio_av

        return audio_av.decode(handle, source, budget, target_rate, channel)
    with f:
        header = _header(f)
        check_budget(header, budget, source)
        check_channel(channel, header.channels, source)
        out = BlockOutput(header, budget, target_rate, source)
        read = 0
        for block in _blocks(f, source, max(1, _BLOCK_SAMPLES // f.channels), channel):
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
        return _checked(_read(_handle(p), p, budget, target_rate), p, target_rate)
    except (AudioError, Cancelled):
        raise
    except Exception as exc:  # nothing but AudioError leaves this function  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise AudioError(p, f"unexpected failure while reading ({type(exc).__name__})") from None


def decode_bytes(data: bytes, name: str = "<upload>", target_rate: int = SAMPLE_RATE, *,
                 max_seconds: float | None = None, budget: DecodeBudget | None = None,
                 channel: int | None = None) -> np.ndarray:
    """Decode an in-memory audio file (e.g. an HTTP upload); never touches the file system.

    The header is checked against the budget before decoding, and the budget again while decoding
    block by block (a guard against decompression bombs and lying headers). ``channel``
    (0-based): that channel alone instead of the down-mix.
    """
    budget = _merge(budget, max_seconds)
    try:
        if not data:
            raise AudioError(name, "upload is empty (0 bytes)")
        return _checked(_read(io.BytesIO(data), name, budget, target_rate, channel), name, target_rate)
    except (AudioError, Cancelled):
        raise
    except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise AudioError(name, f"unexpected failure while decoding ({type(exc).__name__})") from None


def read_header(data: bytes | str | os.PathLike, source: object = "<upload>") -> AudioHeader:
    """The header of an in-memory file (bytes) or a path, with its rate and channels checked."""
    handle: Any
    if isinstance(data, (bytes, bytearray, memoryview)):
        if not data:
            raise AudioError(source, "upload is empty (0 bytes)")
        handle = io.BytesIO(data)
    else:
        _check_path(Path(data))
        handle = _handle(Path(data))
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
    path: str | os.PathLike, block_seconds: float = 60.0, target_rate: int = SAMPLE_RATE, channel: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield consecutive mono float32 blocks at ``target_rate`` without loading the whole file.

    ``channel`` (0-based): that channel alone instead of the down-mix (one side of a call recorded
    on two channels, :mod:`emovox.channels`); :class:`AudioError` when the file has fewer.

    Memory stays O(block): the file is read block by block and resampled with a streaming
    resampler, so an hour-long recording never sits in memory at once. A truncated file (fewer
    samples than its header declares) yields what can be read and logs a warning.
    """
    import soxr

    p = Path(path)
    _check_path(p)
    if not (isinstance(block_seconds, (int, float)) and block_seconds > 0):
        raise AudioError(p, f"block_seconds must be a positive number, got {block_seconds!r}")
    handle = _handle(p)
    f = _open_or_av(handle, p)
    if f is None:  # PyAV formats (M4A, video tracks): decoded whole at 16 kHz, then cut in blocks
        from emovox import audio_av

        wave = _checked(audio_av.decode(handle, p, DecodeBudget(), target_rate, channel), p, target_rate)
        step = max(1, int(block_seconds * target_rate))
        yield from (wave[i:i + step] for i in range(0, wave.size, step))
        return
    with f:
        rate = f.samplerate
        check_channel(channel, f.channels, p)
        try:
            stream = soxr.ResampleStream(rate, target_rate, 1, dtype="float32") if rate != target_rate else None
        except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            raise AudioError(p, f"cannot resample from {rate} Hz ({exc})") from None
        block = max(1, int(block_seconds * rate))
        total, expected = 0, f.frames
        pending: np.ndarray | None = None
        for mono in _blocks(f, p, block, channel):
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
