"""ASGI middleware that bounds a request before anything parses it.

* :class:`BodySizeLimit`: a declared ``Content-Length`` above the cap is refused at once (413);
  a body without one (chunked) is read into memory up to the cap and refused as soon as it grows
  past it. The whole body must arrive within ``read_timeout`` seconds, else 408 and the
  connection is closed (a stalled or slowloris upload holds nothing for long). Accepted bodies
  are replayed to the app unchanged, so memory per request stays below the cap.
* :class:`HostAllowList`: requests whose ``Host`` header names another host get 400 (a guard
  against DNS rebinding: a web page on another site cannot talk to a 127.0.0.1 service).
* :class:`EarlyRefusal`: requests whose query string alone is invalid (e.g. a timeline hop below
  the minimum) get their 400 before the body is parsed; the body is read and discarded unparsed.

All answer in the service's one error shape ``{"error": {"code", "message", "hint"}}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: A refused body is read (and discarded) up to this size before the 413 goes out: clients that
#: are still sending would otherwise see the connection closed instead of the answer.
DRAIN_BYTES = 64 * 1024 * 1024
#: ... and for at most this many seconds (a client that declares 60 MB and stalls gets its 413).
DRAIN_SECONDS = 2.0


class _Timeout(Exception):
    pass


async def _receive_by(receive: Receive, deadline: float) -> Message:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Timeout
    try:
        return await asyncio.wait_for(receive(), left)
    except (asyncio.TimeoutError, TimeoutError):
        raise _Timeout from None


class BodySizeLimit:
    def __init__(self, app: Callable, max_bytes: int, paths: tuple[str, ...] = ("/",),
                 read_timeout: float = 60.0) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self.paths = paths
        self.read_timeout = float(read_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(self.paths):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                await _reply(send, 400, "bad_request", "invalid Content-Length header")
                return
            if too_big:
                if int(declared) <= DRAIN_BYTES:
                    await _drain(receive, DRAIN_BYTES)
                await self._refuse(send, int(declared))
                return
        chunks: list[bytes] = []
        size = 0
        more = True
        deadline = time.monotonic() + self.read_timeout
        while more:
            try:
                message = await _receive_by(receive, deadline)
            except _Timeout:
                await _reply(send, 408, "request_timeout",
                             f"the request body did not arrive within {self.read_timeout:g} s ({size} bytes received)",
                             "send the whole upload at once; check the network connection")
                return
            if message["type"] == "http.disconnect":
                return
            body = message.get("body", b"")
            size += len(body)
            more = message.get("more_body", False)
            if size > self.max_bytes:
                if more:
                    await _drain(receive, DRAIN_BYTES - size)
                await self._refuse(send, size)
                return
            chunks.append(body)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int) -> None:
        mb = self.max_bytes / 1024 / 1024
        await _reply(send, 413, "payload_too_large",
                     f"request body is larger than this server's upload limit of {mb:.1f} MB"
                     + (f" ({size} bytes declared or received)" if size else ""),
                     "send a shorter recording, compress it as FLAC, or raise --max-upload-mb")


async def _drain(receive: Receive, limit: int) -> bool:
    """Read and discard the rest of a request body, at most ``limit`` bytes; True if it all came."""
    drained, deadline = 0, time.monotonic() + DRAIN_SECONDS
    while drained < limit:
        try:
            message = await _receive_by(receive, deadline)
        except _Timeout:
            return False
        if message["type"] != "http.request":
            return False
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


async def _reply(send: Send, status: int, code: str, message: str, hint: str = "", close: bool = True) -> None:
    err = {"code": code, "message": message}
    if hint:
        err["hint"] = hint
    payload = json.dumps({"error": err}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": headers + [(b"connection", b"close")] if close else headers})
    await send({"type": "http.response.body", "body": payload})


class EarlyRefusal:
    """400 ``bad_request`` from the query string alone, before the body is parsed.

    ``checks`` maps a path to a function of the query parameters (last value of each name) that
    raises :class:`emovox.errors.EmovoxError` for settings the endpoint would refuse anyway; any
    other exception (e.g. a value that is not a number) is left to the endpoint's own validation.
    """

    def __init__(self, app: Callable, checks: dict[str, Callable[[dict[str, str]], None]],
                 max_bytes: int = DRAIN_BYTES) -> None:
        self.app, self.checks, self.max_bytes = app, checks, int(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from urllib.parse import parse_qsl

        from emovox.errors import EmovoxError

        check = self.checks.get(scope.get("path", "")) if scope["type"] == "http" else None
        if check is None:
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        try:
            check(query)
        except EmovoxError as exc:
            whole = await _drain(receive, self.max_bytes)  # unparsed; the connection stays usable if it all came
            await _reply(send, 400, "bad_request", str(exc)[:500], close=not whole)
            return
        except Exception:  # noqa: BLE001 - not ours to judge: the endpoint reports it in the error shape
            pass
        await self.app(scope, receive, send)


class HostAllowList:
    """400 ``bad_host`` unless the request's Host (port stripped) is one of ``hosts`` (``*`` = any)."""

    def __init__(self, app: Callable, hosts: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")) -> None:
        self.app = app
        self.hosts = {h.lower().strip("[]") for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or "*" in self.hosts:
            await self.app(scope, receive, send)
            return
        raw = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1").strip().lower()
        host = raw[1:raw.index("]")] if raw.startswith("[") and "]" in raw else raw.rsplit(":", 1)[0]
        if host in self.hosts:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await _reply(send, 400, "bad_host", f"this server does not answer for host {raw[:100]!r}",
                     "call it as http://127.0.0.1:PORT/ or add the name with emovox serve --allow-host")
