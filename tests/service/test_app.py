"""The HTTP service through FastAPI's test client: every endpoint and every error code."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("fastapi", reason="the service needs fastapi (pip install 'emovox[serve]')")

from fastapi.testclient import TestClient  # noqa: E402

from emovox.service.app import create_app  # noqa: E402
from tests.conftest import make_tone, wav_bytes  # noqa: E402
from tests.product_fixtures import LABELS  # noqa: E402
from tests.service.conftest import free_port  # noqa: E402

LOCAL = "http://127.0.0.1"  # the Host the service answers for by default


@pytest.fixture(scope="module")
def client(recognizer):
    with TestClient(create_app(recognizer, max_upload_bytes=400_000, max_seconds=20), base_url=LOCAL) as c:
        yield c


def upload(client, data: bytes, name: str = "clip.wav", ctype: str = "audio/wav", url: str = "/v1/predict", **params):
    return client.post(url, files={"file": (name, data, ctype)}, params=params)


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    err = resp.json()["error"]
    assert err["code"] == code and err["message"]
    return err


# ----------------------------------------------------------------------------------- success
def test_healthz(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["model"]["labels"] == LABELS
    assert body["model"]["backend"] == "torch" and "path" not in body["model"]


def test_predict_flac_upload(client, examples_dir):
    path = sorted(examples_dir.glob("*.flac"))[0]
    resp = upload(client, path.read_bytes(), path.name, "audio/flac")
    assert resp.status_code == 200
    body = resp.json()
    assert body["source"] == path.name and body["label"] in LABELS and body["error"] is None
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert body["duration"] == pytest.approx(sf.info(path).duration, abs=1e-3)


def test_predict_label_subset_and_any_format(client):
    x = np.stack([make_tone(1.0, sr=44100)] * 2, axis=1)
    resp = upload(client, wav_bytes(x, 44100, subtype="FLOAT"), ctype="application/octet-stream",
                  labels="angry,happy,neutral,sad")
    assert resp.status_code == 200
    assert list(resp.json()["probabilities"]) == ["angry", "happy", "neutral", "sad"]


def test_timeline_endpoint(client):
    resp = upload(client, wav_bytes(make_tone(5.0)), url="/v1/timeline", window=2.0, hop=1.0, vad="none")
    assert resp.status_code == 200
    body = resp.json()
    assert body["duration"] == 5.0 and body["labels"] == LABELS and body["vad"] == "none"
    assert [(w["start"], w["end"]) for w in body["windows"]] == [(0, 2), (1, 3), (2, 4), (3, 5)]
    assert body["regions"] and body["regions"][0]["label"] in LABELS


def test_page_docs_and_static(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="upload-form"' in page.text and "/static/app.js" in page.text
    assert "encodeWav" in client.get("/static/app.js").text
    import re

    from emovox.audio import SUPPORTED_EXTENSIONS

    accept = re.search(r'id="file"[^>]*accept="([^"]+)"', page.text).group(1).split(",")
    assert set(SUPPORTED_EXTENSIONS) <= set(accept)  # the file picker offers every format the service reads
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/timeline", "/healthz"} <= set(schema["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/v1/timeline" in docs.text and "window" in docs.text
    assert "http" not in docs.text.replace("http://127.0.0.1", "")  # no CDN: nothing loaded from elsewhere


def test_client_file_name_is_only_a_label(client):
    resp = upload(client, wav_bytes(make_tone(1.0)), name="../../etc/passwd\x00.wav")
    assert resp.status_code == 200
    source = resp.json()["source"]
    assert source.startswith("passwd") and source.endswith(".wav") and "/" not in source and ".." not in source


# ------------------------------------------------------------------------------------ errors
def test_413_declared_too_large(client):
    assert_error(upload(client, b"RIFF" + b"\0" * 500_000), 413, "payload_too_large")


def test_413_streamed_without_content_length(client):
    def chunks():
        for _ in range(50):
            yield b"x" * 10_000

    resp = client.post("/v1/predict", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
    assert_error(resp, 413, "payload_too_large")


def test_413_audio_too_long(client):
    # 30 s of 8 kHz 8-bit audio fits the upload limit but not the 20 s duration limit
    data = wav_bytes(np.zeros(8000 * 30, np.float32), 8000, subtype="PCM_U8")
    err = assert_error(upload(client, data), 413, "audio_too_long")
    assert "30 s" in err["message"]


@pytest.mark.parametrize("data,ctype", [(b"just some text\n" * 20, "text/plain"),
                                        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" * 20, "audio/wav")])
def test_415_not_audio(client, data, ctype):
    err = assert_error(upload(client, data, "x.wav", ctype), 415, "unsupported_media_type")
    assert "WAV" in err["hint"]


def test_422_undecodable(client):
    good = wav_bytes(make_tone(1.0))
    assert_error(upload(client, good[:30]), 422, "undecodable_audio")  # truncated header
    assert_error(upload(client, good[: len(good) // 2]), 422, "undecodable_audio")  # truncated data
    assert_error(upload(client, b""), 422, "empty_upload")
    nan = wav_bytes(np.full(16000, np.nan, np.float32), subtype="FLOAT")
    assert "NaN" in assert_error(upload(client, nan), 422, "undecodable_audio")["message"]
    short = wav_bytes(make_tone(0.01))
    assert_error(upload(client, short), 422, "undecodable_audio")


def test_400_bad_requests(client):
    assert_error(client.post("/v1/predict", data={"other": "1"}), 400, "bad_request")
    good = wav_bytes(make_tone(1.0))
    assert "calm" in assert_error(upload(client, good, labels="angry,calm"), 400, "bad_request")["message"]
    assert_error(upload(client, good, url="/v1/timeline", window=1.0, hop=2.0), 400, "bad_request")
    assert_error(upload(client, good, url="/v1/timeline", vad="webrtc"), 400, "bad_request")


@pytest.mark.parametrize("url", ["/v1/predict", "/v1/timeline", "/v1/conversation"])
def test_several_files_are_refused_not_dropped(client, url):
    """Two files in 'file': a 400 that says one recording per request, not the last file's result alone."""
    good = wav_bytes(make_tone(1.0))
    resp = client.post(url, files=[("file", ("a.wav", good, "audio/wav")), ("file", ("b.wav", good, "audio/wav"))])
    err = assert_error(resp, 400, "one_file_per_request")
    assert "2 files" in err["message"] and "its own request" in err["hint"]
    assert client.post(url, files=[("file", ("a.wav", good, "audio/wav"))]).status_code == 200


