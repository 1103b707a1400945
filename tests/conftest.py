"""Shared test fixtures: tiny generated audio and the optional ../shared corpora."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

# One intra-op thread: the suite runs on small shared machines (2 cores in CI), where
# oversubscribed OpenMP threads make small convolutions orders of magnitude slower.
torch.set_num_threads(1)

# Product fixtures (tiny random model, Recognizer, ONNX graph) registered once for the whole
# session, so the session-scoped ones really are built once.
pytest_plugins = ["tests.product_fixtures"]

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EMOVOX_SHARED", REPO.parent / "shared"))


@contextlib.contextmanager
def import_script(path: Path, name: str, *paths: Path) -> Iterator[ModuleType]:
    """A recipe or benchmark script imported as module ``name``, with its folder (and ``paths``)
    on sys.path while the block runs (scripts import their neighbours, some of them lazily)."""
    added = [str(p) for p in (path.parent, *paths)]
    sys.path[:0] = added
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None, path
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        for entry in added:
            sys.path.remove(entry)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only ../shared folder (corpora, papers); skip the test when it is absent."""
    if not (SHARED / "corpora").is_dir():
        pytest.skip(f"real corpora not found at {SHARED}/corpora (set EMOVOX_SHARED to its folder)")
    return SHARED


@pytest.fixture(scope="session")
def corpora_dir(shared_dir: Path) -> Path:
    return shared_dir / "corpora"


def make_voice(seconds: float, f0: float = 140.0, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal (16 kHz): what frame-level model tests feed."""
    t = np.arange(int(seconds * 16000)) / 16000
    f = f0 + 0.2 * f0 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f) / 16000
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


def wav_bytes(x: np.ndarray, sr: int = 16000, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    """``x`` as the bytes of an audio file (an upload's body)."""
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def make_tone(seconds: float = 1.0, sr: int = 16000, freq: float = 220.0, amp: float = 0.3,
              seed: int = 0) -> np.ndarray:
    """A harmonic 'voiced' tone with a little noise: cheap stand-in for speech."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(amp / k * np.sin(2 * np.pi * freq * k * t) for k in range(1, 6))
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def tone() -> np.ndarray:
    return make_tone()


@pytest.fixture
def wav_file(tmp_path: Path) -> Path:
    import soundfile as sf

    path = tmp_path / "tone.wav"
    sf.write(path, make_tone(), 16000, subtype="PCM_16")
    return path


@pytest.fixture
def examples_dir() -> Path:
    return REPO / "examples"
