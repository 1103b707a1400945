"""Where a request's time went, sent back in a standard ``Server-Timing`` response header.

Each pool job adds its stage to the request's record: ``header``, ``decode``, ``infer`` (wait =
time waiting for a worker, including time paused for fairer jobs; run = wall time from its first
slot to its end; cpu = the CPU seconds it used), e.g.::

    Server-Timing: decode-wait;dur=0.4, decode;dur=3.1, infer-wait;dur=12.0, infer;dur=48.2, cpu;dur=47.9

(milliseconds). ``benchmarks/load.py`` reads it to split latency into queueing and work. The
header says nothing about the request that the client does not already know.
"""

from __future__ import annotations

import contextvars
from typing import Any, Awaitable, Callable

Message = dict[str, Any]
_record: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("emovox_timing", default=None)


def record(stage: str, wait: float, run: float, cpu: float) -> None:
    """Add a job's seconds to the current request's record (no-op outside requests)."""
    rec = _record.get()
    if rec is None:
        return
    for key, value in ((f"{stage}-wait", wait), (stage, run), ("cpu", cpu)):
        rec[key] = rec.get(key, 0.0) + value


def header_value(rec: dict[str, float]) -> str:
    return ", ".join(f"{key};dur={1000 * value:.1f}" for key, value in rec.items())


def parse(value: str) -> dict[str, float]:
    """``Server-Timing`` text -> {name: milliseconds} (what :func:`header_value` writes)."""
    out: dict[str, float] = {}
    for part in value.split(","):
        name, _, rest = part.strip().partition(";dur=")
        try:
            out[name] = float(rest)
        except ValueError:
            continue
    return out


class ServerTiming:
    """ASGI middleware: a fresh record per HTTP request, sent as ``Server-Timing`` when non-empty."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rec: dict[str, float] = {}
        token = _record.set(rec)

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start" and rec:
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"server-timing", header_value(rec).encode())]}
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            _record.reset(token)
