"""Fair scheduling of the service's jobs: start-time fair queueing per connection, charged by CPU,
time slices at checkpoints, the heavy lane and push-out admission. Deterministic: jobs "use CPU"
by advancing a per-thread fake clock, and every wait is on an event, not on timing."""

from __future__ import annotations

import threading
import time

import pytest

from emovox.errors import Cancelled
from emovox.service.fair import Busy, FairScheduler, Ticket

_cpu = threading.local()


def fake_clock() -> float:
    return getattr(_cpu, "spent", 0.0)


def spend(seconds: float) -> None:
    _cpu.spent = fake_clock() + seconds


class Job(threading.Thread):
    """Admitted at once; on its thread: wait for a slot, then ``steps`` x (use ``step`` CPU s,
    checkpoint); ``log`` gets (name, step) after each step and (name, "done") at the end."""

    def __init__(self, sched: FairScheduler, name: str, flow, steps: int, log: list, step: float = 0.1,
                 heavy: bool = False, gate: threading.Event | None = None) -> None:
        super().__init__(daemon=True)
        self.sched, self.label, self.steps, self.log, self.step, self.gate = sched, name, steps, log, step, gate
        self.ticket = Ticket(flow, heavy)
        self.error: BaseException | None = None
        sched.admit(self.ticket)

    def run(self) -> None:
        try:
            self.sched.wait_turn(self.ticket, timeout=5)
            for i in range(self.steps):
                if self.gate is not None:
                    self.gate.wait(5)
                spend(self.step)
                self.log.append((self.label, i))
                self.sched.checkpoint(self.ticket)
            self.log.append((self.label, "done"))
        except BaseException as exc:  # noqa: BLE001 - recorded for the test
            self.error = exc
        finally:
            self.sched.release(self.ticket)


def done_order(log: list) -> list[str]:
    return [name for name, step in log if step == "done"]


def test_a_short_job_runs_between_the_slices_of_a_long_one():
    sched = FairScheduler(slots=1, heavy_slots=1, max_waiting=8, quantum=0.05, clock=fake_clock)
    log: list = []
    gate = threading.Event()
    long = Job(sched, "long", "a", steps=50, log=log, gate=gate)
    long.start()
    while sched.counts["running"] == 0:
        time.sleep(0.001)
    short = Job(sched, "short", "b", steps=1, log=log)  # arrives while the long job holds the only slot
    short.start()
    gate.set()
    long.join(10)
    short.join(10)
    assert long.error is None and short.error is None
    assert done_order(log) == ["short", "long"]
    before = log[:log.index(("short", "done"))]
    # the long job gave its slot up after two 0.1 s steps: its first quantum, plus the one a new flow is charged
    assert [n for n, _ in before].count("long") == 2
    assert sched.counts == {"queued": 0, "running": 0, "paused": 0} and sched.free == 1


def test_flows_that_used_more_cpu_wait_behind_the_others():
    sched = FairScheduler(slots=1, heavy_slots=1, max_waiting=8, quantum=10.0, clock=fake_clock)
    log: list = []
    gate = threading.Event()
    holder = Job(sched, "holder", "x", steps=1, log=log, gate=gate)  # holds the slot while the others queue
    holder.start()
    while sched.counts["running"] == 0:
        time.sleep(0.001)
    sched.flows["greedy"] = sched.vtime + 5.0  # the greedy connection already used 5 CPU s more
    jobs = [Job(sched, name, flow, steps=1, log=log) for name, flow in
            (("greedy-1", "greedy"), ("fresh-1", "fresh"), ("greedy-2", "greedy"), ("other-1", "other"))]
    for job in jobs:
        job.start()
    gate.set()
    for job in [holder, *jobs]:
        job.join(10)
    assert done_order(log) == ["holder", "fresh-1", "other-1", "greedy-1", "greedy-2"]


def test_heavy_jobs_never_hold_every_slot():
    sched = FairScheduler(slots=2, heavy_slots=1, max_waiting=8, quantum=10.0, clock=fake_clock)
    log: list = []
    gate = threading.Event()
    heavy = [Job(sched, f"heavy-{i}", f"h{i}", steps=1, log=log, heavy=True, gate=gate) for i in range(2)]
    for job in heavy:
        job.start()
    while sched.counts["running"] == 0:
        time.sleep(0.001)
    time.sleep(0.05)
    assert sched.counts["running"] == 1 and sched.counts["queued"] == 1  # the second heavy job waits...
    light = Job(sched, "light", "l", steps=1, log=log)
    light.start()
    light.join(10)
    assert done_order(log) == ["light"]  # ...and the free slot went to the light job
    gate.set()
    for job in heavy:
        job.join(10)
    assert sorted(done_order(log)) == ["heavy-0", "heavy-1", "light"]


