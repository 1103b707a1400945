"""Bounded, cancellable work for the service: a worker pool whose jobs can really be stopped.

* At most ``workers`` jobs run at once (one thread each); a job keeps its worker slot until its
  function has really returned, even after its request was answered (a timed-out job that is
  still unwinding is still counted).
* Expensive jobs (``heavy=True``: long decodes, long timelines) may hold at most
  ``workers - 1`` slots at once, so a stream of costly requests cannot take every worker from
  the cheap ones (with one worker, they take turns).
* At most ``max_pending`` requests wait for a slot; beyond that, or after ``queue_timeout``
  seconds of waiting, the request gets 503 ``busy`` with ``Retry-After`` (queue time is never
  charged to the job's own deadline).
* Each job runs with a :class:`CancelToken` (its deadline starts when the job starts). Work
  code calls :func:`check_cancelled` between blocks/windows; it raises
  :class:`emovox.errors.Cancelled` once the deadline passed, the client disconnected, or the
  request was abandoned.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

from emovox.errors import Cancelled
from emovox.service.uploads import UploadProblem

#: How often a waiting request looks at its job's deadline and its client's connection (s).
POLL_SECONDS = 0.1
_local = threading.local()


class CancelToken:
    """A job's stop flag and deadline (``time.monotonic()`` seconds, or None)."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self.reason: str | None = None
        self._event = threading.Event()

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def check(self) -> None:
        """Raise :class:`Cancelled` when the job must stop."""
        if not self._event.is_set() and self.expired():
            self.cancel("deadline passed")
        if self._event.is_set():
            raise Cancelled(self.reason or "cancelled")


def current_token() -> CancelToken | None:
    """The token of the job running on this thread (None outside pool jobs)."""
    return getattr(_local, "token", None)


def check_cancelled() -> None:
    """Stop the current job (raise :class:`Cancelled`) if it was cancelled; no-op outside jobs."""
    token = current_token()
    if token is not None:
        token.check()


class ClientGone(Exception):
    """The client disconnected while its job ran; there is nobody to answer."""


class JobPool:
    """``workers`` threads, a bounded wait queue, deadlines and disconnect cancellation."""

    def __init__(self, workers: int, max_pending: int, queue_timeout: float = 10.0) -> None:
        self.workers, self.max_pending, self.queue_timeout = workers, max_pending, queue_timeout
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emovox-infer")
        self.waiting = 0
        self.running = 0  # jobs whose function has not returned yet (answered or not)
        self._slots: asyncio.Semaphore | None = None
        self._heavy: asyncio.Semaphore | None = None

    async def _acquire(self, heavy: bool) -> None:
        if self._slots is None or self._heavy is None:
            self._slots = asyncio.Semaphore(self.workers)
            self._heavy = asyncio.Semaphore(max(1, self.workers - 1))
        if self.waiting >= self.max_pending and self._slots.locked():
            raise UploadProblem(503, "busy", "the server is busy; too many requests are waiting",
                                "retry in a few seconds")
        self.waiting += 1
        got_heavy = False
        try:
            async with asyncio.timeout(self.queue_timeout):
                if heavy:
                    await self._heavy.acquire()
                    got_heavy = True
                await self._slots.acquire()
        except (asyncio.TimeoutError, TimeoutError):
            if got_heavy:
                self._heavy.release()
            raise UploadProblem(503, "busy", f"the server is busy; no worker became free within "
                                             f"{self.queue_timeout:g} s", "retry in a few seconds") from None
        except BaseException:
            if got_heavy:
                self._heavy.release()
            raise
        finally:
            self.waiting -= 1

    def _release(self, heavy: bool) -> None:
        self.running -= 1
        assert self._slots is not None and self._heavy is not None
        self._slots.release()
        if heavy:
            self._heavy.release()

    async def run(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None,
                  on_timeout: UploadProblem | None = None,
                  disconnected: Callable[[], Awaitable[bool]] | None = None, heavy: bool = False) -> Any:
        """Run ``fn(*args)`` on a worker; stop it at ``timeout`` s after it starts (``on_timeout``
        is raised then) or when ``disconnected()`` says the client left (:class:`ClientGone`).
        ``heavy`` jobs share at most ``workers - 1`` slots."""
        await self._acquire(heavy)
        token = CancelToken(None if timeout is None else time.monotonic() + timeout)

        def work() -> Any:
            _local.token = token
            try:
                token.check()
                return fn(*args)
            finally:
                _local.token = None

        self.running += 1
        try:
            future = asyncio.get_running_loop().run_in_executor(self.executor, work)
        except BaseException:
            self._release(heavy)
            raise
        future.add_done_callback(lambda _: self._release(heavy))  # the slot frees when the work really ends
        try:
            while True:
                done, _ = await asyncio.wait({future}, timeout=POLL_SECONDS)
                if done:
                    break
                if token.expired():
                    token.cancel("deadline passed")
                    raise on_timeout or UploadProblem(503, "timeout", f"the work took longer than {timeout:g} s",
                                                      "send a shorter recording")
                if disconnected is not None and await disconnected():
                    token.cancel("client disconnected")
                    raise ClientGone()
        except asyncio.CancelledError:
            token.cancel("request abandoned")
            raise
        try:
            return future.result()
        except Cancelled:
            if token.reason == "deadline passed" and on_timeout is not None:
                raise on_timeout from None
            raise UploadProblem(503, "timeout", f"the work was stopped ({token.reason})",
                                "send a shorter recording") from None

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class CancellableEngine:
    """Wraps a recognizer's engine so every model call (one batch of windows, one piece of a
    clip) first checks the current job's token; outside pool jobs it only forwards."""

    def __init__(self, inner: Callable[[Any], Any]) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __call__(self, feats: Any) -> Any:
        check_cancelled()
        return self.inner(feats)
