"""ASGI middleware that caps request bodies before anything parses them (413 with a JSON body).

A declared ``Content-Length`` above the cap is refused at once; a body without one (chunked) is
read into memory up to the cap and refused as soon as it grows past it. Accepted bodies are
replayed to the app unchanged, so memory per request stays below the cap.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: A refused body is read (and discarded) up to this size before the 413 goes out: clients that
#: are still sending would otherwise see the connection closed instead of the answer.
DRAIN_BYTES = 64 * 1024 * 1024


class BodySizeLimit:
    def __init__(self, app: Callable, max_bytes: int, paths: tuple[str, ...] = ("/",)) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self.paths = paths

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
        while more:
            message = await receive()
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


async def _drain(receive: Receive, limit: int) -> None:
    """Read and discard the rest of a request body, at most ``limit`` bytes."""
    drained = 0
    while drained < limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _reply(send: Send, status: int, code: str, message: str, hint: str = "") -> None:
    err = {"code": code, "message": message}
    if hint:
        err["hint"] = hint
    payload = json.dumps({"error": err}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})