def test_a_full_queue_sheds_the_flow_that_used_most():
    sched = FairScheduler(slots=1, heavy_slots=1, max_waiting=2, quantum=10.0, clock=fake_clock)
    log: list = []
    gate = threading.Event()
    holder = Job(sched, "holder", "x", steps=1, log=log, gate=gate)
    holder.start()
    while sched.counts["running"] == 0:
        time.sleep(0.001)
    sched.flows["greedy"] = sched.vtime + 5.0
    greedy = Job(sched, "greedy", "greedy", steps=1, log=log)
    fair = Job(sched, "fair", "fair", steps=1, log=log)
    greedy.start()
    fair.start()
    newcomer = Job(sched, "new", "new", steps=1, log=log)  # the queue is full: the greedy job is pushed out
    newcomer.start()
    assert sched.flows["greedy"] == pytest.approx(sched.vtime + 5.1)  # pushed out: charged one quantum more
    with pytest.raises(Busy):
        Job(sched, "late", "late", steps=1, log=log)  # a new flow, but nobody waiting used more than it
    assert sched.flows["late"] == pytest.approx(sched.vtime + 0.2)  # refused: its next try starts further back
    sched.flows["greedy3"] = sched.vtime + 9.0
    with pytest.raises(Busy):
        Job(sched, "greedier", "greedy3", steps=1, log=log)  # a flow that used more cannot push anyone out
    greedy.join(10)
    assert isinstance(greedy.error, Busy) and "used less went first" in greedy.error.reason
    gate.set()
    for job in (holder, fair, newcomer):
        job.join(10)
    assert sorted(done_order(log)) == ["fair", "holder", "new"]
    assert sched.counts == {"queued": 0, "running": 0, "paused": 0}


def test_a_paused_job_of_the_greediest_flow_is_stopped_when_the_queue_is_full():
    sched = FairScheduler(slots=1, heavy_slots=1, max_waiting=2, quantum=0.05, clock=fake_clock)
    log: list = []
    gate, hold = threading.Event(), threading.Event()
    long = Job(sched, "long", "greedy", steps=1000, log=log, step=0.5, gate=gate)
    long.start()
    while sched.counts["running"] == 0:
        time.sleep(0.001)
    blocker = Job(sched, "blocker", "b", steps=1, log=log, gate=hold)
    blocker.start()
    gate.set()
    while sched.counts["paused"] == 0:  # the long job used its quantum and paused for the blocker
        time.sleep(0.001)
    others = [Job(sched, name, name, steps=1, log=log) for name in ("c", "d")]  # the second one fills the queue
    for job in others:
        job.start()
    long.join(5)
    assert isinstance(long.error, Cancelled) and "used less went first" in long.error.reason
    hold.set()
    for job in (blocker, *others):
        job.join(5)
    assert sorted(done_order(log)) == ["blocker", "c", "d"]
    assert sched.counts == {"queued": 0, "running": 0, "paused": 0} and sched.free == 1


def test_cancelled_jobs_leave_the_queue_and_paused_jobs_stop_at_once():
    sched = FairScheduler(slots=1, heavy_slots=1, max_waiting=8, quantum=0.05, clock=fake_clock)
    log: list = []
    gate = threading.Event()
    stop = {"queued": False, "paused": False}
    long = Job(sched, "long", "a", steps=1000, log=log, gate=gate)
    long.ticket.cancelled = lambda: stop["paused"]
    long.start()
    while sched.counts["running"] == 0:
        time.sleep(0.001)
    queued = Job(sched, "queued", "b", steps=1, log=log)
    queued.ticket.cancelled = lambda: stop["queued"]
    queued.start()
    stop["queued"] = True
    queued.ticket.wake()
    queued.join(5)
    assert isinstance(queued.error, Cancelled) and sched.counts["queued"] == 0
    blocker = Job(sched, "blocker", "c", steps=1, log=log, gate=threading.Event())  # never passes its gate
    blocker.start()
    gate.set()
    while sched.counts["paused"] == 0:  # the long job paused for the blocker (an earlier start tag)
        time.sleep(0.001)
    stop["paused"] = True
    long.ticket.wake()
    long.join(5)
    assert isinstance(long.error, Cancelled) and not long.is_alive()
    assert sched.counts["paused"] == 0 and len([s for n, s in log if n == "long"]) < 5
    blocker.gate.set()  # type: ignore[union-attr]
    blocker.join(5)
    assert sched.counts == {"queued": 0, "running": 0, "paused": 0} and sched.free == 1


def test_no_first_slot_within_the_timeout_is_busy():
    sched = FairScheduler(slots=1, heavy_slots=1, max_waiting=8, clock=fake_clock)
    holder = Ticket("x")
    sched.admit(holder)
    sched.wait_turn(holder, timeout=1)
    waiter = Ticket("y")
    sched.admit(waiter)
    start = time.monotonic()
    with pytest.raises(Busy, match="within 0.2 s"):
        sched.wait_turn(waiter, timeout=0.2)
    assert time.monotonic() - start < 2
    sched.release(waiter)
    sched.release(holder)
    assert sched.counts == {"queued": 0, "running": 0, "paused": 0} and sched.free == 1 and not sched.flows