def test_decode_timeout_and_busy(recognizer, monkeypatch):
    import time

    import emovox.service.app as service

    data = wav_bytes(make_tone(1.0))
    real = service.decode_upload
    monkeypatch.setattr(service, "decode_upload", lambda *a: (time.sleep(0.5), real(*a))[1])  # a slow decoder
    with TestClient(create_app(recognizer, decode_timeout=0.05), base_url=LOCAL) as c:
        assert_error(upload(c, data), 422, "decode_timeout")


def test_conversation_is_bounded_as_predict_is(recognizer, monkeypatch):
    """The page's endpoint keeps the server's bounds: --max-seconds, the decode timeout, the
    timeline's window limit and the inference timeout (it had a fixed 600 s and no timeouts)."""
    import time

    import emovox.service.app as service
    import emovox.service.stream as stream

    conv = lambda c, seconds: upload(c, wav_bytes(make_tone(seconds)), url="/v1/conversation", vad="none")  # noqa: E731
    with TestClient(create_app(recognizer, max_seconds=5.0), base_url=LOCAL) as c:
        assert_error(conv(c, 6.0), 413, "audio_too_long")
        assert conv(c, 4.0).status_code == 200
    with TestClient(create_app(recognizer, max_windows=3), base_url=LOCAL) as c:
        assert_error(conv(c, 6.0), 413, "timeline_too_large")  # 5 windows of 2 s every 1 s
    real_decode, real_conversation = service.decode_upload, stream._conversation
    monkeypatch.setattr(service, "decode_upload", lambda *a: (time.sleep(0.5), real_decode(*a))[1])
    with TestClient(create_app(recognizer, decode_timeout=0.05), base_url=LOCAL) as c:
        assert_error(conv(c, 1.0), 422, "decode_timeout")
    monkeypatch.setattr(service, "decode_upload", real_decode)
    monkeypatch.setattr(stream, "_conversation", lambda *a: (time.sleep(1.0), real_conversation(*a))[1])
    with TestClient(create_app(recognizer, inference_timeout=0.1), base_url=LOCAL) as c:
        assert_error(conv(c, 1.0), 503, "timeout")


