"""The web page in a real headless Chromium: upload an example clip, read the shown emotion.

Needs Debian's ``chromium`` at /usr/bin/chromium (``apt-get install -y chromium``) and
playwright-python (no downloaded browser: ``executable_path`` points at the system one).
The server is a real uvicorn on 127.0.0.1 and a free port, in a thread of this process.
"""

from __future__ import annotations


import pytest

from tests.service.conftest import CHROMIUM, FLAGS, microphone_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at /usr/bin/chromium "
                                                     "(apt-get install -y chromium)"),
]

from tests.product_fixtures import LABELS  # noqa: E402


@pytest.fixture(scope="module")
def page(playwright, server):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
    try:
        pg = browser.new_page()
        pg.set_default_timeout(60_000)
        yield pg
    finally:
        browser.close()


def test_upload_example_and_read_the_emotion(page, server, recognizer, examples_dir):
    clip = sorted(examples_dir.glob("*.flac"))[3]
    expected = recognizer.predict(clip)
    page.goto(server + "/")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('labels')")
    page.set_input_files("#file", str(clip))
    page.click("#analyse")
    page.wait_for_function("document.getElementById('status').textContent === 'Done.'")
    shown = page.inner_text("#top-label").strip()
    assert shown == expected.label and shown in LABELS
    rows = page.locator("#probabilities tbody tr")
    assert rows.count() == len(LABELS)
    assert page.get_attribute("#probabilities tbody tr.top", "data-label") == expected.label
    assert int(page.get_attribute("#timeline-chart", "data-windows")) >= 3
    assert page.is_hidden("#error")


def test_non_audio_upload_shows_the_error(page, server, tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all")
    page.goto(server + "/")
    page.set_input_files("#file", str(bad))
    page.click("#analyse")
    page.wait_for_selector("#error:not([hidden])")
    assert "not an audio file" in page.inner_text("#error")


def test_record_from_fake_microphone(playwright, server):
    """Chromium's fake capture device (a beeping tone) stands in for a microphone."""
    with microphone_page(playwright, server, timeout_ms=60_000) as pg:
        pg.click("#record")
        pg.wait_for_function("document.getElementById('record-status').textContent === 'Recording…'")
        pg.wait_for_timeout(2500)
        pg.click("#stop")
        pg.wait_for_function("['Done.', ''].includes(document.getElementById('status').textContent) && "
                             "(document.getElementById('top-label').textContent || "
                             "!document.getElementById('error').hidden)")
        assert pg.is_hidden("#error"), pg.inner_text("#error")
        assert pg.inner_text("#top-label").strip() in LABELS
        assert pg.inner_text("#meta").startswith("recording.wav")
