"""Every request's cost is bounded: deadlines that stop work, queue-time 503s, disconnects,
decoding budgets, timeline bounds, one error shape, and connection deadlines on a real server."""

from __future__ import annotations

import asyncio
import copy
import io
import socket
import threading
import time

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="the service needs fastapi (pip install 'emovox[serve]')")

from fastapi.testclient import TestClient  # noqa: E402

from emovox.errors import Cancelled  # noqa: E402
from emovox.service.app import clean_message, create_app  # noqa: E402
from emovox.service.jobs import ClientGone, JobPool, check_cancelled  # noqa: E402
from emovox.service.uploads import UploadProblem  # noqa: E402
from tests.conftest import make_tone, wav_bytes  # noqa: E402

LOCAL = "http://127.0.0.1"


def upload(client, data: bytes, url: str = "/v1/predict", **params):
    return client.post(url, files={"file": ("clip.wav", data, "audio/wav")}, params=params)


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    err = resp.json()["error"]
    assert err["code"] == code and err["message"] and " at 0x" not in err["message"]
    return err


def wait_for(condition, seconds: float = 3.0) -> float:
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, "condition not reached in time"
        time.sleep(0.01)
    return time.monotonic() - start


class Worker:
    """A job that checks its cancel token every 10 ms (or ignores it) and records how it ended."""

    def __init__(self, seconds: float, cooperative: bool = True) -> None:
        self.seconds, self.cooperative = seconds, cooperative
        self.ended: str | None = None

    def __call__(self) -> str:
        end = time.monotonic() + self.seconds
        try:
            while time.monotonic() < end:
                if self.cooperative:
                    check_cancelled()
                time.sleep(0.01)
        except Cancelled as exc:
            self.ended = exc.reason
            raise
        self.ended = "done"
        return "done"


# ------------------------------------------------------------------------------------ job pool
def test_deadline_stops_the_work_and_the_slot_is_held_until_it_ends():
    async def main():
        pool = JobPool(workers=1, max_pending=4, queue_timeout=0.2)
        job = Worker(5.0)
        with pytest.raises(UploadProblem) as info:
            await pool.run(job, timeout=0.2, on_timeout=UploadProblem(422, "decode_timeout", "slow"))
        assert info.value.code == "decode_timeout"
        await asyncio.sleep(0.2)
        assert job.ended == "deadline passed" and pool.running == 0  # stopped, not left running

        stubborn = Worker(0.8, cooperative=False)  # cannot be stopped: keeps its slot until it ends
        with pytest.raises(UploadProblem):
            await pool.run(stubborn, timeout=0.1)
        assert pool.running == 1
        with pytest.raises(UploadProblem) as busy:
            await pool.run(Worker(0.0), timeout=5)
        assert busy.value.status == 503 and busy.value.code == "busy"  # queue time is a 503, not a timeout
        await asyncio.sleep(0.8)
        assert stubborn.ended == "done" and await pool.run(Worker(0.0), timeout=5) == "done"
        pool.shutdown()

    asyncio.run(main())


def test_time_in_the_queue_is_not_charged_to_the_job():
    async def main():
        pool = JobPool(workers=1, max_pending=4, queue_timeout=5)
        slow, quick = Worker(0.6), Worker(0.05)
        results = await asyncio.gather(pool.run(slow, timeout=5), pool.run(quick, timeout=0.3))
        assert results == ["done", "done"]  # waited 0.6 s behind `slow`, ran 0.05 s of its 0.3 s
        pool.shutdown()

    asyncio.run(main())


def test_too_many_waiting_requests_get_503_at_once():
    async def main():
        pool = JobPool(workers=1, max_pending=1, queue_timeout=5)
        running = asyncio.ensure_future(pool.run(Worker(0.5), timeout=5))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(pool.run(Worker(0.0), timeout=5))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        with pytest.raises(UploadProblem) as info:
            await pool.run(Worker(0.0), timeout=5)
        assert info.value.status == 503 and time.monotonic() - start < 2  # not after the 5 s queue timeout
        assert await running == "done" and await waiting == "done"
        pool.shutdown()

    asyncio.run(main())


def test_client_disconnect_cancels_its_job():
    async def main():
        pool = JobPool(workers=1, max_pending=4)
        job, start = Worker(5.0), time.monotonic()

        async def disconnected() -> bool:
            return time.monotonic() - start > 0.2

        with pytest.raises(ClientGone):
            await pool.run(job, timeout=10, disconnected=disconnected)
        await asyncio.sleep(0.1)
        assert job.ended == "client disconnected" and pool.running == 0
        pool.shutdown()

    asyncio.run(main())


