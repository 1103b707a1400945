"""Decoding budgets: what a header declares, what one decode may cost, and the 16 kHz output buffer.

Used by :mod:`emovox.audio` (soundfile) and :mod:`emovox.audio_av` (PyAV): both check the
:class:`DecodeBudget` from the header before decoding, then feed each decoded block through
:class:`BlockOutput`, which resamples it to the output rate at once and enforces the budget's
length as it grows, so nothing is ever held at the input rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from emovox.errors import AudioError, AudioTooLong

SAMPLE_RATE = 16_000
#: Output samples reserved up front when no budget bounds the length (60 s at 16 kHz; doubled as needed).
_INITIAL_OUTPUT = 60 * SAMPLE_RATE
HINT_SMALLER = "send a shorter recording, or convert it to 16 kHz mono first (e.g. with ffmpeg or sox)"


@dataclass(frozen=True)
class AudioHeader:
    """What a container header declares (cheap to read; ``frames`` may lie in a corrupt file)."""

    rate: int
    channels: int
    frames: int
    format: str = ""

    @property
    def seconds(self) -> float:
        return self.frames / self.rate


@dataclass(frozen=True)
class DecodeBudget:
    """What one decode may cost: ``max_seconds`` of output, ``max_input_samples`` (frames x
    channels at the input rate: the decoding work), and ``cancel``, called between blocks (it
    raises to stop the work, e.g. :class:`emovox.errors.Cancelled` when a deadline passed)."""

    max_seconds: float | None = None
    max_input_samples: int | None = None
    cancel: Callable[[], None] | None = None


def check_budget(header: AudioHeader, budget: DecodeBudget, source: object = "<upload>") -> None:
    """Refuse from the header alone what would exceed ``budget`` (:class:`AudioTooLong`).

    Decoding checks the same limits again as it goes: a header can under-declare.
    """
    if budget.max_seconds is not None and header.seconds > budget.max_seconds:
        raise AudioTooLong(source, f"audio is {header.seconds:.0f} s long, longer than the limit of "
                                   f"{budget.max_seconds:g} s", "cut the recording or use the command line")
    work = header.frames * header.channels
    if budget.max_input_samples is not None and work > budget.max_input_samples:
        raise AudioTooLong(source, f"audio holds {work} samples ({header.channels} channel(s) at {header.rate} Hz), "
                                   f"more than this server decodes per request ({budget.max_input_samples})",
                           HINT_SMALLER)


class BlockOutput:
    """A growing 16 kHz output buffer fed block by block through a streaming resampler.

    Its capacity is reserved with ``np.empty`` (untouched pages cost no memory) from the budget or
    the header, and doubled when a lying header under-declares; nothing is kept at the input rate.
    """

    def __init__(self, header: AudioHeader, budget: DecodeBudget, target_rate: int, source: object) -> None:
        import soxr

        self.source, self.target_rate, self.rate = source, target_rate, header.rate
        self.limit = None if budget.max_seconds is None else int(budget.max_seconds * target_rate)
        self.max_seconds = budget.max_seconds
        guess = header.frames * target_rate // max(1, header.rate) + 4096
        cap = min(guess, _INITIAL_OUTPUT) if self.limit is None else min(guess, self.limit + 4096)
        self.buf, self.n = np.empty(max(cap, 4096), np.float32), 0
        try:
            self.stream = (soxr.ResampleStream(header.rate, target_rate, 1, dtype="float32", quality="HQ")
                           if header.rate != target_rate else None)
        except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            raise AudioError(source, f"cannot resample from {header.rate} Hz ({exc})") from None

    def add(self, mono: np.ndarray, last: bool = False) -> None:
        y = mono if self.stream is None else self.stream.resample_chunk(mono, last=last)
        if self.n + y.size > self.buf.size:
            grown = np.empty(max(2 * self.buf.size, self.n + y.size), np.float32)
            grown[:self.n] = self.buf[:self.n]
            self.buf = grown
        self.buf[self.n:self.n + y.size] = y
        self.n += y.size
        if self.limit is not None and self.n > self.limit:
            raise AudioTooLong(self.source, f"audio is longer than the limit of {self.max_seconds:g} s",
                               "cut the recording, or use `emovox timeline` for long recordings")

    def finish(self) -> np.ndarray:
        if self.stream is not None:
            self.add(np.zeros(0, np.float32), last=True)
        return self.buf[:self.n]
