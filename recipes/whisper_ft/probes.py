"""Per-layer linear probes of Whisper hidden states, and a SUPERB-style weighted-layer head.

Features: mean ‖ std over frames of each hidden state (0 = stem, i = block i), unpadded input,
as written by ``recipes/generalist/features.py`` (``<feats>/<model>-none/<corpus>/*.npz``, arrays
``paths`` relative to the corpora folder and ``feats`` ``(N, L+1, 2d)``). Per fold and feature set
(one hidden state, or a concatenation): the project's baseline SVM
(:func:`emovox.training.baseline.fit_fold`: StandardScaler + linear SVC, class-balanced, C from
1e-5..1 chosen on the fold's validation speakers by UA, refitted on train + valid, test scored
once). ``--head``: a :class:`emovox.whisper.model.PooledHead` with ``combine="weighted"`` over all
hidden states (softmax layer weights trained with the head; the epoch chosen on validation UA).
Folds are those of ``emodb_loso.yaml`` / ``ravdess_6x4.yaml`` (= the baselines' folds).

    python recipes/whisper_ft/probes.py --model base --corpus emodb --feats runs/generalist/feats
    python recipes/whisper_ft/probes.py --model tiny.en --corpus ravdess --feats runs/whisper_ft/feats --head
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, read_recipe, recipe_data, sample_std, summary  # noqa: E402

from emovox.errors import ConfigError  # noqa: E402
from emovox.io import atomic_write_json  # noqa: E402

RECIPES = {"emodb": HERE / "emodb_loso.yaml", "ravdess": HERE / "ravdess_6x4.yaml"}
CONCATS = {"base": [[2, 3, 4], [1, 3, 5]], "tiny.en": [[2, 3, 4], [1, 2, 3]]}


def read_shards(folder: str | Path, corpora_root: str | Path, paths: Sequence[str], hint: str) -> np.ndarray:
    """float32 rows of the ``*.npz`` shards in ``folder`` (arrays ``paths`` relative to the corpora
    folder, ``feats``) for audio ``paths``, in order; ConfigError names the first gap and ``hint``."""
    folder = Path(folder)
    table: dict[str, np.ndarray] = {}
    for shard in sorted(glob.glob(str(folder / "*.npz"))):
        with np.load(shard) as z:
            table.update(zip((str(p) for p in z["paths"]), z["feats"]))
    root = os.path.realpath(corpora_root)
    rel = [os.path.relpath(os.path.realpath(p), root) for p in paths]
    missing = [r for r in rel if r not in table]
    if missing:
        raise ConfigError(f"{len(missing)} of {len(rel)} clips have no pooled features in {folder} (e.g. {missing[0]}); "
                          f"{hint}")
    return np.stack([table[r] for r in rel]).astype(np.float32)


def load_pooled(feats_dir: str | Path, model: str, corpus: str, corpora_root: str | Path,
                paths: Sequence[str]) -> np.ndarray:
    """``(N, L+1, 2d)`` float32 pooled states for audio ``paths``, in order (ConfigError names a gap)."""
    return read_shards(Path(feats_dir) / f"{model}-none" / corpus, corpora_root, paths,
                       f"run recipes/generalist/features.py --model {model} --corpora {corpus} first")


def probe(x: np.ndarray, labels: np.ndarray, index: dict[str, int], folds: Sequence) -> list[dict]:
    """One baseline SVM per fold on ``x`` ``(N, D)``: chosen C, validation UA, test UA/WA."""
    from emovox.training.baseline import SVMConfig, fit_fold
    from emovox.evaluation.metrics import unweighted_accuracy, weighted_accuracy

    svm = SVMConfig()
    grid = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    rows = []
    for fold in folds:
        tr, va, te = ([index[i] for i in part] for part in (fold.train, fold.valid, fold.test))
        model, c, scores = fit_fold(x[tr], labels[tr], x[va], labels[va], svm, grid)
        pred = model.predict(x[te])
        rows.append({"fold": fold.name, "C": c, "valid_ua": scores.get(repr(c)),
                     "ua": unweighted_accuracy(labels[te], pred), "wa": weighted_accuracy(labels[te], pred)})
    return rows


def weighted_head(x: np.ndarray, y: np.ndarray, index: dict[str, int], folds: Sequence, n_classes: int,
                  epochs: int = 60, lrs: Sequence[float] = (1e-3,), batch_size: int = 64,
                  combine: str = "weighted") -> tuple[list[dict], list[list[float]]]:
    """PooledHead(combine='weighted') over all layers of ``x`` ``(N, L, 2d)`` per fold; UA and layer weights.

    Class-balanced sampling; the learning rate (of ``lrs``) and the epoch are chosen on the fold's
    validation speakers (validation UA), then the test part is scored once."""
    import torch

    from emovox.whisper.model import (
        HeadTraining,
        balanced_accuracy,
        fit_head,
        predict_head,
    )

    rows, weights = [], []
    for fold in folds:
        tr, va, te = (np.array([index[i] for i in part]) for part in (fold.train, fold.valid, fold.test))
        counts = np.bincount(y[tr], minlength=n_classes)
        w = 1.0 / counts[y[tr]]
        best = None
        for lr in lrs:
            cfg = HeadTraining(epochs=epochs, lr=float(lr), combine=combine, batch_size=batch_size)
            head, hist = fit_head(x[tr], y[tr], w, n_classes, cfg, valid=(x[va], y[va]))
            if best is None or hist.get("valid_ua", -1.0) > best[1].get("valid_ua", -1.0):
                best = (head, hist, float(lr))
        head, hist, lr = best
        pred = predict_head(head, x[te]).argmax(1)
        rows.append({"fold": fold.name, "valid_ua": hist.get("valid_ua"), "epoch": hist.get("epoch"), "lr": lr,
                     "ua": balanced_accuracy(y[te], pred), "wa": float((pred == y[te]).mean())})
        if head.layer_logits is not None:
            weights.append(torch.softmax(head.layer_logits.detach(), 0).tolist())
    return rows, weights


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="base", choices=list(CONCATS))
    ap.add_argument("--corpus", default="emodb", choices=list(RECIPES))
    ap.add_argument("--feats", default="runs/generalist/feats", help="folder holding <model>-none/<corpus>/*.npz")
    ap.add_argument("--out", default="runs/whisper_ft/probes")
    ap.add_argument("--head", action="store_true", help="also train the weighted-layer PooledHead")
    ap.add_argument("--head-epochs", type=int, default=60)
    ap.add_argument("--head-lrs", type=float, nargs="+", default=[1e-3, 1e-2],
                    help="learning rates tried per fold (chosen on validation UA)")
    ap.add_argument("--only-head", action="store_true", help="skip the SVM probes")
    ap.add_argument("--head-layers", type=int, nargs="+", help="hidden states for the head (default: all)")
    ap.add_argument("--head-combine", default="weighted", choices=["weighted", "concat"])
    args = ap.parse_args(argv)
    raw = read_recipe(RECIPES[args.corpus])
    utts, classes, folds = recipe_data(raw)
    corpora_root = Path(raw["base_dir"], raw["data"]["root"]).parent
    x = load_pooled(args.feats, args.model, args.corpus, corpora_root, [u.path for u in utts])
    labels = np.array([u.label for u in utts])
    y = np.array([classes.index(u.label) for u in utts])
    index = {u.id: i for i, u in enumerate(utts)}
    n = x.shape[1] - 1
    sets = {f"layer {i}": [i] for i in range(n + 1)}
    sets.update({"+".join(map(str, c)): c for c in CONCATS[args.model] if max(c) <= n})
    tag = "" if not args.only_head else f"-head-{args.head_combine}" + (
        "-" + "".join(map(str, args.head_layers)) if args.head_layers else "")
    out_path = Path(args.out) / f"{args.model}-{args.corpus}{tag}.json"
    result: dict = {"model": args.model, "corpus": args.corpus, "n_clips": len(utts), "folds": len(folds),
                    "probes": {}, "command": " ".join(sys.argv)}
    for name, layers in ({} if args.only_head else sets).items():
        rows = probe(x[:, layers].reshape(len(x), -1), labels, index, folds)
        uas = [r["ua"] for r in rows]
        result["probes"][name] = {"layers": layers, "ua_mean": float(np.mean(uas)), "ua_std": sample_std(uas),
                                  "per_fold": rows}
        atomic_write_json(out_path, result)
        print(f"{args.model} {args.corpus} {name}: UA {summary(uas)}", flush=True)
    if args.head:
        hx = x if args.head_layers is None else x[:, args.head_layers]
        rows, weights = weighted_head(hx, y, index, folds, len(classes), args.head_epochs, args.head_lrs,
                                      combine=args.head_combine)
        uas = [r["ua"] for r in rows]
        result["weighted_head"] = {"lrs": args.head_lrs, "epochs": args.head_epochs, "combine": args.head_combine,
                                   "layers": args.head_layers or "all", "ua_mean": float(np.mean(uas)),
                                   "ua_std": sample_std(uas), "per_fold": rows,
                                   "layer_weights_mean": np.mean(weights, 0).tolist() if weights else None}
        atomic_write_json(out_path, result)
        print(f"{args.model} {args.corpus} {args.head_combine} head on {args.head_layers or 'all'}: UA {summary(uas)}"
              + (f"; layer weights {np.round(np.mean(weights, 0), 3).tolist()}" if weights else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
