"""Fixtures for the product tests (inference, timeline, export, service, CLI): a tiny model.

A randomly initialised narrow ResNet18 on 32 log-mels, saved with :func:`emovox.models.save_model`
into a temporary folder, stands in for the bundled default model. Import the fixtures into a
test module with ``from tests.product_fixtures import tiny_model, recognizer  # noqa: F401``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def make_tiny_model(folder: Path, labels: list[str] = LABELS, seed: int = 0) -> Path:
    """Save a random tiny model package at ``folder`` (distinct class biases so argmax varies)."""
    import torch

    from emovox.models import build_model, save_model

    torch.manual_seed(seed)
    model = build_model("resnet18", len(labels), n_mels=32, base_channels=4, embed_dim=32)
    with torch.no_grad():
        model.classifier.weight.mul_(300.0)  # spread the posteriors: tests see non-uniform outputs
    config = {"frontend": {"name": "logmel", "kwargs": {"n_mels": 32}}, "normalize": "segment",
              "labels": list(labels), "name": "tiny-test-model"}
    return save_model(folder, model.eval(), config)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def recognizer(tiny_model: Path):
    from emovox.inference import Recognizer

    # one intra-op thread: the machine running the suite is shared, and oversubscribed OpenMP
    # threads make small convolutions hundreds of times slower. The test tones
    # are not speech for either VAD, so they would come back no_speech: score them without VAD.
    return Recognizer.load(tiny_model, threads=1, vad=None)


@pytest.fixture(scope="session")
def tiny_onnx(tiny_model: Path) -> Path:
    """``tiny_model`` with its ONNX graph exported next to the weights (export once per session)."""
    pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime (pip install 'emovox[onnx]')")
    pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install 'emovox[onnx]')")
    from emovox.export import export_onnx

    return export_onnx(tiny_model)


@pytest.fixture(scope="session")
def default_recognizer():
    """The bundled default model, without VAD (tests feed it generated and acted clips)."""
    from emovox.inference import Recognizer

    return Recognizer.load(vad=None)


@pytest.fixture(scope="session")
def example_waves() -> list:
    """The six bundled example clips (RAVDESS, 3-4 s each), decoded to 16 kHz."""
    from emovox.audio import load_audio

    return [load_audio(p) for p in sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.flac"))]
