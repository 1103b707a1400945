"""Nuisance attribute projection (NAP) of speaker and corpus directions, screened by nested LOCO.

Session 20's screen (model card, "Nuisance attribute projection"; not shipped). For each fold, on
its training clips (clean copies): the flattened pooled states 2, 3, 4 are standardised with the
training mean and deviation; the (speaker, emotion) cell means minus each emotion's mean over cells
(what varies between speakers, and corpora, within one emotion) give the nuisance directions; the
top ``k`` are projected out of every clip's features before the head (plain, 128 wide). Scored as
``train.py --stage nested`` scores candidates: the 20 inner folds' 4-class UA is the rule; the
outer folds (robust copies) come last. Resumable JSON lines, one file per k and process.

    python recipes/generalist/nap.py 0 16 64 --part 0/2 --out runs/nap   # and --part 1/2 beside it
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
import train as T  # noqa: E402
from data import LABELS, balanced_weights, indices, label_ids, load_features, load_utterances  # noqa: E402
from features import variant_name  # noqa: E402

from emovox.evaluation.cross_corpus import score_held_out  # noqa: E402
from emovox.protocols import Fold, leave_one_corpus_out  # noqa: E402

LAYERS = [2, 3, 4]


def projector(feats: np.ndarray, y: np.ndarray, speaker: np.ndarray, tr: np.ndarray,
              k: int) -> tuple[Callable[[np.ndarray], np.ndarray], float]:
    """The projection fitted on clips ``tr``, and the share of the cell-mean scatter it removes."""
    x = feats[tr].reshape(len(tr), -1)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    cells: dict[tuple[str, int], list[np.ndarray]] = {}
    for i, row in zip(tr, (x - mu) / sd):
        cells.setdefault((speaker[i], int(y[i])), []).append(row)
    means = np.stack([np.mean(v, 0) for v in cells.values()])
    label = np.array([c[1] for c in cells])
    for c in np.unique(label):
        means[label == c] -= means[label == c].mean(0)
    _, s, vt = np.linalg.svd(means, full_matrices=False)
    v = vt[:k].T

    def apply(a: np.ndarray) -> np.ndarray:
        z = (a.reshape(len(a), -1) - mu) / sd
        return ((z - (z @ v) @ v.T) * sd + mu).reshape(a.shape).astype(np.float32)

    return apply, float((s[:k] ** 2).sum() / (s ** 2).sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ks", type=int, nargs="+", help="directions projected out (0: none, the baseline)")
    ap.add_argument("--part", default="0/1", help="this process's share of the folds, I/N")
    ap.add_argument("--root", default="../shared/corpora")
    ap.add_argument("--feats", default="runs/generalist/feats")
    ap.add_argument("--out", default="runs/nap")
    args = ap.parse_args()
    torch.set_num_threads(1)
    utts = load_utterances(args.root)
    feats = load_features(args.feats, args.root, utts, variant=variant_name("base", "none", -23.0))[:, LAYERS]
    robust: list[np.ndarray] = []
    y, w = label_ids(utts), balanced_weights(utts)
    truth = np.array([u.label for u in utts])
    speaker = np.array([f"{u.corpus}/{u.speaker}" for u in utts])
    corpus_of = {u.id: u.corpus for u in utts}
    cand = {"layers": [0, 1, 2], "hidden": 128, "dropout": 0.3, "epochs": 40}
    inner_jobs, outer_jobs = [], []
    for k in args.ks:
        for fold in leave_one_corpus_out(utts, valid_fraction=0.15, seed=0):
            test = fold.info["test_corpus"]
            inner_jobs += [(k, Fold(f"{test}/{c}", [i for i in fold.train if corpus_of[i] != c],
                                    [i for i in fold.valid if corpus_of[i] != c],
                                    [i for i in fold.train + fold.valid if corpus_of[i] == c],
                                    info={"protocol": "nested"}), c) for c in fold.info["train_corpora"]]
            outer_jobs.append((k, fold, test))
    part, parts = map(int, args.part.split("/"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for n, (k, fold, scored) in enumerate(inner_jobs + outer_jobs):
        path = out / f"h128_k{k}.{part}.jsonl"
        done = {json.loads(line)["key"] for line in path.read_text().splitlines()} if path.exists() else set()
        if n % parts != part or fold.name in done:
            continue
        outer = "/" not in fold.name
        if outer and not robust:
            robust.append(load_features(args.feats, args.root, utts,
                                        variant=variant_name("base", "robust", -23.0))[:, LAYERS])
        apply, share = projector(feats, y, speaker, indices(utts, fold.train), k) if k else (lambda a: a, 0.0)
        *_, logits = T.run_fold(apply(feats), y, w, utts, fold, cand, aug=apply(robust[0]) if outer else None)
        ua = score_held_out(truth[indices(utts, fold.test)], logits, LABELS, corpus=scored)["shared"]["ua"]
        with open(path, "a") as fh:
            fh.write(json.dumps({"key": fold.name, "k": k, "ua": float(ua), "share": share}) + "\n")
        print(k, fold.name, round(100 * ua, 1), round(share, 3), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
