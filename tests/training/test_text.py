"""Text fine-tuning loop, text-only folds and the multimodal command on the miniature IEMOCAP tree."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from emovox.errors import ConfigError
from emovox.fusion import ScoreSet
from emovox.testing.trees import make_iemocap_tree
from emovox.training.text import TextTrainConfig, load_multimodal_recipe, run_text_experiment, train_text_model
from tests.models.test_text import tiny_model

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "padi2022" / "fusion_exp3_loso.yaml"
TEXTS = ["i am so angry", "we are angry today", "i am happy", "so happy today", "i am sad", "very sad today"]


def quiet(max_epochs: int, **kw) -> TextTrainConfig:
    return TextTrainConfig(batch_size=8, epochs=max_epochs, progress=False, **kw)


def test_training_restores_the_best_validation_epoch(caplog):
    model = tiny_model()
    texts, y = TEXTS * 3 + ["", None], [0, 0, 1, 1, 2, 2] * 3 + [0, 1]
    with caplog.at_level(logging.WARNING, logger="emovox.training.text"):
        result = train_text_model(model, texts, y, TEXTS, [0, 0, 1, 1, 2, 2],
                                  quiet(6, lr=1e-2, monitor="valid_loss", early_stopping=None))
    assert "2 of 20 utterances have an empty or missing transcript" in caplog.text
    assert result.n_train == 18 and result.n_valid == 6 and len(result.history) == 6
    losses = [h["valid_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(losses)) + 1 and result.best_value == pytest.approx(min(losses))
    assert min(losses) < losses[0]  # it learns
    lp = torch.from_numpy(model.log_posteriors(TEXTS))
    restored = torch.nn.functional.nll_loss(lp, torch.tensor([0, 0, 1, 1, 2, 2])).item()
    assert restored == pytest.approx(result.best_value, rel=1e-4)


def test_early_stopping_stops_and_empty_training_set_raises():
    model = tiny_model()
    result = train_text_model(model, TEXTS, [0, 0, 1, 1, 2, 2], TEXTS, [0, 0, 1, 1, 2, 2],
                              quiet(20, lr=1e-9, early_stopping=1, monitor="valid_loss"))
    assert len(result.history) < 20  # lr 1e-9: no improvement, stops after the patience
    with pytest.raises(ConfigError, match="no training utterance has a transcript"):
        train_text_model(model, ["", None], [0, 1], TEXTS, [0] * 6, quiet(1))


@pytest.fixture(scope="module")
def iemocap(tmp_path_factory) -> Path:
    return make_iemocap_tree(tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release", sessions=5, seconds=0.5)


@pytest.fixture(scope="module")
def local_encoder(tmp_path_factory) -> Path:
    """A tiny BERT saved as an ordinary Hugging Face folder: the 'any local model by path' route."""
    folder = tmp_path_factory.mktemp("tiny-bert")
    model = tiny_model()
    model.classifier.encoder.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    return folder


def overrides(root: Path, encoder: Path) -> list[str]:
    return [f"data.root={root}", f"text.encoder={encoder}", "text.max_length=16", "text.epochs=1",
            "text.progress=false", "data.folds=[0, 1]"]


def test_text_only_folds_on_the_iemocap_fixture(iemocap: Path, local_encoder: Path, tmp_path: Path):
    mm = load_multimodal_recipe(RECIPE, overrides(iemocap, local_encoder))
    assert mm.text.lr == 2e-5 and mm.text.batch_size == 32 and mm.fusion.rules == ["weighted", "znorm"]
    summary = run_text_experiment(mm, tmp_path / "text")
    assert summary["n_folds"] == 2 and set(summary["labels"]) == {"angry", "happy", "neutral", "sad"}
    folds = sorted(p for p in (tmp_path / "text").glob("fold_*") if p.is_dir())
    assert [p.name for p in folds] == ["fold_00_test-Ses01", "fold_01_test-Ses02"]
    scores = ScoreSet.load(folds[0] / "scores.json")
    assert set(scores.parts) == {"valid", "test"} and scores.classes == ["angry", "happy", "neutral", "sad"]
    assert all(i.startswith("Ses01") for i in scores.part("test").ids)
    assert np.isfinite(scores.part("test").scores).all()
    assert (folds[0] / "model" / "model.safetensors").is_file() and (tmp_path / "text" / "report.md").is_file()
    before = (folds[0] / "result.json").stat().st_mtime_ns
    run_text_experiment(mm, tmp_path / "text")  # finished folds are skipped on a re-run
    assert (folds[0] / "result.json").stat().st_mtime_ns == before


def test_recipe_sections_are_validated(tmp_path: Path):
    with pytest.raises(ConfigError, match="text.learning_rate"):
        load_multimodal_recipe(RECIPE, ["text.learning_rate=1"])
    with pytest.raises(ConfigError, match="fusion.rules"):
        load_multimodal_recipe(RECIPE, ["fusion.rules=[average]"])
    with pytest.raises(ConfigError, match="asr.source"):
        load_multimodal_recipe(RECIPE, ["asr.source=google"])
    with pytest.raises(ConfigError, match="not found"):
        load_multimodal_recipe(tmp_path / "nope.yaml")


@pytest.mark.slow
def test_multimodal_command_smoke(iemocap: Path, local_encoder: Path, tmp_path: Path, capsys):
    from emovox.cli import main

    out = tmp_path / "mm"
    speech = ["train.epochs=1", "train.progress=false", "model.options={base_channels: 4}", "features.n_mels=32",
              "augment.policy=none", "transfer.mode=scratch", "transfer.backbone=null"]
    args = ["multimodal", str(RECIPE), "-o", str(out), "--no-progress"]
    for item in overrides(iemocap, local_encoder) + speech:
        args += ["--override", item]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "speech:" in printed and "text:" in printed and "weighted:" in printed and "znorm:" in printed
    fold = json.loads((out / "fusion" / "fold_00_test-Ses01" / "fusion.json").read_text())
    assert set(fold["systems"]) == {"speech", "text", "weighted", "znorm"}
    w1 = fold["fusion"]["weighted"]["fusion"]["w1"]
    assert 0.0 <= w1 <= 1.0 and fold["fusion"]["znorm"]["fusion"]["speech_stats"]["std"] > 0
    for system in ("speech", "text", "weighted"):
        assert (out / "fusion" / system / "confusion.png").is_file()
    assert "w1 (weight of speech)" in (out / "fusion" / "fusion.md").read_text()


def test_length_buckets_cover_every_text_once_per_epoch():
    from emovox.training.text import LengthBuckets

    lengths = np.random.default_rng(0).integers(3, 60, 203)
    sampler = LengthBuckets(lengths, batch_size=8, seed=1, pool=5)
    first, second = list(sampler), list(sampler)
    for epoch in (first, second):
        flat = [i for b in epoch for i in b]
        assert sorted(flat) == list(range(203)) and all(len(b) <= 8 for b in epoch) and len(epoch) == len(sampler)
    assert first != second  # reshuffled every epoch
    assert first == list(LengthBuckets(lengths, batch_size=8, seed=1, pool=5))  # deterministic
    spread = np.mean([np.ptp(lengths[b]) for b in first])
    assert spread < np.ptp(lengths) / 2  # batches hold similar lengths
