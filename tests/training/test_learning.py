"""Every runner learns: separable synthetic data -> UA >= 0.9 on an unseen speaker, in seconds.

The corpus is generated: three emotions as three clearly different pitches (with a small
per-speaker shift), one short sentence per emotion, four speakers. A runner that trains on wrong
labels, drops the training data or mixes up classes cannot reach the floor; one that learns
reaches it easily. The floor is a property of the data, not a recorded result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emovox.corpora import Utterance, write_manifest
from emovox.io import read_json
from tests.conftest import make_tone

CLASSES = ["angry", "happy", "sad"]
PITCH = {"sad": 140.0, "happy": 300.0, "angry": 620.0}
WORDS = {"sad": "i am so sad", "happy": "i am so happy", "angry": "i am so angry"}
FLOOR = 0.9


def separable_corpus(folder: Path, speakers: int = 4, per_class: int = 5, seconds: float = 1.0) -> Path:
    """A manifest CSV of generated tones: pitch (and transcript) carry the label."""
    import soundfile as sf

    utts = []
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    for s in range(speakers):
        for label in CLASSES:
            for k in range(per_class):
                path = folder / "audio" / f"s{s}_{label}_{k}.wav"
                freq = PITCH[label] * (1 + 0.03 * s) * (1 + 0.01 * k)
                sf.write(path, make_tone(seconds, freq=freq, seed=100 * s + k), 16000)
                utts.append(Utterance(path.stem, str(path), f"spk{s}", label, corpus="synthetic",
                                      text=WORDS[label]))
    return write_manifest(folder / "manifest.csv", utts)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return separable_corpus(tmp_path_factory.mktemp("separable"))


def data_section(manifest: Path, folds: list[int]) -> dict:
    return {"manifest": str(manifest), "protocol": "leave_one_speaker_out", "folds": folds}


def assert_learned(summary: dict, n_folds: int) -> None:
    assert summary["n_folds"] == n_folds and summary["labels"] == CLASSES
    for fold in summary["folds"]:
        assert fold["ua"] >= FLOOR, f"fold {fold['fold']}: UA {fold['ua']:.3f} < {FLOOR}"


def test_cnn_experiment_learns(corpus: Path, tmp_path: Path) -> None:
    from emovox.config import recipe_from_dict
    from emovox.training.experiment import run_experiment

    raw = {"name": "learn-cnn", "data": data_section(corpus, [0, 2]),
           "features": {"n_mels": 32, "normalize": "none", "cache_dir": str(tmp_path / "cache")},
           "model": {"name": "resnet18", "options": {"base_channels": 4, "embed_dim": 16}},
           "optim": {"lr": 0.01, "schedule": "constant"},
           "train": {"epochs": 10, "batch_size": 8, "chunk_frames": [40, 60], "eval_batch_size": 16,
                     "progress": False}}
    summary = run_experiment(recipe_from_dict(raw), tmp_path / "run")
    assert_learned(summary, 2)
    assert summary["metrics"]["ua"]["mean"] >= FLOOR and summary["metrics"]["wa"]["mean"] >= FLOOR
    # the per-fold files agree with the report: predictions are the test labels
    fold = next((tmp_path / "run").glob("fold_00_*"))
    result = read_json(fold / "result.json")
    truth = {u: u.split("_")[1] for u in result["test"]}
    right = sum(truth[i] == p for i, p in zip(result["test"], result["pred"]))
    assert right / len(result["test"]) == pytest.approx(result["metrics"]["wa"])
    assert result["metrics"]["ua"] == pytest.approx(summary["folds"][0]["ua"])


def test_upstream_head_experiment_learns(corpus: Path, tmp_path: Path) -> None:
    """A linear head on frozen GE2E frames (the ``*_head`` recipes' route)."""
    from emovox.config import recipe_from_dict
    from emovox.training.experiment import run_experiment

    raw = {"name": "learn-head", "data": data_section(corpus, [1]),
           "features": {"frontend": "ge2e", "normalize": "none", "cache_dir": str(tmp_path / "cache")},
           "model": {"name": "frame_head", "pooling": "stats", "options": {}},
           "optim": {"lr": 0.05, "schedule": "constant"},
           "train": {"epochs": 6, "batch_size": 8, "chunk_frames": [20, 30], "eval_batch_size": 16,
                     "progress": False}}
    assert_learned(run_experiment(recipe_from_dict(raw), tmp_path / "run"), 1)


def test_segment_level_runner_learns(corpus: Path, tmp_path: Path) -> None:
    from emovox.training.segment_level import run_segment_experiment, segment_recipe

    raw = {"name": "learn-segments", "cache_dir": str(tmp_path / "cache"), "data": data_section(corpus, [3]),
           "segments": {"window": 1.0, "hop": 0.5},
           "model": {"name": "vggish_mlp", "hidden": 32, "layers": 1}, "optim": {"lr": 1e-3},
           "train": {"max_epochs": 15, "patience": None, "batch_size": 8, "threads": 1}}
    summary = run_segment_experiment(segment_recipe(raw), tmp_path / "run")
    assert_learned(summary, 1)
    assert summary["folds"][0]["sa"] >= FLOOR


def test_text_runner_learns(corpus: Path, tmp_path: Path) -> None:
    from emovox.config import recipe_from_dict
    from emovox.fusion import FusionConfig
    from emovox.training.text import MultimodalRecipe, TextTrainConfig, TranscriptConfig, run_text_experiment
    from tests.models.test_text import tiny_model

    encoder = tmp_path / "tiny-bert"
    model = tiny_model()
    model.classifier.encoder.save_pretrained(encoder)
    model.tokenizer.save_pretrained(encoder)
    recipe = recipe_from_dict({"name": "learn-text", "data": data_section(corpus, [0])})
    text = TextTrainConfig(encoder=str(encoder), max_length=12, pooling="mean", lr=3e-3, batch_size=8, epochs=12,
                           early_stopping=None, progress=False)
    summary = run_text_experiment(MultimodalRecipe(recipe, text, TranscriptConfig(), FusionConfig()), tmp_path / "run")
    assert_learned(summary, 1)


def test_svm_baseline_learns(corpus: Path, tmp_path: Path) -> None:
    pytest.importorskip("opensmile")
    from emovox.training.baseline import baseline_recipe, run_baseline

    raw = {"name": "learn-svm", "data": data_section(corpus, [0, 1, 2, 3]),
           "features": {"upstream": "egemaps", "cache_dir": str(tmp_path / "cache")}}
    assert_learned(run_baseline(baseline_recipe(raw), tmp_path / "run"), 4)
