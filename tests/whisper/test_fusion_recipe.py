"""recipes/whisper_ft/fusion.py: per-system SVM folds (cached), score-level fusion, validation choice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emovox.corpora.manifest import Utterance
from emovox.protocols import leave_one_speaker_out
from tests.conftest import import_script

RECIPE_DIR = Path(__file__).resolve().parents[2] / "recipes" / "whisper_ft"


@pytest.fixture(scope="module")
def fusion():
    with import_script(RECIPE_DIR / "fusion.py", "whisper_ft_fusion") as module:
        yield module


def _data(seed: int = 0):
    """6 speakers x 24 clips, 4 classes. System A only tells {a, b} from {c, d}; system B only
    tells {a, c} from {b, d}: each alone is near 50 % UA, together they name the class."""
    rng = np.random.default_rng(seed)
    utts, a, b = [], [], []
    for s in range(6):
        for n in range(24):
            c = n % 4
            utts.append(Utterance(f"s{s}_{n}", f"/x/s{s}_{n}.wav", f"s{s}", "abcd"[c]))
            a.append(rng.standard_normal(4) + (2.5 if c in (0, 1) else -2.5) * np.eye(4)[0])
            b.append(rng.standard_normal(4) + (2.5 if c in (0, 2) else -2.5) * np.eye(4)[1])
    return utts, np.array(a, np.float32), np.array(b, np.float32)


def test_score_fusion_combines_complementary_systems(fusion, tmp_path):
    utts, xa, xb = _data()
    folds = leave_one_speaker_out(utts, valid_fraction=0.2, seed=0)[:3]
    labels = np.array([u.label for u in utts])
    parts = fusion.split(folds, {u.id: i for i, u in enumerate(utts)})
    sa = fusion.run_system("A", xa, labels, folds, parts, tmp_path)
    sb = fusion.run_system("B", xb, labels, folds, parts, tmp_path)
    assert np.mean([r["ua"] for r in sa]) < 0.65 and np.mean([r["ua"] for r in sb]) < 0.65
    assert sa[0]["valid_scores"].shape == (len(folds[0].valid), 4) and sa[0]["classes"] == list("abcd")
    fused = fusion.score_fusion([sa, sb], labels, parts)
    assert np.mean([r["ua"] for r in fused]) >= 0.9
    for r in fused:
        assert 0.05 <= min(r["temperatures"]) and max(r["temperatures"]) <= 20 * 1.07
        assert len(r["w1"]) == 1 and 0.2 <= r["w1"][0] <= 0.8  # both systems are needed
        assert r["valid_ua"] >= 0.8
    feature = fusion.run_system("A+B", np.concatenate([xa, xb], 1), labels, folds, parts, None)
    assert np.mean([r["ua"] for r in feature]) >= 0.9


def test_run_system_reuses_a_finished_system_and_choice_is_on_validation(fusion, tmp_path, monkeypatch):
    utts, xa, _ = _data(seed=1)
    folds = leave_one_speaker_out(utts, valid_fraction=0.2, seed=0)[:2]
    labels = np.array([u.label for u in utts])
    parts = fusion.split(folds, {u.id: i for i, u in enumerate(utts)})
    first = fusion.run_system("whisper 1+3+5", xa, labels, folds, parts, tmp_path)
    assert (tmp_path / "whisper_1+3+5.json").is_file() and (tmp_path / "whisper_1+3+5.npz").is_file()
    monkeypatch.setattr(fusion, "svm_fold", lambda *a: pytest.fail("a finished system was recomputed"))
    again = fusion.run_system("whisper 1+3+5", xa, labels, folds, parts, tmp_path)
    for r1, r2 in zip(first, again):
        assert r1["ua"] == r2["ua"] and r1["C"] == r2["C"]
        np.testing.assert_allclose(r1["test_scores"], r2["test_scores"])
    rows = {"x": {"valid_ua_mean": 0.7, "ua_mean": 0.9}, "y": {"valid_ua_mean": 0.8, "ua_mean": 0.1},
            "z": {"valid_ua_mean": 0.8, "ua_mean": 0.5}}
    assert fusion.best_on_valid(rows, ["x", "y", "z"]) == "y"  # test UA is never looked at; ties -> first


def test_a_trained_run_joins_by_its_score_files(fusion, tmp_path):
    """--run NAME=DIR: per-fold scores.json (classes in the run's own order, utterances shuffled)
    come back aligned to the fold and sorted classes, and fuse with an SVM system."""
    from scipy.special import log_softmax

    from emovox.errors import ConfigError
    from emovox.scores import ScoreSet

    utts, xa, xb = _data(seed=2)
    folds = leave_one_speaker_out(utts, valid_fraction=0.2, seed=0)[:2]
    labels = np.array([u.label for u in utts])
    index = {u.id: i for i, u in enumerate(utts)}
    parts = fusion.split(folds, index)
    sb = fusion.run_system("B", xb, labels, folds, parts, None)
    run_classes = ["d", "c", "b", "a"]  # the run's order differs from the SVMs' sorted one
    rng = np.random.default_rng(0)
    for k, (fold, b) in enumerate(zip(folds, sb)):
        scores = ScoreSet(run_classes)
        for part, ids in (("valid", fold.valid), ("test", fold.test)):
            ids = [ids[i] for i in rng.permutation(len(ids))]
            rows = [list(fold.valid if part == "valid" else fold.test).index(i) for i in ids]
            logp = log_softmax(b[f"{part}_scores"][rows], axis=1)[:, ::-1]  # sorted a..d -> the run's d..a
            scores.add(part, ids, [run_classes.index(labels[index[i]]) for i in ids], logp)
        scores.save(tmp_path / "run" / f"fold_{k:02d}_{fold.name}" / "scores.json")
    rows = fusion.run_scores("resnet", tmp_path / "run", folds, labels, parts)
    for r, b in zip(rows, sb):
        assert r["classes"] == list("abcd") and r["fold"] == b["fold"]
        assert (r["test_scores"].argmax(1) == b["test_scores"].argmax(1)).all()
        assert r["ua"] == pytest.approx(b["margin_ua"])  # the same argmax, so the same test UA
    sa = fusion.run_system("A", xa, labels, folds, parts, None)
    fused = fusion.score_fusion([sa, rows], labels, parts)
    assert np.mean([r["ua"] for r in fused]) >= 0.9  # the run's scores carry system B's half of the answer
    other = leave_one_speaker_out(utts, valid_fraction=0.2, seed=0)[2:3]  # a fold the run never trained
    with pytest.raises(ConfigError, match="no scores for fold"):
        fusion.run_scores("resnet", tmp_path / "run", other, labels, fusion.split(other, index))
