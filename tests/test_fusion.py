"""Late fusion (seed 001 §3.3): hand-computed cases for the w1 grid, z-norm and fallbacks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emovox.errors import EmovoxError
from emovox.fusion import (
    Coverage,
    Fusion,
    FusionError,
    combine,
    fit_weighted,
    fit_znorm,
    fuse_fold,
)


def two_class(diffs: list[float]) -> np.ndarray:
    """Scores whose class-0 minus class-1 difference is ``diffs`` (argmax depends only on it)."""
    return np.array([[d, 0.0] for d in diffs])


def test_weighted_grid_picks_the_only_correct_weight():
    # Utterance 1 (class 0): fused diff 79·w − 121·(1 − w) > 0  ⇔  w > 0.605
    # Utterance 2 (class 1): fused diff 77·w − 123·(1 − w) < 0  ⇔  w < 0.615
    # Utterance 3 (class 0): 1·w − 0.25·(1 − w) > 0  ⇔  w > 0.2 — so only w1 = 0.61 gets all three.
    speech = two_class([79, 77, 1])
    text = two_class([-121, -123, -0.25])
    fusion = fit_weighted(speech, text, [0, 1, 0], metric="ua")
    assert fusion.w1 == pytest.approx(0.61)
    assert fusion.valid_metric == pytest.approx(1.0)
    assert fusion.rule == "weighted" and fusion.modalities == "both"


def test_weighted_grid_takes_the_middle_of_a_plateau():
    # Correct for w in (1/3, 3/4): utterance 1 needs 3w − 1 > 0, utterance 2 needs 4w − 3 < 0,
    # utterance 3 needs 4 − 5w > 0. Grid points 0.34 .. 0.74 tie; their median is 0.54.
    speech = two_class([2, 1, -1])
    text = two_class([-1, -3, 4])
    assert fit_weighted(speech, text, [0, 1, 0], metric="ua").w1 == pytest.approx(0.54)


def test_weighted_never_below_speech_only_on_validation():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 60)
    speech = np.log(rng.dirichlet(np.ones(4), 60))
    speech[np.arange(60), y] += 1.0  # informative speech
    text = np.log(np.full((60, 4), 0.25)) + rng.normal(0, 0.3, (60, 4))  # noise
    fusion = fit_weighted(speech, text, y, metric="ua")
    speech_ua = np.mean([np.mean(speech[y == c].argmax(1) == c) for c in np.unique(y)])
    assert fusion.valid_metric >= speech_ua


def test_weighted_nll_criterion_is_the_default_and_hand_checkable():
    # Utterance 1 (class 0) and utterance 2 (class 1) both have fused class-0-minus-class-1 score
    # d = 2w − 1, so the validation cross-entropy log(1 + e^−d) + log(1 + e^d) is symmetric in d
    # and smallest at d = 0: w1 = 0.5 exactly (UA is 0.5 for every w and cannot choose).
    speech, text = two_class([1, 1]), two_class([-1, -1])
    fusion = fit_weighted(speech, text, [0, 1])
    assert fusion.metric == "nll" and fusion.w1 == pytest.approx(0.5)
    assert fusion.valid_metric == pytest.approx(np.log(2.0))  # both utterances at p = 0.5
    # Informative speech, text that only repeats a class prior: the cross-entropy keeps speech in charge.
    rng = np.random.default_rng(3)
    y = np.arange(90) % 3
    logits = rng.normal(0, 1, (90, 3))
    logits[np.arange(90), y] += 2.0
    speech = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    text = np.tile(np.log([0.4, 0.3, 0.3]), (90, 1))
    assert fit_weighted(speech, text, y).w1 >= 0.9


def test_znorm_uses_validation_statistics_only():
    speech_valid = np.array([[0.0, -2.0], [-2.0, 0.0]])   # mean -1, std 1
    text_valid = np.array([[0.0, -4.0], [-4.0, 0.0]])     # mean -2, std 2
    fusion = fit_znorm(speech_valid, text_valid)
    assert (fusion.speech_stats.mean, fusion.speech_stats.std) == (-1.0, 1.0)
    assert (fusion.text_stats.mean, fusion.text_stats.std) == (-2.0, 2.0)
    assert fusion.w1 == 0.5
    # Test scores: speech [1, 0] -> [2, 1]; text [0, -6] -> [1, -2]; average [1.5, -0.5].
    fused, coverage = fusion.apply(np.array([[1.0, 0.0]]), np.array([[0.0, -6.0]]))
    np.testing.assert_allclose(fused, [[1.5, -0.5]])
    assert coverage == Coverage(both=1)
    # Wildly different test scores do not move the statistics (they come from validation only).
    results = fuse_fold(speech_valid, text_valid, [0, 1], 100 * speech_valid, 100 * text_valid, rules=["znorm"])
    assert results["znorm"].fusion.speech_stats.mean == -1.0
    assert results["znorm"].fusion.text_stats.std == 2.0


def test_constant_text_scores_leave_speech_in_charge():
    speech = np.log(np.array([[0.7, 0.3], [0.2, 0.8], [0.6, 0.4]]))
    text = np.log(np.full((3, 2), 0.5))
    fusion = fit_znorm(speech, text)
    np.testing.assert_array_equal(fusion.predict(speech, text), speech.argmax(1))


def test_missing_text_modality_falls_back_to_speech_and_is_recorded():
    speech = np.log(np.array([[0.7, 0.3], [0.2, 0.8]]))
    text = np.full((2, 2), np.nan)
    for rule in ("weighted", "znorm"):
        results = fuse_fold(speech, text, [0, 1], speech, None, rules=[rule])
        fused = results[rule]
        assert fused.fusion.modalities == "speech"
        assert "text" in fused.fusion.note
        assert fused.record()["coverage"] == {"both": 0, "speech_only": 2, "text_only": 0}
        np.testing.assert_array_equal(fused.predictions, [0, 1])


def test_per_utterance_fallback_counts():
    speech = np.array([[0.0, -1.0], [np.nan, np.nan], [-1.0, 0.0]])
    text = np.array([[-3.0, 0.0], [0.0, -1.0], [np.nan, np.nan]])
    fused, coverage = combine(speech, text, 0.25)
    assert coverage == Coverage(both=1, speech_only=1, text_only=1)
    # Row 0: 0.25·[0, −1] + 0.75·[−3, 0] = [−2.25, −0.25]; rows 1 and 2 keep the one score they have.
    np.testing.assert_allclose(fused, [[-2.25, -0.25], [0.0, -1.0], [-1.0, 0.0]])


@pytest.mark.parametrize(
    "speech, text, match",
    [
        (None, None, "both the speech and the text scores are missing"),
        (np.zeros((2, 3)), np.zeros((3, 3)), "differ in shape"),
        (np.array([[0.0, np.inf]]), np.zeros((1, 2)), "row 0 has inf"),
        (np.array([[0.0, np.nan]]), np.zeros((1, 2)), "partial NaN"),
        (np.array([[np.nan, np.nan]]), np.array([[np.nan, np.nan]]), "neither a speech nor a text score"),
        (np.zeros(3), None, "shape"),
    ],
)
def test_bad_scores_raise_clear_errors(speech, text, match):
    with pytest.raises(FusionError, match=match):
        Fusion("weighted", 0.5).apply(speech, text)
    assert issubclass(FusionError, EmovoxError)


def test_fusion_record_round_trips():
    fusion = fit_znorm(np.array([[0.0, -2.0], [-2.0, 0.0]]), np.array([[0.0, -4.0], [-4.0, 0.0]]))
    again = Fusion.from_dict(fusion.to_dict())
    assert again == fusion


# ------------------------------------------------------------------------ score files and runs
CLASSES = ["angry", "happy", "sad"]


def write_run(root, modality: str, rng: np.random.Generator, folds: int = 2, noise: float = 1.0,
              missing_text_row: bool = True) -> None:
    """Score files like `emovox text-train` writes: <root>/<modality>/fold_NN_x/scores.json."""
    from emovox.fusion import ScoreSet

    for f in range(folds):
        ss = ScoreSet(CLASSES, {"modality": modality})
        for part, n in (("valid", 30), ("test", 24)):
            y = np.arange(n) % 3  # the same labels for both modalities
            logits = rng.normal(0, noise, (n, 3))
            logits[np.arange(n), y] += 1.5
            lp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
            if modality == "text" and missing_text_row:
                lp[0] = np.nan  # an empty transcript
            ss.add(part, [f"{part}{f}_{i}" for i in range(n)], y, lp)
        ss.save(root / modality / f"fold_{f:02d}_s{f}" / "scores.json")


def test_score_set_round_trip_keeps_missing_rows(tmp_path):
    from emovox.fusion import ScoreSet

    write_run(tmp_path, "text", np.random.default_rng(0), folds=1)
    ss = ScoreSet.load(tmp_path / "text" / "fold_00_s0" / "scores.json")
    assert ss.classes == CLASSES and set(ss.parts) == {"valid", "test"}
    assert np.isnan(ss.part("test").scores[0]).all() and np.isfinite(ss.part("test").scores[1:]).all()
    assert ss.metrics("test")["n_without_score"] == 1
    # reordering to another id order, with an id it lacks
    ids = ["test0_3", "unknown", "test0_1"]
    aligned = ss.aligned("test", ids, CLASSES)
    np.testing.assert_array_equal(aligned[0], ss.part("test").scores[3])
    assert np.isnan(aligned[1]).all()
    with pytest.raises(FusionError, match="classes"):
        ss.aligned("test", ids, ["a", "b", "c"])
    with pytest.raises(FusionError, match="no 'train' part"):
        ss.part("train")
    (tmp_path / "bad.json").write_text('{"kind": "something else"}')
    with pytest.raises(FusionError, match="not an emovox score file"):
        ScoreSet.load(tmp_path / "bad.json")


def fuse_cli(tmp_path, seed: int, out, *extra: str) -> int:
    """``emovox fuse`` on two generated runs (speech, and a noisier 'text') under ``tmp_path``."""
    from emovox.cli import main

    rng = np.random.default_rng(seed)
    write_run(tmp_path, "speech", rng)
    write_run(tmp_path, "text", rng, noise=1.5)
    return main(["fuse", "--speech", str(tmp_path / "speech"), "--text", str(tmp_path / "text"), "-o", str(out), *extra])


def test_fuse_command_writes_all_systems(tmp_path, capsys):
    from emovox.cli import main

    out = tmp_path / "fused"
    assert fuse_cli(tmp_path, 1, out) == 0
    printed = capsys.readouterr().out
    assert "w1 (speech weight) per fold" in printed
    summary = json.loads((out / "fusion.json").read_text())
    assert set(summary["systems"]) == {"speech", "text", "weighted", "znorm"}
    fold = json.loads((out / "fold_00_s0" / "fusion.json").read_text())
    assert fold["fusion"]["weighted"]["coverage"] == {"both": 23, "speech_only": 1, "text_only": 0}
    assert fold["systems"]["text"]["n_without_score"] == 1
    for system in summary["systems"]:
        assert (out / system / "report.md").is_file() and (out / system / "confusion.png").is_file()
    assert main(["fuse", "--speech", str(tmp_path / "speech"), "--text", str(tmp_path / "nothing"),
                 "-o", str(out)]) == 2
    assert "no score files" in capsys.readouterr().err


def test_fuse_command_names_the_two_sides(tmp_path, capsys):
    out = tmp_path / "fused"
    assert fuse_cli(tmp_path, 2, out, "--names", "resnet", "whisper", "--rules", "weighted") == 0
    assert "w1 (resnet weight) per fold" in capsys.readouterr().out
    assert set(json.loads((out / "fusion.json").read_text())["systems"]) == {"resnet", "whisper", "weighted"}
    assert fuse_cli(tmp_path, 2, tmp_path / "bad", "--names", "weighted", "x") == 2
    assert "must be two different names" in capsys.readouterr().err and not (tmp_path / "bad").exists()
