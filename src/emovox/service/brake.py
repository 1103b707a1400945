"""Slow down connections whose requests keep being refused (ASGI middleware).

Refusing a bad upload is cheap, but a client that sends nothing else (decompression bombs,
invalid rates, minimum-hop violations, foreign Host headers) in a loop gets refused as fast as
the server can parse its uploads, and that parsing happens on the event loop every other request
needs. :class:`RefusalBrake` counts consecutive refusals (400, 404, 405, 408, 413, 415, 422, and
503: a client that retries a busy server at once ignores its ``Retry-After``) per client
connection: the first :data:`FREE` are answered at once; each further one is answered after a
delay that doubles from :data:`BASE` s up to :data:`CAP` s. The delay is a sleep on the event
loop (no CPU, no worker); any successful answer resets the count.

A client that uploads a few bad files in a row never notices; one that sends thousands gets at
most one refusal per :data:`CAP` seconds per connection, and each new connection costs it a TCP
handshake and the header deadline of :mod:`emovox.service.server`.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Hashable

Message = dict[str, Any]
#: Statuses that count as refusals.
REFUSALS = frozenset({400, 404, 405, 408, 413, 415, 422, 503})
#: Consecutive refusals per connection answered without delay.
FREE = 10
#: Delay of the first slowed refusal (s), doubled for each further one, at most :data:`CAP` s.
BASE, CAP = 0.02, 0.5
#: Connections remembered (least recently refused forgotten first).
MAX_CONNECTIONS = 4096


class RefusalBrake:
    def __init__(self, app: Callable, free: int = FREE, base: float = BASE, cap: float = CAP) -> None:
        self.app, self.free, self.base, self.cap = app, free, base, cap
        self.refused: OrderedDict[Hashable, int] = OrderedDict()

    def delay(self, key: Hashable) -> float:
        """Seconds to hold the next refusal of connection ``key``."""
        over = self.refused.get(key, 0) - self.free
        return 0.0 if over < 0 else min(self.cap, self.base * 2 ** min(over, 30))

    def count(self, key: Hashable, status: int) -> None:
        if status in REFUSALS:
            self.refused[key] = self.refused.get(key, 0) + 1
            self.refused.move_to_end(key)
            while len(self.refused) > MAX_CONNECTIONS:
                self.refused.popitem(last=False)
        elif status < 400:
            self.refused.pop(key, None)

    async def __call__(self, scope: dict, receive: Callable[[], Awaitable[Message]],
                       send: Callable[[Message], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        key = tuple(client) if client else None

        async def braked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message.get("status", 200))
                if status in REFUSALS:
                    pause = self.delay(key)
                    if pause:
                        await asyncio.sleep(pause)
                self.count(key, status)
            await send(message)

        await self.app(scope, receive, braked_send)
