"""Fair CPU slots for the service's jobs: start-time fair queueing over client *flows*.

A flow is one client connection (the service passes the peer's address and port). Every job
asks for one of ``slots`` CPU slots, and waiting jobs get them in the order of their *start
tag*: ``max(V, F)``, where ``F`` is the CPU time its flow has been charged so far (its finish
tag) and ``V`` the start tag of the job most recently granted (the system's virtual time). Flows
are charged the CPU seconds their jobs really used (``clock``: the thread's CPU clock), so a
client that sends a 10-minute recording or a minimum-hop timeline waits behind clients that
used less, instead of everyone waiting behind it (start-time fair queueing, Goyal et al. 1996).

* **Time slices.** A running job calls :meth:`FairScheduler.checkpoint` between decode blocks
  and model calls; once it has used ``quantum`` CPU seconds since it got its slot and a job with
  an earlier start tag waits, it gives the slot up and waits for its next turn (paused). A long
  job thus gets its fair share slice by slice and never holds a worker for its whole length.
* **Heavy lane.** A job marked heavy holds a heavy token from its first slot to its end (paused
  or not); at most ``heavy_slots`` exist, so heavy jobs never hold every slot and their memory
  (decoded audio) is bounded by that count.
* **Admission.** At most ``capacity`` jobs are in the scheduler (waiting, running or paused).
  When it is full, a newcomer with an earlier start tag pushes out the *waiting* job of the
  flow with the latest start tag (the flow that used the most): load is shed from the heaviest
  users first. Otherwise the newcomer is refused (:class:`Busy`).

Pure ``threading``; the asyncio side is :class:`emovox.service.jobs.JobPool`.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Callable, Hashable

from emovox.errors import Cancelled

#: CPU seconds a job may run before it offers its slot to a job with an earlier start tag.
QUANTUM = 0.05
#: Idle flows remembered at most (closed connections are forgotten once ``V`` passes them).
MAX_FLOWS = 10_000


class Busy(Exception):
    """No slot for this job: the scheduler is full, its wait timed out, or it was pushed out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Ticket:
    """One job's place in the scheduler (created by the caller, driven by the worker thread)."""

    def __init__(self, flow: Hashable = None, heavy: bool = False) -> None:
        self.flow, self.heavy = flow, heavy
        self.start, self.seq = 0.0, 0
        self.granted = self.holds_heavy = self.started = self.left = False
        self.evicted: str | None = None
        self.cancelled: Callable[[], bool] = lambda: False
        self.event = threading.Event()
        self.mark = self.slice = self.cpu = 0.0  # clock at grant; CPU since grant; CPU in all
        self.waited = 0.0  # seconds spent waiting for a slot (first one and after pauses)

    def wake(self) -> None:
        """Let a waiting job look at its state again (e.g. after it was cancelled)."""
        self.event.set()


