"""Scheduling in the running app: short requests are served between the slices of long ones,
header refusals never wait for a worker, bad timeline settings are refused before the upload is
parsed, JSON is made on the workers, and every answer says where its time went."""

from __future__ import annotations

import asyncio
import copy
import struct
import threading
import time

import pytest

pytest.importorskip("fastapi", reason="the service needs fastapi (pip install 'emovox[serve]')")

import httpx  # noqa: E402

from emovox.service.app import create_app  # noqa: E402
from emovox.service.jobs import ClientGone, JobPool  # noqa: E402
from emovox.service.timing import parse  # noqa: E402
from tests.conftest import make_tone, wav_bytes  # noqa: E402

LOCAL = "http://127.0.0.1"


class SlowEngine:
    """The real engine, 0.2 s slower per call (a model call = one batch of windows)."""

    def __init__(self, inner, delay: float = 0.2) -> None:
        self.inner, self.delay, self.calls = inner, delay, 0

    def __call__(self, feats):
        self.calls += 1
        time.sleep(self.delay)
        return self.inner(feats)


def client_at(app, port: int) -> httpx.AsyncClient:
    """An in-process client whose requests come from their own connection (127.0.0.1:port)."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=("127.0.0.1", port)), base_url=LOCAL,
                             timeout=60)


def post(client: httpx.AsyncClient, url: str, data: bytes, **params):
    return client.post(url, files={"file": ("clip.wav", data, "audio/wav")}, params=params)


def test_a_short_request_is_served_while_a_long_timeline_holds_the_only_worker(recognizer):
    slow = copy.copy(recognizer)
    slow.engine = engine = SlowEngine(recognizer.engine)
    app = create_app(slow, workers=1)
    app.state.pool.scheduler.clock = time.monotonic  # a sleeping fake model is charged its wall time
    long, short = wav_bytes(make_tone(30.0)), wav_bytes(make_tone(1.0, seed=1))

    async def main():
        async with client_at(app, 1001) as a, client_at(app, 1002) as b:
            timeline = asyncio.ensure_future(post(a, "/v1/timeline", long, window=0.5, hop=0.1, vad="none"))
            while engine.calls < 2:  # ~19 batches of 0.2 s: the long job now holds the only worker
                await asyncio.sleep(0.01)
            start = time.monotonic()
            predicted = await post(b, "/v1/predict", short)
            took, calls_then = time.monotonic() - start, engine.calls
            return predicted, took, calls_then, await timeline

    predicted, took, calls_then, timeline = asyncio.run(main())
    assert predicted.status_code == 200 and timeline.status_code == 200, (predicted.text, timeline.text)
    assert calls_then < 12 and took < 3.0  # served between the long job's slices, not after its ~4 s
    assert len(timeline.json()["windows"]) == 296


def test_header_refusals_never_wait_for_a_worker(recognizer):
    app = create_app(recognizer, workers=1, queue_timeout=30)
    bad = bytearray(wav_bytes(make_tone(1.0)))
    bad[24:28] = struct.pack("<I", 0)  # 0 Hz: refused from the header

    async def main():
        pool: JobPool = app.state.pool
        release = threading.Event()
        blocker = asyncio.ensure_future(pool.run(release.wait, 10, timeout=20))  # never checks in: holds the worker
        while pool.running == 0:
            await asyncio.sleep(0.01)
        async with client_at(app, 1003) as c:
            start = time.monotonic()
            resp = await post(c, "/v1/predict", bytes(bad))
            took = time.monotonic() - start
        still_blocked = not blocker.done()
        release.set()
        await blocker
        return resp, took, still_blocked

    resp, took, still_blocked = asyncio.run(main())
    assert resp.status_code == 422 and "sample rate 0 Hz" in resp.json()["error"]["message"]
    assert still_blocked and took < 5  # answered while the only worker was busy


def test_bad_timeline_settings_are_refused_before_the_upload_is_parsed(recognizer):
    from fastapi.testclient import TestClient

    with TestClient(create_app(recognizer), base_url=LOCAL) as c:
        broken = b"--x\r\nContent-Disposition: form-data\r\n\r\n" + b"\0" * 50_000  # unparseable multipart
        headers = {"content-type": "multipart/form-data; boundary=x"}
        resp = c.post("/v1/timeline", params={"window": 0.1, "hop": 0.0001}, content=broken, headers=headers)
        assert resp.status_code == 400 and "window must be between 0.25" in resp.json()["error"]["message"]
        resp = c.post("/v1/timeline", params={"window": 1.0, "hop": 0.01}, content=broken, headers=headers)
        assert resp.status_code == 400 and "hop must be between 0.1" in resp.json()["error"]["message"]
        resp = c.post("/v1/timeline", params={"window": "abc"}, content=broken, headers=headers)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "bad_request"  # FastAPI's own check
        ok = c.post("/v1/timeline", files={"file": ("a.wav", wav_bytes(make_tone(3.0)), "audio/wav")},
                    params={"window": 1.0, "hop": 0.5, "vad": "none"})
        assert ok.status_code == 200, ok.text


def test_json_is_made_on_the_workers_and_timing_is_reported(recognizer, monkeypatch):
    import emovox.service.app as service
    from fastapi.testclient import TestClient

    threads = []
    real = service._json
    monkeypatch.setattr(service, "_json", lambda result: threads.append(threading.current_thread().name)
                        or real(result))
    with TestClient(create_app(recognizer), base_url=LOCAL) as c:
        resp = c.post("/v1/predict", files={"file": ("a.wav", wav_bytes(make_tone(1.0)), "audio/wav")})
    assert resp.status_code == 200 and resp.json()["label"] is not None
    assert threads and all(name.startswith("emovox-infer") for name in threads)
    timing = parse(resp.headers["server-timing"])
    assert {"header", "decode-wait", "decode", "infer-wait", "infer", "cpu"} <= set(timing)
    assert all(v >= 0 for v in timing.values())


def test_a_request_that_leaves_while_queued_never_runs():
    async def main():
        pool = JobPool(workers=1, max_pending=4, queue_timeout=30)
        release, ran = threading.Event(), []
        blocker = asyncio.ensure_future(pool.run(release.wait, 10, timeout=20))
        while pool.running == 0:
            await asyncio.sleep(0.01)
        start = time.monotonic()

        async def gone() -> bool:
            return time.monotonic() - start > 0.2

        with pytest.raises(ClientGone):
            await pool.run(lambda: ran.append(1), timeout=5, disconnected=gone)
        assert pool.waiting == 0 and time.monotonic() - start < 5  # left the queue at once
        release.set()
        await blocker
        await asyncio.sleep(0.1)
        assert ran == [] and pool.scheduler.counts == {"queued": 0, "running": 0, "paused": 0}
        pool.shutdown()

    asyncio.run(main())


@pytest.mark.parametrize("queue_timeout", [10.0, 0.5])
def test_time_paused_for_a_fairer_job_is_not_charged_to_the_deadline(queue_timeout):
    from emovox.service.jobs import check_cancelled
    from emovox.service.uploads import UploadProblem

    def steps(n: int) -> str:  # 0.05 s of "work" per step, a checkpoint after each
        for _ in range(n):
            time.sleep(0.05)
            check_cancelled()
        return "done"

    async def main():
        pool = JobPool(workers=1, max_pending=4, queue_timeout=queue_timeout, clock=time.monotonic)
        first = asyncio.ensure_future(pool.run(steps, 10, timeout=1.5, flow="a"))  # 0.5 s of its own work
        while pool.running == 0:
            await asyncio.sleep(0.01)
        # another connection's job that never checks in: while it runs (2 s), the first one is paused
        second = asyncio.ensure_future(pool.run(time.sleep, 2.0, timeout=5, flow="b"))
        start = time.monotonic()
        try:
            return await first, time.monotonic() - start
        except UploadProblem as exc:
            return exc, time.monotonic() - start
        finally:
            await second
            pool.shutdown()

    result, took = asyncio.run(main())
    if queue_timeout > 2:
        assert result == "done" and took > 1.5  # longer than its deadline in wall time, within it in work time
    else:  # paused longer than a request may wait for a worker: 503 busy, not a timeout
        assert isinstance(result, UploadProblem) and result.status == 503 and result.code == "busy"


def test_connections_that_keep_being_refused_are_slowed_down(monkeypatch):
    from emovox.service import brake as brake_module
    from emovox.service.brake import CAP, FREE, RefusalBrake

    statuses: list[int] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": statuses.pop(0), "headers": []})
        await send({"type": "http.response.body", "body": b""})

    slept: list[float] = []

    async def fake_sleep(seconds):
        slept.append(seconds)

    monkeypatch.setattr(brake_module.asyncio, "sleep", fake_sleep)
    brake = RefusalBrake(app)

    async def call(status: int, port: int = 1) -> float:
        statuses.append(status)
        before = len(slept)

        async def send(message):
            pass

        await brake({"type": "http", "client": ("127.0.0.1", port)}, None, send)
        return sum(slept[before:])

    async def main():
        delays = [await call(413) for _ in range(FREE + 8)]
        assert delays[:FREE] == [0.0] * FREE  # a few bad uploads in a row: answered at once
        assert 0 < delays[FREE] < delays[FREE + 1] < delays[FREE + 2] and max(delays) == CAP  # then slower
        assert await call(422, port=2) == 0.0  # another connection is not affected
        assert await call(503) == CAP  # retrying a busy server at once counts too
        assert await call(499) == 0.0 and await call(413) == CAP  # nobody read that one: neither counted nor a reset
        assert await call(200) == 0.0 and await call(413) == 0.0  # a success resets the count

    asyncio.run(main())
