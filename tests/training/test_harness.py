"""The fold harness shared by every runner: fingerprint, fold folders, data.folds checks, titles."""

from __future__ import annotations

from pathlib import Path

import pytest

from emovox.corpora import Utterance
from emovox.errors import ConfigError
from emovox.protocols import leave_one_speaker_out
from emovox.training.harness import FoldRun, check_fold_indices, fingerprint, fold_dir


def test_fingerprint_ignores_only_the_named_keys() -> None:
    raw = {"name": "r", "train": {"epochs": 3, "lr": 0.1}, "data": {"folds": [0]}}
    same = {"name": "r", "train": {"epochs": 9, "lr": 0.1}, "data": {"folds": [1, 2]}}
    assert fingerprint(raw, ["train.epochs", "data.folds"]) == fingerprint(same, ["train.epochs", "data.folds"])
    assert fingerprint(raw, ["train.epochs"]) != fingerprint(same, ["train.epochs"])
    changed = {**raw, "train": {"epochs": 3, "lr": 0.2}}
    assert fingerprint(raw, ["train.epochs", "data.folds"]) != fingerprint(changed, ["train.epochs", "data.folds"])
    assert len(fingerprint(raw)) == 16 and raw["train"]["epochs"] == 3  # the input is not modified


def test_fold_folders_and_fold_index_errors(tmp_path: Path) -> None:
    assert fold_dir(tmp_path, 3, "test-Ses 01/x") == tmp_path / "fold_03_test-Ses_01_x"
    assert fold_dir(tmp_path, 0, "f", run=2) == tmp_path / "fold_00_f_run2"
    check_fold_indices([0, 4], 5)
    with pytest.raises(ConfigError, match=r"data.folds: fold index 99 does not exist \(the protocol gives 5 folds\)"):
        check_fold_indices([0, 99], 5)
    with pytest.raises(ConfigError, match="fold index -1"):
        check_fold_indices([-1], 5)


def test_finished_folds_belong_to_the_fingerprint_and_titles_name_subsets(tmp_path: Path) -> None:
    utts = [Utterance(f"{s}_{k}", "", s, "sad" if k % 2 else "happy") for s in "abc" for k in range(4)]
    folds = leave_one_speaker_out(utts, valid_fraction=0.0)
    run = FoldRun(tmp_path, "test", utts, ["happy", "sad"], folds, [1], "fp1", ["train.epochs=2"])
    fdir = run.fold_dir(1, folds[1])
    assert run.finished(fdir) is None
    run.finish(fdir, {"fold": folds[1].name, "metrics": {"ua": 1.0}})
    assert run.finished(fdir)["fingerprint"] == "fp1"
    other = FoldRun(tmp_path, "test", utts, ["happy", "sad"], folds, [1], "fp2")
    assert other.finished(fdir) is None  # another recipe's result is not reused
    assert run.title("t") == "t [folds 1 of 3] [overrides: train.epochs=2]"
    assert FoldRun(tmp_path, "test", utts, [], folds, [0, 1, 2], "x").title("t") == "t"
