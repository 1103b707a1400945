"""Nested leave-one-corpus-out of ``emovox predict --adapt`` (emovox.source_adapt): a held-out corpus's
pooled statistics shifted onto the training mean before the shipped head (version 3's candidate).

    python recipes/generalist/adapt.py --augment robust            # all five outer folds, resumable
    python recipes/generalist/adapt.py --augment robust --folds ased emodb   # a part (run two processes)
    python recipes/generalist/adapt.py --report                    # the table (README.md)

Variants: no shift, or the source mean shifted onto ``head`` (the head's stored training mean),
``corpora`` (the mean of the training corpora's means) or ``nearest`` (the mean of the training
corpus nearest to the source), with strength 0.5 / 0.75 / 1, every
pooled statistic or (``:means``) the frame means only. Inner
folds (as ``train.py --stage nested``: each training corpus left out in turn, clean training)
choose the variant: the highest of the worse of two inner means of the 4-class UA — statistics of
the whole (balanced) corpus, and of a 70 %-neutral sample of it (UA on that sample), because a real
archive is rarely emotion-balanced. The outer held-out corpus is reported beside it (head trained with the degraded copies, as shipped) and never read
by the rule. Also reported: statistics from a 70 %-neutral sample of the corpus (UA on that
sample), and from 20 / 50 random clips (mean of 5 draws). One JSON per outer fold.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from emovox.evaluation.cross_corpus import score_held_out
from emovox.protocols import Fold, leave_one_corpus_out
from emovox.source_adapt import PARTS, source_shift
from emovox.whisper.model import predict_head

sys.path.insert(0, str(Path(__file__).parent))
from data import LABELS, balanced_weights, label_ids, load_features, load_utterances  # noqa: E402
from features import variant_name  # noqa: E402
from train import run_fold  # noqa: E402

HERE = Path(__file__).parent
STRENGTHS = (0.5, 0.75, 1.0)


def ua4(y: np.ndarray, logits: np.ndarray) -> float:
    """The 4-class UA of the leave-one-corpus-out tables (angry, happy, neutral, sad), as train.py scores it."""
    return score_held_out(np.asarray(LABELS)[y], logits, LABELS)["shared"]["ua"]


def targets(head, x_train: np.ndarray, corpora: np.ndarray) -> dict[str, Any]:
    """Training means to shift onto: the head's, the mean of the corpora's, or (``nearest``) the
    training corpus whose mean is nearest to the source's (distance in the head's standardised units)."""
    means = np.stack([x_train[corpora == c].mean(0) for c in np.unique(corpora)])
    std = head.std[:, 0].numpy()

    def nearest(mu: np.ndarray) -> np.ndarray:
        return means[int(np.argmin((((means - mu) / std) ** 2).sum(axis=(1, 2))))]

    return {"head": head.mean[:, 0].numpy(), "corpora": means.mean(0), "nearest": nearest}


def scores(head, x: np.ndarray, y: np.ndarray, stats_x: np.ndarray, tg: dict[str, Any]) -> dict[str, float]:
    """UA of every variant when the shift is estimated from ``stats_x``."""
    out = {"none": ua4(y, predict_head(head, x))}
    for name, target in tg.items():
        if callable(target):
            target = target(stats_x.mean(0))
        for s in STRENGTHS:
            for part in PARTS:
                shift = source_shift(stats_x, target, s, part)
                out[f"{name}@{s}" + ("" if part == "all" else f":{part}")] = ua4(y, predict_head(head, x - shift.offset))
    return out


def skewed(y: np.ndarray, rng: np.random.Generator, neutral: float = 0.7) -> np.ndarray:
    neu = np.flatnonzero(y == LABELS.index("neutral"))
    other = np.flatnonzero(y != LABELS.index("neutral"))
    n_other = min(len(other), int(round(len(neu) * (1 - neutral) / neutral)))
    return np.concatenate([neu, rng.choice(other, n_other, replace=False)])


def outer_fold(fold, feats, aug, y, w, utts, cand, corpus) -> dict:
    head, _, (tr, _, te), *_ = run_fold(feats, y, w, utts, fold, cand, aug=aug)
    x = feats[:, cand["layers"]]
    tg = targets(head, x[tr], corpus[tr])
    rng = np.random.default_rng(0)
    row = {"full": scores(head, x[te], y[te], x[te], tg)}
    sk = te[skewed(y[te], rng)]
    row["skew70"] = scores(head, x[sk], y[sk], x[sk], tg)
    for n in (20, 50):
        draws = [scores(head, x[te], y[te], x[rng.choice(te, n, replace=False)], tg) for _ in range(5)]
        row[f"n{n}"] = {k: float(np.mean([d[k] for d in draws])) for k in draws[0]}
    return row


def inner_folds(fold, feats, y, w, utts, cand, corpus) -> dict:
    corpus_of = {u.id: u.corpus for u in utts}
    x = feats[:, cand["layers"]]
    rows = {}
    for inner in fold.info["train_corpora"]:
        part = Fold(f"{fold.info['test_corpus']}/{inner}", [i for i in fold.train if corpus_of[i] != inner],
                    [i for i in fold.valid if corpus_of[i] != inner],
                    [i for i in fold.train + fold.valid if corpus_of[i] == inner], info={"protocol": "nested"})
        head, _, (tr, _, te), *_ = run_fold(feats, y, w, utts, part, cand)
        tg = targets(head, x[tr], corpus[tr])
        sk = te[skewed(y[te], np.random.default_rng(0))]
        rows[inner] = {"full": scores(head, x[te], y[te], x[te], tg), "skew70": scores(head, x[sk], y[sk], x[sk], tg)}
        print(part.name, {k: round(100 * v, 1) for k, v in rows[inner]["full"].items()}, flush=True)
    return rows


def report(out: Path) -> dict:
    rows = {p.stem.split("-")[-1]: json.loads(p.read_text()) for p in sorted(out.glob("adapt-*.json"))}
    variants = list(next(iter(rows.values()))["outer"]["full"])
    table = {}
    for v in variants:
        inner = [r["inner"][c]["full"][v] for r in rows.values() for c in r["inner"]]
        inner_skew = [r["inner"][c]["skew70"][v] for r in rows.values() for c in r["inner"]]
        table[v] = {"inner": float(np.mean(inner)), "inner_skew70": float(np.mean(inner_skew))}
        for part in ("full", "skew70", "n20", "n50"):
            per = {c: r["outer"][part][v] for c, r in rows.items()}
            table[v][part] = {"per_corpus": per, "mean": float(np.mean(list(per.values()))),
                              "min": float(min(per.values()))}
    balanced = max(table, key=lambda k: table[k]["inner"])
    chosen = max(table, key=lambda k: min(table[k]["inner"], table[k]["inner_skew70"]))
    for v, t in table.items():
        print(f"{v:14s} inner {100 * t['inner']:5.1f} (skew {100 * t['inner_skew70']:5.1f})  " + "  ".join(
            f"{p} {100 * t[p]['mean']:5.1f}/{100 * t[p]['min']:5.1f}" for p in ("full", "skew70", "n20", "n50")))
    print("chosen (the worse of the inner balanced and 70 %-neutral means):", chosen, "| balanced alone:", balanced)
    return {"variants": table, "chosen": chosen, "chosen_balanced_only": balanced, "folds": sorted(rows),
            "rule": "max over variants of min(inner mean 4-class UA with balanced statistics, with 70 %-neutral ones)"}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default=str(HERE / "nested.yaml"))
    ap.add_argument("--candidate", default="l234_mlp", help="the head (default: the shipped version 3)")
    ap.add_argument("--root", default="../shared/corpora")
    ap.add_argument("--feats", default="runs/generalist/feats")
    ap.add_argument("--out", default="runs/generalist/adapt")
    ap.add_argument("--augment", default="robust", help="degraded copies for the outer heads (as shipped)")
    ap.add_argument("--loudness", type=float, default=None, metavar="LUFS",
                    help="features of clips scaled to this loudness (train.py --loudness; version 4: -23)")
    ap.add_argument("--folds", nargs="+", default=None, help="only these outer held-out corpora")
    ap.add_argument("--report", action="store_true", help="aggregate the per-fold JSON into adapt.json")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.report:
        (out / "adapt.json").write_text(json.dumps(report(out), indent=1))
        return 0
    torch.set_num_threads(1)
    recipe = yaml.safe_load(Path(args.recipe).read_text())
    cand = recipe["candidates"][args.candidate]
    utts = load_utterances(args.root)
    feats = load_features(args.feats, args.root, utts, variant=variant_name("base", "none", args.loudness))
    aug = None if args.augment == "none" else load_features(args.feats, args.root, utts,
                                                            variant=variant_name("base", args.augment, args.loudness))
    y, w = label_ids(utts), balanced_weights(utts)
    corpus = np.array([u.corpus for u in utts])
    for fold in leave_one_corpus_out(utts, valid_fraction=recipe["valid_fraction"], seed=0):
        name = fold.info["test_corpus"]
        path = out / f"adapt-{name}.json"
        if (args.folds and name not in args.folds) or path.exists():
            continue
        row = {"outer": outer_fold(fold, feats, aug, y, w, utts, cand, corpus)}
        print(name, "outer", {k: round(100 * v, 1) for k, v in row["outer"]["full"].items()}, flush=True)
        row["inner"] = inner_folds(fold, feats, y, w, utts, cand, corpus)
        path.write_text(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
