"""Bounded, cancellable, fairly scheduled work for the service.

* **Fair CPU slots.** At most ``workers`` jobs compute at once; the others wait on their own
  thread for a slot, granted in fair order across client connections and charged by the CPU
  time each connection's jobs really used (:mod:`emovox.service.fair`). Long jobs give their
  slot up between decode blocks and model calls when a connection that used less is waiting,
  so a heavy request is served slice by slice next to short ones instead of in front of them.
* **Heavy lane.** Expensive jobs (``heavy=True``: long decodes, long timelines) hold at most
  ``workers - 1`` slots at once, so short requests always have a worker (one worker: they share
  it slice by slice).
* **Bounded queue.** At most ``max_pending`` jobs wait (for their first worker, or paused for
  fairer ones). When that many wait, a request from a connection that used less CPU pushes out
  the waiting request of the one that used most (a paused job is stopped); else the newcomer is
  refused. A request that got no worker within ``queue_timeout`` s is refused. All are 503
  ``busy`` with ``Retry-After``: queue time is never charged to the job's own deadline.
* **Deadlines that stop work.** Each job has a :class:`CancelToken`; its deadline counts the
  time it holds a worker (from its first slot, not counting pauses for fairer jobs; each wait
  for a worker, first or after a pause, is bounded by ``queue_timeout`` and then answered 503
  ``busy``). Work code calls
  :func:`check_cancelled` between blocks/windows: it raises :class:`emovox.errors.Cancelled`
  once the deadline passed, the client disconnected or the request was abandoned, and it is
  also where the job yields its slot. A job keeps its slot until its function has really
  returned, even after its request was answered.
* **Header checks** (:meth:`JobPool.quick`) run on their own small thread pool, outside the fair
  queue: refusing a bomb from its header never waits behind inference.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Awaitable, Callable, Hashable, Mapping

from emovox.errors import Cancelled
from emovox.service import timing
from emovox.service.fair import Busy, FairScheduler, Ticket
from emovox.service.uploads import UploadProblem

#: How often a request looks at its client's connection when it can only poll it (s).
POLL_SECONDS = 0.1
#: Longest sleep of a request watching its job (s): a queued or paused job has no deadline yet.
WATCH_SECONDS = 1.0
_local = threading.local()


class CancelToken:
    """A job's stop flag and deadline (``time.monotonic()`` seconds, or None)."""

    def __init__(self, deadline: float | None = None) -> None:
        self.deadline = deadline
        self.reason: str | None = None
        self._event = threading.Event()
        self.ticket: Ticket | None = None  # woken on cancel, so a waiting or paused job stops at once

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self._event.set()
        if self.ticket is not None:
            self.ticket.wake()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    @property
    def paused(self) -> bool:
        """Its job gave its worker up for a fairer one and waits for its next turn."""
        return self.ticket is not None and self.ticket.paused_at is not None

    def expired(self) -> bool:
        """The deadline passed (never while the job is paused: waiting for a worker is not its time)."""
        return self.deadline is not None and not self.paused and time.monotonic() > self.deadline

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
    """The checkpoint of pool jobs (no-op outside them): raise :class:`Cancelled` if the job must
    stop, and give the worker up for a while if a fairer job waits (:meth:`FairScheduler.checkpoint`)."""
    token = current_token()
    if token is None:
        return
    token.check()
    scheduler: FairScheduler | None = getattr(_local, "scheduler", None)
    ticket = token.ticket
    if scheduler is not None and ticket is not None:
        scheduler.checkpoint(ticket)
        if ticket.paused_at is not None:  # it waited for fairer jobs: that time is not charged to its deadline
            if token.deadline is not None:
                token.deadline += time.monotonic() - ticket.paused_at
            ticket.paused_at = None
        token.check()  # it may have been cancelled while paused


class ClientGone(Exception):
    """The client disconnected while its job waited or ran; there is nobody to answer."""


