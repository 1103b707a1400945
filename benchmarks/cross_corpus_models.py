"""Score bundled (or any) models on whole corpora they never saw: the before/after figure.

    python benchmarks/cross_corpus_models.py --model fast --corpora nemo ased --out benchmarks/results/fast_unseen.json

Every clip of each corpus is predicted (no VAD abstention, so every clip gets a label) and scored
with :func:`emovox.evaluation.cross_corpus.score_held_out`: UA on the labels the corpus shares
with the model, UA on the 4 classes every corpus has, and the predicted-label distribution.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from emovox.corpora.registry import load_corpus
from emovox.evaluation.cross_corpus import score_held_out
from emovox.inference import Recognizer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--root", default="../shared/corpora")
    ap.add_argument("--corpora", nargs="+", default=["nemo", "ased"])
    ap.add_argument("--every", type=int, default=1, help="score every k-th clip (speed)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    rec = Recognizer.load(args.model, backend=args.backend, vad=None, threads=1)
    result = {"model": args.model, "info": rec.info(), "corpora": {}}
    for corpus in args.corpora:
        utts = load_corpus(corpus, os.path.join(args.root, corpus), check_files=False)[::args.every]
        t = time.process_time()
        preds = rec.predict([u.path for u in utts])
        cpu = time.process_time() - t
        ok = [(u, p) for u, p in zip(utts, preds) if p.ok]
        scores = np.log(np.clip(np.array([[p.probabilities[k] for k in rec.labels] for _, p in ok]), 1e-12, 1))
        res = score_held_out([u.label for u, _ in ok], scores, rec.labels, corpus=corpus)
        res["cpu_seconds"] = cpu
        result["corpora"][corpus] = res
        print(corpus, "4-class UA", round(100 * res["shared"]["ua"], 1), "own UA",
              round(100 * res["own"]["ua"], 1) if res["own"] else None, "top", res["top_class"], round(res["max_share"], 2),
              flush=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1, default=float)
    return 0


if __name__ == "__main__":
    sys.exit(main())
