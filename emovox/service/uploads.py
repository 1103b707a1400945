"""Upload checks for the HTTP service: size cap, audio sniffing, bounded decoding.

Request data is only ever bytes in memory: the client's file name is used as a label in
messages (sanitised), never as a path.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

import numpy as np

from emovox.audio import decode_bytes
from emovox.errors import AudioError

SUPPORTED = "WAV, FLAC, OGG/Vorbis/Opus, AIFF or MP3"
_MAGIC = (
    (b"RIFF", "wav"), (b"RIFX", "wav"), (b"RF64", "wav"), (b"fLaC", "flac"), (b"OggS", "ogg"),
    (b"FORM", "aiff"), (b"ID3", "mp3"),
)
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")


class UploadProblem(Exception):
    """An upload the service refuses; carries the HTTP status and a JSON-able error body."""

    def __init__(self, status: int, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.hint = status, code, message, hint

    def body(self) -> dict:
        err = {"code": self.code, "message": self.message}
        if self.hint:
            err["hint"] = self.hint
        return {"error": err}


def safe_name(filename: str | None) -> str:
    """A printable label for messages from a client-supplied file name (never used as a path)."""
    base = (filename or "upload").replace("\\", "/").rsplit("/", 1)[-1]
    base = _SAFE_NAME.sub("_", base).strip(" .") or "upload"
    return base[:80]


def sniff(data: bytes) -> str | None:
    """The audio container of ``data`` from its first bytes, or None when it is not audio we read."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if len(data) >= 2 and data[0] == 0xFF and (data[1] & 0xE0) == 0xE0:
        return "mp3"  # MPEG audio frame sync
    return None


@dataclass
class DecodedUpload:
    name: str
    samples: np.ndarray  # mono float32 16 kHz
    duration: float


def check_upload(data: bytes, filename: str | None, content_type: str | None) -> str:
    """Validate an upload before decoding; returns its safe name. Raises UploadProblem (415/422)."""
    name = safe_name(filename)
    if not data:
        raise UploadProblem(422, "empty_upload", f"{name}: the uploaded file is empty (0 bytes)",
                            "send the audio file's content in the 'file' field")
    if sniff(data) is None:
        declared = (content_type or "unknown").split(";")[0].strip()
        raise UploadProblem(415, "unsupported_media_type",
                            f"{name}: not an audio file emovox can read (declared type {declared!r})",
                            f"send {SUPPORTED}; convert other formats first, e.g. with ffmpeg")
    return name


def header_duration(data: bytes, name: str) -> float:
    """Duration from the container header (cheap); raises UploadProblem(422) when unreadable."""
    import soundfile as sf

    try:
        info = sf.info(io.BytesIO(data))
    except Exception as exc:
        raise UploadProblem(422, "undecodable_audio", f"{name}: audio header cannot be read ({exc})",
                            "the file is corrupt or truncated; re-export it") from None
    return info.frames / info.samplerate if info.samplerate else 0.0


def decode_upload(data: bytes, name: str, max_seconds: float) -> DecodedUpload:
    """Decode an already sniffed upload to 16 kHz mono, refusing audio longer than ``max_seconds``."""
    duration = header_duration(data, name)
    if duration > max_seconds:
        raise UploadProblem(413, "audio_too_long",
                            f"{name}: audio is {duration:.0f} s long, longer than this server's limit of "
                            f"{max_seconds:.0f} s", "cut the recording or use the command line")
    try:
        samples = decode_bytes(data, name, max_seconds=max_seconds)  # second line of defence
    except AudioError as exc:
        if exc.problem.startswith("audio is longer than the limit"):
            raise UploadProblem(413, "audio_too_long", f"{exc.source}: {exc.problem}",
                                "cut the recording or use the command line") from None
        raise UploadProblem(422, "undecodable_audio", f"{exc.source}: {exc.problem}", exc.hint) from None
    return DecodedUpload(name, samples, samples.size / 16_000)
