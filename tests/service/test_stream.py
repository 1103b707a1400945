"""Live stream (WebSocket), the model list and the conversation endpoint of emovox.service.stream."""

from __future__ import annotations

import io
import socket
import threading
import time

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="the service needs fastapi (pip install 'emovox[serve]')")

from fastapi.testclient import TestClient

from emovox.service.app import create_app
from tests.product_fixtures import LABELS

SR = 16000


def talk(seconds: float = 7.3, seed: int = 0) -> np.ndarray:
    """Noise bursts of changing loudness with short pauses (a stand-in for speech)."""
    rng = np.random.default_rng(seed)
    x = np.zeros(int(seconds * SR), np.float32)
    for i, start in enumerate(np.arange(0.3, seconds - 1.0, 1.5)):
        a, b = int(start * SR), int((start + 1.2) * SR)
        x[a:b] = (0.05 + 0.1 * (i % 3)) * rng.standard_normal(b - a)
    return x


def pcm(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


@pytest.fixture(scope="module")
def client(recognizer):
    with TestClient(create_app(recognizer), base_url="http://127.0.0.1") as c:
        yield c


def test_models_lists_the_bundled_ones(client, recognizer):
    body = client.get("/v1/models").json()
    names = [m["name"] for m in body["models"]]
    assert "default" in names and body["loaded"] == recognizer.info()["name"]
    assert "fast" in names
    default, fast = body["models"][names.index("default")], body["models"][names.index("fast")]
    assert default["labels"] == LABELS and default["frontend"] == "waves"  # audio-in (Whisper) model
    assert fast["labels"] == LABELS and fast["frontend"] == "logmel"


def test_stream_sends_windows_before_the_end_and_matches_the_timeline(client, recognizer):
    x = talk()
    q = pcm(x)
    chunk = 3200 * 2 + 2  # 0.2 s plus one sample: chunks need not align with anything
    with client.websocket_connect("ws://127.0.0.1/v1/stream?vad=none") as ws:
        sent = 0
        while sent < int(3.5 * SR) * 2:  # 3.5 s in: windows 0-2 and 1-3 are complete
            ws.send_bytes(q[sent:sent + chunk])
            sent += chunk
        first = ws.receive_json()
        assert first["type"] == "window" and (first["start"], first["end"]) == (0.0, 2.0)
        assert first["latency_ms"] is not None and first["latency_ms"] >= 0
        while sent < len(q):
            ws.send_bytes(q[sent:sent + chunk])
            sent += chunk
        ws.send_text("end")
        msgs = [first]
        while msgs[-1]["type"] != "end":
            msgs.append(ws.receive_json())
    windows, end = msgs[:-1], msgs[-1]
    expected = recognizer.timeline(x, sample_rate=SR, vad=None)
    assert [(w["start"], w["end"]) for w in windows] == [(w.start, w.end) for w in expected.windows]
    for got, want in zip(windows, expected.windows):
        assert got["label"] == want.label
        assert got["probabilities"] == pytest.approx(want.probabilities, abs=1e-5)
    assert end["duration"] == pytest.approx(x.size / SR, abs=1e-3) and end["windows"] == len(windows)
    assert sum(end["summary"].values()) == pytest.approx(1.0, abs=1e-3)


def test_stream_with_vad_marks_pauses(client):
    x = np.concatenate([np.zeros(4 * SR, np.float32), talk(4.0, 1)])
    with client.websocket_connect("ws://127.0.0.1/v1/stream?vad=sohn&window=1&hop=1") as ws:
        ws.send_bytes(pcm(x))
        ws.send_text("end")
        msgs = [ws.receive_json()]
        while msgs[-1]["type"] != "end":
            msgs.append(ws.receive_json())
    windows = msgs[:-1]
    assert len(windows) == 8
    assert all(w["no_speech"] and w["label"] is None for w in windows[:3])  # digital silence
    assert any(not w["no_speech"] and w["label"] in LABELS for w in windows[4:])


def test_stream_closes_cleanly_after_the_end_and_refuses_unknown_text(client):
    """After the end summary the server closes with 1000 (not a dropped connection); a text
    message other than ``end`` gets an error saying what the stream takes, and a 1003 close,
    never a silent wait."""
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect("ws://127.0.0.1/v1/stream?vad=none") as ws:
        ws.send_bytes(pcm(talk(2.5)))
        ws.send_text("end")
        msgs = [ws.receive_json()]
        while msgs[-1]["type"] != "end":
            msgs.append(ws.receive_json())
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == 1000
    with client.websocket_connect("ws://127.0.0.1/v1/stream?vad=none") as ws:
        ws.send_bytes(pcm(talk(0.5)))
        ws.send_text('{"sample_rate": 44100}')
        msg = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert msg["type"] == "error" and "unknown text message" in msg["message"] and "'end'" in msg["message"]
    assert closed.value.code == 1003


@pytest.mark.parametrize("query,needle", [("model=nope", "unknown model"), ("vad=webrtc", "vad must be"),
                                          ("window=0", "window must be")])
def test_stream_refuses_bad_parameters(client, query, needle):
    with client.websocket_connect(f"ws://127.0.0.1/v1/stream?{query}") as ws:
        msg = ws.receive_json()
    assert msg["type"] == "error" and needle in msg["message"]


def test_conversation_endpoint(client, recognizer):
    buf = io.BytesIO()
    sf.write(buf, talk(), SR, format="WAV")
    resp = client.post("/v1/conversation", params={"speakers": "none"},
                       files={"file": ("talk.wav", buf.getvalue(), "audio/wav")})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["prediction"]["label"] in LABELS and body["timeline"]["speakers"] == []
    assert body["timeline"]["windows"] and body["model"] == recognizer.info()["name"]
    bad = client.post("/v1/conversation", params={"model": "nope"},
                      files={"file": ("talk.wav", buf.getvalue(), "audio/wav")})
    assert bad.status_code == 400 and "unknown model" in bad.json()["error"]["message"]
    assert client.post("/v1/conversation", params={"speakers": "many"},
                       files={"file": ("talk.wav", buf.getvalue(), "audio/wav")}).status_code == 400


def test_conversation_of_a_two_sided_call(client):
    from tests.test_channels import two_sided_call

    buf = io.BytesIO()
    sf.write(buf, two_sided_call(), SR, format="FLAC")
    post = lambda **params: client.post("/v1/conversation", params={"vad": "sohn", **params},  # noqa: E731
                                        files={"file": ("call.flac", buf.getvalue(), "audio/flac")})
    resp = post()
    assert resp.status_code == 200, resp.text
    tl = resp.json()["timeline"]
    assert tl["split_channels"] == 2 and tl["speakers"] == ["CH1", "CH2"]
    assert {t["speaker"] for t in tl["turns"]} == {"CH1", "CH2"}
    mixed = post(channels="mix", speakers="none").json()["timeline"]
    assert mixed["split_channels"] == 0 and mixed["speakers"] == []
    mono = io.BytesIO()
    sf.write(mono, two_sided_call()[:, 0], SR, format="WAV")
    refused = client.post("/v1/conversation", params={"vad": "sohn", "channels": "split"},
                          files={"file": ("mono.wav", mono.getvalue(), "audio/wav")})
    assert refused.status_code == 400 and "needs 2 to 8 channels" in refused.json()["error"]["message"]
    bad = post(channels="left")  # the query pattern (the app answers 400 for bad queries)
    assert bad.status_code == 400 and "query.channels" in bad.json()["error"]["message"]
    assert "/docs" in bad.json()["error"]["hint"] and "multipart" not in bad.json()["error"]["hint"]
    four = io.BytesIO()
    sf.write(four, np.concatenate([two_sided_call()] * 2, axis=1), SR, format="WAV")
    refused = client.post("/v1/conversation", params={"vad": "sohn", "channels": "split"},
                          files={"file": ("four.wav", four.getvalue(), "audio/wav")})
    assert refused.status_code == 400 and "2-channel recordings only" in refused.json()["error"]["message"]


# ------------------------------------------------------------------ a real server and client
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_client_streams_faster_than_real_time(recognizer):
    pytest.importorskip("websockets", reason="uvicorn's WebSocket support needs websockets (emovox[serve])")
    import uvicorn
    from websockets.sync.client import connect

    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(recognizer), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    try:
        x = talk(12.0, 2)
        q = pcm(x)
        with connect(f"ws://127.0.0.1:{port}/v1/stream?vad=sohn") as ws:
            start = time.monotonic()
            for i in range(0, len(q), 8000):  # 0.25 s chunks, as fast as the socket takes them
                ws.send(q[i:i + 8000])
            sending = time.monotonic() - start
            ws.send("end")
            import json

            msgs = [json.loads(ws.recv(timeout=60))]
            while msgs[-1]["type"] != "end":
                msgs.append(json.loads(ws.recv(timeout=60)))
        assert sending < x.size / SR  # faster than real time
        windows = msgs[:-1]
        assert len(windows) == 11 and msgs[-1]["windows"] == 11
        assert [w["start"] for w in windows] == [float(i) for i in range(11)]
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
