"""The page's speaker lanes, hover, summary, model menu, stale-result clearing and live recording,
in a real headless Chromium (Debian's /usr/bin/chromium driven by playwright, as tests/service/test_page.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.product_fixtures import LABELS

from tests.service.conftest import CHROMIUM, FLAGS, microphone_page
SR = 16000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium "
                                                     "(apt-get install -y chromium)"),
]


needs_ge2e = pytest.mark.skipif(
    importlib.util.find_spec("resemblyzer") is None or importlib.util.find_spec("librosa") is None,
    reason="speaker lanes need the GE2E encoder: pip install --no-deps resemblyzer==0.1.4 librosa")


def two_voices(path: Path) -> Path:
    """Two synthetic 'voices' (harmonic buzz at 110 Hz and 260 Hz) taking 3 s turns, 0.4 s pauses."""
    rng = np.random.default_rng(0)
    parts = []
    for i in range(6):
        f0 = 110.0 if i % 2 == 0 else 260.0
        t = np.arange(3 * SR) / SR
        voice = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12))
        envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 3 * t) ** 2  # syllable-like loudness changes
        parts += [0.08 * voice * envelope + 0.003 * rng.standard_normal(t.size), np.zeros(int(0.4 * SR))]
    sf.write(path, np.concatenate(parts).astype(np.float32), SR)
    return path


@pytest.fixture(scope="module")
def page(playwright, server):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
    try:
        pg = browser.new_page(viewport={"width": 1000, "height": 1100})
        pg.set_default_timeout(240_000)
        yield pg
    finally:
        browser.close()


def two_sided_call(path: Path) -> Path:
    """``two_voices`` as a call recorded one side per channel: each voice's turns on its own channel."""
    mono, _ = sf.read(two_voices(path), dtype="float32")
    turn = int(3.4 * SR)
    first = (np.arange(mono.size) // turn) % 2 == 0
    sf.write(path, np.stack([np.where(first, mono, 0.0), np.where(first, 0.0, mono)], axis=1), SR)
    return path


def upload(page, server, path: Path, speakers: str = "auto", channels: str = "auto") -> str:
    """Upload through the page. The synthetic voices are speech to the Sohn VAD alone (the default,
    gated by Silero, hears none), so the page's request asks for it: the lanes are under test here.
    Returns the URL the page asked for."""
    urls: list[str] = []

    def sohn(route) -> None:
        urls.append(route.request.url)
        route.continue_(url=route.request.url + "&vad=sohn")

    page.unroute("**/v1/conversation*")
    page.route("**/v1/conversation*", sohn)
    page.goto(server + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    page.select_option("#speakers", speakers)
    page.select_option("#channels", channels)
    page.set_input_files("#file", str(path))
    page.click("#analyse")
    page.wait_for_function("['Done.', ''].includes(document.getElementById('status').textContent) && "
                           "(!document.getElementById('result').hidden || !document.getElementById('error').hidden)")
    return urls[-1]


def test_model_menu_lists_the_servers_models(page, server):
    import json
    import urllib.request

    models = json.load(urllib.request.urlopen(server + "/v1/models"))["models"]
    page.goto(server + "/")
    page.wait_for_function("document.querySelectorAll('#model option').length > 0")
    values = page.eval_on_selector_all("#model option", "els => els.map(e => e.value)")
    assert values[0] == "default"
    assert sorted(values[1:]) == sorted(m["name"] for m in models if m["name"] != "default")


@needs_ge2e
def test_lanes_render_one_per_speaker_with_hover(page, server, tmp_path):
    upload(page, server, two_voices(tmp_path / "two.wav"), "auto")
    assert page.is_hidden("#error"), page.inner_text("#error")
    assert page.get_attribute("#timeline-chart", "data-speakers") == "2"
    assert page.get_attribute("#timeline-chart", "data-lanes") == "2"
    assert page.locator("#summary tbody tr").count() == 2
    assert [page.get_attribute(f"#summary tbody tr:nth-child({i})", "data-speaker") for i in (1, 2)] == ["S1", "S2"]
    # the lanes are painted: lane 1 (S1) holds coloured pixels where S1 speaks (0-3 s), lane 2 does not
    painted = page.evaluate("""() => {
        const c = document.getElementById('timeline-chart'), ctx = c.getContext('2d');
        const x = 70 + (1.5 / 20.4) * (c.width - 90);
        const px = (y) => Array.from(ctx.getImageData(x, y, 1, 1).data);
        return [px(10 + 17), px(10 + 34 + 17)];
    }""")
    assert painted[0][3] > 0 and painted[0][:3] != [238, 238, 238]
    assert painted[1][3] == 0 or painted[1][:3] == [255, 255, 255]
    # hovering over S2's lane at 4.5 s shows that window's probabilities
    box = page.locator("#timeline-chart").bounding_box()
    scale = box["width"] / 900
    page.mouse.move(box["x"] + (70 + (4.5 / 20.4) * 810) * scale, box["y"] + (10 + 34 + 17) * scale)
    page.wait_for_selector("#tooltip:not([hidden])")
    text = page.inner_text("#tooltip")
    assert text.startswith("S2") and sum(label in text for label in LABELS) == len(LABELS) and "%" in text
    page.mouse.move(box["x"] + 2, box["y"] + 2)
    page.wait_for_selector("#tooltip", state="hidden")


def test_channels_menu_gives_each_side_of_a_call_its_lane(page, server, tmp_path):
    """A two-sided call with "one speaker per channel": a lane per channel, named by it, no embeddings needed."""
    upload(page, server, two_sided_call(tmp_path / "call.wav"), "auto", "split")
    assert page.is_hidden("#error"), page.inner_text("#error")
    assert page.get_attribute("#timeline-chart", "data-speakers") == "2"
    assert [page.get_attribute(f"#summary tbody tr:nth-child({i})", "data-speaker") for i in (1, 2)] == ["CH1", "CH2"]
    url = upload(page, server, tmp_path / "call.wav", "2", "mix")  # the menu's value reaches the request
    assert "channels=mix" in url and "speakers=2" in url


def test_silence_shows_no_speech_and_an_unsure_result_says_so(playwright, tiny_model, tmp_path):
    """The verdict line: "no speech" (no emotion, no probabilities) for silence, never "(NaN%)";
    a result the model is unsure of is marked so."""
    import json

    from emovox.inference import Recognizer
    from emovox.service.app import create_app
    from tests.service.conftest import serving

    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(4 * SR, np.float32), SR)
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
    try:
        with serving(create_app(Recognizer.load(tiny_model, threads=1, vad="sohn"))) as url:
            pg = browser.new_page()
            pg.set_default_timeout(120_000)
            upload(pg, url, silence, "auto")
            assert pg.inner_text("#top-label") == "no speech" and "NaN" not in pg.inner_text("#result")
            assert pg.get_attribute("#top-label", "data-state") == "no_speech" and pg.is_hidden("#probabilities")
            assert "too little speech" in pg.inner_text("#meta")
            assert "No window had enough speech" in pg.inner_text("#summary")

            import httpx

            body = httpx.post(url + "/v1/conversation", params={"vad": "sohn"}, timeout=120,
                              files={"file": ("silence.wav", silence.read_bytes(), "audio/wav")}).json()

            def unsure(route) -> None:  # the server's own answer, marked uncertain
                body["prediction"].update(label="sad", probabilities={k: 1 / len(LABELS) for k in LABELS},
                                          no_speech=False, uncertain=True, speech_fraction=0.9)
                route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

            pg.unroute("**/v1/conversation*")
            pg.route("**/v1/conversation*", unsure)
            pg.set_input_files("#file", str(silence))
            pg.click("#analyse")
            pg.wait_for_function("document.getElementById('status').textContent === 'Done.'")
            assert pg.inner_text("#top-label") == "sad" and "uncertain" in pg.inner_text("#top-prob")
            assert pg.get_attribute("#top-label", "data-state") == "uncertain" and pg.is_visible("#probabilities")
    finally:
        browser.close()


def test_error_clears_the_previous_result(page, server, tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, 0.1 * np.random.default_rng(1).standard_normal(3 * SR).astype(np.float32), SR)
    upload(page, server, good, "none")
    assert page.is_visible("#result") and page.inner_text("#top-label").strip() in LABELS
    assert page.get_attribute("#timeline-chart", "data-speakers") == "0"
    assert page.get_attribute("#timeline-chart", "data-lanes") == "1"
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all")
    page.set_input_files("#file", str(bad))
    page.click("#analyse")
    page.wait_for_selector("#error:not([hidden])")
    assert "not an audio file" in page.inner_text("#error")
    assert page.is_hidden("#result") and page.inner_text("#top-label") == ""
    assert page.locator("#probabilities tbody tr").count() == 0
    assert page.get_attribute("#timeline-chart", "data-windows") is None


def test_live_recording_from_a_fake_microphone_file(playwright, server, tmp_path):
    """Chromium's fake capture device plays a WAV file; the page streams it and shows live windows."""
    clip = tmp_path / "mic.wav"
    sf.write(clip, 0.1 * np.random.default_rng(2).standard_normal(8 * SR).astype(np.float32), SR,
             subtype="PCM_16")
    with microphone_page(playwright, server, clip) as pg:
        pg.click("#record")
        pg.wait_for_function("document.getElementById('record-status').textContent === 'Recording…'")
        # live results arrive while still recording: at least two 2 s windows (hop 1 s)
        pg.wait_for_function("Number(document.getElementById('live-chart').dataset.windows) >= 2")
        assert pg.get_attribute("#stop", "disabled") is None
        live = pg.inner_text("#live-label").strip()
        assert live in LABELS or live == "(no speech)"
        pg.click("#stop")
        pg.wait_for_function("document.getElementById('status').textContent === 'Done.' || "
                             "!document.getElementById('error').hidden")
        assert pg.is_hidden("#error"), pg.inner_text("#error")
        assert pg.inner_text("#top-label").strip() in LABELS
        assert pg.inner_text("#meta").startswith("recording.wav")


def test_live_speaker_labels_on_the_page(playwright, tmp_path, monkeypatch):
    """A model with Whisper frames: the live line names the speaker (``S1 · happy``), and the two
    synthetic voices of the fake microphone become two live speakers."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from emovox.frame_speakers import SpeakerProjection
    from emovox.inference import Recognizer
    from emovox.service.app import create_app
    from tests.service.conftest import serving
    from tests.test_frame_speakers import LABELS as TINY
    from tests.test_frame_speakers import package_at, projection_for
    from tests.test_frame_speakers import two_voices as voices

    package = package_at(tmp_path / "pkg")
    projection = projection_for(package, tmp_path / "proj")
    monkeypatch.setattr(SpeakerProjection, "load", classmethod(lambda cls, name, folder=None: projection))
    # the synthetic voices are tones: speech to the Sohn VAD alone, not to the stream's default
    # (gated by Silero); the live speaker labels are under test here, so the stream gets Sohn's
    from emovox.vad import VADS, SohnVAD

    monkeypatch.setitem(VADS, "gated", SohnVAD)
    clip = tmp_path / "mic.wav"
    sf.write(clip, voices()[0], SR, subtype="PCM_16")
    with serving(create_app(Recognizer.load(package, vad=None))) as url, microphone_page(playwright, url, clip) as pg:
        pg.click("#record")
        pg.wait_for_function("Number(document.getElementById('live-chart').dataset.speakers) >= 2")
        speaker, _, label = pg.inner_text("#live-label").strip().partition(" · ")
        assert speaker in ("S1", "S2", "S3") and label in TINY, (speaker, label)
        pg.click("#stop")