# ----------------------------------------------------------------------------- over HTTP
def test_slow_decoder_is_stopped_at_its_deadline(recognizer, monkeypatch):
    import emovox.service.app as service

    state = {}

    def slow_decode(data, name, max_seconds, max_samples, cancel, sides=False):
        job = Worker(10.0)
        state["job"] = job
        return job()

    monkeypatch.setattr(service, "decode_upload", slow_decode)
    app = create_app(recognizer, decode_timeout=0.3)
    with TestClient(app, base_url=LOCAL) as c:
        start = time.monotonic()
        assert_error(upload(c, wav_bytes(make_tone(1.0))), 422, "decode_timeout")
        assert time.monotonic() - start < 6  # the decoder would take 10 s
        wait_for(lambda: app.state.pool.running == 0, 1.0)
        assert state["job"].ended == "deadline passed"


class SlowEngine:
    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay, self.calls = inner, delay, 0

    def __call__(self, feats):
        self.calls += 1
        time.sleep(self.delay)
        return self.inner(feats)


def test_slow_model_is_stopped_between_window_batches(recognizer):
    slow = copy.copy(recognizer)
    slow.engine = engine = SlowEngine(recognizer.engine, 0.1)
    app = create_app(slow, inference_timeout=0.4)
    with TestClient(app, base_url=LOCAL) as c:
        resp = upload(c, wav_bytes(make_tone(30.0)), "/v1/timeline", window=0.5, hop=0.1, vad="none")
        assert_error(resp, 503, "timeout")
        assert resp.headers["retry-after"] == "5"
        wait_for(lambda: app.state.pool.running == 0, 1.0)
        calls = engine.calls
        time.sleep(0.3)
        assert engine.calls == calls and calls < 15  # ~300 windows in batches: stopped after a few


def _silent_flac(rate: int, seconds: float) -> bytes:
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, 1, format="FLAC", subtype="PCM_16") as f:
        block, left = np.zeros(1 << 20, np.float32), int(rate * seconds)
        while left > 0:
            f.write(block[:min(left, block.size)])
            left -= block.size
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(recognizer):
    with TestClient(create_app(recognizer, max_windows=50), base_url=LOCAL) as c:
        yield c


def test_decompression_bombs_are_refused_from_the_header(client, monkeypatch):
    import emovox.audio as audio

    blocks = []
    real = audio._blocks
    monkeypatch.setattr(audio, "_blocks", lambda *a: blocks.append(1) or real(*a))
    err = assert_error(upload(client, _silent_flac(384_000, 590)), 413, "audio_too_long")
    assert "more than this server decodes" in err["message"]
    err = assert_error(upload(client, _silent_flac(655_350, 590)), 422, "undecodable_audio")
    assert "sample rate 655350 Hz is outside the supported range" in err["message"]
    assert blocks == []  # refused from the header: not one block was decoded


@pytest.mark.parametrize("rate", [0, 1, 4_000_000_000])
def test_invalid_rates_are_422_with_a_clear_message(client, rate):
    import struct

    data = bytearray(wav_bytes(make_tone(1.0)))
    data[24:28] = struct.pack("<I", rate)
    err = assert_error(upload(client, bytes(data)), 422, "undecodable_audio")
    assert f"sample rate {rate} Hz" in err["message"]


def test_timeline_requests_are_bounded(client):
    clip = wav_bytes(make_tone(3.0))
    err = assert_error(upload(client, clip, "/v1/timeline", window=0.1, hop=0.0001), 400, "bad_request")
    assert "window must be between 0.25" in err["message"]
    err = assert_error(upload(client, clip, "/v1/timeline", window=1.0, hop=0.0001), 400, "bad_request")
    assert "hop must be between 0.1" in err["message"]
    long = wav_bytes(make_tone(60.0))  # 60 s at hop 0.5: 119 windows > this server's 50
    err = assert_error(upload(client, long, "/v1/timeline", window=1.0, hop=0.5), 413, "timeline_too_large")
    assert "hop >= 1.2" in err["message"]
    assert upload(client, long, "/v1/timeline", window=2.0, hop=1.2, vad="none").status_code == 200


def test_every_error_has_the_documented_shape(client):
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.get("/v1/predict"), 405, "method_not_allowed")
    bad_multipart = client.post("/v1/predict", content=b"--x\r\nContent-Disposition: form-data\r\n\r\n",
                                headers={"content-type": "multipart/form-data; boundary=x"})
    assert_error(bad_multipart, 400, "bad_request")
    with TestClient(client.app, base_url="http://rebind.attacker.example") as other:
        assert_error(other.get("/healthz"), 400, "bad_host")


def test_messages_carry_no_addresses_or_server_paths():
    text = clean_message("Error opening <_io.BytesIO object at 0x7f3a2c1b9e40>: /home/someone/models/x/config.json")
    assert "0x" not in text and "/home" not in text and "config.json" in text


# ---------------------------------------------------------------------------- real server
@pytest.fixture(scope="module")
def server(recognizer):
    import uvicorn

    from emovox.service.server import server_config

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(recognizer, max_upload_bytes=1_000_000, read_timeout=0.5)
    srv = uvicorn.Server(server_config(app, "127.0.0.1", port, header_timeout=0.5))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    wait_for(lambda: srv.started, 30)
    yield port
    srv.should_exit = True
    thread.join(timeout=10)


