"""Fusion of the best Whisper probe with the project's other systems (ComParE, GE2E), issue 2.

Every system is the probes' baseline SVM (:func:`emovox.training.baseline.fit_fold`: scaler +
linear SVC, class-balanced, C 1e-5…1 chosen on the fold's validation speakers by UA, refitted on
train + valid, test scored once) on one pooled vector per clip, on the folds of
``emodb_loso.yaml`` / ``ravdess_6x4.yaml``:

* single systems: Whisper base states 1+3+5 and 2+3+4 (``recipes/generalist/features.py`` cache),
  ComParE_2016 functionals, the GE2E embedding and GE2E frames mean ‖ std (``other_feats.py``).
  Which Whisper set and which GE2E variant go into the fusions is chosen on validation UA
  (mean over folds of the validation speakers' UA at the chosen C);
* feature-level fusion: the chosen Whisper vector concatenated with the partner(s), each column
  standardised on the training part (the SVM's own scaler), then the same SVM;
* score-level fusion: per fold and system, class scores = mean signed one-vs-one SVM margins
  (:func:`emovox.training.baseline.class_scores`), divided by their spread on the validation
  speakers (:func:`emovox.fusion.score_stats`), -> ``log_softmax(scores / T)`` with the
  temperature fitted on the validation speakers (:func:`emovox.calibration.fit_temperature`);
  validation scores come from the SVM trained on the training part only (the chosen C), test
  scores from the refitted SVM. Two systems are combined by :func:`emovox.fusion.fit_weighted`
  (weight of Whisper on a 0.01 grid, validation NLL); a third joins the fused scores the same way.

``--run NAME=DIR`` adds a trained system of its own, e.g. a ResNet from ``emovox experiment`` on the
same folds (``recipes/emodb/loso_cpu_scratch.yaml``): its per-fold ``scores.json`` (validation and
test log-posteriors) join the score-level fusion with the chosen Whisper set the same way (no
feature-level fusion: it has no vector per clip).

The fusion reported for a corpus is the one with the best validation UA; every row's test UA
(mean ± sample std over folds) is reported. Per-system fold results are kept in
``OUT/<corpus>/<system>.json`` + ``.npz`` (scores) and reused by a re-run; the summary is
``OUT/<corpus>.json`` (rendered by ``table.py``).

    python recipes/whisper_ft/fusion.py --corpus emodb --out runs/whisper_ft/fusion
    python recipes/whisper_ft/fusion.py --corpus emodb --out runs/whisper_ft/fusion --run resnet=runs/bench/emodb/scratch
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import log_softmax

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import read_recipe, recipe_data, sample_std, summary  # noqa: E402
from probes import RECIPES, load_pooled, read_shards  # noqa: E402

from emovox.calibration import fit_temperature  # noqa: E402
from emovox.evaluation.metrics import unweighted_accuracy, weighted_accuracy  # noqa: E402
from emovox.fusion import fit_weighted, score_stats  # noqa: E402
from emovox.errors import ConfigError  # noqa: E402
from emovox.io import atomic_path, atomic_write_json  # noqa: E402
from emovox.scores import ScoreSet, score_files  # noqa: E402
from emovox.training.baseline import SVMConfig, class_scores, fit_fold, make_svm  # noqa: E402

GRID = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
WHISPER = {"whisper 1+3+5": [1, 3, 5], "whisper 2+3+4": [2, 3, 4]}
GE2E = ("ge2e", "ge2eframes")
OTHERS = ("compare", *GE2E)


def svm_fold(x: np.ndarray, labels: np.ndarray, tr: np.ndarray, va: np.ndarray, te: np.ndarray) -> dict[str, Any]:
    """The baseline SVM on one fold, plus class scores: validation (train-only SVM at the chosen C), test (refit)."""
    svm = SVMConfig()
    model, c, scores = fit_fold(x[tr], labels[tr], x[va], labels[va], svm, GRID)
    valid_model = make_svm(svm, c).fit(x[tr], labels[tr])
    pred = model.predict(x[te])
    return {"C": c, "valid_ua": scores[repr(c)], "ua": unweighted_accuracy(labels[te], pred),
            "wa": weighted_accuracy(labels[te], pred), "classes": [str(k) for k in model.classes_],
            "valid_scores": class_scores(valid_model, x[va]), "test_scores": class_scores(model, x[te])}


def split(folds: Sequence, index: dict[str, int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    return [tuple(np.array([index[i] for i in part]) for part in (f.train, f.valid, f.test)) for f in folds]


def run_system(name: str, x: np.ndarray, labels: np.ndarray, folds: Sequence, parts: list, out: Path | None) -> list[dict]:
    """Per-fold SVM results of one system (loaded from ``out`` when a previous run finished it)."""
    slug = name.replace(" + ", "+").replace(" ", "_")
    js, npz = (out / f"{slug}.json", out / f"{slug}.npz") if out is not None else (None, None)
    if js is not None and npz is not None and js.is_file() and npz.is_file():
        rows = json.loads(js.read_text())["per_fold"]
        if [r["fold"] for r in rows] == [f.name for f in folds]:
            with np.load(npz) as z:
                for r in rows:
                    r["valid_scores"], r["test_scores"] = z[f"{r['fold']}/valid"], z[f"{r['fold']}/test"]
            return with_margin_ua(rows, labels, parts)
    rows = [{"fold": f.name, **svm_fold(x, labels, *p)} for f, p in zip(folds, parts)]
    if js is not None and npz is not None:
        arrays = {f"{r['fold']}/{k}": r[f"{k}_scores"] for r in rows for k in ("valid", "test")}
        with atomic_path(npz, suffix=".npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)
        atomic_write_json(js, {"system": name, "dim": int(x.shape[1]), "per_fold": [public(r) for r in rows]})
    with_margin_ua(rows, labels, parts)
    print(f"{name} (dim {x.shape[1]}): test UA {summary([r['ua'] for r in rows])}, "
          f"valid UA {100 * np.mean([r['valid_ua'] for r in rows]):.1f}", flush=True)
    return rows


def with_margin_ua(rows: list[dict], labels: np.ndarray, parts: list) -> list[dict]:
    """Adds ``margin_ua``: test UA of the argmax of the class scores (a diagnostic: ``predict`` counts votes)."""
    for r, (_, _, te) in zip(rows, parts):
        r["margin_ua"] = unweighted_accuracy(np.searchsorted(r["classes"], labels[te]), r["test_scores"].argmax(1))
    return rows


def public(row: dict) -> dict:
    """A fold row without its score arrays (for JSON)."""
    return {k: v for k, v in row.items() if not k.endswith("_scores")}


def calibrated(row: dict, y_valid: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Validation and test log-posteriors of one system's fold, temperature fitted on validation."""
    scale = score_stats(row["valid_scores"], "svm").std  # margins shrink with C: bring them to unit spread first
    valid, test = row["valid_scores"] / scale, row["test_scores"] / scale
    t = fit_temperature(valid, y_valid)
    return log_softmax(valid / t, axis=1), log_softmax(test / t, axis=1), t


