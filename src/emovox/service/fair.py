"""Fair CPU slots for the service's jobs: start-time fair queueing over client *flows*.

A flow is one client connection (the service passes the peer's address and port). Every job
needs one of ``slots`` CPU slots to run, and waiting jobs get them in the order of their *start
tag* ``max(V, F)``: ``F`` is the CPU time the job's flow has been charged so far (its finish
tag), ``V`` the start tag of the job granted most recently (the system's virtual time). Flows
are charged the CPU seconds their jobs really used (``clock``: the worker thread's CPU clock),
so a client that sends a 10-minute recording or a minimum-hop timeline waits behind clients
that used less, instead of everyone waiting behind it (start-time fair queueing, Goyal et al.,
SIGCOMM 1996). A flow the scheduler does not know (a new connection, or one idle until ``V``
passed its finish tag by ``entry``) starts at ``V + entry``, one quantum behind the flows being
served: opening a new connection per request buys no priority.

* **Time slices.** A running job calls :meth:`FairScheduler.checkpoint` between decode blocks
  and model calls; once it has used ``quantum`` CPU seconds since it got its slot and a job with
  an earlier start tag waits, it gives the slot up and waits for its next turn (*paused*). A
  long job thus gets its fair share slice by slice instead of holding a worker for its whole
  length.
* **Heavy lane.** A job marked heavy holds a heavy token from its first slot to its end (paused
  or not); there are ``heavy_slots`` tokens, so heavy jobs never hold every slot and their
  memory (decoded audio) is bounded by that count.
* **Admission.** At most ``max_waiting`` jobs wait (for their first slot, or paused). When that
  many wait, a newcomer with an earlier start tag pushes out the waiting job of another flow
  with the latest start tag (the flow that used the most): load is shed from the heaviest users
  first. A pushed-out job that never ran gets :class:`Busy`; a paused one is stopped with
  :class:`emovox.errors.Cancelled` at its checkpoint. Otherwise the newcomer is refused
  (:class:`Busy`). Either way the refused flow is charged ``entry``: a client that retries at
  once moves back in line with every refusal instead of crowding out the others.

Pure ``threading``; the asyncio side is :class:`emovox.service.jobs.JobPool`.
"""

from __future__ import annotations

import itertools
import threading
import time
from typing import Callable, Hashable

from emovox.errors import Cancelled

#: CPU seconds a job may run before it offers its slot to a job with an earlier start tag.
QUANTUM = 0.1
#: CPU seconds a flow the scheduler does not know is charged on arrival (see the module doc).
ENTRY = QUANTUM
#: Idle flows remembered at most (closed connections are forgotten once ``V`` passes them).
MAX_FLOWS = 10_000
NEW, QUEUED, RUNNING, PAUSED, DONE = "new", "queued", "running", "paused", "done"


class Busy(Exception):
    """No slot for this job: too many wait, its wait timed out, or it was pushed out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Ticket:
    """One job's place in the scheduler (made by the caller, driven by the worker thread)."""

    def __init__(self, flow: Hashable = None, heavy: bool = False) -> None:
        self.flow, self.heavy = flow, heavy
        self.state = NEW
        self.start, self.seq = 0.0, 0
        self.holds_heavy = self.waiting = self.ran = False
        self.busy: str | None = None  # why it was pushed out or its wait ran too long (-> 503 busy)
        self.paused_at: float | None = None  # time.monotonic() when it last gave its slot up
        self.cancelled: Callable[[], bool] = lambda: False
        self.event = threading.Event()
        self.mark = self.slice = self.cpu = 0.0  # clock at grant; CPU since grant; CPU in all
        self.waited = 0.0  # seconds spent waiting for a slot (the first one and after pauses)

    def wake(self) -> None:
        """Let a waiting job look at its state again (e.g. after it was cancelled)."""
        self.event.set()


