"""Model packages: safetensors + config.json round trip and clear errors for bad folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from emovox.errors import ModelError
from emovox.models import apply_transfer_mode, build_model, load_model, read_config, save_model
from emovox.models.io import CONFIG, FORMAT, WEIGHTS

LABELS = ["angry", "happy", "neutral"]
FRONTEND = {"name": "logmel", "kwargs": {"n_mels": 24}}


def _model(**kwargs):
    torch.manual_seed(0)
    return build_model("resnet34", 3, n_mels=24, base_channels=4, embed_dim=16, **kwargs)


def _save(folder: Path, model=None, **extra) -> Path:
    model = model if model is not None else _model()
    return save_model(folder, model, {"frontend": FRONTEND, "labels": LABELS, "normalize": "segment", **extra})


def _trained(model):
    """A few train-mode forwards so BN running stats differ from their init."""
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(4, 30, 24))
    return model.eval()


def test_round_trip_gives_identical_outputs(tmp_path):
    model = _trained(_model())
    folder = _save(tmp_path / "pkg", model, notes={"fold": 3})
    loaded, config = load_model(folder)
    x = torch.randn(2, 45, 24)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert not loaded.training
    assert config["labels"] == LABELS and config["notes"] == {"fold": 3} and config["format"] == FORMAT
    assert config["model"] == {"name": "resnet34", "kwargs": {"num_classes": 3, "n_mels": 24, "base_channels": 4,
                                                              "embed_dim": 16}}
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG, WEIGHTS]
    assert [p.name for p in tmp_path.iterdir()] == ["pkg"]  # no temporary leftovers
    # safetensors, not pickle: 8-byte header length then a JSON header.
    assert (folder / WEIGHTS).read_bytes()[8:9] == b"{"


def test_adapter_model_keeps_its_domain(tmp_path):
    model = _model(adapters=True)
    apply_transfer_mode(model, "residual_adapter", domain="emotion")
    _trained(model)
    loaded, config = load_model(_save(tmp_path / "pkg", model))
    assert config["model"]["kwargs"]["domain"] == "emotion" and loaded.domain == "emotion"
    x = torch.randn(1, 30, 24)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_overwrites_existing_package_but_not_other_folders(tmp_path):
    folder = _save(tmp_path / "pkg")
    _save(folder, _model(pooling="avg"))
    assert read_config(folder)["model"]["kwargs"]["pooling"] == "avg"
    other = tmp_path / "mine"
    other.mkdir()
    (other / "thesis.txt").write_text("precious")
    with pytest.raises(ModelError, match="not an emovox model folder; refusing"):
        _save(other)
    assert (other / "thesis.txt").read_text() == "precious"


def test_save_rejects_bad_config(tmp_path):
    with pytest.raises(ModelError, match="2 labels for a model with 3 outputs"):
        save_model(tmp_path / "a", _model(), {"frontend": FRONTEND, "labels": LABELS[:2]})
    with pytest.raises(ModelError, match="'frontend'"):
        save_model(tmp_path / "b", _model(), {"labels": LABELS})
    with pytest.raises(ModelError, match="build_model"):
        save_model(tmp_path / "c", torch.nn.Linear(2, 3), {"frontend": FRONTEND, "labels": LABELS})
    assert not any(tmp_path.iterdir())


def test_missing_things_raise_model_error(tmp_path):
    with pytest.raises(ModelError, match="no model folder"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="config.json is missing"):
        load_model(tmp_path / "empty")
    folder = _save(tmp_path / "pkg")
    (folder / WEIGHTS).unlink()
    with pytest.raises(ModelError, match="model.safetensors is missing"):
        load_model(folder)


def test_corrupt_files_raise_model_error(tmp_path):
    folder = _save(tmp_path / "pkg")
    data = bytearray((folder / WEIGHTS).read_bytes())
    data[-5] ^= 0xFF
    (folder / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        load_model(folder)
    # Without a checksum the safetensors reader itself rejects a truncated file.
    config = json.loads((folder / CONFIG).read_text())
    del config["weights_sha256"]
    (folder / CONFIG).write_text(json.dumps(config))
    (folder / WEIGHTS).write_bytes(bytes(data[:100]))
    with pytest.raises(ModelError, match="safetensors"):
        load_model(folder)
    (folder / CONFIG).write_text("{not json")
    with pytest.raises(ModelError, match="not JSON"):
        load_model(folder)


@pytest.mark.parametrize("edit, match", [
    (lambda c: c.update(format="emovox-model/9"), "not supported"),
    (lambda c: c.update(labels=[]), "'labels'"),
    (lambda c: c["model"].update(name="transformer9000"), "unknown model"),
    (lambda c: c["model"]["kwargs"].update(bogus=1), "bad arguments"),
    (lambda c: c["model"]["kwargs"].update(n_mels=32), "do not fit"),
    (lambda c: c.update(labels=["a", "b"]), "2 labels"),
])
def test_incompatible_configs_raise_model_error(tmp_path, edit, match):
    folder = _save(tmp_path / "pkg")
    config = json.loads((folder / CONFIG).read_text())
    edit(config)
    (folder / CONFIG).write_text(json.dumps(config))
    with pytest.raises(ModelError, match=match):
        load_model(folder)
