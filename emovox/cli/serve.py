"""``emovox serve``: the HTTP service and web page (FastAPI + uvicorn), on 127.0.0.1 by default."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from emovox.cli._model_args import add_model_args, positive_float, positive_int

log = logging.getLogger(__name__)
EPILOG = """examples:
  emovox serve                                  # http://127.0.0.1:8000 (page at /, API docs at /docs)
  emovox serve --port 9000 --workers 4 --max-upload-mb 50
  curl -F file=@clip.wav http://127.0.0.1:8000/v1/predict

Binds to 127.0.0.1 (this computer only). --host 0.0.0.0 exposes it to the network: there is no
authentication, so do that only behind a proxy you control.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "serve", help="HTTP service + web page for predictions and timelines",
        description="Serve emotion recognition over HTTP: POST /v1/predict, POST /v1/timeline, GET /healthz, "
                    "a web page at / and OpenAPI docs at /docs.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: local only)")
    p.add_argument("--port", type=positive_int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=positive_int, default=2, help="inference threads (default 2)")
    p.add_argument("--max-upload-mb", type=positive_float, default=25.0, help="upload size limit (default 25 MB)")
    p.add_argument("--max-seconds", type=positive_float, default=600.0, help="audio length limit (default 600 s)")
    p.add_argument("--decode-timeout", type=positive_float, default=30.0, help="decoding time limit (default 30 s)")
    p.add_argument("--max-pending", type=positive_int, default=64,
                   help="requests allowed to wait for a worker before answering 503 (default 64)")
    add_model_args(p, labels=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from emovox.errors import DependencyError

    try:
        import uvicorn

        from emovox.service.app import create_app
    except ImportError as exc:
        raise DependencyError(exc.name or "fastapi", "emovox serve", "pip install 'emovox[serve]'") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding to %s: the service has no authentication; anyone who can reach this port can use it",
                    args.host)
    if args.threads is None:  # share the cores between the worker threads instead of oversubscribing
        args.threads = max(1, (os.cpu_count() or 1) // args.workers)
    from emovox.cli._model_args import load_recognizer

    app = create_app(load_recognizer(args), max_upload_bytes=int(args.max_upload_mb * 1024 * 1024),
                     max_seconds=args.max_seconds, decode_timeout=args.decode_timeout, workers=args.workers,
                     max_pending=args.max_pending)
    print(f"emovox serving on http://{args.host}:{args.port}/ (API docs at /docs); Ctrl-C stops it", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
