"""The abuse mix of ``benchmarks/load.py --abuse``: hostile clients running next to valid ones,
and the run that compares valid clients' latency with and without them (:func:`abuse_main`).

Each attacker loops until told to stop and counts what the server answered:

* ``bomb``: 590 s of silence at 384 kHz in 0.8 MB of FLAC (over the decoding budget) -> 413;
* ``heavy``: 590 s at 48 kHz stereo (just within the default budget: really decoded) -> 200 (or 422
  ``decode_timeout`` on a slow machine);
* ``bad-rate``: a WAV whose header says 0 Hz -> 422;
* ``tiny-hop``: ``/v1/timeline?window=0.1&hop=0.0001`` -> 400; ``min-hop``: window 0.25, hop 0.1 -> 200;
* ``slowloris``: request headers one byte every 0.5 s -> the server closes the connection;
* ``stalled``: a body declared 500 kB of which 10 bytes are sent -> 408;
* ``disconnect``: a 30 s timeline request abandoned after 0.3 s (its job must be cancelled).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import io
import os
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.load import (REPO, Monitor, Result, _health, free_port, latency_line, pct, rss_mb, run_load,
                             start_server, stop_server, uploads, wait_healthy)

KINDS = ("bomb", "heavy", "bad-rate", "tiny-hop", "min-hop", "slowloris", "stalled", "disconnect")


def _silent_flac(rate: int, seconds: float, channels: int = 1) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        block, left = np.zeros((1 << 18, channels), np.float32), int(rate * seconds)
        while left > 0:
            f.write(block[:min(left, len(block))])
            left -= len(block)
    return buf.getvalue()


def payloads(clip: bytes) -> dict[str, bytes]:
    """Files of the mix (``clip``: a valid WAV, used by the timeline attackers)."""
    import soundfile as sf

    zero = bytearray(clip)
    zero[24:28] = struct.pack("<I", 0)
    t = np.arange(30 * 16000) / 16000
    long = io.BytesIO()
    sf.write(long, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16000, format="FLAC")
    return {"bomb": _silent_flac(384_000, 590), "heavy": _silent_flac(48_000, 590, 2), "bad-rate": bytes(zero),
            "clip": clip, "long": long.getvalue()}


async def _post(client: Any, url: str, name: str, data: bytes, **params: Any) -> str:
    try:
        r = await client.post(url, files={"file": (name, data, "application/octet-stream")}, params=params)
        return str(r.status_code)
    except Exception as exc:  # noqa: BLE001 - counted
        return type(exc).__name__


async def _raw(port: int, head: bytes, body: bytes = b"", drip: float = 0.0, wait: float = 90.0) -> str:
    """Send ``head`` (byte by byte every ``drip`` s if > 0) and ``body``; the status line or 'closed'."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if drip:
            for b in head:
                writer.write(bytes([b]))
                await writer.drain()
                await asyncio.sleep(drip)
        else:
            writer.write(head + body)
            await writer.drain()
        line = await asyncio.wait_for(reader.readline(), wait)
        return line.split(b" ")[1].decode() if line.startswith(b"HTTP/") else "closed"
    except (ConnectionError, asyncio.IncompleteReadError):
        return "closed"
    except asyncio.TimeoutError:
        return "still-open"
    finally:
        writer.close()


async def attacker(kind: str, base: str, port: int, files: dict[str, bytes], stop: asyncio.Event,
                   counts: collections.Counter) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        while not stop.is_set():
            if kind in ("bomb", "heavy", "bad-rate"):
                outcome = await _post(client, "/v1/predict", f"{kind}.flac", files[kind])
            elif kind == "tiny-hop":
                outcome = await _post(client, "/v1/timeline", "c.wav", files["clip"], window=0.1, hop=0.0001)
            elif kind == "min-hop":
                outcome = await _post(client, "/v1/timeline", "c.wav", files["clip"], window=0.25, hop=0.1)
            elif kind == "slowloris":
                outcome = await _raw(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200,
                                     drip=0.5)
            elif kind == "stalled":
                outcome = await _raw(port, b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                           b"multipart/form-data; boundary=x\r\nContent-Length: 500000\r\n\r\n",
                                     b"--x\r\n1234")
            else:  # disconnect: start a long timeline and walk away
                task = asyncio.ensure_future(_post(client, "/v1/timeline", "long.flac", files["long"],
                                                   window=0.5, hop=0.1, vad="none"))
                await asyncio.sleep(0.3)
                task.cancel()
                outcome = "abandoned"
                await asyncio.sleep(1.0)
            counts[f"{kind} -> {outcome}"] += 1