def score_fusion(systems: Sequence[list[dict]], labels: np.ndarray, parts: list) -> list[dict]:
    """Per fold: calibrate each system, then fuse left to right with :func:`emovox.fusion.fit_weighted`."""
    rows = []
    for k, (_, va, te) in enumerate(parts):
        classes = systems[0][k]["classes"]
        if any(s[k]["classes"] != classes for s in systems):
            raise ValueError("systems disagree on the class order")
        yv, yt = np.searchsorted(classes, labels[va]), np.searchsorted(classes, labels[te])
        fv, ft, t0 = calibrated(systems[0][k], yv)
        temps, weights = [t0], []
        for other in systems[1:]:
            ov, ot, t = calibrated(other[k], yv)
            fusion = fit_weighted(fv, ov, yv, metric="nll")
            fv, ft = fusion.apply(fv, ov)[0], fusion.apply(ft, ot)[0]
            temps.append(t)
            weights.append(fusion.w1)
        pred = ft.argmax(1)
        rows.append({"fold": systems[0][k]["fold"], "temperatures": temps, "w1": weights,
                     "valid_ua": unweighted_accuracy(yv, fv.argmax(1)),
                     "ua": unweighted_accuracy(yt, pred), "wa": weighted_accuracy(yt, pred)})
    return rows