def _read_all(sock: socket.socket, seconds: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and when it closed it."""
    sock.settimeout(seconds)
    start, data = time.monotonic(), b""
    while True:
        chunk = sock.recv(65536)  # socket.timeout fails the test: the server kept it open
        if not chunk:
            return data, time.monotonic() - start
        data += chunk


def test_idle_and_slowloris_connections_are_closed(server):
    idle = socket.create_connection(("127.0.0.1", server))
    slow = socket.create_connection(("127.0.0.1", server))
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    for _ in range(3):  # one header byte at a time
        time.sleep(0.1)
        slow.sendall(b"X")
    assert _read_all(idle, 20.0)[0] == b""  # closed (a timeout here fails: the connection stayed open)
    assert _read_all(slow, 20.0)[0] == b""


def test_stalled_body_gets_408_and_the_connection_closes(server):
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                     b"boundary=x\r\nContent-Length: 5000\r\n\r\n--x")
        data, seconds = _read_all(sock, 20.0)
    assert data.startswith(b"HTTP/1.1 408") and b'"request_timeout"' in data


def test_declared_oversize_body_gets_413_without_waiting_for_it(server):
    with socket.create_connection(("127.0.0.1", server)) as sock:
        sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                     b"boundary=x\r\nContent-Length: 60000000\r\n\r\nabc")
        data, seconds = _read_all(sock, 20.0)
    assert data.startswith(b"HTTP/1.1 413") and b'"payload_too_large"' in data


def test_keep_alive_requests_still_work(server):
    import httpx

    with httpx.Client(base_url=f"http://127.0.0.1:{server}") as c:
        for _ in range(3):
            assert c.get("/healthz").status_code == 200
        resp = c.post("/v1/predict", files={"file": ("a.wav", wav_bytes(make_tone(1.0)), "audio/wav")})
        assert resp.status_code == 200, resp.text


def test_client_disconnect_cancels_its_job_on_a_real_server(recognizer):
    import uvicorn

    from emovox.service.server import server_config

    slow = copy.copy(recognizer)
    slow.engine = engine = SlowEngine(recognizer.engine, 0.2)
    app = create_app(slow)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(server_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: srv.started, 30)
        body = wav_bytes(make_tone(30.0))
        form = (b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
                b"Content-Type: audio/wav\r\n\r\n" + body + b"\r\n--x--\r\n")
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(b"POST /v1/timeline?window=0.5&hop=0.1&vad=none HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: "
                         + str(len(form)).encode() + b"\r\n\r\n" + form)
            wait_for(lambda: engine.calls > 0, 30)  # the job is running; now the client walks away
        wait_for(lambda: app.state.pool.running == 0, 5)
        calls = engine.calls
        time.sleep(0.5)
        assert engine.calls == calls and calls < 10  # ~300 windows: stopped long before the end
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


def test_heavy_jobs_never_take_every_worker():
    async def main():
        pool = JobPool(workers=2, max_pending=8, queue_timeout=5)
        heavy = [asyncio.ensure_future(pool.run(Worker(1.5), timeout=9, heavy=True)) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert await pool.run(Worker(0.0), timeout=5) == "done"  # a light job gets the free worker...
        assert not any(h.done() for h in heavy) and pool.running == 1  # ...while one heavy job runs, two wait
        assert await asyncio.gather(*heavy) == ["done"] * 3
        pool.shutdown()

    asyncio.run(main())


def test_frame_scoring_calls_are_checkpoints_too():
    """The default model is scored from frames (timelines; predict on recordings over 6 s): its
    encoder and head calls stop a job past its deadline like whole-clip model calls do."""
    from emovox.service.jobs import CancellableEngine

    class Frames:  # a frame model whose every call takes 20 ms
        has_frames = True
        calls = 0

        def hidden(self, piece):
            Frames.calls += 1
            time.sleep(0.02)
            return piece

        def head_logits(self, pooled):
            Frames.calls += 1
            time.sleep(0.02)
            return pooled

    engine = CancellableEngine(Frames())
    assert engine.has_frames and engine.hidden(1) == 1 and engine.head_logits(2) == 2  # outside jobs: forwards

    def score(n: int) -> str:
        for i in range(n):
            engine.hidden(i) if i % 2 else engine.head_logits(i)
        return "done"

    async def main():
        pool = JobPool(workers=1, max_pending=4, queue_timeout=0.2)
        Frames.calls = 0
        with pytest.raises(UploadProblem):
            await pool.run(score, 200, timeout=0.2)  # 4 s of calls
        await asyncio.sleep(0.1)
        assert Frames.calls < 30 and pool.running == 0  # stopped at the next call after the deadline
        pool.shutdown()

    asyncio.run(main())
