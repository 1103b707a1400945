"""The decoder behind soundfile: PyAV (FFmpeg inside its wheels; no system ffmpeg needed).

:mod:`emovox.audio` tries soundfile (libsndfile: WAV, FLAC, OGG/Vorbis/Opus, MP3, AIFF) first and
comes here for what libsndfile cannot open: M4A/AAC, ALAC, AMR-NB/WB (phone voice recorders), WMA,
WavPack, the audio track of MP4/MOV/3GP/WEBM/MKV/WMV videos: the containers :func:`container_format` knows. The same guarantees hold: the rate and channel count are
checked, the declared length and decoding work are checked against the budget before decoding,
decoding goes packet by packet straight to 16 kHz mono (peak memory is the output), the budget
and the cancel hook are checked as it goes, and every failure is an :class:`AudioError` whose
message carries no object addresses or paths.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from emovox.audio_arrays import check_channel, check_channels, check_rate, to_mono
from emovox.audio_budget import AudioHeader, BlockOutput, check_budget
from emovox.errors import AudioError, AudioTooLong

#: Decoded frames (packets) between budget/cancel checks.
_CHECK_EVERY = 64


def available() -> bool:
    """Whether PyAV is installed."""
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


#: Container signatures -> the FFmpeg demuxer forced for them. Only these are ever opened, and
#: never by probing: FFmpeg's playlist demuxers (HLS, concat, ...) would follow references in a
#: hostile upload to other files or URLs.
_MOV_ATOMS = (b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip", b"pnot")
#: The ASF header object's GUID: WMA/WMV (Windows Sound Recorder before Windows 10, call recorders).
_ASF_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")


def container_format(head: bytes) -> str | None:
    """The FFmpeg demuxer for data starting with ``head`` (>= 12 bytes), or None if not ours."""
    if head[4:8] in _MOV_ATOMS:
        return "mov"  # MP4, M4A, MOV, 3GP
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"  # MKV, WEBM
    if len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xF6) == 0xF0:
        return "aac"  # ADTS
    if head.startswith(b"ID3") or (len(head) >= 2 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0):
        return "mp3"
    if head.startswith(b"#!AMR"):
        return "amr"  # AMR-NB / AMR-WB voice recordings ("#!AMR\n", "#!AMR-WB\n")
    for magic, name in ((b"OggS", "ogg"), (b"FORM", "aiff"), (b"RIFF", "wav"), (b"RF64", "wav"), (b"fLaC", "flac"),
                        (b"caff", "caf"), (_ASF_GUID, "asf"), (b"wvpk", "wv")):
        if head.startswith(magic):
            return name
    return None


#: Containers PyAV is asked to decode when libsndfile cannot (WAV/FLAC/OGG/AIFF stay libsndfile's).
FALLBACK_FORMATS = ("mov", "matroska", "aac", "mp3", "caf", "amr", "asf", "wv")
#: What users call these containers, for messages.
_NAMES = {"mov": "MP4/M4A/MOV", "matroska": "MKV/WEBM", "aac": "AAC", "mp3": "MP3", "caf": "CAF", "amr": "AMR",
          "asf": "WMA/WMV", "wv": "WavPack"}


def head(handle: Any) -> bytes:
    if isinstance(handle, io.BytesIO):
        return handle.getbuffer()[:64].tobytes()
    try:
        with open(handle, "rb") as fh:
            return fh.read(64)
    except (OSError, TypeError, ValueError):
        return b""


def _open(handle: Any, source: object):
    import av

    fmt = container_format(head(handle))
    if fmt is None:
        raise AudioError(source, "not a readable audio or video file (unknown container)")
    if isinstance(handle, io.BytesIO):
        handle.seek(0)
    elif isinstance(handle, bytes):  # a file name that is not UTF-8 (audio._handle): PyAV takes a file object
        handle = open(handle, "rb")  # noqa: SIM115 - the container reads it until it is closed and collected
    try:
        container = av.open(handle, mode="r", format=fmt, metadata_errors="ignore",
                            options={"protocol_whitelist": "file,pipe"})
    except Exception as exc:  # av.FFmpegError, ValueError, OSError, ...  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise AudioError(source, f"not a readable audio or video file: its {_NAMES.get(fmt, fmt)} data cannot be "
                                 f"decoded ({type(exc).__name__})", "truncated or damaged? copy or export it again") from None
    if not container.streams.audio:
        container.close()
        raise AudioError(source, "the file has no audio track (video only)", "use a recording with sound")
    return container


def _header(container: Any, source: object):

    stream = container.streams.audio[0]
    ctx = stream.codec_context
    rate = check_rate(int(ctx.sample_rate or stream.rate or 0), source)
    channels = int(ctx.channels or 0)
    check_channels(channels, source)
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / 1_000_000  # AV_TIME_BASE
    else:
        seconds = 0.0
    frames = int(max(0.0, seconds) * rate) if np.isfinite(seconds) else 0
    return AudioHeader(rate, channels, frames, str(container.format.name).split(",")[0])


def read_header(handle: Any, source: object):
    """The header of a file PyAV opens (rate and channels checked)."""
    container = _open(handle, source)
    try:
        return _header(container, source)
    except AudioError:
        raise
    except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise AudioError(source, f"unreadable audio header ({type(exc).__name__})") from None
    finally:
        container.close()


def decode(handle: Any, source: object, budget: Any, target_rate: int, channel: int | None = None) -> np.ndarray:
    """The first audio track of ``handle`` as mono float32 at ``target_rate`` within ``budget``: the
    down-mix, or channel ``channel`` (0-based) alone."""
    import av


    container = _open(handle, source)
    try:
        header = _header(container, source)
        check_budget(header, budget, source)
        check_channel(channel, header.channels, source)
        stream = container.streams.audio[0]
        resampler = None  # made for the first frame's layout; channels are averaged as for soundfile
        out = BlockOutput(header.__class__(target_rate, 1, header.frames * target_rate // header.rate),
                      budget, target_rate, source)
        read, count = 0, 0
        for frame in container.decode(stream):
            read += frame.samples * max(1, len(frame.layout.channels))
            if frame.sample_rate and frame.sample_rate != header.rate:
                check_rate(frame.sample_rate, source)  # a rate change mid-stream: still a sane one
            if resampler is None:
                resampler = av.AudioResampler(format="flt", layout=frame.layout.name, rate=target_rate)
            for piece in resampler.resample(frame):
                out.add(_checked(piece, source, channel))
            count += 1
            if count % _CHECK_EVERY == 0 and budget.cancel is not None:
                budget.cancel()
            if budget.max_input_samples is not None and read > budget.max_input_samples:
                raise AudioTooLong(source, f"audio holds more than {budget.max_input_samples} samples "
                                           "(this server's decoding budget)", "send a shorter recording")
        for piece in resampler.resample(None) if resampler is not None else ():
            out.add(_checked(piece, source, channel))
        return out.finish()
    except AudioError:
        raise
    except Exception as exc:  # av.FFmpegError mid-stream, ValueError from odd layouts, ...
        if type(exc).__name__ == "Cancelled":
            raise
        raise AudioError(source, f"decoding failed ({type(exc).__name__}); the file is corrupt or truncated",
                         "re-export it") from None
    finally:
        container.close()


def _checked(piece: Any, source: object, channel: int | None = None) -> np.ndarray:
    """A packed float frame -> (n, channels) -> mono mean (or channel ``channel``), checked for
    NaN/range like soundfile blocks."""
    channels = max(1, len(piece.layout.channels))
    x = np.ascontiguousarray(piece.to_ndarray(), dtype=np.float32).reshape(-1, channels)
    if channel is not None:
        check_channel(channel, channels, source)  # a layout change mid-stream
        x = x[:, channel:channel + 1]
    return to_mono(x, source)
