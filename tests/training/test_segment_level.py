"""Smoke test of the seed-002 segment pipeline on the miniature IEMOCAP tree (tiny settings)."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.errors import ConfigError
from tests.conftest import REPO
from emovox.testing.trees import make_iemocap_tree
from emovox.training.segment_level import (
    PAPER_LR,
    SCRATCH_LR,
    build_segment_model,
    clip_patches,
    run_segment_experiment,
    segment_recipe,
    vggish_patches,
)

TINY = {"width": 0.125, "fc": 32, "hidden": 16}


@pytest.fixture(scope="module")
def iemocap(tmp_path_factory):
    root = tmp_path_factory.mktemp("iemocap")
    counts = {"ang": 4, "hap": 3, "exc": 3, "neu": 4, "sad": 4, "fru": 2}
    return make_iemocap_tree(root, counts=counts, sessions=2, seconds=1.7)


def _recipe(root, tmp_path, **over):
    raw = {"name": "smoke", "cache_dir": str(tmp_path / "cache"),
           "data": {"corpus": "iemocap", "root": str(root), "labels": "iemocap_exp3", "protocol": "loso"},
           "segments": {"window": 1.0, "hop": 0.5},
           "model": dict(TINY), "optim": {"lr": 1e-3},
           "train": {"max_epochs": 2, "patience": 1, "batch_size": 8, "threads": 1}}
    return segment_recipe(raw, overrides=[f"{k}={v}" for k, v in over.items()])


def test_patches_per_segment_are_vggish_sized():
    x = np.random.default_rng(0).standard_normal((3, 16000)).astype(np.float32) * 0.1
    p = vggish_patches(x)
    assert p.shape == (3, 96, 64) and np.isfinite(p).all()


def test_loso_run_writes_all_five_metrics_and_reuses_results(iemocap, tmp_path):
    recipe = _recipe(iemocap, tmp_path)
    out = tmp_path / "run"
    summary = run_segment_experiment(recipe, out)
    assert summary["n_folds"] == 2  # two sessions -> two leave-one-session-out folds
    for m in ("sa", "aca", "sca", "alca", "bca", "wa", "ua"):
        assert 0.0 <= summary["metrics"][m]["mean"] <= 1.0
    assert summary["labels"] == ["angry", "happy", "neutral", "sad"]
    fold = summary["folds"][0]
    assert fold["aca"] <= fold["sca"] <= fold["bca"]  # all segments right => unique majority => in M
    # 1.7 s clips -> 3 overlapping segments each
    first = sorted(out.glob("fold_*/result.json"))[0]
    import json

    res = json.loads(first.read_text())
    assert res["metrics"]["n_segments"] == 3 * res["metrics"]["n_clips"]
    assert res["speaker_independent"] is True
    assert (out / "report.md").is_file() and "ALCA" in (out / "report.md").read_text()
    mtime = first.stat().st_mtime_ns
    run_segment_experiment(recipe, out)  # finished fold-runs are reused, not retrained
    assert first.stat().st_mtime_ns == mtime


def test_speaker_dependent_split_runs_and_is_flagged(iemocap, tmp_path, caplog):
    recipe = _recipe(iemocap, tmp_path, **{"data.protocol": "ratio_split", "runs": 2, "model.name": "vggish_mlp",
                                           "data.protocol_args": "{ratios: [8, 1, 1], speaker_dependent: true}",
                                           "segments.hop": 1.0})
    summary = run_segment_experiment(recipe, tmp_path / "split")
    assert summary["n_folds"] == 2  # one split x two runs
    assert summary["extra"]["speaker_independent"] is False and "DEPENDENT" in summary["extra"]["warning"]
    assert set(summary["extra"]["over_runs"]) >= {"sa", "alca", "bca"}
    assert any("speaker-DEPENDENT" in r.message for r in caplog.records)


def test_patches_are_cached(iemocap, tmp_path):
    from emovox.corpora import load_corpus
    from emovox.segments import SegmentSpec

    utts = load_corpus("iemocap", str(iemocap))[:3]
    first = clip_patches(utts, SegmentSpec(1.0, 1.0), tmp_path / "c")
    assert {k: v.shape for k, v in first.items()} == {u.id: (2, 96, 64) for u in utts}
    assert len(list((tmp_path / "c").rglob("*.safetensors"))) == 3


def test_learning_rate_defaults_follow_the_paper(tmp_path):
    base = {"data": {"corpus": "emodb", "root": "x"}}
    assert segment_recipe(base).lr == SCRATCH_LR
    assert segment_recipe({**base, "model": {"weights": "vggish.pth"}}).lr == PAPER_LR == 1e-6
    assert segment_recipe(base, overrides=["optim.lr=0.01"]).lr == 0.01


@pytest.mark.parametrize("override, key", [
    ("segments.window=0.5", "segments.window"), ("segments.aggregation=median", "segments.aggregation"),
    ("model.width=2", "model.width"), ("train.patience=0", "train.patience"), ("runs=0", "runs"),
    ("model.bogus=1", "bogus"),
])
def test_bad_recipes_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        segment_recipe({"data": {"corpus": "emodb", "root": "x"}}, overrides=[override])


def test_weights_need_the_full_table2_network():
    with pytest.raises(ConfigError, match="model.weights"):
        segment_recipe({"data": {"corpus": "emodb", "root": "x"}, "model": {"weights": "w.pth", "width": 0.5}})


def test_narrow_vggish_shapes_and_frozen_backbone():
    import torch

    from emovox.training.segment_level import SegmentModelConfig

    model = build_segment_model(SegmentModelConfig(**TINY, freeze_backbone=True), num_classes=4)
    assert model(torch.zeros(2, 96, 64)).shape == (2, 4)
    assert model.vggish.features[0].out_channels == 8 and model.vggish.embeddings[0].in_features == 64 * 24
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(not n.startswith("vggish.") for n in trainable)


def test_cli_counts_and_bad_recipe(tmp_path, capsys):
    from emovox.cli import main
    from emovox.testing.trees import make_emodb_tree

    root = make_emodb_tree(tmp_path / "emodb")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"data: {{corpus: emodb, root: {root}, labels: emodb7}}\n", encoding="utf-8")
    assert main(["segment-counts", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert "| Total | 56 | 56 | 56 |" in out  # 4 speakers x 2 texts x 7 emotions, 0.25 s -> 1 segment each
    assert "non-overlapping" in out and "overlapping (0.5 s)" in out
    recipe.write_text(f"data: {{corpus: emodb, root: {root}}}\nsegments: {{hop: 2.0}}\n", encoding="utf-8")
    assert main(["segment-experiment", str(recipe), "-o", str(tmp_path / "o")]) == 2
    assert "hop" in capsys.readouterr().err


RECIPES = REPO / "recipes" / "sahoo2021"


@pytest.mark.parametrize("name", ["iemocap_8-1-1.yaml", "iemocap_loso.yaml"])
def test_shipped_iemocap_recipes_run_on_the_fixture(name, iemocap, tmp_path):
    from emovox.training.segment_level import load_segment_recipe

    tiny = [f"model.{k}={v}" for k, v in TINY.items()]
    recipe = load_segment_recipe(RECIPES / name, [f"data.root={iemocap}", f"cache_dir={tmp_path / 'c'}", "runs=1",
                                                  "data.folds=[0]", "train.max_epochs=1", *tiny])
    assert recipe.train.patience == 50 and recipe.lr == SCRATCH_LR and recipe.segments.hop == 0.5
    summary = run_segment_experiment(recipe, tmp_path / "out")
    assert summary["n_folds"] == 1 and set(summary["metrics"]) >= {"sa", "aca", "sca", "alca", "bca"}
    assert summary["extra"]["speaker_independent"] is (name == "iemocap_loso.yaml")


@pytest.mark.parametrize("name", ["emodb_loso.yaml", "ravdess_6x4.yaml"])
def test_shipped_corpus_recipes_validate(name):
    from emovox.training.segment_level import load_segment_recipe

    recipe = load_segment_recipe(RECIPES / name)
    assert recipe.model.width == 0.25 and recipe.model.fc == 512 and recipe.lr == SCRATCH_LR
    assert recipe.resolve(recipe.data.root).name in ("emodb", "ravdess")
