"""Progress of an archive run: a tqdm bar on a terminal, plain periodic lines in logs."""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    """Progress of a run: ``bar`` True = a tqdm bar (files/s, ETA), False = silent, None = the bar
    on a terminal and otherwise a plain line every ``every`` seconds (logs, batch jobs); ``desc``
    starts each line (``predicting: 1200/10000 files (12%), 35.2 files/s, ETA 4:10``)."""

    def __init__(self, total: int | None, initial: int = 0, bar: bool | None = None, every: float = 10.0,
                 stream: Any = None, desc: str = "predicting") -> None:
        self.stream = stream or sys.stderr
        self.desc = desc
        self.total, self.count, self.every = total, initial, every
        self.started = time.monotonic()
        self._done_at_start = initial
        self._last = self.started
        self.quiet = bar is False
        self._bar = None
        if bar or (bar is None and self.stream.isatty()):
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=desc, unit="file", file=self.stream,
                             dynamic_ncols=True, smoothing=0.1)

    def update(self, n: int = 1) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
            return
        if self.quiet:
            return
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            print(self.line(now), file=self.stream, flush=True)

    def line(self, now: float | None = None, eta: bool = True) -> str:
        elapsed = (now or time.monotonic()) - self.started
        rate = (self.count - self._done_at_start) / elapsed if elapsed > 0 else 0.0
        text = f"{self.desc}: {self.count}"
        if self.total:
            text += f"/{self.total} files ({100 * self.count / self.total:.0f}%)"
        else:
            text += " files"
        text += f", {rate:.1f} files/s"
        if eta and self.total and rate > 0 and self.count < self.total:
            text += f", ETA {_clock((self.total - self.count) / rate)}"
        return text

    def close(self, complete: bool = True) -> None:
        """The last line: ``, done``, or ``, stopped`` for a run that did not finish (interrupted, failed)."""
        if self._bar is not None:
            self._bar.close()
        elif self.count > self._done_at_start and not self.quiet:
            print(self.line(eta=complete) + (", done" if complete else ", stopped"), file=self.stream, flush=True)


def _clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


__all__ = ["Progress"]
