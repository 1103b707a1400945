"""Models, poolings and transfer modes by name."""

from __future__ import annotations

import pytest
import torch

from emovox.errors import ConfigError
from emovox.models import MODELS, TRANSFER_MODES, apply_transfer_mode, build_model, model_spec
from emovox.models.transfer import transfer_mode_name
from emovox.models.registry import model_name

CASES = {
    "resnet34": (dict(n_mels=16, base_channels=4, embed_dim=8), (2, 20, 16)),
    "resnet18": (dict(n_mels=16, base_channels=4, embed_dim=8, pooling="avg"), (2, 20, 16)),
    "resnet20": (dict(widths=[4, 8, 16], stem_channels=4, adapters=True), (2, 20, 16)),
    "vggish_mlp": (dict(num_layers=2, hidden=8), (2, 96, 64)),
    "frame_head": (dict(in_features=16), (2, 20, 16)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_small_model_builds_runs_and_records_its_spec(name):
    kwargs, shape = CASES[name]
    model = build_model(name, 5, **kwargs).eval()
    assert model(torch.randn(*shape), torch.tensor([shape[1], 7])).shape == (2, 5)
    assert model.embed(torch.randn(*shape)).shape == (2, model.embed_dim)
    assert model.spec == {"name": name, "kwargs": {"num_classes": 5, **kwargs}}


def test_all_registered_names_are_covered():
    assert set(MODELS) == set(CASES) | {"vggish"}  # vggish (72 M parameters) runs in test_vggish.py
    with torch.device("meta"):
        model = build_model("vggish", 4, hidden=100)
    assert model.spec["kwargs"] == {"num_classes": 4, "hidden": 100} and model.embed_dim == 100


def test_recipe_strings():
    model = build_model("ResNet34", 4, n_mels=16, base_channels=4, pooling="stats", adapters=True)
    apply_transfer_mode(model, "Res. Adapter")  # seed 003's name for it
    assert model.transfer_mode == "residual_adapter"
    assert transfer_mode_name("plain") == "scratch" and transfer_mode_name("adapter_only") == "adapter_only"
    assert transfer_mode_name("Fine-tuning") == "fine_tune"
    with pytest.raises(ConfigError, match="unknown transfer mode 'adapter'"):  # ambiguous: which of the two?
        transfer_mode_name("adapter")
    assert set(TRANSFER_MODES) >= {"scratch", "feature_extractor", "linear_probe", "fine_tune", "residual_adapter",
                                   "adapter_only"}
    assert model_name("mlp") == "vggish_mlp"
    assert model_spec(model)["kwargs"]["domain"] == "speaker"


def test_bad_names_and_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="unknown model 'resnet1000'.*resnet34"):
        build_model("resnet1000", 4)
    with pytest.raises(ConfigError, match="bad arguments for model 'resnet34'.*accepted: .*base_channels"):
        build_model("resnet34", 4, base_chanels=8)
    with pytest.raises(ConfigError, match="num_classes"):
        build_model("resnet34", 0)
    with pytest.raises(ConfigError, match="JSON"):
        build_model("resnet34", 4, n_mels=torch.tensor(3))
    with pytest.raises(ConfigError, match="unknown pooling"):
        build_model("resnet34", 4, n_mels=16, base_channels=4, pooling="max")
    with pytest.raises(ConfigError, match="unknown transfer mode 'freeze_some'"):
        apply_transfer_mode(build_model("resnet34", 4, n_mels=16, base_channels=4), "freeze_some")
