"""Provisional live speaker labels (emovox.live_speakers) and their use in WS /v1/stream."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.live_speakers import MAX_SPEAKERS, LiveSpeakers

SR = 16000


class Projection:
    """Identity 'projection' of layer 0 with a threshold (what LiveSpeakers uses of SpeakerProjection)."""

    layers = [0]
    threshold = 0.5

    def embed_frames(self, frames):
        return np.asarray(frames)[0].mean(axis=0)


def test_leader_follower_opens_a_speaker_on_its_second_window():
    live = LiveSpeakers(engine=None, projection=Projection())
    a, b, c = np.array([1.0, 0.0, 0.1]), np.array([0.0, 1.0, 0.1]), np.array([0.0, 0.1, -1.0])
    # b's first window is a candidate (keeps the nearest label); its second opens S2
    assert [live.assign(v) for v in (a, 2 * a, b, 3 * b, a + 0.05, b)] == ["S1", "S1", "S1", "S2", "S1", "S2"]
    assert live.counts == [4, 2] and live.speakers == ["S1", "S2"]
    # one far window that no second window confirms opens nothing
    assert [live.assign(v) for v in (c, a, b)] == ["S2" if 1 - b @ c / np.linalg.norm(b) / np.linalg.norm(c) <
                                                   1 - a @ c / np.linalg.norm(a) / np.linalg.norm(c) else "S1", "S1", "S2"]
    assert live.speakers == ["S1", "S2"] and sum(live.counts) == 9
    capped = LiveSpeakers(engine=None, projection=Projection(), max_speakers=2)
    assert [capped.assign(v) for v in (a, b, b, c, c)][:3] == ["S1", "S1", "S2"] and capped.speakers == ["S1", "S2"]
    assert MAX_SPEAKERS >= 2


def test_one_encoding_gives_the_emotions_and_the_speaker():
    class Engine:  # hidden states (2 layers, 50 frames, 3 dims) whose layer 0 mean is the 'voice'
        layers = [1]
        calls = 0

        def hidden(self, wave):
            self.calls += 1
            return np.stack([np.tile(wave[:3], (50, 1)), np.tile(wave[3:6], (50, 1))])

        def head_logits(self, pooled):
            return pooled[:, 0, :3]  # the layer-1 means as logits

        def probabilities(self, logits):
            e = np.exp(logits - logits.max(axis=-1, keepdims=True))
            return e / e.sum(axis=-1, keepdims=True)

    engine = Engine()
    live = LiveSpeakers(engine=engine, projection=Projection())
    w = np.zeros(SR, np.float32)
    w[:6] = [1.0, 0.0, 0.1, 2.0, 0.0, 0.0]
    probs, speaker = live.score(w, index=[0, 1])
    assert speaker == "S1" and engine.calls == 1
    assert np.allclose(probs, np.exp([2.0, 0.0]) / np.exp([2.0, 0.0]).sum())  # restricted, renormalised
    w2 = w.copy()
    w2[:3] = [0.0, 1.0, 0.1]
    assert [live.score(w2)[1], live.score(w2)[1]] == ["S1", "S2"] and engine.calls == 3


def test_stream_labels_two_voices_live(tmp_path, monkeypatch):
    pytest.importorskip("fastapi", reason="the service needs fastapi (pip install 'emovox[serve]')")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from fastapi.testclient import TestClient

    from emovox.frame_speakers import SpeakerProjection
    from emovox.inference import Recognizer
    from emovox.service.app import create_app
    from tests.test_frame_speakers import package_at, projection_for, two_voices

    package = package_at(tmp_path / "pkg")
    projection = projection_for(package, tmp_path / "proj")
    monkeypatch.setattr(SpeakerProjection, "load", classmethod(lambda cls, name, folder=None: projection))
    x, turns = two_voices()  # low voice 0-4, high 4.6-7.6, low 8.2-13.2, high 13.8-17.3, low 17.9-22.4 s
    q = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    with TestClient(create_app(Recognizer.load(package, vad=None)), base_url="http://127.0.0.1") as client:
        for query, expect in (("vad=none", True), ("vad=none&speakers=none", False)):
            with client.websocket_connect(f"ws://127.0.0.1/v1/stream?{query}") as ws:
                for i in range(0, len(q), 16000):
                    ws.send_bytes(q[i:i + 16000])
                ws.send_text("end")
                msgs = [ws.receive_json()]
                while msgs[-1]["type"] not in ("end", "error"):
                    msgs.append(ws.receive_json())
            end, windows = msgs[-1], {m["start"]: m for m in msgs[:-1]}
            assert end["type"] == "end", end
            if not expect:
                assert all(m["speaker"] is None for m in windows.values()) and end["speakers"] == {}
                continue
            inside = {s: windows[float(s)]["speaker"] for s in (0, 1, 2, 5, 9, 10, 14, 18, 19)}
            assert inside[0] == "S1" and {inside[s] for s in (1, 2, 9, 10, 18, 19)} == {"S1"}, inside
            assert {inside[s] for s in (5, 14)} == {"S2"}, inside
            assert set(end["speakers"]) >= {"S1", "S2"} and sum(end["speakers"].values()) == len(windows)
    with TestClient(create_app(Recognizer.load(package, vad=None)), base_url="http://127.0.0.1") as client:
        with client.websocket_connect("ws://127.0.0.1/v1/stream?speakers=3") as ws:
            assert "speakers must be auto or none" in ws.receive_json()["message"]