@contextlib.asynccontextmanager
async def watch_disconnect(receive: Callable[[], Awaitable[Mapping[str, Any]]]) -> AsyncIterator[asyncio.Future]:
    """A task that completes when the client disconnects, for the length of a request whose body
    was read: the server's next ASGI message is then ``http.disconnect`` (or the end of the
    response). Event-driven: a waiting request costs nothing until it happens."""

    async def until_disconnect() -> None:
        while (await receive()).get("type") != "http.disconnect":
            pass

    task = asyncio.ensure_future(until_disconnect())
    try:
        yield task
    finally:
        task.cancel()


def client_flow(scope: Mapping[str, Any]) -> Hashable:
    """The fairness key of a request: its client connection (address and port)."""
    client = scope.get("client")
    return tuple(client) if client else None


def _done(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def _retrieved(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _busy(message: str) -> UploadProblem:
    return UploadProblem(503, "busy", message, "retry in a few seconds")


class JobPool:
    """``workers`` fair CPU slots, a bounded queue, deadlines and disconnect cancellation."""

    def __init__(self, workers: int, max_pending: int, queue_timeout: float = 10.0,
                 quantum: float | None = None, clock: Callable[[], float] | None = None) -> None:
        self.workers, self.max_pending, self.queue_timeout = workers, max_pending, queue_timeout
        extra = {k: v for k, v in (("quantum", quantum), ("clock", clock)) if v is not None}
        self.scheduler = FairScheduler(workers, workers - 1, max_pending, max_wait=queue_timeout,
                                       **extra)  # type: ignore[arg-type]
        # a thread per job (waiting ones wait on theirs): running + waiting, and pushed-out ones leaving
        self.executor = ThreadPoolExecutor(max_workers=2 * workers + max_pending + 4, thread_name_prefix="emovox-infer")
        self.quick_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emovox-header")
        self.running = 0  # jobs whose function started and has not returned yet (answered or not)
        self._count = threading.Lock()

    @property
    def waiting(self) -> int:
        """Jobs waiting for their first worker."""
        return self.scheduler.counts["queued"]

    async def quick(self, fn: Callable[..., Any], *args: Any, timeout: float, on_timeout: UploadProblem,
                    stage: str = "header") -> Any:
        """Run a cheap check (a header read) on the header thread, outside the fair queue."""
        started = time.monotonic()
        future = asyncio.get_running_loop().run_in_executor(self.quick_executor, fn, *args)
        try:
            return await asyncio.wait_for(future, timeout)
        except (asyncio.TimeoutError, TimeoutError):
            raise on_timeout from None
        finally:
            timing.record(stage, 0.0, time.monotonic() - started, 0.0)

    async def run(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None,
                  on_timeout: UploadProblem | None = None,
                  disconnected: Callable[[], Awaitable[bool]] | None = None, heavy: bool = False,
                  flow: Hashable = None, stage: str = "work", gone: asyncio.Future | None = None) -> Any:
        """Run ``fn(*args)`` on a worker, in fair order among ``flow`` s (client connections); stop it
        at ``timeout`` s after it first gets a worker (``on_timeout`` is raised then) or when
        the client left (:class:`ClientGone`): ``gone`` completes (event-driven, see
        :func:`watch_disconnect`) or ``disconnected()``, polled, says so. ``heavy`` jobs share at most
        ``workers - 1`` slots."""
        ticket, token = Ticket(flow, heavy), CancelToken()
        ticket.cancelled = lambda: token.cancelled
        token.ticket = ticket
        try:
            self.scheduler.admit(ticket)
        except Busy as exc:
            raise _busy(exc.reason) from None
        queued = time.monotonic()
        loop = asyncio.get_running_loop()
        started = loop.create_future()  # the job got its first worker: its deadline is set

        def work() -> Any:
            try:
                self.scheduler.wait_turn(ticket, self.queue_timeout)
                token.deadline = None if timeout is None else time.monotonic() + timeout
                loop.call_soon_threadsafe(_done, started)
                self._add_running(1)
                _local.token, _local.scheduler = token, self.scheduler
                try:
                    token.check()
                    return fn(*args)
                finally:
                    _local.token = _local.scheduler = None
                    self._add_running(-1)
            finally:
                self.scheduler.release(ticket)

        try:
            future = loop.run_in_executor(self.executor, work)
        except BaseException:  # e.g. the pool was shut down: the ticket must still leave
            self.scheduler.release(ticket)
            raise
        future.add_done_callback(_retrieved)  # a job answered early (deadline, disconnect) ends unlogged
        try:
            await self._watch(future, started, token, timeout, on_timeout, disconnected, gone)
        except asyncio.CancelledError:
            token.cancel("request abandoned")
            raise
        finally:
            if token.cancelled:
                self.scheduler.withdraw(ticket)  # a job still queued leaves the queue now
            if future.done():
                spent = time.monotonic() - queued
                timing.record(stage, ticket.waited, max(0.0, spent - ticket.waited), ticket.cpu)
        try:
            return future.result()
        except Busy as exc:
            raise _busy(exc.reason) from None
        except Cancelled:
            if ticket.busy:
                raise _busy(ticket.busy) from None
            if token.reason == "deadline passed" and on_timeout is not None:
                raise on_timeout from None
            raise UploadProblem(503, "timeout", f"the work was stopped ({token.reason})",
                                "send a shorter recording") from None

    def _add_running(self, n: int) -> None:
        with self._count:
            self.running += n

    @staticmethod
    async def _watch(future: asyncio.Future, started: asyncio.Future, token: CancelToken, timeout: float | None,
                     on_timeout: UploadProblem | None, disconnected: Callable[[], Awaitable[bool]] | None,
                     gone: asyncio.Future | None) -> None:
        """Wait for ``future``, cancelling its job at its deadline or when the client leaves.
        Sleeps until one of them can have happened (no busy polling of waiting requests)."""
        waits = {future, started} if gone is None else {future, started, gone}
        while True:
            step = POLL_SECONDS if disconnected is not None else WATCH_SECONDS
            if token.deadline is not None and not token.paused:
                step = min(step, max(0.01, token.deadline - time.monotonic()))
            done, _ = await asyncio.wait(waits, timeout=step, return_when=asyncio.FIRST_COMPLETED)
            if future in done:
                return
            if started.done():
                waits.discard(started)
            if token.expired():
                token.cancel("deadline passed")
                raise on_timeout or UploadProblem(503, "timeout", f"the work took longer than {timeout:g} s",
                                                  "send a shorter recording")
            if (gone is not None and gone.done()) or (disconnected is not None and await disconnected()):
                token.cancel("client disconnected")
                raise ClientGone()

    def shutdown(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.quick_executor.shutdown(wait=False, cancel_futures=True)


class CancellableEngine:
    """Wraps a recognizer's engine so every model call (one batch of windows, one piece of a
    clip, and with frame scoring one encoded piece or one head call) is a checkpoint of the
    current job; outside pool jobs it only forwards."""

    def __init__(self, inner: Callable[[Any], Any]) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __call__(self, feats: Any) -> Any:
        check_cancelled()
        return self.inner(feats)

    def hidden(self, piece: Any) -> Any:
        check_cancelled()
        return self.inner.hidden(piece)  # type: ignore[attr-defined]

    def head_logits(self, pooled: Any) -> Any:
        check_cancelled()
        return self.inner.head_logits(pooled)  # type: ignore[attr-defined]


def cancellable(recognizer: Any) -> Any:
    """A shallow copy of ``recognizer`` whose model calls check the running job's cancel token."""
    if not hasattr(recognizer, "engine") or isinstance(recognizer.engine, CancellableEngine):
        return recognizer
    wrapped = copy.copy(recognizer)
    wrapped.engine = CancellableEngine(recognizer.engine)
    return wrapped
