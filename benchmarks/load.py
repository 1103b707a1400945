"""Load test of ``emovox serve`` on 127.0.0.1: many concurrent clients, good and bad uploads.

    .venv/bin/python benchmarks/load.py [--requests 2000] [--clients 64] [--max-seconds 600]
                                        [--model FOLDER] [--workers 2] [--threads 1]
    .venv/bin/python benchmarks/load.py --abuse [--kinds heavy,min-hop] [--rounds 4]

Starts ``emovox serve`` as a subprocess on a free local port (the bundled default model, else a
random ResNet18 of the default model's size), warms it up, then ``--clients`` concurrent clients
(httpx, asyncio) send ``--requests`` requests, cycling through a fixed mix:

* 50 % valid example clips (``examples/*.flac``) -> must all be 200;
* 10 % oversize uploads (above ``--max-upload-mb``, half of them streamed without Content-Length) -> 413
  (or, for the declared-length half, a connection closed before the 413 is read: counted apart);
* 10 % non-audio (text, PDF, PNG) named ``.wav`` -> 415;
* 20 % truncated WAV/FLAC and corrupt-header WAV -> 422;
* 10 % empty uploads -> 422.

With ``--abuse`` the run is instead: valid clips alone (the clean run), then the same valid
clips while the attackers of :mod:`benchmarks.load_abuse` run next to them (decompression bombs,
a heavy in-budget decode, bad rates, tiny-hop and minimum-hop timelines, slowloris headers,
stalled bodies, abandoned timeline jobs; ``--kinds`` picks some), in ``--rounds`` interleaved
clean/abused pairs (attackers start afresh each abused round, and whatever they still wait for at
its end is hung up on). It fails unless valid requests keep their p95 latency within
``--max-slowdown`` (2x) of the clean run, every valid request is answered 200, and the server's
peak RSS stays under ``--max-rss-mb`` (1500 MB). The server's ``Server-Timing`` headers split
valid requests' latency into waiting for a worker, work, and the rest.

Meanwhile a monitor polls ``/healthz`` every 0.5 s and samples the server's resident memory
(``VmRSS`` of ``/proc/<pid>/status``). Prints requests/s, p50/p95/p99 latency (all, valid,
refused), counts by status and error code, health-check results and RSS over the run; exits 1
if a valid request failed, a refusal had the wrong status, a transport error or 5xx occurred,
/healthz failed, or RSS grew by more than ``--max-rss-growth-mb`` between the end of the first
quarter and the end of the run (memory must plateau, not grow with the number of requests).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import numpy as np

REPO = Path(__file__).resolve().parents[1]


#: Transport errors an early-refused oversize upload may see (counted, reported, not failures).
RESET_ERRORS = ("ReadError", "WriteError", "RemoteProtocolError")


@dataclass(frozen=True)
class Upload:
    kind: str  # valid | oversize | oversize-stream | not-audio | truncated | corrupt | empty
    name: str
    data: bytes
    status: int  # expected status
    code: str | None = None  # expected error code


# ----------------------------------------------------------------------------------- inputs
def uploads(max_upload_bytes: int) -> list[Upload]:
    """One cycle of the request mix (20 uploads: 10 valid, 2 oversize, 2 non-audio, 4 broken, 2 empty)."""
    import soundfile as sf

    clips = sorted((REPO / "examples").glob("*.flac"))
    if not clips:
        raise SystemExit("benchmarks/load.py needs the example clips in examples/")
    valid = [Upload("valid", p.name, p.read_bytes(), 200) for p in clips]
    valid = (valid * 10)[:10]
    x, rate = sf.read(clips[0], dtype="float32")
    wav = io.BytesIO()
    sf.write(wav, x, rate, format="WAV", subtype="PCM_16")
    wav_bytes, flac_bytes = wav.getvalue(), clips[0].read_bytes()
    big = b"RIFF" + os.urandom(max_upload_bytes + 4096)
    corrupt = bytearray(wav_bytes)
    corrupt[20:24] = b"\xff\xff\xff\xff"
    bad = [
        Upload("oversize", "big.wav", big, 413, "payload_too_large"),
        Upload("oversize-stream", "big.wav", big, 413, "payload_too_large"),
        Upload("not-audio", "notes.wav", b"meeting notes, not audio\n" * 200, 415, "unsupported_media_type"),
        Upload("not-audio", "paper.wav", b"%PDF-1.7\n" + os.urandom(20_000), 415, "unsupported_media_type"),
        Upload("truncated", "cut.wav", wav_bytes[: len(wav_bytes) // 3], 422, "undecodable_audio"),
        Upload("truncated", "cut.flac", flac_bytes[: len(flac_bytes) // 3], 422, "undecodable_audio"),
        Upload("truncated", "header.wav", wav_bytes[:30], 422, "undecodable_audio"),
        Upload("corrupt", "corrupt.wav", bytes(corrupt), 422, "undecodable_audio"),
        Upload("empty", "empty.wav", b"", 422, "empty_upload"),
        Upload("empty", "empty.flac", b"", 422, "empty_upload"),
    ]
    mix = []
    for i in range(10):  # interleave so every stretch of the run sees every kind
        mix += [valid[i], bad[i]]
    return mix


# ----------------------------------------------------------------------------------- server
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_server(args: argparse.Namespace, model: Path, port: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-c", "import sys; from emovox.cli import main; sys.exit(main())", "serve",
           "--host", "127.0.0.1", "--port", str(port), "--model", str(model), "--workers", str(args.workers),
           "--threads", str(args.threads), "--max-upload-mb", str(args.max_upload_mb),
           "--read-timeout", str(args.read_timeout), "--header-timeout", str(args.header_timeout)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    return subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=REPO)


async def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    import httpx

    deadline = time.time() + timeout
    async with httpx.AsyncClient(base_url=base) as client:
        while time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"emovox serve exited with code {proc.returncode} before it was healthy")
            try:
                if (await client.get("/healthz", timeout=2)).status_code == 200:
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            await asyncio.sleep(0.25)
    raise SystemExit(f"emovox serve was not healthy after {timeout:.0f} s")


# ------------------------------------------------------------------------------------ load
@dataclass
class Result:
    kind: str
    status: int | None
    code: str | None
    seconds: float
    ok: bool
    detail: str = ""
    timing: dict[str, float] | None = None  # the server's Server-Timing header (ms per stage)


async def _stream(data: bytes, boundary: str, name: str) -> AsyncIterator[bytes]:
    yield (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
           "Content-Type: audio/wav\r\n\r\n").encode()
    for i in range(0, len(data), 256 * 1024):
        yield data[i:i + 256 * 1024]
    yield f"\r\n--{boundary}--\r\n".encode()


async def send(client: Any, up: Upload) -> Result:
    t0 = time.perf_counter()
    try:
        if up.kind == "oversize-stream":  # chunked: the server must stop reading at its cap
            boundary = "emovoxloadtest"
            resp = await client.post("/v1/predict", content=_stream(up.data, boundary, up.name),
                                     headers={"content-type": f"multipart/form-data; boundary={boundary}"})
        else:
            resp = await client.post("/v1/predict", files={"file": (up.name, up.data, "application/octet-stream")})
        took = time.perf_counter() - t0
        try:
            body = resp.json()
        except ValueError:
            body = {}
        code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
        ok = resp.status_code == up.status and (up.code is None or code == up.code)
        if ok and up.status == 200:
            ok = body.get("label") is not None and abs(sum(body["probabilities"].values()) - 1) < 1e-3
        timing = parse_timing(resp.headers.get("server-timing", ""))
        return Result(up.kind, resp.status_code, code, took, ok, "" if ok else resp.text[:200], timing)
    except Exception as exc:  # noqa: BLE001 - a transport failure is a result to count
        # An oversize upload may see the connection closed before the 413 reaches it: the server
        # answers as soon as Content-Length is too big and closes without reading the rest.
        reset = up.kind.startswith("oversize") and type(exc).__name__ in RESET_ERRORS
        return Result(up.kind, None, "connection closed" if reset else None, time.perf_counter() - t0, reset,
                      f"{type(exc).__name__}: {exc}")


async def run_load(base: str, mix: list[Upload], n: int, clients: int, deadline: float) -> tuple[list[Result], float]:
    import httpx

    queue: asyncio.Queue = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(mix[i % len(mix)])
    results: list[Result] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120.0) as client:
        async def worker() -> None:
            while time.time() < deadline:
                try:
                    up = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                results.append(await send(client, up))

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return results, time.perf_counter() - t0


class Monitor(threading.Thread):
    """Polls /healthz and samples the server's RSS every ``every`` seconds."""

    def __init__(self, base: str, pid: int, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.base, self.pid, self.every = base, pid, every
        self.samples: list[tuple[float, float]] = []  # (time, RSS MB)
        self.health: list[tuple[bool, float]] = []  # (ok, latency s)
        self.stop = threading.Event()

    def run(self) -> None:
        import httpx

        with httpx.Client(base_url=self.base, timeout=10.0) as client:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    r = client.get("/healthz")
                    ok = r.status_code == 200 and r.json().get("status") == "ok"
                except Exception:  # noqa: BLE001
                    ok = False
                self.health.append((ok, time.perf_counter() - t0))
                self.samples.append((time.time(), rss_mb(self.pid)))
                self.stop.wait(self.every)


# ------------------------------------------------------------------------------------ report
def parse_timing(value: str) -> dict[str, float]:
    try:
        from emovox.service.timing import parse
    except ImportError:  # a server from before Server-Timing (the benchmark measures old versions too)
        return {}
    return parse(value)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def latency_line(label: str, values: list[float]) -> str:
    return (f"  {label:<9} n={len(values):5d}  p50 {pct(values, 50):7.1f} ms  p95 {pct(values, 95):7.1f} ms  "
            f"p99 {pct(values, 99):7.1f} ms  max {pct(values, 100):7.1f} ms")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="requests in the measured run (default 2000)")
    ap.add_argument("--clients", type=int, default=64, help="concurrent clients (default 64)")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="time cap of the measured run (default 600)")
    ap.add_argument("--warmup", type=int, default=64, help="valid requests before measuring (default 64)")
    ap.add_argument("--model", help="model folder (default: the bundled model, else a random ResNet18)")
    ap.add_argument("--workers", type=int, default=2, help="server inference threads (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    ap.add_argument("--max-upload-mb", type=float, default=1.0, help="server upload cap (default 1 MB)")
    ap.add_argument("--max-rss-growth-mb", type=float, default=100.0,
                    help="allowed RSS growth from the end of the first quarter to the end (default 100 MB)")
    ap.add_argument("--read-timeout", type=float, default=10.0, help="server body deadline (default 10 s)")
    ap.add_argument("--header-timeout", type=float, default=5.0, help="server header deadline (default 5 s)")
    ap.add_argument("--abuse", action="store_true", help="clean run, then the same with the abuse mix")
    ap.add_argument("--attackers", type=int, default=1, help="attackers of each abuse kind (default 1)")
    ap.add_argument("--kinds", help="comma-separated attacker kinds to run (default: all of benchmarks/load_abuse.py)")
    ap.add_argument("--rounds", type=int, default=4,
                    help="clean/abused pairs the --abuse requests are split into, interleaved (default 4)")
    ap.add_argument("--max-slowdown", type=float, default=2.0, help="allowed valid p95 ratio abuse/clean")
    ap.add_argument("--max-rss-mb", type=float, default=1500.0, help="allowed server peak RSS with --abuse")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from fuzz.fuzz_audio import model_folder

    if args.abuse:
        from benchmarks.load_abuse import abuse_main

        return abuse_main(args)

    work = Path(tempfile.mkdtemp(prefix="emovox-load-"))
    model = model_folder(args.model, work)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    mix = uploads(int(args.max_upload_mb * 1024 * 1024))
    proc = start_server(args, model, port, work / "server.log")
    try:
        asyncio.run(wait_healthy(base, proc))
        rss_idle = rss_mb(proc.pid)
        valid_only = [u for u in mix if u.kind == "valid"]
        asyncio.run(run_load(base, valid_only, args.warmup, min(args.clients, args.warmup), time.time() + 300))
        monitor = Monitor(base, proc.pid)
        monitor.start()
        started = time.time()
        results, wall = asyncio.run(run_load(base, mix, args.requests, args.clients, started + args.max_seconds))
        monitor.stop.set()
        monitor.join()
        alive = proc.poll() is None
        health_after = asyncio.run(_health(base)) if alive else False
    finally:
        stop_server(proc)
    return report(args, model, results, wall, monitor, rss_idle, started, alive and health_after, work)


def stop_server(proc: subprocess.Popen) -> None:
    """Terminate the server process; kill it when it has not exited 30 s later."""
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


async def _health(base: str) -> bool:
    import httpx

    async with httpx.AsyncClient(base_url=base) as client:
        r = await client.get("/healthz", timeout=10)
        return r.status_code == 200 and r.json()["status"] == "ok"


def report(args: argparse.Namespace, model: Path, results: list[Result], wall: float, monitor: Monitor,
           rss_idle: float, started: float, healthy_after: bool, work: Path) -> int:
    import json

    name = json.loads((model / "config.json").read_text()).get("name", model.name)
    print(f"emovox serve on 127.0.0.1, model {name}, {args.workers} workers x {args.threads} thread(s); "
          f"{args.clients} clients, upload cap {args.max_upload_mb:g} MB")
    print(f"requests: {len(results)} of {args.requests} in {wall:.1f} s -> {len(results) / wall:.1f} requests/s")
    print("latency:")
    print(latency_line("all", [r.seconds for r in results]))
    print(latency_line("valid", [r.seconds for r in results if r.kind == "valid"]))
    print(latency_line("refused", [r.seconds for r in results if r.kind != "valid"]))
    by = collections.Counter((r.kind, r.status, r.code) for r in results)
    print("responses by kind (status, error code):")
    for (kind, status, code), n in sorted(by.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
        print(f"  {n:6d}  {kind:<16} {status} {code or ''}")
    failures = [r for r in results if not r.ok]
    closed = [r for r in results if r.code == "connection closed"]
    if closed:
        print(f"note: {len(closed)} oversize uploads saw the connection closed (no 413 read) while still sending "
              "the body: the server refuses at once from Content-Length and does not drain the rest")
    health_ok = sum(ok for ok, _ in monitor.health)
    health_lat = [t for _, t in monitor.health]
    print(f"/healthz during the run: {health_ok}/{len(monitor.health)} ok, p50 {pct(health_lat, 50):.1f} ms, "
          f"max {pct(health_lat, 100):.1f} ms; after the run: {'ok' if healthy_after else 'FAILED'}")
    rss = [m for _, m in monitor.samples]
    quarter = rss[len(rss) // 4] if rss else float("nan")
    if rss:
        marks = [rss[min(len(rss) - 1, int(q * (len(rss) - 1)))] for q in (0, 0.25, 0.5, 0.75, 1.0)]
        print(f"server RSS (MB): idle {rss_idle:.0f}, start {marks[0]:.0f}, 25% {marks[1]:.0f}, 50% {marks[2]:.0f}, "
              f"75% {marks[3]:.0f}, end {marks[4]:.0f}, peak {max(rss):.0f}; growth after the first quarter "
              f"{rss[-1] - quarter:+.0f} MB ({len(rss)} samples)")
    problems = []
    if failures:
        kinds = collections.Counter(f"{r.kind} -> {r.status} {r.code or ''} {r.detail[:80]}" for r in failures)
        problems.append(f"{len(failures)} requests got an unexpected answer: {dict(kinds.most_common(5))}")
    if len(results) < args.requests:
        problems.append(f"only {len(results)} of {args.requests} requests before the {args.max_seconds:.0f} s cap")
    if health_ok < len(monitor.health) or not healthy_after:
        problems.append("/healthz failed during or after the run")
    if rss and rss[-1] - quarter > args.max_rss_growth_mb:
        problems.append(f"RSS grew by {rss[-1] - quarter:.0f} MB after the first quarter (limit {args.max_rss_growth_mb:g})")
    for p in problems:
        print(f"FAIL: {p}")
    if problems:
        print(f"server log: {work / 'server.log'}")
        return 1
    print("OK: every valid request answered 200, every bad one its 4xx, /healthz stayed ok, RSS plateaued")
    return 0


if __name__ == "__main__":
    sys.exit(main())
