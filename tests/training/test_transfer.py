"""Speaker pretraining -> backbone -> every transfer mode: trainable parts, frozen weights stay frozen."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emovox.config import recipe_from_dict
from emovox.errors import ConfigError
from emovox.models.io import load_model
from emovox.testing.trees import make_iemocap_tree, make_voxceleb_tree
from emovox.training.speaker import pretrain_speaker, split_by_speaker
from emovox.training.transfer import build_emotion_model

SIZE = {"features": {"n_mels": 24}, "augment": {"policy": "none"},
        "model": {"name": "resnet34", "options": {"base_channels": 2, "embed_dim": 8}},
        "train": {"epochs": 1, "batch_size": 4, "chunk_frames": [20, 30], "progress": False}}


def _recipe(data: dict, cache: Path, **sections: dict) -> dict:
    raw = {"name": "t", "data": data, **{k: dict(v) for k, v in SIZE.items()}}
    raw["model"] = {**raw["model"], "options": dict(raw["model"]["options"])}
    raw["features"]["cache_dir"] = str(cache)
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return raw


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("transfer")
    vox = make_voxceleb_tree(base / "vox", n_speakers=3, videos_per_speaker=2, utts_per_video=2)
    iemocap = make_iemocap_tree(base / "iemocap")
    out = {"base": base, "iemocap": iemocap, "cache": base / "cache"}
    for name, adapters in (("plain", False), ("adapters", True)):
        raw = _recipe({"corpus": "voxceleb", "root": str(vox)}, out["cache"])
        raw["model"]["options"]["adapters"] = adapters
        pretrain_speaker(recipe_from_dict(raw), base / name, progress=False)
        out[name] = base / name / "backbone"
    return out


def emotion_recipe(trees: dict[str, Path], mode: str, backbone: str, **sections: dict):
    data = {"corpus": "iemocap", "root": str(trees["iemocap"]), "labels": "iemocap_exp1", "protocol": "loso",
            "folds": [0]}
    raw = _recipe(data, trees["cache"], transfer={"mode": mode, "backbone": str(trees[backbone])}, **sections)
    if backbone == "adapters":
        raw["model"]["options"]["adapters"] = True
    return recipe_from_dict(raw)


def trainable(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_split_by_speaker_keeps_every_speaker_in_training() -> None:
    from emovox.corpora import Utterance

    utts = [Utterance(f"{s}{i}", "", s, s) for s in "ab" for i in range(10)] + [Utterance("c0", "", "c", "c")]
    train, valid = split_by_speaker(utts, 0.2)
    assert len(valid) == 4 and "c0" in train and not set(train) & set(valid)


def test_backbone_package_has_speaker_labels(trees: dict[str, Path]) -> None:
    model, config = load_model(trees["plain"])
    assert config["labels"] == ["id10001", "id10002", "id10003"] and model.num_classes == 3
    assert config["training"]["task"] == "speaker identification"


@pytest.mark.parametrize("mode,backbone,expect", [
    ("feature_extractor", "plain", lambda n: n.startswith("classifier.")),
    ("linear_probe", "plain", lambda n: n.split(".")[0] in ("pool", "embedding", "classifier")),
    ("fine_tune", "plain", lambda n: True),
    ("residual_adapter", "adapters", lambda n: n.split(".")[0] in ("pool", "embedding", "classifier")
     or ".adapters.emotion." in n or ".bn.emotion." in n),
    ("adapter_only", "adapters", lambda n: n.split(".")[0] in ("pool", "embedding", "classifier")
     or ".adapters.emotion." in n or ".bn.emotion." in n),
])
def test_transfer_modes_train_exactly_their_parts(trees: dict[str, Path], mode: str, backbone: str, expect) -> None:
    recipe = emotion_recipe(trees, mode, backbone)
    model = build_emotion_model(recipe, 4, 24)
    names = {n for n, _ in model.named_parameters()}
    assert trainable(model) == {n for n in names if expect(n)}
    assert model.classifier.out_features == 4
    source = dict(load_model(trees[backbone])[0].named_parameters())
    for n, p in model.named_parameters():
        if not p.requires_grad and ".conv.weight" in n:
            if mode == "adapter_only" and "shortcut" not in n:  # 3x3 convs with an adapter
                assert not p.any(), f"{n} should be zeroed in adapter_only"
            else:
                assert torch.equal(p, source[n]), f"{n} not loaded from the backbone"


@pytest.mark.parametrize("mode,backbone", [("linear_probe", "plain"), ("residual_adapter", "adapters")])
def test_frozen_weights_unchanged_after_training(trees: dict[str, Path], tmp_path: Path, mode: str,
                                                 backbone: str) -> None:
    from emovox.training.experiment import run_experiment

    recipe = emotion_recipe(trees, mode, backbone)
    run_experiment(recipe, tmp_path / "run")
    trained, _ = load_model(next((tmp_path / "run").glob("fold_00_*")) / "model")
    before = load_model(trees[backbone])[0].state_dict()
    after = trained.state_dict()
    frozen = [k for k in after if ".conv.weight" in k or (".bn." in k and ".emotion" not in k and k in before)]
    assert frozen
    for k in frozen:
        assert torch.equal(before[k], after[k]), f"{k} moved although frozen"
    head = "classifier.weight"
    assert after[head].shape == (4, 8)


def test_transfer_needs_a_backbone_and_a_matching_model(trees: dict[str, Path]) -> None:
    with pytest.raises(ConfigError, match="transfer.backbone"):
        recipe_from_dict(_recipe({"corpus": "iemocap", "root": "x"}, trees["cache"], transfer={"mode": "fine_tune"}))
    recipe = emotion_recipe(trees, "fine_tune", "plain", model={"name": "resnet18"})
    with pytest.raises(ConfigError, match="resnet34"):
        build_emotion_model(recipe, 4, 24)


def test_pretrain_speaker_cli(trees: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from emovox.cli import main

    vox = trees["base"] / "vox"
    rc = main(["pretrain-speaker", "--corpus", "voxceleb", "--root", str(vox), "-o", str(tmp_path / "spk"),
               "--loss", "aam", "--no-progress", "--override", "model.options.base_channels=2",
               "--override", "model.options.embed_dim=8", "--override", "features.n_mels=24",
               "--override", "train.epochs=1", "--override", "train.chunk_frames=[20]",
               "--override", f"features.cache_dir={trees['cache']}"])
    assert rc == 0 and (tmp_path / "spk" / "backbone" / "model.safetensors").is_file()
    assert "speaker backbone" in capsys.readouterr().out
    assert main(["pretrain-speaker", "-o", str(tmp_path / "x")]) == 2  # no data given