class FairScheduler:
    def __init__(self, slots: int, heavy_slots: int, capacity: int, quantum: float = QUANTUM,
                 clock: Callable[[], float] = time.thread_time) -> None:
        self.slots, self.heavy_slots, self.capacity, self.quantum, self.clock = (
            slots, max(1, heavy_slots), capacity, quantum, clock)
        self.free, self.heavy_free = slots, self.heavy_slots
        self.vtime = 0.0
        self.flows: dict[Hashable, float] = {}  # finish tag (CPU seconds charged) per flow
        self.members: dict[Hashable, int] = {}  # jobs in the scheduler per flow
        self.waiting: list[Ticket] = []
        self.jobs = 0  # tickets admitted and not yet released
        self._lock = threading.Lock()
        self._seq = itertools.count()

    # ------------------------------------------------------------------------------ admission
    def admit(self, ticket: Ticket) -> None:
        """Take ``ticket`` in, pushing out a waiting job of a flow that used more if full."""
        with self._lock:
            tag = max(self.vtime, self.flows.get(ticket.flow, self.vtime))
            if self.jobs >= self.capacity:
                victim = max((t for t in self.waiting if not t.started and t.flow != ticket.flow),
                             key=lambda t: (t.start, t.seq), default=None)
                if victim is None or victim.start <= tag:
                    raise Busy("the server is busy; too many requests are waiting")
                self._drop(victim)
                self._leave(victim)
                victim.evicted = "the server is busy; requests from clients that used less went first"
                victim.wake()
            self.jobs += 1
            self.members[ticket.flow] = self.members.get(ticket.flow, 0) + 1
            self._enqueue(ticket, tag)

    # ---------------------------------------------------------------------- worker-thread side
    def wait_turn(self, ticket: Ticket, timeout: float | None = None) -> None:
        """Block until ``ticket`` holds a slot. Raises :class:`Busy` (no first slot within
        ``timeout`` s, or pushed out) or :class:`Cancelled` (``ticket.cancelled()``). Every
        admitted ticket must be given to :meth:`release` once, whatever happened."""
        began = time.monotonic()
        deadline = None if timeout is None or ticket.started else began + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            ticket.event.wait(left if left is None else max(0.0, left))
            with self._lock:
                ticket.event.clear()
                if ticket.granted:
                    break
                problem: Exception | None = None
                if ticket.evicted:
                    problem = Busy(ticket.evicted)
                elif ticket.cancelled():
                    problem = Cancelled("cancelled while waiting")
                elif deadline is not None and time.monotonic() >= deadline:
                    problem = Busy(f"the server is busy; no worker became free within {timeout:g} s")
                if problem is not None:
                    if ticket in self.waiting:
                        self._drop(ticket)
                    raise problem
        ticket.waited += time.monotonic() - began
        ticket.started = True
        ticket.mark, ticket.slice = self.clock(), 0.0

    def checkpoint(self, ticket: Ticket) -> None:
        """Charge the CPU used since the last call; give the slot up (and wait for the next turn)
        once the job used its quantum and a job with an earlier start tag waits."""
        if not ticket.granted:
            return
        used = self._charge(ticket)
        with self._lock:
            self.flows[ticket.flow] = self.flows.get(ticket.flow, ticket.start) + used
            if ticket.slice < self.quantum:
                return
            ticket.slice = 0.0
            mine = max(self.vtime, self.flows[ticket.flow])
            best = self._best()
            if best is None or best.start >= mine:
                return
            ticket.granted = False
            self.free += 1
            self._enqueue(ticket, mine)
        self.wait_turn(ticket)

    def release(self, ticket: Ticket) -> None:
        """The job ended (returned or raised): charge it, free its slot and heavy token."""
        used = self._charge(ticket) if ticket.granted else 0.0
        with self._lock:
            if ticket.started and not ticket.left:
                self.flows[ticket.flow] = self.flows.get(ticket.flow, ticket.start) + used
            if ticket.granted:
                ticket.granted = False
                self.free += 1
            if ticket in self.waiting:
                self._drop(ticket)
            self._leave(ticket)
            self._dispatch()

    # --------------------------------------------------------------------------------- inside
    def _charge(self, ticket: Ticket) -> float:
        now = self.clock()
        used = max(0.0, now - ticket.mark)
        ticket.mark = now
        ticket.slice += used
        ticket.cpu += used
        return used

    def _enqueue(self, ticket: Ticket, tag: float) -> None:
        ticket.start, ticket.seq = tag, next(self._seq)
        self.waiting.append(ticket)
        self._dispatch()

    def _drop(self, ticket: Ticket) -> None:
        self.waiting.remove(ticket)

    def _leave(self, ticket: Ticket) -> None:
        """``ticket`` leaves the scheduler for good (ended, refused, pushed out or cancelled)."""
        if ticket.left:
            return
        ticket.left = True
        if ticket.holds_heavy:
            ticket.holds_heavy = False
            self.heavy_free += 1
        self.jobs -= 1
        left = self.members.get(ticket.flow, 1) - 1
        if left > 0:
            self.members[ticket.flow] = left
            return
        self.members.pop(ticket.flow, None)
        if self.flows.get(ticket.flow, 0.0) <= self.vtime:
            self.flows.pop(ticket.flow, None)  # behind the virtual time: same as a new flow
        if self.jobs == 0:
            self.flows.clear()  # idle: nobody to be fair to
            self.vtime = 0.0
        elif len(self.flows) > MAX_FLOWS:
            self.flows = {f: tag for f, tag in self.flows.items() if f in self.members}

    def _best(self) -> Ticket | None:
        """The waiting ticket to run next: the earliest start tag among those allowed a slot."""
        return min((t for t in self.waiting if not t.heavy or t.holds_heavy or self.heavy_free > 0),
                   key=lambda t: (t.start, t.seq), default=None)

    def _dispatch(self) -> None:
        while self.free > 0:
            best = self._best()
            if best is None:
                return
            self._drop(best)
            if best.heavy and not best.holds_heavy:
                best.holds_heavy = True
                self.heavy_free -= 1
            best.granted = True
            self.free -= 1
            self.vtime = max(self.vtime, best.start)
            self.flows[best.flow] = max(self.flows.get(best.flow, best.start), best.start)
            best.wake()
