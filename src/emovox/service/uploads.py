"""Upload checks for the HTTP service: audio sniffing, bounded decoding, the error shape.

The client's file name is used as a label in messages (sanitised), never as a path. Upload
bodies are held in memory up to the size cap (:mod:`emovox.service.limits`); the multipart
parser may spool large parts to the temp dir (python-multipart's default), which Starlette
deletes when the request ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from emovox.audio import (SAMPLE_RATE, SUPPORTED_FORMATS, AudioHeader, DecodeBudget, check_budget, decode_bytes,
                          read_header)
from emovox.audio_arrays import downmix
from emovox.audio_av import container_format
from emovox.errors import AudioError, AudioTooLong

SUPPORTED = SUPPORTED_FORMATS
_MAGIC = (
    (b"RIFF", "wav"), (b"RIFX", "wav"), (b"RF64", "wav"), (b"fLaC", "flac"), (b"OggS", "ogg"),
    (b"FORM", "aiff"), (b"ID3", "mp3"),
)
#: The service gives a speaker per channel to two-channel uploads only (a call's two sides), so that a
#: request never costs more than two mono timelines.
SPLIT_CHANNELS = 2
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
    return container_format(data[:64])  # MP4/M4A/MOV, MKV/WEBM, ADTS AAC, MPEG audio (PyAV)


@dataclass
class DecodedUpload:
    name: str
    samples: np.ndarray  # mono float32 16 kHz
    duration: float
    #: (samples, 2) float32 16 kHz, each channel alone, when asked for and the file has 2 channels
    channels: np.ndarray | None = None
    #: channels of the file
    source_channels: int = 1


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


async def read_upload(request: Any, file: Any) -> tuple[bytes, str]:
    """The request's one uploaded file: its bytes and safe name (:func:`check_upload`). Several
    files in ``file`` are refused (400) rather than all but one silently dropped."""
    files = (await request.form()).getlist("file")  # the form FastAPI has parsed already (cached)
    if len(files) > 1:
        raise UploadProblem(400, "one_file_per_request",
                            f"{len(files)} files in the 'file' field; the service scores one recording per request",
                            "send each file in its own request (emovox predict takes whole folders)")
    data = await file.read()
    return data, check_upload(data, file.filename, file.content_type)


def upload_header(data: bytes, name: str, max_seconds: float, max_input_samples: int | None = None) -> AudioHeader:
    """The upload's header, checked against the budget (UploadProblem 413/422) without decoding."""
    try:
        header = read_header(data, name)
        check_budget(header, DecodeBudget(max_seconds, max_input_samples), name)
    except AudioTooLong as exc:
        raise UploadProblem(413, "audio_too_long", f"{exc.source}: {exc.problem}", exc.hint) from None
    except AudioError as exc:
        raise UploadProblem(422, "undecodable_audio", f"{exc.source}: {exc.problem}", exc.hint) from None
    return header


def decode_upload(data: bytes, name: str, max_seconds: float, max_input_samples: int | None = None,
                  cancel: Callable[[], None] | None = None, sides: bool = False) -> DecodedUpload:
    """Decode an already sniffed upload to 16 kHz mono within its budget (checked from the header
    first, then block by block); ``cancel`` runs between blocks. Raises UploadProblem (413/422).
    ``sides``: also each channel alone (a call recorded one side per channel, :mod:`emovox.channels`)
    when the file has :data:`SPLIT_CHANNELS` channels (at most twice a mono request's work)."""
    budget = DecodeBudget(max_seconds, max_input_samples, cancel)
    channels = None
    try:
        header = read_header(data, name)
        check_budget(header, budget, name)
        if sides and header.channels == SPLIT_CHANNELS:  # each side once; the mix from them, not a third decode
            columns = [decode_bytes(data, name, budget=budget, channel=c) for c in range(header.channels)]
            n = min(c.size for c in columns)
            channels = np.stack([c[:n] for c in columns], axis=1)
            samples = downmix(channels)
        else:
            samples = decode_bytes(data, name, budget=budget)
    except AudioTooLong as exc:
        raise UploadProblem(413, "audio_too_long", f"{exc.source}: {exc.problem}", exc.hint) from None
    except AudioError as exc:
        raise UploadProblem(422, "undecodable_audio", f"{exc.source}: {exc.problem}", exc.hint) from None
    return DecodedUpload(name, samples, samples.size / SAMPLE_RATE, channels, header.channels)
