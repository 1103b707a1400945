"""Baseline SVM through speaker-independent folds on tiny synthetic features."""

import numpy as np
import pytest

from emovox.corpora import Utterance
from emovox.errors import ConfigError
from emovox.training import baseline as bl
from emovox.training.harness import FoldRun
from emovox.protocols import leave_one_speaker_out

CLASSES = ["angry", "happy", "sad"]


def synthetic(n_speakers=6, per_class=8, offset=0.0, seed=0):
    """Separable class clusters; each speaker shifted by a random offset of size ``offset``."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((len(CLASSES), 5)) * 3
    utts, rows = [], []
    for s in range(n_speakers):
        shift = rng.standard_normal(5) * offset
        for c, label in enumerate(CLASSES):
            for k in range(per_class):
                utts.append(Utterance(f"s{s}_{label}_{k}", f"/nonexistent/s{s}_{label}_{k}.wav", f"spk{s}", label))
                rows.append(centres[c] + shift + 0.5 * rng.standard_normal(5))
    return utts, np.asarray(rows, dtype=np.float32)


def harness_run(out, utts, folds, fingerprint="k1"):
    return FoldRun(out, "baseline", list(utts), CLASSES, list(folds), list(range(len(folds))), fingerprint)


def recipe(**svm):
    return bl.baseline_recipe({"name": "t", "data": {"corpus": "x"}, "svm": svm})


@pytest.mark.parametrize("kernel", ["linear", "rbf"])
def test_separable_features_score_high_on_every_fold(kernel, tmp_path):
    utts, x = synthetic()
    folds = leave_one_speaker_out(utts)
    run = harness_run(tmp_path, utts, folds)
    results = bl.run_folds(x, utts, list(enumerate(folds)), recipe(kernel=kernel), CLASSES, run)
    assert len(results) == 6
    assert all(r["metrics"]["ua"] >= 0.9 for r in results)
    assert all(r["C"] in bl.DEFAULT_C[kernel] for r in results)
    assert len(list(tmp_path.glob("fold_*/result.json"))) == 6
    assert np.asarray(results[0]["decision"]).shape == (len(folds[0].test), 3)


def test_c_is_chosen_without_looking_at_test_labels():
    utts, x = synthetic(seed=1)
    fold = leave_one_speaker_out(utts)[0]
    r = recipe(C=[1e-4, 1e-2, 1.0])
    a = bl.run_folds(x, utts, [(0, fold)], r, CLASSES)[0]
    shuffled = list(utts)
    for i, u in enumerate(shuffled):  # scramble test labels only
        if u.id in set(fold.test):
            shuffled[i] = u.with_label(CLASSES[(CLASSES.index(u.label) + 1) % 3])
    b = bl.run_folds(x, shuffled, [(0, fold)], r, CLASSES)[0]
    assert a["C"] == b["C"] and a["valid_scores"] == b["valid_scores"]
    assert b["metrics"]["ua"] < a["metrics"]["ua"]


def test_finished_folds_are_reused(tmp_path, monkeypatch):
    utts, x = synthetic(n_speakers=3)
    folds = leave_one_speaker_out(utts)
    indexed = list(enumerate(folds))
    first = bl.run_folds(x, utts, indexed, recipe(), CLASSES, harness_run(tmp_path, utts, folds, "k1"))
    monkeypatch.setattr(bl, "fit_fold", lambda *a, **k: pytest.fail("a finished fold was retrained"))
    again = bl.run_folds(x, utts, indexed, recipe(), CLASSES, harness_run(tmp_path, utts, folds, "k1"))
    assert [r["metrics"]["ua"] for r in again] == [r["metrics"]["ua"] for r in first]
    monkeypatch.undo()
    changed = bl.run_folds(x, utts, indexed, recipe(kernel="rbf"), CLASSES, harness_run(tmp_path, utts, folds, "k2"))
    assert all(r["fingerprint"] == "k2" for r in changed)


def test_speaker_normalisation_removes_speaker_offsets():
    utts, x = synthetic(offset=6.0, seed=2)
    speakers = [u.speaker for u in utts]
    z = bl.speaker_normalize(x, speakers)
    for s in set(speakers):
        rows = np.asarray(speakers) == s
        np.testing.assert_allclose(z[rows].mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(z[rows].std(0), 1, atol=1e-4)
    folds = leave_one_speaker_out(utts)
    indexed = list(enumerate(folds))
    raw = np.mean([r["metrics"]["ua"] for r in bl.run_folds(x, utts, indexed, recipe(), CLASSES)])
    normed = np.mean([r["metrics"]["ua"] for r in bl.run_folds(z, utts, indexed, recipe(), CLASSES)])
    assert normed > raw


def test_recipe_validation_and_labelling():
    r = bl.baseline_recipe({"name": "egemaps", "data": {"corpus": "emodb", "root": "x"},
                            "features": {"speaker_norm": True}})
    assert r.label == "egemaps: egemaps + linear SVM +spkNorm" and r.data.protocol == "leave_one_speaker_out"
    w = bl.baseline_recipe({"data": {"corpus": "emodb"}, "features": {"upstream": "whisper",
                                                                      "options": {"pad_to_30s": True, "threads": 1}}})
    assert w.label == "baseline: whisper(pad_to_30s=True) + linear SVM"
    with pytest.raises(ConfigError, match="svm.kernel"):
        bl.baseline_recipe({"data": {"corpus": "emodb"}, "svm": {"kernel": "poly"}})
    with pytest.raises(ConfigError, match="unknown key"):
        bl.baseline_recipe({"data": {"corpus": "emodb"}, "classifier": {}})
    with pytest.raises(ConfigError, match="positive"):
        bl.baseline_recipe({"data": {"corpus": "emodb"}, "svm": {"C": [0]}})
    with pytest.raises(ConfigError, match="corpus"):
        bl.baseline_recipe({})


def _tiny_corpus(tmp_path):
    """3 speakers x 2 'emotions' (low vs high pitch) x 3 clips of 0.5 s, with a manifest CSV."""
    import soundfile as sf

    from emovox.corpora import write_manifest
    from tests.conftest import make_tone

    utts = []
    for s in range(3):
        for label, freq in (("sad", 140.0), ("angry", 320.0)):
            for k in range(3):
                path = tmp_path / "audio" / f"s{s}_{label}_{k}.wav"
                path.parent.mkdir(exist_ok=True)
                sf.write(path, make_tone(0.5, freq=freq * (1 + 0.03 * s), seed=k), 16000)
                utts.append(Utterance(path.stem, str(path), f"spk{s}", label, corpus="tiny"))
    return write_manifest(tmp_path / "manifest.csv", utts)


def test_cli_end_to_end_on_generated_audio(tmp_path, capsys):
    from emovox.cli import main
    from emovox.evaluation.report import load_report

    manifest = _tiny_corpus(tmp_path)
    out = tmp_path / "run"
    argv = ["baseline", "--manifest", str(manifest), "--features", "egemaps", "--protocol",
            "leave_one_speaker_out", "--cache", str(tmp_path / "cache"), "--speaker-norm", "--no-progress",
            "-o", str(out)]
    assert main(argv) == 0
    line = capsys.readouterr().out
    assert "+spkNorm" in line and "UA" in line and "3 folds" in line
    report = load_report(out)
    assert report["n_folds"] == 3 and report["metrics"]["ua"]["mean"] >= 0.8
    assert report["extra"]["speaker_norm"] is True and "+spkNorm" in report["title"]
    assert (out / "report.md").is_file() and (out / "confusion.png").is_file() and (out / "folds.json").is_file()
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 18
    assert main(argv) == 0  # re-run: cached features, finished folds reused
    # a fold index the protocol does not give is a clear recipe error (exit 2), not a traceback
    assert main([*argv[:-2], "--override", "data.folds=[99]", "-o", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "data.folds: fold index 99 does not exist (the protocol gives 3 folds)" in err and "Traceback" not in err
    # a subset of folds and --override edits are named in the report title
    assert main([*argv[:-2], "--override", "data.folds=[1]", "-o", str(tmp_path / "one")]) == 0
    title = load_report(tmp_path / "one")["title"]
    assert "[folds 1 of 3]" in title and "[overrides: data.folds=[1]]" in title


def test_cli_bad_input_exits_2(tmp_path, capsys):
    from emovox.cli import main

    assert main(["baseline", "--corpus", "emodb", "--root", str(tmp_path), "--features", "mfcc",
                 "-o", str(tmp_path / "o")]) == 2
    assert "unknown upstream 'mfcc'" in capsys.readouterr().err
    assert main(["baseline", str(tmp_path / "missing.yaml"), "-o", str(tmp_path / "o")]) == 2
    assert "recipe file not found" in capsys.readouterr().err


def test_class_scores_are_signed_one_vs_one_margins_in_classes_order():
    """Each column = mean over the other classes of the pairwise SVM margin (checked against
    binary SVMs trained on each pair alone), so the sign convention and pair order can't slip."""
    from sklearn.svm import SVC

    rng = np.random.default_rng(3)
    centres = rng.standard_normal((4, 5)) * 1.5
    y = np.repeat(np.array(["d", "a", "c", "b"]), 15)  # classes_ becomes sorted: a b c d
    x = centres[np.searchsorted(["a", "b", "c", "d"], y)] + rng.standard_normal((len(y), 5))
    model = SVC(kernel="linear", C=0.1).fit(x, y)
    scores = bl.class_scores(model, x[:7])
    assert scores.shape == (7, 4) and model.decision_function_shape == "ovr"  # restored
    expected = np.zeros((7, 4))
    for i in range(4):
        for j in range(i + 1, 4):
            keep = np.isin(y, model.classes_[[i, j]])
            d = SVC(kernel="linear", C=0.1).fit(x[keep], y[keep]).decision_function(x[:7])  # > 0: class j
            expected[:, i] -= d / 3
            expected[:, j] += d / 3
    np.testing.assert_allclose(scores, expected, atol=1e-3)
    wide = bl.class_scores(model, x)
    assert (wide.argmax(1) == np.searchsorted(model.classes_, model.predict(x))).mean() > 0.9
    binary = SVC(kernel="linear").fit(x[:30], y[:30])
    b = bl.class_scores(binary, x[:30])
    np.testing.assert_allclose(b[:, 1], binary.decision_function(x[:30]))
    assert (binary.classes_[b.argmax(1)] == binary.predict(x[:30])).all()