class FairScheduler:
    def __init__(self, slots: int, heavy_slots: int, max_waiting: int, quantum: float = QUANTUM,
                 clock: Callable[[], float] = time.thread_time, entry: float = ENTRY,
                 max_wait: float | None = None) -> None:
        self.slots, self.heavy_slots, self.max_waiting = slots, max(1, heavy_slots), max_waiting
        self.max_wait = max_wait  # longest wait of a paused job for its next turn (s)
        self.quantum, self.clock, self.entry = quantum, clock, entry
        self.free, self.heavy_free = slots, self.heavy_slots
        self.counts = {QUEUED: 0, RUNNING: 0, PAUSED: 0}  # tickets per state (not done)
        self.vtime = 0.0
        self.flows: dict[Hashable, float] = {}  # finish tag (CPU seconds charged) per flow
        self.members: dict[Hashable, int] = {}  # tickets not done per flow
        self.queue: list[Ticket] = []  # waiting for a slot (queued or paused)
        self._lock = threading.Lock()
        self._seq = itertools.count()

    # ------------------------------------------------------------------------------ admission
    def admit(self, ticket: Ticket) -> None:
        """Take ``ticket`` in (it waits for a slot), pushing out a job of a flow that used more
        when ``max_waiting`` wait; :class:`Busy` if it cannot. Every admitted ticket must be
        given to :meth:`release` once, whatever happened."""
        with self._lock:
            known = self.flows.get(ticket.flow)
            tag = self.vtime + self.entry if known is None else max(self.vtime, known)
            if len(self.queue) >= self.max_waiting:
                victim = max((t for t in self.queue if t.flow != ticket.flow), key=lambda t: (t.start, t.seq),
                             default=None)
                if victim is None or victim.start <= tag:
                    self.flows[ticket.flow] = tag + self.entry  # refused: not free either
                    raise Busy("the server is busy; too many requests are waiting")
                victim.busy = "the server is busy; requests from clients that used less went first"
                self._finish(victim)
                self.flows[victim.flow] = max(self.vtime, self.flows.get(victim.flow, victim.start)) + self.entry
                victim.wake()
            self._set(ticket, QUEUED)
            self.members[ticket.flow] = self.members.get(ticket.flow, 0) + 1
            self._enqueue(ticket, tag)

    # ---------------------------------------------------------------------- worker-thread side
    def wait_turn(self, ticket: Ticket, timeout: float | None = None) -> None:
        """Block until ``ticket`` holds a slot. Raises :class:`Busy` (no first slot within
        ``timeout`` s, or pushed out) or :class:`Cancelled` (``ticket.cancelled()``; or, for a
        job that already ran, pushed out or no next turn within ``timeout`` s: ``ticket.busy``
        says so)."""
        began = time.monotonic()
        deadline = None if timeout is None else began + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ticket.event.wait(left)
            with self._lock:
                ticket.event.clear()
                if ticket.state == RUNNING:
                    break
                problem: Exception | None = None
                if ticket.busy:  # a job that already ran stops like a cancelled one (its code lets Cancelled out)
                    problem = Cancelled(ticket.busy) if ticket.ran else Busy(ticket.busy)
                elif ticket.cancelled():
                    problem = Cancelled("cancelled while waiting")
                elif deadline is not None and time.monotonic() >= deadline:
                    ticket.busy = f"the server is busy; no worker became free within {timeout:g} s"
                    problem = Cancelled(ticket.busy) if ticket.ran else Busy(ticket.busy)
                if problem is not None:
                    self._unqueue(ticket)
                    raise problem
        ticket.waited += time.monotonic() - began
        ticket.ran = True
        ticket.mark, ticket.slice = self.clock(), 0.0

    def checkpoint(self, ticket: Ticket) -> None:
        """Charge the CPU used since the last call; give the slot up (and wait for the next turn)
        once the job used its quantum and a job with an earlier start tag waits."""
        if ticket.state != RUNNING:
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
            self.free += 1
            ticket.paused_at = time.monotonic()
            self._set(ticket, PAUSED)
            self._enqueue(ticket, mine)
        self.wait_turn(ticket, self.max_wait)

    def withdraw(self, ticket: Ticket) -> None:
        """Take a cancelled ticket that never got a slot out of the queue now (its thread, when
        it looks, raises :class:`Cancelled`); no-op once it has started."""
        with self._lock:
            if ticket.state == QUEUED:
                self._finish(ticket)
                self._dispatch()
        ticket.wake()

    def release(self, ticket: Ticket) -> None:
        """The job ended (returned, raised, or never got a slot): charge it and let it go."""
        used = self._charge(ticket) if ticket.state == RUNNING else 0.0
        with self._lock:
            if used:
                self.flows[ticket.flow] = self.flows.get(ticket.flow, ticket.start) + used
            self._finish(ticket)
            self._dispatch()

    # --------------------------------------------------------------------------------- inside
    def _set(self, ticket: Ticket, state: str) -> None:
        if ticket.state in self.counts:
            self.counts[ticket.state] -= 1
        ticket.state = state
        if state in self.counts:
            self.counts[state] += 1

    def _charge(self, ticket: Ticket) -> float:
        now = self.clock()
        used = max(0.0, now - ticket.mark)
        ticket.mark = now
        ticket.slice += used
        ticket.cpu += used
        return used

    def _enqueue(self, ticket: Ticket, tag: float) -> None:
        ticket.start, ticket.seq = tag, next(self._seq)
        ticket.waiting = True
        self.queue.append(ticket)
        self._dispatch()

    def _unqueue(self, ticket: Ticket) -> None:
        if ticket.waiting:
            ticket.waiting = False
            self.queue.remove(ticket)

    def _finish(self, ticket: Ticket) -> None:
        """``ticket`` leaves for good (ended, refused, pushed out or cancelled)."""
        if ticket.state in (NEW, DONE):
            return
        self._unqueue(ticket)
        if ticket.state == RUNNING:
            self.free += 1
        if ticket.holds_heavy:
            ticket.holds_heavy = False
            self.heavy_free += 1
        self._set(ticket, DONE)
        left = self.members.get(ticket.flow, 1) - 1
        if left > 0:
            self.members[ticket.flow] = left
            return
        self.members.pop(ticket.flow, None)
        if self.flows.get(ticket.flow, 0.0) + self.entry <= self.vtime:
            self.flows.pop(ticket.flow, None)  # far behind the virtual time: it would start at V anyway
        if not self.members:
            self.flows.clear()  # idle: nobody to be fair to
            self.vtime = 0.0
        elif len(self.flows) > MAX_FLOWS:
            self.flows = {f: tag for f, tag in self.flows.items() if f in self.members}

    def _best(self) -> Ticket | None:
        """The waiting ticket to run next: the earliest start tag among those allowed a slot."""
        return min((t for t in self.queue if not t.heavy or t.holds_heavy or self.heavy_free > 0),
                   key=lambda t: (t.start, t.seq), default=None)

    def _dispatch(self) -> None:
        while self.free > 0:
            best = self._best()
            if best is None:
                return
            self._unqueue(best)
            if best.heavy and not best.holds_heavy:
                best.holds_heavy = True
                self.heavy_free -= 1
            self.free -= 1
            self._set(best, RUNNING)
            self.vtime = max(self.vtime, best.start)
            self.flows[best.flow] = max(self.flows.get(best.flow, best.start), best.start)
            best.wake()
