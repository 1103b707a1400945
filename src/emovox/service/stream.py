"""Live emotions over a WebSocket, conversation analysis with a chosen model, and the model list.

Endpoints (an :class:`fastapi.APIRouter` included by :func:`emovox.service.app.create_app`):

* ``GET /v1/models`` — the bundled models (name, labels, front-end) and which one is loaded by
  default; the page offers them in a menu.
* ``POST /v1/conversation?model=&speakers=auto|N|none&vad=gated|sohn|silero|none`` — upload (multipart ``file``), get
  ``{"prediction": ..., "timeline": ...}``: the clip's emotion and a speaker-aware timeline
  (:mod:`emovox.diarize`) with the chosen bundled model; bounded as ``/v1/predict`` and
  ``/v1/timeline`` are (the app's decode, ``max_seconds``, window limits, inference timeout).
* ``WS /v1/stream?model=&window=2&hop=1&vad=gated&speakers=auto`` — send binary messages of 16 kHz
  mono 16-bit little-endian PCM (any chunk size, even byte count); each window's result is sent as
  JSON ``{"type": "window", start, end, label, probabilities, speech_fraction, speaker, no_speech,
  uncertain, latency_ms}`` as soon as the window's last sample has arrived; ``speaker`` is a
  provisional live label (:mod:`emovox.live_speakers`; null for windows without speech, with
  ``speakers=none``, or with a model without Whisper frames); send the text ``end`` for a final
  ``{"type": "end", "duration", "windows", "summary", "speakers"}`` (``speakers``: windows per
  live speaker), then the server closes (1000). Errors are ``{"type": "error", "message"}`` followed
  by a close (1003 for a text message other than ``end``).

Stream memory is bounded whatever the length: audio is held for one window plus the VAD's
5 s context, results are sent and not kept (only per-emotion counts), and at most
:data:`MAX_QUEUE` s of unprocessed audio may wait (the receiver then waits: back-pressure). At
most :data:`MAX_STREAMS` streams run at once (more are closed with code 1013, "try again later").
Each stream scores on its own thread, one window at a time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from typing import Any

import numpy as np
from fastapi import (
    APIRouter,
    File,
    Query,
    Request,
    UploadFile,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.responses import Response

from emovox.audio import SAMPLE_RATE
from emovox.errors import ConfigError, EmovoxError
from emovox.inference import TIMELINE_VAD, VAD_PATTERN, VADS
from emovox.live_speakers import MIN_SECONDS, LiveSpeakers
from emovox.service.budget import HEAVY_AUDIO_SECONDS, TIMELINE_HOP, TIMELINE_WINDOW, check_timeline_request
from emovox.service.jobs import cancellable, client_flow, watch_disconnect
from emovox.service.uploads import SPLIT_CHANNELS, SUPPORTED, UploadProblem

log = logging.getLogger(__name__)
router = APIRouter()

MAX_STREAMS = 4
#: Seconds of received audio that may wait for the scorer before the receiver blocks.
MAX_QUEUE = 30
#: Live VAD blocks (seconds): the stream is judged block by block, each with 5 s of context.
BLOCK = 0.5
_streams = threading.Semaphore(MAX_STREAMS)
_models_lock = threading.Lock()


def bundled_models() -> list[dict[str, Any]]:
    """Name, labels and front-end of each bundled model that is installed."""
    from emovox.audio_model import is_audio_model, read_audio_config
    from emovox.inference import BUNDLED_MODELS, model_folder
    from emovox.models.io import read_config

    out = []
    for name in BUNDLED_MODELS:
        try:
            folder = model_folder(name)
            if is_audio_model(folder):
                audio = read_audio_config(folder)
                out.append({"name": name, "model": audio.name, "labels": list(audio.labels), "frontend": "waves"})
                continue
            config = read_config(folder)
        except EmovoxError:
            continue
        out.append({"name": name, "model": config.get("name", name), "labels": list(config["labels"]),
                    "frontend": config["frontend"]["name"]})
    return out


def recognizer_for(app: Any, model: str | None) -> Any:
    """The app's recognizer (``model`` None/"default"), or a bundled model loaded once and cached."""
    from emovox.inference import BUNDLED_MODELS, Recognizer

    if model in (None, "", "default"):
        return app.state.recognizer
    if model not in BUNDLED_MODELS:
        raise _problem(400, "bad_request", f"unknown model {model!r}; choose one of {', '.join(BUNDLED_MODELS)}",
                       "GET /v1/models lists them")
    with _models_lock:
        cache = getattr(app.state, "stream_models", None)
        if cache is None:
            cache = app.state.stream_models = {}
        if model not in cache:
            cache[model] = cancellable(Recognizer.load(model))  # stoppable when its client leaves or times out
        return cache[model]