def row(kind: str, members: Sequence[str], per_fold: list[dict]) -> dict:
    uas = [r["ua"] for r in per_fold]
    return {"kind": kind, "members": list(members), "ua_mean": float(np.mean(uas)), "ua_std": sample_std(uas),
            "wa_mean": float(np.mean([r["wa"] for r in per_fold])),
            "valid_ua_mean": float(np.mean([r["valid_ua"] for r in per_fold])),
            **({"margin_ua_mean": float(np.mean([r["margin_ua"] for r in per_fold]))} if "margin_ua" in per_fold[0] else {}),
            "per_fold": [public(r) for r in per_fold]}


def best_on_valid(rows: dict[str, dict], names: Sequence[str]) -> str:
    """The name with the highest mean validation UA (first on ties)."""
    return max(names, key=lambda n: (rows[n]["valid_ua_mean"], -list(names).index(n)))


def run_scores(name: str, run: str | Path, folds: Sequence, labels: np.ndarray, parts: list) -> list[dict]:
    """Per-fold rows of a trained system from its run folder (``<fold folder>/scores.json`` of
    ``emovox experiment``): validation and test log-posteriors in this recipe's utterance order,
    classes sorted as the SVMs sort them. The run must have this recipe's folds (checked by id)."""
    files = {folder.split("_", 2)[-1]: path for folder, path in score_files(run).items()}  # fold_00_test-03 -> test-03
    rows = []
    for f, (_, va, te) in zip(folds, parts):
        if f.name not in files:
            raise ConfigError(f"{run}: no scores for fold {f.name} (has {sorted(files)}); train it on this recipe's folds")
        scores = ScoreSet.load(files[f.name])
        classes = sorted(scores.classes)
        order = [scores.classes.index(c) for c in classes]
        row = {"fold": f.name, "classes": classes}
        for part, ids in (("valid", f.valid), ("test", f.test)):
            x = scores.aligned(part, list(ids), scores.classes)[:, order]
            if np.isnan(x).any():
                raise ConfigError(f"{files[f.name]}: its {part} part lacks utterances of fold {f.name}; the run "
                                  "was made on other folds")
            row[f"{part}_scores"] = x
        yv, yt = (np.searchsorted(classes, labels[i]) for i in (va, te))
        row["valid_ua"] = unweighted_accuracy(yv, row["valid_scores"].argmax(1))
        row["ua"] = unweighted_accuracy(yt, row["test_scores"].argmax(1))
        row["wa"] = weighted_accuracy(yt, row["test_scores"].argmax(1))
        rows.append(row)
    print(f"{name} ({run}): test UA {summary([r['ua'] for r in rows])}", flush=True)
    return rows


