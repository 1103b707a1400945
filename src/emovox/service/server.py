"""uvicorn set up for a service that must not be held open by idle or slow clients.

uvicorn times out idle keep-alive connections only *after* a first response: a connection that
never sends a request, or sends its headers one byte at a time (slowloris), stays open forever.
:class:`DeadlineH11Protocol` closes any connection whose request headers are not complete
``header_timeout`` seconds after it opened (or after its previous response). The body has its
own deadline (:class:`emovox.service.limits.BodySizeLimit`, 408), and ``limit_concurrency``
answers 503 beyond that many open connections/requests.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

#: Seconds a connection may take to deliver its request headers.
HEADER_TIMEOUT = 10.0
KEEP_ALIVE_TIMEOUT = 5
LIMIT_CONCURRENCY = 200


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline on receiving each request's headers."""

    header_timeout = HEADER_TIMEOUT
    _header_deadline: asyncio.TimerHandle | None  # set by _arm, cleared by _disarm

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._header_timeout)

    def _disarm(self) -> None:
        handle = getattr(self, "_header_deadline", None)
        if handle is not None:
            handle.cancel()
        self._header_deadline = None

    def _header_timeout(self) -> None:
        busy = self.cycle is not None and not self.cycle.response_complete
        if not busy and not self.transport.is_closing():
            try:
                self.conn.send(h11.ConnectionClosed())
            except h11.LocalProtocolError:
                pass
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # headers are in: the request is running

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def server_config(app: Any, host: str = "127.0.0.1", port: int = 8000, *, header_timeout: float = HEADER_TIMEOUT,
                  keep_alive: int = KEEP_ALIVE_TIMEOUT, limit_concurrency: int = LIMIT_CONCURRENCY,
                  log_level: str = "warning") -> uvicorn.Config:
    """A uvicorn config with header/keep-alive deadlines and a connection limit."""
    protocol = type("EmovoxH11Protocol", (DeadlineH11Protocol,), {"header_timeout": float(header_timeout)})
    return uvicorn.Config(app, host=host, port=port, http=protocol, timeout_keep_alive=keep_alive,
                          limit_concurrency=limit_concurrency, log_level=log_level, ws="auto")
