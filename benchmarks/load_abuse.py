"""The abuse mix of ``benchmarks/load.py --abuse``: hostile clients running next to valid ones.

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

import asyncio
import collections
import io
import struct
from typing import Any

import numpy as np

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
