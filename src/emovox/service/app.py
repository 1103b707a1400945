"""The emovox HTTP service (FastAPI): prediction and timelines for uploaded audio, plus a web page.

Endpoints: ``POST /v1/predict`` and ``POST /v1/timeline`` (multipart field ``file``),
``GET /healthz``, ``GET /`` (the page), ``/docs`` (a plain page served from the package: no
CDN) and ``/openapi.json``.

Every error body has one shape, ``{"error": {"code", "message", "hint"}}``:

* 400 ``bad_request`` (no ``file`` field, bad parameters, malformed multipart), ``bad_host``
  (a Host header not in the allow-list: DNS-rebinding guard);
* 404 ``not_found``, 405 ``method_not_allowed``;
* 408 ``request_timeout``: the body did not arrive within ``read_timeout`` s;
* 413 ``payload_too_large`` (body over ``max_upload_bytes``, from Content-Length or while
  streaming), ``audio_too_long`` (over ``max_seconds``, or more than ``max_decode_samples``
  samples x channels at the input rate: checked from the header before decoding),
  ``timeline_too_large`` (more windows or output than :mod:`emovox.service.budget` allows);
* 415 ``unsupported_media_type``: not audio emovox reads, by its first bytes;
* 422 ``undecodable_audio`` (corrupt, truncated, empty, NaN, too short, invalid sample rate),
  ``decode_timeout`` (decoding ran past ``decode_timeout`` s; the decoder is stopped);
* 503 ``busy`` (``Retry-After``): too many requests waiting (the connections that used the most
  CPU are refused first), or no worker within ``queue_timeout`` s; ``timeout``: inference ran
  past ``inference_timeout`` s of worker time (stopped).

Scheduling: decoding, inference and the JSON of results run on ``workers`` fair CPU slots
(:mod:`emovox.service.jobs`, :mod:`emovox.service.fair`), never on the event loop. Waiting
requests get a worker in the order of the CPU time their connection has used, and long jobs
give their worker up between decode blocks and model calls when a connection that used less is
waiting: a 10-minute upload or a minimum-hop timeline is served slice by slice next to short
clips, not in front of them. Header checks (bombs, bad rates) run on their own thread; timeline
settings are refused from the query string before the upload is parsed; connections that keep
being refused are answered more and more slowly (:mod:`emovox.service.brake`). Deadlines and
client disconnects stop the work between blocks and window batches. Every answer carries a
``Server-Timing`` header (time waiting for a worker, working, CPU). Messages never carry
object addresses or server paths. Uploads are decoded from memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from fastapi import APIRouter, FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from emovox.errors import EmovoxError
from emovox.inference import TIMELINE_VAD, VAD_PATTERN
from emovox.service.brake import RefusalBrake
from emovox.service.budget import (HEAVY_AUDIO_SECONDS, HEAVY_DECODE_SAMPLES, MIN_HOP, MIN_WINDOW, TIMELINE_HOP,
                                   TIMELINE_WINDOW, TimelineTooLarge, check_timeline_request, check_timeline_settings)
from emovox.service.docs import docs_page
from emovox.service.jobs import ClientGone, JobPool, cancellable, check_cancelled, client_flow, watch_disconnect
from emovox.service.limits import BodySizeLimit, EarlyRefusal, HostAllowList
from emovox.service.stream import router as stream_router
from emovox.service.timing import ServerTiming
from emovox.service.uploads import SUPPORTED, UploadProblem, decode_upload, read_upload, upload_header

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
#: Hosts the service answers for by default (a local tool; add names with ``allowed_hosts``).
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 408: "request_timeout",
               413: "payload_too_large", 415: "unsupported_media_type", 422: "undecodable_audio", 503: "busy"}
_ADDRESS = re.compile(r"\s*\bat 0x[0-9a-fA-F]+")
_ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"()<>]+/)+")


def clean_message(text: str) -> str:
    """A message safe to send to clients: no object addresses, no absolute server directories."""
    return _ABS_PATH.sub("", _ADDRESS.sub("", text))


def _error(status: int, code: str, message: str, hint: str = "") -> JSONResponse:
    problem = UploadProblem(status, code, clean_message(message), clean_message(hint))
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse(problem.body(), status_code=status, headers=headers)


def create_app(
    recognizer: Any = None,
    *,
    model: str | None = None,
    backend: str = "auto",
    max_upload_bytes: int = 25 * 1024 * 1024,
    max_seconds: float = 600.0,
    max_decode_samples: int | None = None,
    decode_timeout: float = 30.0,
    inference_timeout: float = 120.0,
    read_timeout: float = 60.0,
    queue_timeout: float = 10.0,
    workers: int = 2,
    max_pending: int = 64,
    max_windows: int | None = None,
    allowed_hosts: Sequence[str] = LOCAL_HOSTS,
) -> FastAPI:
    """Build the app around ``recognizer`` (default: ``Recognizer.load(model, backend=backend)``).

    ``max_decode_samples`` (frames x channels at the input rate; default: ``max_seconds`` of
    48 kHz stereo) bounds the decoding work; ``allowed_hosts`` ``("*",)`` disables the Host check.
    """
    if recognizer is None:
        from emovox.inference import Recognizer

        recognizer = Recognizer.load(model, backend=backend)
    recognizer = cancellable(recognizer)
    pool = JobPool(workers, max_pending, queue_timeout)
    decode_samples = max_decode_samples or int(max_seconds * 48_000 * 2)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.shutdown()

    app = FastAPI(lifespan=lifespan, title="emovox", version=_version(), docs_url=None, redoc_url=None,
                  summary="Speech emotion recognition: upload audio, get emotion probabilities and timelines.",
                  description=__doc__)
    app.state.recognizer = recognizer
    app.state.pool = pool
    app.add_middleware(BodySizeLimit, max_bytes=max_upload_bytes, paths=("/v1/",), read_timeout=read_timeout)
    app.add_middleware(EarlyRefusal, checks={"/v1/timeline": _timeline_query}, max_bytes=max_upload_bytes)
    app.add_middleware(HostAllowList, hosts=tuple(allowed_hosts))
    app.add_middleware(RefusalBrake)
    app.add_middleware(ServerTiming)
    _register_errors(app)

    async def _decode(request: Request, file: UploadFile, gone: asyncio.Future, sides: bool = False) -> Any:
        """The upload decoded within every bound (header first, then the budget and the timeout);
        ``sides``: also each channel of a two-channel file (:func:`decode_upload`)."""
        data, name = await read_upload(request, file)
        timeout = UploadProblem(422, "decode_timeout", f"{name}: decoding took longer than {decode_timeout:g} s",
                                "send a shorter or simpler file (16 kHz mono WAV or FLAC)")
        # the header on its own thread, outside the fair queue: bombs and bad rates never wait or decode
        header = await pool.quick(upload_header, data, name, max_seconds, decode_samples, timeout=decode_timeout,
                                  on_timeout=timeout)
        return await pool.run(decode_upload, data, name, max_seconds, decode_samples, check_cancelled, sides,
                              timeout=decode_timeout, on_timeout=timeout, gone=gone,
                              heavy=header.frames * header.channels > HEAVY_DECODE_SAMPLES,
                              flow=client_flow(request.scope), stage="decode")

    # what /v1/conversation (emovox.service.stream) needs to bound its requests as these endpoints do
    app.state.decode, app.state.inference_timeout, app.state.max_windows = _decode, inference_timeout, max_windows

    def _labels(labels: str | None) -> list[str] | None:
        return [s.strip() for s in labels.split(",") if s.strip()] if labels else None

    router = APIRouter()

    @router.get("/healthz", summary="Liveness and model information")
    async def healthz() -> dict:
        info = {k: v for k, v in recognizer.info().items() if k != "path"}  # no server paths to clients
        return {"status": "ok", "model": info}

    @router.post("/v1/predict", summary="Emotion probabilities of one recording")
    async def predict(
        request: Request,
        file: UploadFile = File(..., description=f"audio file: {SUPPORTED}"),
        labels: str | None = Query(None, description="comma-separated subset of labels, e.g. angry,happy,neutral,sad"),
    ) -> Response:
        chosen = _labels(labels)
        if chosen is not None:
            recognizer.with_labels(chosen)  # unknown labels: 400 before any decoding
        async with watch_disconnect(request.receive) as gone:
            audio = await _decode(request, file, gone)
            body = await pool.run(lambda: _json(recognizer.predict(audio.samples, sample_rate=16_000,
                                                                   source=audio.name, labels=chosen)),
                                  timeout=inference_timeout, gone=gone, heavy=audio.duration > HEAVY_AUDIO_SECONDS,
                                  flow=client_flow(request.scope), stage="infer")
        return Response(body, media_type="application/json")

    @router.post("/v1/timeline", summary="Emotions over time (sliding windows, VAD, merged regions)")
    async def timeline(
        request: Request,
        file: UploadFile = File(..., description=f"audio file: {SUPPORTED}"),
        window: float = Query(TIMELINE_WINDOW, description=f"window length in seconds ({MIN_WINDOW}-60)"),
        hop: float = Query(TIMELINE_HOP, description=f"hop between windows in seconds ({MIN_HOP} to the window)"),
        vad: str = Query(TIMELINE_VAD, pattern=VAD_PATTERN, description="voice activity detector"),
        labels: str | None = Query(None, description="comma-separated subset of labels"),
    ) -> Response:
        chosen = _labels(labels)
        n_labels = len(recognizer.with_labels(chosen).labels) if chosen else len(recognizer.labels)
        check_timeline_request(0.0, window, hop, n_labels)  # bad settings: 400 before decoding
        async with watch_disconnect(request.receive) as gone:
            audio = await _decode(request, file, gone)
            n = check_timeline_request(audio.duration, window, hop, n_labels,
                                       **({} if max_windows is None else {"max_windows": max_windows}))
            body = await pool.run(lambda: _json(recognizer.timeline(
                audio.samples, sample_rate=16_000, window=window, hop=hop, vad=None if vad == "none" else vad,
                source=audio.name, labels=chosen)), timeout=inference_timeout, gone=gone,
                heavy=n * window > HEAVY_AUDIO_SECONDS, flow=client_flow(request.scope), stage="infer")
        return Response(body, media_type="application/json")

    @router.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @router.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(docs_page(app.openapi()))

    app.include_router(router)
    app.include_router(stream_router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _register_errors(app: FastAPI) -> None:
    """Every error in the one documented shape (FastAPI's own ``{"detail": ...}`` included)."""

    @app.exception_handler(UploadProblem)
    async def _problem(_: Request, exc: UploadProblem) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.hint)

    @app.exception_handler(ClientGone)
    async def _gone(_: Request, exc: ClientGone) -> Response:
        return Response(status_code=499)  # nobody reads it; the job was stopped

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in exc.errors())
        body = any(e.get("loc", ("",))[0] == "body" for e in exc.errors())
        return _error(400, "bad_request", f"invalid request ({where})",
                      "send multipart/form-data with the audio in a field named 'file'" if body
                      else "see /docs for this endpoint's parameters and their values")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = {404: f"no such page or endpoint: {request.url.path[:200]}",
                   405: f"{request.method} is not allowed on {request.url.path[:200]}"}.get(
            exc.status_code, str(exc.detail))
        hint = "see /docs for the endpoints" if exc.status_code in (404, 405) else ""
        response = _error(exc.status_code, code, message, hint)
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(TimelineTooLarge)
    async def _too_large(_: Request, exc: TimelineTooLarge) -> JSONResponse:
        return _error(413, "timeline_too_large", str(exc), "use a larger hop or send a shorter recording")

    @app.exception_handler(EmovoxError)
    async def _emovox(_: Request, exc: EmovoxError) -> JSONResponse:
        return _error(400, "bad_request", str(exc))


def _timeline_query(query: dict[str, str]) -> None:
    """``/v1/timeline``'s window and hop checked from the query string, before the upload is parsed."""
    check_timeline_settings(float(query.get("window", TIMELINE_WINDOW)), float(query.get("hop", TIMELINE_HOP)))


def _json(result: Any) -> bytes:
    """A prediction or timeline as JSON bytes, made on the worker (never on the event loop)."""
    return json.dumps(result.to_dict(), ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _version() -> str:
    from emovox import __version__

    return __version__