def load_features(corpus: str, whisper_feats: str, feats: str, others: Sequence[str] = OTHERS,
                  ) -> tuple[dict[str, np.ndarray], np.ndarray, list, list]:
    """Every single system's ``(N, D)`` vectors (the Whisper sets and ``others``), the labels, the
    folds and the recipe's utterances."""
    raw = read_recipe(RECIPES[corpus])
    utts, _, folds = recipe_data(raw)
    root = Path(raw["base_dir"], raw["data"]["root"]).parent
    paths = [u.path for u in utts]
    w = load_pooled(whisper_feats, "base", corpus, root, paths)
    x = {name: w[:, layers].reshape(len(w), -1) for name, layers in WHISPER.items()}
    for name in others:
        x[name] = read_shards(Path(feats) / name / corpus, root, paths,
                              f"run recipes/whisper_ft/other_feats.py --corpus {corpus} first")
    return x, np.array([u.label for u in utts]), folds, utts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="emodb", choices=list(RECIPES))
    ap.add_argument("--whisper-feats", default="runs/generalist/feats", help="folder holding base-none/<corpus>/*.npz")
    ap.add_argument("--feats", default="runs/whisper_ft/fusion/feats", help="other_feats.py output")
    ap.add_argument("--out", default="runs/whisper_ft/fusion")
    ap.add_argument("--run", action="append", default=[], metavar="NAME=DIR",
                    help="a trained system's run folder (per-fold scores.json on these folds) for score-level fusion")
    ap.add_argument("--whisper-only", action="store_true",
                    help="no ComParE/GE2E systems: the Whisper sets and the --run systems only (OUT/<corpus>-runs.json)")
    args = ap.parse_args(argv)
    runs = dict(r.split("=", 1) for r in args.run if "=" in r)
    if len(runs) != len(args.run):
        ap.error("--run takes NAME=DIR")
    if args.whisper_only and not runs:
        ap.error("nothing to fuse: --whisper-only needs at least one --run")
    x, labels, folds, utts = load_features(args.corpus, args.whisper_feats, args.feats,
                                           () if args.whisper_only else OTHERS)
    parts = split(folds, {u.id: i for i, u in enumerate(utts)})
    cache = Path(args.out) / args.corpus
    fold_rows = {n: run_system(n, v, labels, folds, parts, cache) for n, v in x.items()}
    rows = {n: row("single", [n], r) for n, r in fold_rows.items()}
    whisper = best_on_valid(rows, list(WHISPER))
    ge2e = None if args.whisper_only else best_on_valid(rows, GE2E)
    for partners in ([] if ge2e is None else (["compare"], [ge2e], ["compare", ge2e])):
        members = [whisper, *partners]
        name = " + ".join(members)
        xf = np.concatenate([x[m] for m in members], axis=1)
        rows[f"feature: {name}"] = row("feature", members, run_system("feature " + name, xf, labels, folds,
                                                                        parts, cache))
        rows[f"score: {name}"] = row("score", members, score_fusion([fold_rows[m] for m in members], labels, parts))
        print(f"score {name}: test UA {summary([r['ua'] for r in rows[f'score: {name}']['per_fold']])}, "
              f"valid UA {100 * rows[f'score: {name}']['valid_ua_mean']:.1f}", flush=True)
    for name, run in runs.items():
        fold_rows[name] = run_scores(name, run, folds, labels, parts)
        rows[name] = row("single", [name], fold_rows[name])
        fused = f"score: {whisper} + {name}"
        rows[fused] = row("score", [whisper, name], score_fusion([fold_rows[whisper], fold_rows[name]], labels, parts))
        print(f"{fused}: test UA {summary([r['ua'] for r in rows[fused]['per_fold']])}, "
              f"valid UA {100 * rows[fused]['valid_ua_mean']:.1f}", flush=True)
    fusions = [n for n, r in rows.items() if r["kind"] != "single"]
    chosen = {"whisper": whisper, "ge2e": ge2e, "fusion": best_on_valid(rows, fusions)}
    atomic_write_json(Path(args.out) / f"{args.corpus}{'-runs' if args.whisper_only else ''}.json",
                      {"corpus": args.corpus, "n_clips": len(labels), "folds": len(folds), "chosen": chosen,
                       "rows": rows, "command": "python " + " ".join(sys.argv)})
    print(f"chosen on validation: {chosen}; fusion test UA {100 * rows[chosen['fusion']]['ua_mean']:.1f} ± "
          f"{100 * rows[chosen['fusion']]['ua_std']:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
