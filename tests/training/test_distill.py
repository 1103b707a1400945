"""GE2E -> ResNet34 distillation: never on test-fold audio; the distilled backbone feeds transfer."""

from __future__ import annotations

from pathlib import Path

import pytest

from emovox.config import recipe_from_dict
from emovox.corpora import Utterance
from emovox.errors import ProtocolError
from emovox.training.distill import check_pool


def test_pool_with_test_audio_or_speaker_is_refused() -> None:
    test = [Utterance("t1", "/data/a.wav", "spk1", "sad", corpus="emodb")]
    ok = [Utterance("x1", "/data/b.wav", "spk2", "sad", corpus="emodb"),
          Utterance("l1", "/libri/c.flac", "spk1", "", corpus="librispeech")]  # same name, other corpus
    check_pool(ok, test)
    with pytest.raises(ProtocolError, match="test utterance"):
        check_pool(ok + [Utterance("t1", "/x.wav", "s9", "sad", corpus="emodb")], test)
    with pytest.raises(ProtocolError, match="test-fold audio file"):
        check_pool(ok + [Utterance("copy", "/data/a.wav", "s9", "sad", corpus="emodb")], test)
    with pytest.raises(ProtocolError, match="speaker 'spk1'"):
        check_pool(ok + [Utterance("x2", "/data/d.wav", "spk1", "angry", corpus="emodb")], test)


@pytest.mark.slow
def test_distilled_backbone_is_built_per_fold_and_used(tmp_path: Path) -> None:
    from emovox.errors import EmovoxError
    from emovox.upstreams.ge2e import weights_path

    try:
        weights_path()
    except EmovoxError as exc:
        pytest.skip(f"GE2E weights unavailable: {exc}")
    from emovox.models.io import load_model
    from emovox.testing.trees import make_iemocap_tree
    from emovox.training.experiment import run_experiment

    root = make_iemocap_tree(tmp_path / "iemocap")
    recipe = recipe_from_dict({
        "data": {"corpus": "iemocap", "root": str(root), "labels": "iemocap_exp1", "protocol": "loso", "folds": [0]},
        "features": {"n_mels": 24, "cache_dir": str(tmp_path / "cache")},
        "model": {"name": "resnet34", "options": {"base_channels": 2, "embed_dim": 8}},
        "transfer": {"mode": "fine_tune", "distill": True, "distill_epochs": 1, "reinit": "classifier"},
        "train": {"epochs": 1, "batch_size": 8, "chunk_frames": [20], "progress": False}})
    run_experiment(recipe, tmp_path / "run")
    fold = next((tmp_path / "run").glob("fold_00_*"))
    student, config = load_model(fold / "distilled")
    assert config["training"]["task"] == "GE2E distillation" and student.num_classes == 256
    from emovox.io import read_json

    f = read_json(fold / "fold.json")
    assert config["training"]["n_utterances"] == len(f["train"]) + len(f["valid"])  # training side only
    emotion, _ = load_model(fold / "model")
    assert emotion.num_classes == 4
