"""Shared fixtures of the service tests: a real uvicorn server on a free loopback port, Playwright."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on 127.0.0.1; yields its base URL."""
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start within 30 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(recognizer):
    from emovox.service.app import create_app

    with serving(create_app(recognizer)) as url:
        yield url


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@contextlib.contextmanager
def microphone_page(playwright: Any, url: str, clip: Path | None = None, timeout_ms: int = 240_000) -> Iterator[Any]:
    """The page at ``url`` in a Chromium with microphone permission whose fake capture device plays
    ``clip`` (None: Chromium's own beeping tone)."""
    flags = FLAGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
    if clip is not None:
        flags.append(f"--use-file-for-fake-audio-capture={clip}")
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=flags)
    try:
        context = browser.new_context()
        context.grant_permissions(["microphone"], origin=url)
        pg = context.new_page()
        pg.set_default_timeout(timeout_ms)
        pg.goto(url + "/")
        pg.wait_for_function("document.querySelectorAll('#model option').length > 0")
        yield pg
    finally:
        browser.close()