def _problem(status: int, code: str, message: str, hint: str = "") -> Exception:
    return UploadProblem(status, code, message, hint)


@router.get("/v1/models", summary="The bundled models the page and the stream can use")
async def models(request: Request) -> dict:
    loaded = request.app.state.recognizer.info().get("name")
    return {"models": bundled_models(), "loaded": loaded}


@router.post("/v1/conversation", summary="Emotion of a recording plus a speaker-aware timeline")
async def conversation(
    request: Request,
    file: UploadFile = File(..., description=f"audio file: {SUPPORTED}"),
    model: str | None = Query(None, description="bundled model name (GET /v1/models); default: the server's"),
    speakers: str = Query("auto", pattern="^(auto|none|[1-9]|1[0-9]|20)$",
                          description="diarisation: auto, none or a number of speakers"),
    vad: str = Query(TIMELINE_VAD, pattern=VAD_PATTERN, description="voice activity detector"),
    channels: str = Query("auto", pattern="^(auto|mix|split)$",
                          description="a call recorded one side per channel: auto, split (a speaker per channel) "
                                      "or mix (diarise the down-mix)"),
) -> Response:
    state = request.app.state
    pool = state.pool
    flow = client_flow(request.scope)  # fair share per connection, like /v1/predict
    sides = channels != "mix" and speakers != "none"
    async with watch_disconnect(request.receive) as gone:
        # the same bounds as /v1/predict and /v1/timeline: header check, decode budget and timeout,
        # the server's --max-seconds, the timeline's window and output limits, the inference timeout
        audio = await state.decode(request, file, gone, sides=sides)
        rec = await pool.run(recognizer_for, request.app, model, flow=flow, gone=gone)
        limits = {} if state.max_windows is None else {"max_windows": state.max_windows}
        check_timeline_request(audio.duration, TIMELINE_WINDOW, TIMELINE_HOP, len(rec.labels), **limits)
        body = await pool.run(_conversation, rec, audio, speakers, vad, channels, timeout=state.inference_timeout,
                              gone=gone, heavy=audio.duration > HEAVY_AUDIO_SECONDS, flow=flow, stage="infer")
    return Response(body, media_type="application/json")


