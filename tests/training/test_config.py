"""Recipe validation: types, allowed values, unknown keys, overrides."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from emovox.config import apply_overrides, load_recipe, parse_override, recipe_from_dict
from emovox.errors import ConfigError

MINIMAL = {"data": {"corpus": "emodb", "root": "corpora/emodb", "protocol": "leave_one_speaker_out"}}


def test_minimal_recipe_gets_paper_defaults() -> None:
    r = recipe_from_dict(MINIMAL)
    assert r.train.chunk_frames == [150, 200, 250, 300]
    assert r.optim.lr == 0.01 and r.optim.momentum == 0.9 and r.optim.schedule == "halving"
    assert r.train.batch_size == 32 and r.model.pooling == "stats" and r.transfer.mode == "scratch"


def test_unknown_key_is_rejected_with_allowed_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown key optim\.lrr.*allowed keys under optim: .*lr"):
        recipe_from_dict({**MINIMAL, "optim": {"lrr": 0.1}})
    with pytest.raises(ConfigError, match="unknown key trian"):
        recipe_from_dict({**MINIMAL, "trian": {}})


def test_literal_error_names_key_and_allowed_values() -> None:
    with pytest.raises(ConfigError, match=r"optim\.schedule: 'cosine' is not allowed; choose one of 'constant', 'halving', 'multistep'"):
        recipe_from_dict({**MINIMAL, "optim": {"schedule": "cosine"}})
    with pytest.raises(ConfigError, match=r"transfer\.mode: .*'linear_probe'"):
        recipe_from_dict({**MINIMAL, "transfer": {"mode": "probe"}})


@pytest.mark.parametrize("section,key,value,match", [
    ("train", "epochs", "ten", r"train\.epochs: expected an integer"),
    ("train", "epochs", 0, r"train\.epochs: must be >= 1"),
    ("train", "epochs", True, r"train\.epochs: expected an integer"),
    ("optim", "lr", -1.0, r"optim\.lr: must be > 0"),
    ("optim", "nesterov", "yes", r"optim\.nesterov: expected true or false"),
    ("train", "chunk_frames", [150, 4], r"train\.chunk_frames"),
    ("train", "chunk_frames", 150, r"train\.chunk_frames: expected a list"),
])
def test_bad_values(section: str, key: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        recipe_from_dict({**MINIMAL, section: {key: value}})


def test_needs_data_and_backbone() -> None:
    with pytest.raises(ConfigError, match="data.corpus"):
        recipe_from_dict({})
    with pytest.raises(ConfigError, match="transfer.backbone"):
        recipe_from_dict({**MINIMAL, "transfer": {"mode": "linear_probe"}})


def test_pooling_none_needs_fixed_length() -> None:
    with pytest.raises(ConfigError, match="eval_frames"):
        recipe_from_dict({**MINIMAL, "model": {"pooling": "none"}})
    r = recipe_from_dict({**MINIMAL, "model": {"pooling": "none"}, "train": {"chunk_frames": [300], "eval_frames": 300}})
    assert r.train.eval_frames == 300


def test_overrides_parse_yaml_and_go_through_validation() -> None:
    assert parse_override("optim.lr=0.1") == (["optim", "lr"], 0.1)
    assert parse_override("train.chunk_frames=[100,120]") == (["train", "chunk_frames"], [100, 120])
    raw = apply_overrides(MINIMAL, ["train.epochs=2", "model.options.base_channels=8"])
    r = recipe_from_dict(raw)
    assert r.train.epochs == 2 and r.model.options == {"base_channels": 8}
    assert "train" not in MINIMAL  # the input mapping is not modified
    with pytest.raises(ConfigError, match="unknown key optim.foo"):
        recipe_from_dict(MINIMAL, overrides=["optim.foo=1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("optim.lr")


def test_a_path_given_on_the_command_line_is_relative_to_the_current_folder(tmp_path: Path, monkeypatch) -> None:
    """Through load_recipe (baseline, text-train, segment-experiment, multimodal, the Python API),
    --override data.root=clips.csv looked for clips.csv beside the recipe file; only `emovox
    experiment` and `pretrain-speaker` resolved it here, with a key list of their own."""
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    (recipes / "r.yaml").write_text("data: {corpus: generic, root: in_yaml.csv}\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert load_recipe(recipes / "r.yaml").resolve("in_yaml.csv") == recipes / "in_yaml.csv"  # the YAML's: beside it
    r = load_recipe(recipes / "r.yaml", ["data.root=clips.csv", "features.cache_dir=cache",
                                         "transfer.distill_manifests=[a.csv, /abs/b.csv]", "train.epochs=2",
                                         "data.manifest=~/m.csv", "transfer.backbone=null"])
    assert r.resolve(r.data.root) == work / "clips.csv" and r.resolve(r.features.cache_dir) == work / "cache"
    assert r.transfer.distill_manifests == [str(work / "a.csv"), "/abs/b.csv"] and r.train.epochs == 2
    assert r.data.manifest == os.path.expanduser("~/m.csv") and r.transfer.backbone is None  # '~' expanded; null unset


def test_load_recipe_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="recipe file not found"):
        load_recipe(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_recipe(bad)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("data: {corpus: emodb}\noptim: {momentum: 1.5}\n")
    with pytest.raises(ConfigError, match=r"wrong.yaml: optim.momentum"):
        load_recipe(wrong)


@pytest.mark.parametrize("loader", ["speech", "segment", "text", "baseline"])
def test_every_recipe_reader_names_the_file_and_the_fault(tmp_path: Path, loader: str) -> None:
    """One reader (emovox.config.read_recipe_yaml) behind the four recipe kinds."""
    from emovox.cli import build_parser
    from emovox.cli.baseline import build_raw
    from emovox.training.segment_level import load_segment_recipe
    from emovox.training.text import load_multimodal_recipe

    def load(path: Path) -> object:
        if loader == "baseline":
            return build_raw(build_parser().parse_args(["baseline", str(path)]))
        return {"speech": load_recipe, "segment": load_segment_recipe, "text": load_multimodal_recipe}[loader](path)

    cases = {"missing.yaml": (None, "missing.yaml: recipe file not found"),
             "bad.yaml": ("data: [unclosed\n", "bad.yaml: not valid YAML"),
             "list.yaml": ("- just\n- a list\n", "list.yaml: recipe: expected a mapping of sections, got list")}
    for name, (text, message) in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        with pytest.raises(ConfigError, match=message):
            load(tmp_path / name)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="latin.yaml: not valid YAML"):
        load(latin)


def test_relative_paths_resolve_against_recipe_folder(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("data: {corpus: emodb, root: corpora/emodb}\n")
    r = load_recipe(f)
    assert r.resolve(r.data.root) == tmp_path / "corpora/emodb"
    assert r.resolve("/abs/x") == Path("/abs/x")
    assert "base_dir" not in r.to_dict()


@pytest.mark.parametrize("override,key", [
    ("model.name=resnet999", "model.name"), ("model.pooling=foo", "model.pooling"),
    ("model.options.foo=3", "model.options"), ("augment.policy=wild", "augment.policy"),
    ("data.protocol=nope", "data.protocol"), ("data.protocol_args.k=3", "data.protocol_args"),
    ("data.labels=nope", "data.labels"), ("features.options.bogus=1", "features.options"),
    ("features.frontend=mfcc", "features.frontend"), ("train.accelerator=tpu", "train.accelerator"),
    ("train.strategy=bogus", "train.strategy"), ("transfer.backbone=/nonexistent/model", "transfer.backbone"),
])
def test_registry_names_are_checked_with_the_recipe_key(override: str, key: str) -> None:
    from emovox.training.checks import check_recipe

    raw = {"data": {"corpus": "emodb", "root": "x", "protocol": "leave_one_speaker_out"},
           "model": {"name": "resnet18", "options": {"base_channels": 2, "embed_dim": 8}}, "features": {"n_mels": 16}}
    check_recipe(recipe_from_dict(raw))  # the unmodified recipe is fine
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        check_recipe(recipe_from_dict(raw, overrides=[override]))