# ------------------------------------------------------------------------------ the run
def cpu_seconds(pid: int) -> tuple[float, float]:
    """(event-loop thread, whole process) CPU seconds of ``pid`` (user + system, from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")

    def read(path: str) -> float:
        with open(path) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    return read(f"/proc/{pid}/task/{pid}/stat"), read(f"/proc/{pid}/stat")


def breakdown_line(label: str, results: list[Result]) -> str:
    """p50/p95 of where valid requests' time went: waiting for a worker, working, the rest
    (event loop, body upload, multipart parsing, JSON, transport, client)."""
    timed = [r for r in results if r.ok and r.timing]
    if not timed:
        return f"  {label:<9} (no Server-Timing headers)"
    wait = [sum(v for k, v in r.timing.items() if k.endswith("-wait")) / 1000 for r in timed]  # type: ignore[union-attr]
    work = [sum(v for k, v in r.timing.items() if k in ("header", "decode", "infer")) / 1000  # type: ignore[union-attr]
            for r in timed]
    cpu = [r.timing.get("cpu", 0.0) / 1000 for r in timed]  # type: ignore[union-attr]
    rest = [r.seconds - a - b for r, a, b in zip(timed, wait, work)]
    return "  " + "  ".join(f"{name} p50 {pct(v, 50):6.1f} p95 {pct(v, 95):7.1f}"
                            for name, v in ((f"{label:<7} wait", wait), ("work", work), ("cpu", cpu),
                                            ("other", rest))) + " ms"


def abuse_main(args: argparse.Namespace) -> int:
    """Clean and abused runs of the same valid load, interleaved in ``--rounds`` pairs (so a
    change in the machine's other load hits both sides alike); compare p95 and RSS."""
    from fuzz.fuzz_audio import model_folder

    kinds = KINDS if args.kinds is None else tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise SystemExit(f"unknown attacker kinds {unknown}; choose from {', '.join(KINDS)}")
    work = Path(tempfile.mkdtemp(prefix="emovox-load-"))
    model = model_folder(args.model, work)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    valid = [u for u in uploads(int(args.max_upload_mb * 1024 * 1024)) if u.kind == "valid"]
    files = payloads(_clip_wav())
    proc = start_server(args, model, port, work / "server.log")
    per_round = max(1, args.requests // args.rounds)
    counts: collections.Counter = collections.Counter()

    async def abused() -> tuple[list[Result], float]:
        stop = asyncio.Event()
        tasks = [asyncio.ensure_future(attacker(k, base, port, files, stop, counts))
                 for k in kinds for _ in range(args.attackers)]
        await asyncio.sleep(2.0)  # let the attackers get going
        results, wall = await run_load(base, valid, per_round, args.clients, time.time() + args.max_seconds)
        stop.set()
        _, pending = await asyncio.wait(tasks, timeout=5)
        for task in pending:  # still waiting for an answer: hang up (the server must drop the work)
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        counts["(attack requests cut off at the end of a round)"] += len(pending)
        return results, wall

    clean: list[Result] = []
    dirty: list[Result] = []
    walls = [0.0, 0.0]
    cpu = [[0.0, 0.0], [0.0, 0.0]]  # (event loop, all threads) CPU s of the server: clean, abused

    def timed(side: int, run: Any) -> tuple[list[Result], float]:
        before = cpu_seconds(proc.pid)
        out = asyncio.run(run)
        after = cpu_seconds(proc.pid)
        cpu[side] = [cpu[side][i] + after[i] - before[i] for i in range(2)]
        return out
    try:
        asyncio.run(wait_healthy(base, proc))
        rss_idle = rss_mb(proc.pid)
        asyncio.run(run_load(base, valid, args.warmup, min(args.clients, args.warmup), time.time() + 300))
        monitor = Monitor(base, proc.pid)
        monitor.start()
        clean_peak = 0.0
        for _ in range(args.rounds):
            mark = len(monitor.samples)
            res, wall = timed(0, run_load(base, valid, per_round, args.clients, time.time() + args.max_seconds))
            clean += res
            walls[0] += wall
            clean_peak = max([clean_peak, *(m for _, m in monitor.samples[mark:])])
            res, wall = timed(1, abused())
            dirty += res
            walls[1] += wall
        monitor.stop.set()
        monitor.join()
        healthy = proc.poll() is None and asyncio.run(_health(base))
    finally:
        stop_server(proc)
    return abuse_report(args, kinds, clean, dirty, walls, cpu, monitor, rss_idle, clean_peak, counts, healthy)


def abuse_report(args: argparse.Namespace, kinds: tuple[str, ...], clean: list[Result], dirty: list[Result],
                 walls: list[float], cpu: list[list[float]], monitor: Monitor, rss_idle: float, clean_peak: float,
                 counts: collections.Counter, healthy: bool) -> int:
    p95 = [pct([r.seconds for r in rs if r.ok], 95) for rs in (clean, dirty)]
    peak = max(m for _, m in monitor.samples)
    print(f"emovox serve, {args.workers} workers x {args.threads} thread(s), {args.clients} valid clients, "
          f"{args.attackers} attacker(s) per kind ({', '.join(kinds)}); {len(clean)} valid requests per side in "
          f"{args.rounds} interleaved round(s)")
    print(latency_line("clean", [r.seconds for r in clean]) + f"  ({len(clean) / walls[0]:.1f} req/s)")
    print(latency_line("abused", [r.seconds for r in dirty]) + f"  ({len(dirty) / walls[1]:.1f} req/s)")
    print("where valid requests' time went (Server-Timing):")
    print(breakdown_line("clean", clean))
    print(breakdown_line("abused", dirty))
    for name, (loop, total), wall, rs in (("clean", cpu[0], walls[0], clean), ("abused", cpu[1], walls[1], dirty)):
        print(f"  {name:<7} server CPU {total:6.1f} s in {wall:5.1f} s ({total / wall:.2f} cores; event loop "
              f"{loop:5.1f} s), {1000 * total / max(1, len(rs)):.0f} ms per valid request")
    print(f"p95 ratio abused/clean: {p95[1] / p95[0]:.2f}")
    print(f"server RSS (MB): idle {rss_idle:.0f}, clean peak {clean_peak:.0f}, abused peak {peak:.0f}")
    print("abuse outcomes:")
    for what, n in sorted(counts.items()):
        print(f"  {n:5d}  {what}")
    problems = [f"{sum(not r.ok for r in rs)} valid requests failed in the {name} run"
                for name, rs in (("clean", clean), ("abused", dirty)) if not all(r.ok for r in rs)]
    for name, rs in (("clean", clean), ("abused", dirty)):
        bad = collections.Counter(f"{r.status} {r.code or ''} {r.detail[:60]}" for r in rs if not r.ok)
        if bad:
            print(f"  failed {name} requests: {dict(bad.most_common(3))}")
    if p95[1] > args.max_slowdown * p95[0]:
        problems.append(f"valid p95 {p95[1]:.0f} ms under abuse > {args.max_slowdown:g} x clean {p95[0]:.0f} ms")
    if peak > args.max_rss_mb:
        problems.append(f"server RSS peaked at {peak:.0f} MB (limit {args.max_rss_mb:g})")
    if not healthy:
        problems.append("the server was not healthy after the run")
    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print(f"OK: valid p95 {p95[1]:.0f} ms under abuse vs {p95[0]:.0f} ms clean; RSS peak {peak:.0f} MB")
    return 1 if problems else 0


def _clip_wav() -> bytes:
    import soundfile as sf

    x, rate = sf.read(sorted((REPO / "examples").glob("*.flac"))[0], dtype="float32")
    buf = io.BytesIO()
    sf.write(buf, x, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()