class _RecordingRecognizer:
    """Wraps the real recognizer and records which thread ran inference."""

    def __init__(self, inner) -> None:
        self.inner, self.threads = inner, []
        self.labels = inner.labels

    def info(self):
        return self.inner.info()

    def predict(self, *args, **kwargs):
        self.threads.append(threading.current_thread().name)
        return self.inner.predict(*args, **kwargs)


def test_concurrent_requests_run_off_the_event_loop(recognizer):
    import httpx

    wrapped = _RecordingRecognizer(recognizer)
    app = create_app(wrapped, workers=2)
    data = [wav_bytes(make_tone(1.0 + 0.1 * i, seed=i)) for i in range(8)]

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=LOCAL) as ac:
            reqs = [ac.post("/v1/predict", files={"file": (f"c{i}.wav", d, "audio/wav")}) for i, d in enumerate(data)]
            reqs.append(ac.get("/healthz"))
            return await asyncio.gather(*reqs)

    responses = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * 9
    assert [r.json()["source"] for r in responses[:8]] == [f"c{i}.wav" for i in range(8)]
    assert len(wrapped.threads) == 8
    assert all(name.startswith("emovox-infer") for name in wrapped.threads)


def test_cli_serve_binds_localhost_by_default(tiny_model, monkeypatch):
    import uvicorn

    from emovox.cli import build_parser, main

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8000
    seen = {}
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: seen.update(config=self.config))
    port = free_port()  # the command checks that it can listen there before it starts
    assert main(["serve", "--model", str(tiny_model), "--port", str(port), "--max-upload-mb", "1",
                 "--allow-host", "emovox.lan"]) == 0
    config = seen["config"]
    assert config.host == "127.0.0.1" and config.port == port
    assert config.limit_concurrency == 200 and config.timeout_keep_alive == 5
    assert config.http.header_timeout == 10.0  # the protocol that closes slow/idle connections
    with TestClient(config.app, base_url=LOCAL) as c:
        assert c.get("/healthz").json()["model"]["name"] == "tiny-test-model"
        assert_error(upload(c, b"RIFF" + b"\0" * (1024 * 1024 + 1)), 413, "payload_too_large")
    with TestClient(config.app, base_url="http://emovox.lan:8123") as c:
        assert c.get("/healthz").status_code == 200
    with TestClient(config.app, base_url="http://attacker.example") as c:
        assert_error(c.get("/healthz"), 400, "bad_host")


def test_cli_serve_on_a_busy_port_says_so(tiny_model, capsys):
    """A port another program listens on: a one-line error and exit 2, before the model loads and
    before any "serving on" line (uvicorn would print that, then fail)."""
    import socket

    from emovox.cli import main

    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        assert main(["serve", "--model", str(tiny_model), "--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert f"cannot listen on 127.0.0.1:{port} (the port is already in use); choose another --port" in err
    assert "serving on" not in out


@pytest.mark.parametrize("name,fmt,codec,video", [("voice.m4a", "ipod", "aac", None),
                                                  ("call.webm", "webm", "libopus", "libvpx"),
                                                  ("clip.mp4", "mp4", "aac", "mpeg4")])
def test_predict_m4a_webm_and_video_uploads(client, name, fmt, codec, video):
    pytest.importorskip("av", reason="M4A/WEBM/MP4 need PyAV")
    from fuzz.fuzz_audio import encode_av

    resp = upload(client, encode_av(make_tone(1.0, sr=48000), 48000, fmt, codec, video), name, "video/mp4")
    assert resp.status_code == 200, resp.text
    assert resp.json()["label"] in LABELS and resp.json()["duration"] == pytest.approx(1.0, abs=0.05)


def test_415_lists_every_supported_format(client):
    err = assert_error(upload(client, b"#EXTM3U\n#EXTINF:1,\n/etc/passwd\n" * 4, "list.m3u8"), 415,
                       "unsupported_media_type")
    assert "M4A/AAC" in err["hint"] and "AMR" in err["hint"] and "MP4/MOV/3GP/WEBM" in err["hint"]
