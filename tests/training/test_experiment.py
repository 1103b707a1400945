"""End-to-end experiment runs on the miniature IEMOCAP tree: outputs, resume, SIGKILL safety."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from emovox.config import recipe_from_dict
from emovox.errors import ConfigError
from emovox.io import read_json
from emovox.testing.trees import make_iemocap_tree
from emovox.training.experiment import run_experiment

TINY = {"features": {"n_mels": 24}, "augment": {"policy": "none"},
        "model": {"name": "resnet34", "options": {"base_channels": 2, "embed_dim": 8}},
        "optim": {"constant_epochs": 1, "halve_every": 1},
        "train": {"batch_size": 8, "chunk_frames": [20, 30], "progress": False, "eval_batch_size": 8}}


@pytest.fixture(scope="module")
def iemocap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_iemocap_tree(tmp_path_factory.mktemp("iemocap"))


def recipe_dict(root: Path, cache: Path, epochs: int, folds: list[int] | None = None) -> dict:
    raw = {"name": "tiny", "data": {"corpus": "iemocap", "root": str(root), "labels": "iemocap_exp1",
                                    "protocol": "loso", "folds": folds},
           **{k: dict(v) for k, v in TINY.items()}}
    raw["features"]["cache_dir"] = str(cache)
    raw["train"] = {**raw["train"], "epochs": epochs}
    return raw


def fold0(out: Path) -> Path:
    return next(out.glob("fold_00_*"))


def test_experiment_writes_every_output(iemocap: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_experiment(recipe_from_dict(recipe_dict(iemocap, tmp_path / "cache", 1, folds=[0, 4])), out)
    # Lightning's own deprecation noise (torch's pytree LeafSpec) is not shown to users once per fold
    assert not [w for w in caught if "LeafSpec" in str(w.message)]
    assert summary["n_folds"] == 2 and 0 <= summary["metrics"]["ua"]["mean"] <= 1
    assert [f["fold"] for f in summary["folds"]] == ["test-Ses01", "test-Ses05"]
    assert summary["title"] == "tiny [folds 0, 4 of 5]" and summary["extra"]["folds_run"] == [0, 4]
    for name in ("report.md", "report.json", "folds.json", "experiment.json", "confusion.png"):
        assert (out / name).is_file(), name
    f = fold0(out)
    for name in ("result.json", "history.json", "predictions.csv", "fold.json", "model/model.safetensors",
                 "model/config.json", "checkpoints/last.ckpt"):
        assert (f / name).is_file(), name
    result = read_json(f / "result.json")
    fold = read_json(f / "fold.json")
    assert result["test"] == fold["test"] and len(result["pred"]) == len(fold["test"])
    # all 5 folds are saved; the test speakers never appear in training or validation
    folds = read_json(out / "folds.json")["folds"]
    assert len(folds) == 5 and all(set(x["test"]).isdisjoint(x["train"] + x["valid"]) for x in folds)
    from emovox.models.io import load_package
    from emovox.pipeline import PipelineConfig

    model, package = load_package(f / "model")
    assert package.labels == ["angry", "happy", "neutral", "sad"]
    # the package holds the very pipeline the features were made with (typed, canonical)
    recipe = recipe_from_dict(recipe_dict(iemocap, tmp_path / "cache", 1))
    assert package.pipeline == PipelineConfig.from_recipe(recipe.features) == PipelineConfig("logmel", {"n_mels": 24})
    assert model(torch.zeros(1, 50, 24)).shape == (1, 4)


def test_rerun_skips_finished_folds_and_refuses_another_recipe(iemocap: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    raw = recipe_dict(iemocap, tmp_path / "cache", 1, folds=[0])
    run_experiment(recipe_from_dict(raw), out)
    stamp = (fold0(out) / "result.json").stat().st_mtime_ns
    run_experiment(recipe_from_dict(raw), out)
    assert (fold0(out) / "result.json").stat().st_mtime_ns == stamp
    raw["optim"]["lr"] = 0.5
    with pytest.raises(ConfigError, match="different recipe"):
        run_experiment(recipe_from_dict(raw), out)
    notes = tmp_path / "notes.txt"  # a file where the run's folder goes: an error before any work, not a traceback
    notes.write_text("mine")
    with pytest.raises(ConfigError, match="a file of that name exists"):
        run_experiment(recipe_from_dict(raw), notes)
    assert notes.read_text() == "mine"


def _state(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(fold0(out) / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_resume_to_more_epochs_equals_an_uninterrupted_run(iemocap: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    a, b = tmp_path / "a", tmp_path / "b"
    run_experiment(recipe_from_dict(recipe_dict(iemocap, cache, 2, folds=[0])), a)
    run_experiment(recipe_from_dict(recipe_dict(iemocap, cache, 1, folds=[0])), b)
    assert len(read_json(fold0(b) / "history.json")) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_experiment(recipe_from_dict(recipe_dict(iemocap, cache, 2, folds=[0])), b)
    # resuming is the point of the checkpoint folder: Lightning's "exists and is not empty" is not shown
    assert not [w for w in caught if "exists and is not empty" in str(w.message)]
    assert read_json(fold0(a) / "history.json") == read_json(fold0(b) / "history.json")
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    ra, rb = read_json(fold0(a) / "result.json"), read_json(fold0(b) / "result.json")
    assert ra["metrics"] == rb["metrics"] and ra["pred"] == rb["pred"]


def _cli(recipe: Path, out: Path) -> list[str]:
    return [sys.executable, "-c", "import sys; from emovox.cli import main; sys.exit(main())",
            "experiment", str(recipe), "--out", str(out), "--no-progress"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_sigkill_mid_training_then_rerun_gives_the_same_metrics(iemocap: Path, tmp_path: Path, sig: int) -> None:
    """SIGTERM (kill, a scheduler's time limit): exit 143 with a message; it was Lightning's sys.exit(1)."""
    recipe = tmp_path / "r.yaml"
    raw = recipe_dict(iemocap, tmp_path / "cache", 3, folds=[0])
    raw["train"]["batch_size"] = 2  # many small steps: the kill lands inside an epoch
    recipe.write_text(yaml.safe_dump(raw))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ref, out = tmp_path / "ref", tmp_path / "killed"
    subprocess.run(_cli(recipe, ref), check=True, env=env, capture_output=True, timeout=300)
    proc = subprocess.Popen(_cli(recipe, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    history = None
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        hist = list(out.glob("fold_00_*/history.json"))
        if hist and len(read_json(hist[0])) >= 1:  # one epoch done, the second running
            history = hist[0]
            break
        time.sleep(0.05)
    assert history is not None and proc.poll() is None, "training ended before it could be killed"
    time.sleep(0.3)
    os.kill(proc.pid, sig)
    err = proc.communicate(timeout=120)[1]
    if sig == signal.SIGTERM:
        assert proc.returncode == 143 and "emovox: terminated (SIGTERM)" in err, err[-2000:]
    assert not (fold0(out) / "result.json").exists()
    subprocess.run(_cli(recipe, out), check=True, env=env, capture_output=True, timeout=300)
    ra, rb = read_json(fold0(ref) / "result.json"), read_json(fold0(out) / "result.json")
    assert ra["metrics"] == rb["metrics"] and ra["pred"] == rb["pred"]
    assert read_json(fold0(ref) / "history.json") == read_json(fold0(out) / "history.json")


def test_every_fold_writes_fusable_scores_and_frame_heads_standardise_on_training_only(
        iemocap: Path, tmp_path: Path) -> None:
    """scores.json holds valid + test log posteriors of the selected model (the same decisions as
    predictions.csv); a FrameHead's standardisation comes from the fold's training side only."""
    import numpy as np

    from emovox.fusion import ScoreSet, fuse_runs
    from emovox.models.io import load_model
    from emovox.training.data import load_features
    from emovox.training.experiment import load_utterances

    raw = recipe_dict(iemocap, tmp_path / "cache", 1, folds=[0])
    raw["model"] = {"name": "frame_head", "pooling": "stats", "options": {"hidden": 8}}
    raw["features"]["normalize"] = "none"
    recipe = recipe_from_dict(raw)
    out = tmp_path / "head"
    run_experiment(recipe, out)
    f = fold0(out)
    fold, scores = read_json(f / "fold.json"), ScoreSet.load(f / "scores.json")
    assert scores.part("test").ids == fold["test"] and scores.part("valid").ids == fold["valid"]
    probs = np.exp(scores.part("test").scores)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert [scores.classes[i] for i in probs.argmax(1)] == read_json(f / "result.json")["pred"]

    utts = load_utterances(recipe)
    feats = dict(zip([u.id for u in utts], load_features(utts, recipe.features, tmp_path / "cache")))
    model, _ = load_model(f / "model")
    pooled = torch.cat([model.pooling(feats[i].T.unsqueeze(0)) for i in fold["train"]])
    torch.testing.assert_close(model.feature_mean, pooled.mean(0), atol=1e-4, rtol=1e-4)
    everything = torch.cat([model.pooling(feats[i].T.unsqueeze(0)) for i in fold["train"] + fold["test"]])
    assert not torch.allclose(model.feature_mean, everything.mean(0), atol=1e-4, rtol=1e-4)

    # two speech systems on the same folds fuse under their own names
    run_experiment(recipe_from_dict(recipe_dict(iemocap, tmp_path / "cache", 1, folds=[0])), tmp_path / "cnn")
    summary = fuse_runs(tmp_path / "cnn", out, tmp_path / "fused", names=("cnn", "head"))
    assert set(summary["systems"]) == {"cnn", "head", "weighted", "znorm"}
    assert (tmp_path / "fused" / "head" / "report.md").is_file()
    assert "w1 (weight of cnn)" in (tmp_path / "fused" / "fusion.md").read_text()
