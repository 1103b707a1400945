"""Bad recipe/config values through ``emovox experiment``: exit code 2, no traceback, and a message
that names the recipe key (and the recipe file) and what is allowed."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from emovox.cli import EXIT_BAD_INPUT, main
from tests.conftest import make_tone


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """3 speakers x 2 emotions x 2 generated clips, and a warm feature cache next to it."""
    folder = tmp_path_factory.mktemp("config_data")
    rows = []
    for s in range(3):
        for j, label in enumerate(("angry", "sad")):
            for k in range(2):
                path = folder / f"s{s}_{label}_{k}.wav"
                sf.write(path, make_tone(0.4, freq=150 + 40 * j, seed=10 * s + k), 16000)
                rows.append({"id": path.stem, "path": path.name, "speaker": f"spk{s}", "label": label})
    with open(folder / "m.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, ["id", "path", "speaker", "label"])
        w.writeheader()
        w.writerows(rows)
    return folder / "m.csv"


def recipe(manifest: Path) -> dict:
    return {"name": "bad-config", "data": {"manifest": str(manifest), "protocol": "leave_one_speaker_out"},
            "features": {"n_mels": 16, "cache_dir": str(manifest.parent / "cache")},
            "model": {"name": "resnet18", "options": {"base_channels": 2, "embed_dim": 8}},
            "train": {"epochs": 1, "batch_size": 4, "chunk_frames": [20], "progress": False}}


def run(tmp_path: Path, capsys, raw: dict | str, *overrides: str) -> tuple[int, str, Path]:
    path = tmp_path / "recipe.yaml"
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw))
    argv = ["experiment", str(path), "--out", str(tmp_path / "out"), "--no-progress"]
    for o in overrides:
        argv += ["--override", o]
    code = main(argv)
    err = capsys.readouterr().err
    return code, err, path


#: (override, text the message must contain besides the key). Each is checked before any training.
NAMED = [
    ("train.epoch=2", "unknown key train.epoch; allowed keys under train:"),
    ("train.epochs=ten", "train.epochs: expected an integer, got 'ten'"),
    ("train.epochs=0", "train.epochs: must be >= 1"),
    ("optim.lr=-1", "optim.lr: must be > 0"),
    ("optim.momentum=1.5", "optim.momentum: must be in [0, 1)"),
    ("optim.schedule=cosine", "optim.schedule: 'cosine' is not allowed; choose one of 'constant', 'halving'"),
    ("features.normalize=global", "features.normalize: 'global' is not allowed; choose one of"),
    ("features.n_mels=0", "features.n_mels: must be > 0"),
    ("features.frontend=mfcc", "features.frontend: 'mfcc' is neither a front-end"),
    ("train.monitor=acc", "train.monitor: 'acc' is not allowed"),
    ("train.chunk_frames=[4]", "train.chunk_frames: a non-empty list of frame counts, each >= 8"),
    ("train.chunk_frames=20", "train.chunk_frames: expected a list, got 20"),
    ("augment.copies=-1", "augment.copies: must be >= 0"),
    ("data.folds=[9]", "data.folds: fold index 9 does not exist (the protocol gives 3 folds)"),
    ("transfer.mode=fine_tune", "transfer.backbone: transfer.mode 'fine_tune' needs a backbone folder"),
    ("seed=abc", "seed: expected an integer, got 'abc'"),
    ("data=[1, 2]", "data: expected a mapping of keys"),
]


@pytest.mark.parametrize("override,text", NAMED, ids=[o for o, _ in NAMED])
def test_bad_value_exit_2_names_the_key(manifest, tmp_path, capsys, override, text):
    code, err, path = run(tmp_path, capsys, recipe(manifest), override)
    assert code == EXIT_BAD_INPUT and "Traceback" not in err
    assert err.startswith("emovox experiment: error: ") and text in err, err
    assert not (tmp_path / "out" / "fold_00_test-spk0" / "checkpoints").exists()  # no training happened


def test_bad_value_inside_the_recipe_file_names_file_and_key(manifest, tmp_path, capsys):
    raw = recipe(manifest)
    raw["optim"] = {"gamma": 2.0}
    code, err, path = run(tmp_path, capsys, raw)
    assert code == EXIT_BAD_INPUT and f"{path}: optim.gamma: must be in (0, 1]" in err


@pytest.mark.parametrize("text,expected", [
    ("data: [unclosed\n", "not valid YAML"),
    ("- just\n- a list\n", "recipe: expected a mapping of sections, got list"),
    ("", "data.corpus: set data.corpus (with data.root) or data.manifest"),
])
def test_malformed_recipe_files(tmp_path, capsys, text, expected):
    code, err, path = run(tmp_path, capsys, text)
    assert code == EXIT_BAD_INPUT and str(path) in err and expected in err and "Traceback" not in err


def test_missing_recipe_file_and_bad_override_syntax(manifest, tmp_path, capsys):
    code = main(["experiment", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and "recipe file not found" in err
    code, err, _ = run(tmp_path, capsys, recipe(manifest), "train.epochs")
    assert code == EXIT_BAD_INPUT and "override 'train.epochs': expected key=value" in err
    code, err, _ = run(tmp_path, capsys, recipe(manifest), "train.epochs=[1")
    assert code == EXIT_BAD_INPUT and "value is not valid YAML" in err


def test_other_recipe_in_the_same_out_folder_is_refused(manifest, tmp_path, capsys):
    from emovox.io import atomic_write_json

    atomic_write_json(tmp_path / "out" / "experiment.json", {"fingerprint": "0123456789abcdef"})
    code, err, _ = run(tmp_path, capsys, recipe(manifest))
    assert code == EXIT_BAD_INPUT and "holds results of a different recipe" in err and "another --out" in err


def test_corrupt_state_file_is_an_error_not_a_traceback(manifest, tmp_path, capsys):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "experiment.json").write_text('{"fingerprint": "trunc')  # e.g. edited by hand
    code, err, _ = run(tmp_path, capsys, recipe(manifest))
    assert code == EXIT_BAD_INPUT and "experiment.json: not a valid JSON file" in err and "Traceback" not in err


#: Values checked against the registries (models, poolings, policies, protocols, label maps,
#: front-end options, backbones, Lightning) before any work: the message still names the key.
REGISTRY = [
    ("model.name=resnet999", "model.name"),
    ("model.pooling=foo", "model.pooling"),
    ("model.options.foo=3", "model.options"),
    ("augment.policy=wild", "augment.policy"),
    ("data.protocol=nope", "data.protocol"),
    ("data.protocol_args.k=3", "data.protocol_args"),
    ("data.labels=nope", "data.labels"),
    ("features.options.bogus=1", "features.options"),
    ("transfer.backbone=/nonexistent/model", "transfer.backbone"),
    ("train.eval_batch_size=0", "train.eval_batch_size"),
    ("train.accelerator=tpu", "train.accelerator"),
    ("train.strategy=bogus", "train.strategy"),
]


@pytest.mark.parametrize("override,key", REGISTRY, ids=[o for o, _ in REGISTRY])
def test_bad_registry_value_names_the_key(manifest, tmp_path, capsys, override, key):
    overrides = [override, "transfer.mode=fine_tune"] if key == "transfer.backbone" else [override]
    code, err, _ = run(tmp_path, capsys, recipe(manifest), *overrides)
    assert code == EXIT_BAD_INPUT and f"{key}" in err and "Traceback" not in err, err


@pytest.mark.parametrize("override,text", [("train.threads=0", "train.threads: null or >= 1"),
                                           ("train.num_workers=-1", "train.num_workers: must be >= 0")])
def test_ranges_are_checked_when_the_recipe_is_read(override, text):
    """(threads=0 used to be ignored silently, num_workers=-1 to crash in the DataLoader.)"""
    from emovox.config import recipe_from_dict
    from emovox.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape(text)):
        recipe_from_dict({"data": {"manifest": "m.csv"}}, overrides=[override])


def test_null_path_override_is_null(manifest, tmp_path, capsys):
    code, err, _ = run(tmp_path, capsys, recipe(manifest), "data.manifest=null")
    assert code == EXIT_BAD_INPUT and "data.corpus: set data.corpus (with data.root) or data.manifest" in err, err


def test_cache_dir_that_is_a_file(manifest, tmp_path, capsys):
    code, err, _ = run(tmp_path, capsys, recipe(manifest), f"features.cache_dir={manifest}")
    assert code == EXIT_BAD_INPUT and "features.cache_dir" in err, err


def test_unknown_corpus_and_missing_corpus_folder(manifest, tmp_path, capsys):
    raw = recipe(manifest)
    raw["data"] = {"corpus": "nope", "root": str(tmp_path)}
    code, err, _ = run(tmp_path, capsys, raw)
    assert code == EXIT_BAD_INPUT and "unknown corpus 'nope' (supported: iemocap" in err and "generic" in err
    raw["data"] = {"corpus": "emodb", "root": str(tmp_path / "nowhere")}
    code, err, _ = run(tmp_path, capsys, raw)
    assert code == EXIT_BAD_INPUT and "emodb: corpus folder not found" in err and "expected layout" in err


# ----------------------------------------------------------------------------- model folders
def _package(tmp_path: Path, name: str = "m") -> Path:
    from tests.product_fixtures import make_tiny_model

    return make_tiny_model(tmp_path / name)


def _edit(folder: Path, path: str, value) -> Path:
    import json

    config = json.loads((folder / "config.json").read_text())
    node = config
    *parents, last = path.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("path,value,match", [
    ("model.kwargs.base_channels", 8.5, "cannot build model 'resnet18'"),
    ("model.kwargs.base_channels", 2000, "wrong shape"),
    ("model.kwargs.num_classes", 5e6, "num_classes"),
    ("model.kwargs.n_mels", "64", "cannot build model 'resnet18'"),
    ("model.kwargs.embed_dim", -3, "out of range"),
    ("model.kwargs.embed_dim", 10**12, "out of range"),
    ("model.kwargs.extra", {"a": 1}, "must be a number, string, boolean"),
    ("frontend.kwargs.n_mels", "64", "frontend.kwargs.n_mels must be an integer"),
    ("frontend.kwargs.n_fft", 65536, "out of range"),
    ("weights_sha256", 12, "64 hex digits"),
    ("labels", ["a"] * 5, "distinct"),
])
def test_bad_model_configs_are_model_errors(tmp_path, path, value, match):
    from emovox.errors import ModelError
    from emovox.inference import Recognizer

    folder = _edit(_package(tmp_path), path, value)
    with pytest.raises(ModelError, match=match):
        Recognizer.load(folder)


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a":' * 5000 + "1" + "}" * 5000,
                                  "NaN", '{"format": "emovox-model/1"' + " " * (2 << 20) + "}"])
def test_hostile_json_is_a_model_error(tmp_path, text):
    from emovox.errors import ModelError
    from emovox.models.io import read_config

    folder = _package(tmp_path)
    (folder / "config.json").write_text(text)
    with pytest.raises(ModelError):
        read_config(folder)


def test_checksum_is_streamed_not_read_whole(tmp_path):
    """A 13 MB weights file with a wrong checksum is refused after reading it in 1 MB chunks."""
    import tracemalloc

    import torch

    from emovox.errors import ModelError
    from emovox.models import build_model, load_model, save_model

    model = build_model("resnet18", 4, n_mels=32, base_channels=32, embed_dim=64)
    folder = save_model(tmp_path / "big", model, {"frontend": {"name": "logmel", "kwargs": {"n_mels": 32}},
                                                  "labels": list("abcd")})
    assert (folder / "model.safetensors").stat().st_size > 10e6
    _edit(folder, "weights_sha256", "0" * 64)
    tracemalloc.start()
    try:
        with pytest.raises(ModelError, match="checksum does not match"):
            load_model(folder)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4e6, f"{peak} bytes traced while checking a 13 MB file"
    del torch


_MODEL_RSS_PROBE = """
import resource, sys
from emovox.errors import ModelError
from emovox.models.io import load_model
import torch
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for folder in sys.argv[1:]:
    try:
        load_model(folder)
        print("loaded", folder)
    except ModelError as exc:
        print("ModelError", str(exc)[:60].replace(" ", "_"))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("extra_mb", (after - before) / 1024)
"""


@pytest.mark.slow
def test_huge_configs_are_refused_before_allocation(tmp_path):
    """num_classes 5000 / base_channels 2000 used to build the network (GBs) before comparing shapes."""
    import os
    import subprocess
    import sys

    wide = _edit(_package(tmp_path, "wide"), "model.kwargs.base_channels", 2000)
    many = _edit(_edit(_package(tmp_path, "many"), "model.kwargs.num_classes", 5000), "labels",
                 [f"c{i}" for i in range(5000)])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"), str(Path(__file__).resolve().parents[1])]), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _MODEL_RSS_PROBE, str(wide), str(many)], capture_output=True,
                         text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.split("\n")
    assert [ln.split()[0] for ln in lines[:2]] == ["ModelError", "ModelError"], run.stdout
    assert float(lines[2].split()[1]) < 100, run.stdout
