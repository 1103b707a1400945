"""The emovox HTTP service (FastAPI): prediction and timelines for uploaded audio, plus a web page.

Endpoints: ``POST /v1/predict`` and ``POST /v1/timeline`` (multipart field ``file``),
``GET /healthz``, ``GET /`` (the page), ``/docs`` and ``/openapi.json``.

Limits (all errors are JSON ``{"error": {"code", "message", "hint"}}``):

* body larger than ``max_upload_bytes`` -> 413 ``payload_too_large`` (checked from
  Content-Length and while streaming, before anything is parsed); audio longer than
  ``max_seconds`` (header) -> 413 ``audio_too_long``;
* not WAV/FLAC/OGG/AIFF/MP3 by its first bytes -> 415 ``unsupported_media_type``;
* audio that cannot be decoded (corrupt, truncated, empty, NaN, too short) -> 422
  ``undecodable_audio``; decoding that takes longer than ``decode_timeout`` s -> 422
  ``decode_timeout``;
* malformed requests (no ``file`` field, bad parameters) -> 400 ``bad_request``;
* more than ``max_pending`` requests waiting for the model -> 503 ``busy`` (Retry-After).

Decoding and inference run in a bounded thread pool (``workers`` threads), never on the event
loop. Request data is only held in memory; client file names are labels, never paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from emovox.errors import EmovoxError
from emovox.service.limits import BodySizeLimit
from emovox.service.stream import router as stream_router
from emovox.service.uploads import UploadProblem, check_upload, decode_upload

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


class _Pool:
    """A bounded executor with a cap on waiting jobs (beyond it callers get 503)."""

    def __init__(self, workers: int, max_pending: int) -> None:
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="emovox-infer")
        self.max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()

    async def run(self, fn: Callable[..., Any], *args: Any, timeout: float | None = None) -> Any:
        with self._lock:
            if self._pending >= self.max_pending:
                raise UploadProblem(503, "busy", "the server is busy; too many requests are waiting",
                                    "retry in a few seconds")
            self._pending += 1
        try:
            future = asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
            return await asyncio.wait_for(future, timeout) if timeout else await future
        finally:
            with self._lock:
                self._pending -= 1


def _error(status: int, code: str, message: str, hint: str = "") -> JSONResponse:
    problem = UploadProblem(status, code, message, hint)
    headers = {"Retry-After": "5"} if status == 503 else None
    return JSONResponse(problem.body(), status_code=status, headers=headers)


def create_app(
    recognizer: Any = None,
    *,
    model: str | None = None,
    backend: str = "torch",
    max_upload_bytes: int = 25 * 1024 * 1024,
    max_seconds: float = 600.0,
    decode_timeout: float = 30.0,
    workers: int = 2,
    max_pending: int = 64,
) -> FastAPI:
    """Build the app around ``recognizer`` (default: ``Recognizer.load(model, backend=backend)``)."""
    if recognizer is None:
        from emovox.inference import Recognizer

        recognizer = Recognizer.load(model, backend=backend)
    pool = _Pool(workers, max_pending)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        pool.executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(
        lifespan=lifespan,
        title="emovox",
        version=_version(),
        summary="Speech emotion recognition: upload audio, get emotion probabilities and timelines.",
        description=__doc__,
    )
    app.state.recognizer = recognizer
    app.state.pool = pool
    app.add_middleware(BodySizeLimit, max_bytes=max_upload_bytes, paths=("/v1/",))

    @app.exception_handler(UploadProblem)
    async def _problem(_: Request, exc: UploadProblem) -> JSONResponse:
        return _error(exc.status, exc.code, exc.message, exc.hint)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        where = "; ".join(f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}" for e in exc.errors())
        return _error(400, "bad_request", f"invalid request ({where})",
                      "send multipart/form-data with the audio in a field named 'file'")

    @app.exception_handler(EmovoxError)
    async def _emovox(_: Request, exc: EmovoxError) -> JSONResponse:
        return _error(400, "bad_request", str(exc))

    async def _decode(file: UploadFile) -> Any:
        data = await file.read()
        name = check_upload(data, file.filename, file.content_type)
        try:
            return await pool.run(decode_upload, data, name, max_seconds, timeout=decode_timeout)
        except asyncio.TimeoutError:
            raise UploadProblem(422, "decode_timeout", f"{name}: decoding took longer than {decode_timeout:.0f} s",
                                "send a shorter or simpler file (16 kHz mono WAV or FLAC)") from None

    def _labels(labels: str | None) -> list[str] | None:
        return [s.strip() for s in labels.split(",") if s.strip()] if labels else None

    @app.get("/healthz", summary="Liveness and model information")
    async def healthz() -> dict:
        info = {k: v for k, v in recognizer.info().items() if k != "path"}  # no server paths to clients
        return {"status": "ok", "model": info}

    @app.post("/v1/predict", summary="Emotion probabilities of one recording")
    async def predict(
        file: UploadFile = File(..., description="audio file: " + "WAV, FLAC, OGG, AIFF or MP3"),
        labels: str | None = Query(None, description="comma-separated subset of labels, e.g. angry,happy,neutral,sad"),
    ) -> dict:
        audio = await _decode(file)
        pred = await pool.run(lambda: recognizer.predict(audio.samples, source=audio.name, labels=_labels(labels)))
        return pred.to_dict()

    @app.post("/v1/timeline", summary="Emotions over time (sliding windows, VAD, merged regions)")
    async def timeline(
        file: UploadFile = File(..., description="audio file: WAV, FLAC, OGG, AIFF or MP3"),
        window: float = Query(2.0, ge=0.1, le=60, description="window length in seconds"),
        hop: float = Query(1.0, gt=0, le=60, description="hop between windows in seconds (<= window)"),
        vad: str = Query("sohn", pattern="^(sohn|silero|none)$", description="voice activity detector"),
        labels: str | None = Query(None, description="comma-separated subset of labels"),
    ) -> dict:
        audio = await _decode(file)
        tl = await pool.run(lambda: recognizer.timeline(
            audio.samples, window=window, hop=hop, vad=None if vad == "none" else vad, source=audio.name,
            labels=_labels(labels)))
        return tl.to_dict()

    app.include_router(stream_router)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    return app


def _version() -> str:
    from emovox import __version__

    return __version__