def _conversation(rec: Any, audio: Any, speakers: str, vad: str = TIMELINE_VAD, channels: str = "auto") -> bytes:
    """Prediction + speaker-aware timeline of a decoded upload as JSON (on a pool worker, not the event loop)."""
    from emovox.conversation import speaker_timeline

    if channels == "split" and audio.source_channels > SPLIT_CHANNELS:  # before any inference
        raise ConfigError(f"{audio.name} has {audio.source_channels} channels; the service gives a speaker per "
                          f"channel to {SPLIT_CHANNELS}-channel recordings only (emovox timeline --channels split "
                          "takes up to 8)")
    pred = rec.predict(audio.samples, sample_rate=16000, source=audio.name)
    count = None if speakers == "none" else "auto" if speakers == "auto" else int(speakers)
    # each channel alone when decoded (2 channels, speakers wanted); speaker_timeline decides the split
    recording = audio.channels if audio.channels is not None else audio.samples
    tl = speaker_timeline(rec, recording, 16000, source=audio.name, speakers=count, channels=channels,
                          vad=None if vad == "none" else vad, on_no_speakers=lambda reason: log.warning("no speakers: %s", reason))
    result = {"prediction": pred.to_dict(), "timeline": tl.to_dict(), "model": rec.info().get("name")}
    return json.dumps(result, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


# ------------------------------------------------------------------------------ live stream
class LiveSession:
    """Blocks in (``put``), window results out (``results``); scoring runs on its own thread."""

    def __init__(self, recognizer: Any, window: float, hop: float, vad: str | None, speakers: bool = True) -> None:
        from emovox.timeline import check_window

        check_window(window, hop, 0.3)
        self.rec, self.window, self.hop, self.vad = recognizer, window, hop, vad
        self.speakers = LiveSpeakers.for_recognizer(recognizer) if speakers else None
        self._labels: list[str | None] = []  # speaker of each scored window, until it is emitted
        self.inbox: queue.Queue = queue.Queue(maxsize=max(2, int(MAX_QUEUE / BLOCK)))
        self.results: queue.Queue = queue.Queue()
        self.arrivals: dict[float, float] = {}  # block end (s) -> monotonic arrival time, pruned
        self.counts: dict[str, int] = {}
        self.windows = 0
        self.thread = threading.Thread(target=self._run, daemon=True, name="emovox-stream")
        self.thread.start()

    def _run(self) -> None:
        from emovox.timeline import ContextVad, compute_timeline
        from emovox.vad import build_vad

        try:
            vad = None
            if self.vad:
                detector = build_vad(self.vad)  # one per stream: silero is stateful
                vad = ContextVad(lambda x: [(float(a), float(b)) for a, b in detector.regions(x)])
            tl = compute_timeline(self._blocks(), self._score, self.rec.labels, vad,
                                  source="<stream>", vad_name=self.vad or "none", window=self.window, hop=self.hop,
                                  batch_size=1, on_window=self._emit, keep_windows=False)
            live = self.speakers
            self.results.put({"type": "end", "duration": tl.duration, "windows": self.windows,
                              "summary": {k: round(v / max(1, sum(self.counts.values())), 4)
                                          for k, v in self.counts.items()},
                              "speakers": {} if live is None else dict(zip(live.speakers, live.counts))})
        except EmovoxError as exc:
            self.results.put({"type": "error", "message": str(exc)})
        except Exception as exc:
            log.exception("stream failed")
            self.results.put({"type": "error", "message": f"internal error ({type(exc).__name__})"})
        self.results.put(None)

    def _score(self, waves: np.ndarray) -> np.ndarray:
        """Posteriors of the speech windows (one at a time); with live speakers each window is
        encoded once for both its emotions and its speaker."""
        if self.speakers is None:
            return self.rec.posteriors(waves)
        rows = []
        for w in waves:
            if w.size < int(MIN_SECONDS * SAMPLE_RATE):  # a stream's short end: emotions only
                rows.append(self.rec.posteriors(w[None])[0])
                self._labels.append(None)
                continue
            probs, speaker = self.speakers.score(w, self.rec.label_index)
            rows.append(probs)
            self._labels.append(speaker)
        return np.stack(rows)

    def _blocks(self):
        while (block := self.inbox.get()) is not None:
            yield block

    def _emit(self, w: Any) -> None:
        arrived = next((t for end, t in self.arrivals.items() if end >= w.end - 1e-6), None)
        for end in [e for e in self.arrivals if e < w.start]:
            del self.arrivals[end]
        self.windows += 1
        if w.label:
            self.counts[w.label] = self.counts.get(w.label, 0) + 1
            if self._labels:
                w.speaker = self._labels.pop(0)
        msg = {"type": "window", **w.to_dict()}
        msg["latency_ms"] = None if arrived is None else round(1000 * (time.monotonic() - arrived), 1)
        self.results.put(msg)

    def put(self, block: np.ndarray, end_seconds: float) -> None:
        self.arrivals[round(end_seconds, 3)] = time.monotonic()
        self.inbox.put(block)


@router.websocket("/v1/stream")
async def stream(ws: WebSocket, model: str | None = None, window: float = 2.0, hop: float = 1.0,
                 vad: str = TIMELINE_VAD, speakers: str = "auto") -> None:
    await ws.accept()
    if not _streams.acquire(blocking=False):
        await ws.send_json({"type": "error", "message": f"the server already runs {MAX_STREAMS} live streams"})
        await ws.close(code=1013)
        return
    session: LiveSession | None = None
    sender: asyncio.Task | None = None
    try:
        try:
            if vad not in (*VADS, "none"):
                raise _problem(400, "bad_request", f"vad must be one of {', '.join(VADS)} or none, got {vad!r}")
            if speakers not in ("auto", "none"):
                raise _problem(400, "bad_request", f"speakers must be auto or none, got {speakers!r}")
            rec = await asyncio.get_running_loop().run_in_executor(None, recognizer_for, ws.app, model)
            session = LiveSession(rec, window, hop, None if vad == "none" else vad, speakers=speakers == "auto")
        except Exception as exc:  # noqa: BLE001 - UploadProblem, EmovoxError: tell the client
            await ws.send_json({"type": "error", "message": getattr(exc, "message", str(exc))})
            await ws.close(code=1008)
            return
        sender = asyncio.create_task(_send_results(ws, session))
        try:
            await _receive_audio(ws, session)
        except UnknownMessage as exc:  # never a silent wait: say what the stream takes, then close
            await ws.send_json({"type": "error", "message": str(exc)})
            await ws.close(code=1003)
            return
        if await sender:
            await ws.close(code=1000)  # the end summary was sent: a clean close, not a dropped connection
    except WebSocketDisconnect:
        pass
    finally:
        if session is not None and session.thread.is_alive():
            _drain_and_stop(session)
        if sender is not None and not sender.done():
            sender.cancel()
        _streams.release()


async def _receive_audio(ws: WebSocket, session: LiveSession) -> None:
    block_bytes = int(BLOCK * SAMPLE_RATE) * 2
    buf = bytearray()
    received = 0
    loop = asyncio.get_running_loop()
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(msg.get("code", 1000))
        data = msg.get("bytes")
        if data is None:
            text = (msg.get("text") or "").strip()
            if text.lower() in ("end", '{"type":"end"}', '{"type": "end"}'):
                break
            raise UnknownMessage(f"unknown text message {text[:40]!r}: send audio as binary messages (16 kHz mono "
                                 "16-bit little-endian PCM), and the text 'end' to finish")
        buf.extend(data)
        while len(buf) >= block_bytes:
            chunk, buf = bytes(buf[:block_bytes]), buf[block_bytes:]
            received += block_bytes // 2
            await loop.run_in_executor(None, session.put, _pcm(chunk), received / SAMPLE_RATE)
    if len(buf) >= 2:
        received += len(buf) // 2
        await loop.run_in_executor(None, session.put, _pcm(bytes(buf[: len(buf) // 2 * 2])), received / SAMPLE_RATE)
    await loop.run_in_executor(None, session.inbox.put, None)


class UnknownMessage(Exception):
    """A text message other than ``end`` on the live stream."""


async def _send_results(ws: WebSocket, session: LiveSession) -> bool:
    """Send the session's results; True when they ended normally (the socket still open)."""
    loop = asyncio.get_running_loop()
    while True:
        msg = await loop.run_in_executor(None, session.results.get)
        if msg is None:
            return True
        await ws.send_json(msg)
        if msg["type"] == "error":
            await ws.close(code=1011)
            return False


def _drain_and_stop(session: LiveSession) -> None:
    """The client went away: end the scorer's input so its thread finishes."""
    try:
        while True:
            session.inbox.get_nowait()
    except queue.Empty:
        pass
    session.inbox.put(None)


def _pcm(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
