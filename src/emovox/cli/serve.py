"""``emovox serve``: the HTTP service and web page (FastAPI + uvicorn), on 127.0.0.1 by default."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from typing import Any

from emovox.cli._model_args import add_model_args, positive_float, positive_int

log = logging.getLogger(__name__)
EPILOG = """examples:
  emovox serve                                  # http://127.0.0.1:8000 (page at /, API docs at /docs)
  emovox serve --port 9000 --workers 4 --max-upload-mb 50
  curl -F file=@clip.wav http://127.0.0.1:8000/v1/predict

Binds to 127.0.0.1 (this computer only) and answers only requests whose Host is 127.0.0.1,
localhost or ::1 (add names with --allow-host). --host 0.0.0.0 exposes it to the network:
there is no authentication, so do that only behind a proxy you control.
Every request is bounded: upload size, audio length and decoding work, time to send headers and
body, time waiting for a worker (then 503), decoding and inference time (the work is stopped).
Workers are shared fairly between connections by the CPU time each has used; long requests are
served slice by slice next to short ones (docs/service.md).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="HTTP service + web page for predictions and timelines",
        description="Serve emotion recognition over HTTP: POST /v1/predict, POST /v1/timeline, GET /healthz, "
                    "a web page at / and OpenAPI docs at /docs.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: local only)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=positive_int, default=2, help="requests computing at once (default 2)")
    p.add_argument("--max-upload-mb", type=positive_float, default=25.0, help="upload size limit (default 25 MB)")
    p.add_argument("--max-seconds", type=positive_float, default=600.0, help="audio length limit (default 600 s)")
    p.add_argument("--decode-timeout", type=positive_float, default=30.0, help="decoding time limit, in worker time (default 30 s)")
    p.add_argument("--inference-timeout", type=positive_float, default=120.0,
                   help="prediction/timeline time limit per request, in worker time (default 120 s)")
    p.add_argument("--max-pending", type=positive_int, default=64,
                   help="requests allowed to wait for a worker; beyond that the connection that used "
                        "the most CPU gets 503 (default 64)")
    p.add_argument("--queue-timeout", type=positive_float, default=10.0,
                   help="longest wait for a worker (at first or after a pause) before answering 503 "
                        "(default 10 s)")
    p.add_argument("--read-timeout", type=positive_float, default=60.0,
                   help="time allowed to send the request body before 408 (default 60 s)")
    p.add_argument("--header-timeout", type=positive_float, default=10.0,
                   help="time allowed to send the request headers before the connection is closed (default 10 s)")
    p.add_argument("--limit-concurrency", type=positive_int, default=200,
                   help="open connections/requests beyond which uvicorn answers 503 (default 200)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this Host name (repeatable; '*' = any; default: "
                        "127.0.0.1, localhost, ::1)")
    add_model_args(p, labels=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from emovox.errors import DependencyError

    try:
        import uvicorn

        from emovox.service.app import LOCAL_HOSTS, create_app
        from emovox.service.server import server_config
    except ImportError as exc:
        raise DependencyError(exc.name or "fastapi", "emovox serve", "pip install 'emovox[serve]'") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding to %s: the service has no authentication; anyone who can reach this port can use it. "
                    "It answers only Host names 127.0.0.1/localhost/::1 unless you add yours with --allow-host",
                    args.host)
    if (busy := _port_problem(args.host, args.port)) is not None:  # before the model loads, and before "serving on"
        hint = "choose another --port, or stop the program using it" if "in use" in busy else "check --host"
        print(f"emovox serve: error: cannot listen on {args.host}:{args.port} ({busy}); {hint}", file=sys.stderr)
        return 2
    if args.threads is None:  # share the cores between the worker threads instead of oversubscribing
        args.threads = max(1, (os.cpu_count() or 1) // args.workers)
    from emovox.cli._model_args import load_recognizer

    app = create_app(load_recognizer(args), max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                     max_seconds=args.max_seconds, decode_timeout=args.decode_timeout,
                     inference_timeout=args.inference_timeout, read_timeout=args.read_timeout,
                     queue_timeout=args.queue_timeout, workers=args.workers, max_pending=args.max_pending,
                     allowed_hosts=(*LOCAL_HOSTS, *args.allow_host))
    config = server_config(app, args.host, args.port, header_timeout=args.header_timeout,
                           limit_concurrency=args.limit_concurrency)
    print(f"emovox serving on http://{args.host}:{args.port}/ (API docs at /docs); Ctrl-C stops it", flush=True)
    uvicorn.Server(config).run()
    return 0


def _port_problem(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (in use, unknown host), else None. Each address the host
    resolves to is tried as asyncio's server will bind them; other bind errors are left to uvicorn."""
    import socket

    try:
        addresses = {(info[0], info[4][:2]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                                           flags=socket.AI_PASSIVE)}
    except OSError as exc:
        return f"cannot resolve the host: {exc.strerror or exc}"
    for family, address in sorted(addresses):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is free
                probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "the port is already in use"
    return None
