"""Speech + ASR-text late fusion on a real corpus (RAVDESS by default), speaker-independent folds.

    .venv/bin/python benchmarks/fusion_real.py -o runs/fusion_ravdess
    .venv/bin/python benchmarks/fusion_real.py -o runs/fusion_ravdess --speech-run runs/ravdess-speech

Steps (each cached / skipped when already done):
1. utterances + folds (RAVDESS: 8 classes, 6 folds of 4 actors, 1 validation actor per fold);
2. transcripts from Whisper tiny.en (the corpus's own sentence texts are replaced by ASR output);
3. speech scores per fold: with ``--speech-run`` the ``<fold>/scores.json`` files of an ``emovox
   experiment``/``multimodal`` speech run on the same recipe; otherwise a stand-in speech system
   (frozen Whisper-encoder mean+std vectors + standardisation + logistic regression whose C is picked
   on validation UA) so the fusion can be measured now — say which one in any table;
4. text scores per fold: MiniLM fine-tuned on the ASR transcripts (``emovox.training.text``);
5. fusion (``emovox.fusion.fuse_runs``): speech-only, text-only, weighted (w1 on validation, judged by
   cross-entropy and by UA: ``fusion_nll/``, ``fusion_ua/``), z-norm.

RAVDESS sentences carry no emotion ("Kids are talking by the door" / "Dogs are sitting by the
door"), so text alone is near chance and a sound fusion must not fall below speech-only: the
chosen w1 per fold is printed. Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger("fusion_real")


def speech_stand_in(utts, folds, classes, out: Path, cache: str | None) -> None:
    """Whisper-encoder vectors + logistic regression: valid/test log posteriors per fold."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from emovox.training.baseline import utterance_vectors
    from emovox.evaluation.metrics import unweighted_accuracy
    from emovox.fusion import ScoreSet
    from emovox.training.experiment import fold_dir
    from emovox.upstreams import build_upstream

    x = utterance_vectors(utts, build_upstream("whisper"), cache, progress=True)
    row = {u.id: i for i, u in enumerate(utts)}
    y = np.array([classes.index(u.label) for u in utts])
    for i, fold in enumerate(folds):
        path = fold_dir(out, i, fold.name) / "scores.json"
        if path.is_file():
            continue
        tr, va, te = ([row[u] for u in part] for part in (fold.train, fold.valid, fold.test))
        best = None
        for c in (0.01, 0.1, 1.0):
            model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(x[tr], y[tr])
            ua = unweighted_accuracy(y[va], model.predict(x[va]))
            if best is None or ua > best[0]:
                best = (ua, c, model)
        scores = ScoreSet(classes, {"modality": "speech", "system": "whisper-encoder+logreg", "C": best[1]})
        for name, idx in (("valid", va), ("test", te)):
            scores.add(name, [utts[j].id for j in idx], y[idx], best[2].predict_log_proba(x[idx]))
        scores.save(path)
        log.info("speech stand-in fold %s: C=%g valid UA %.3f", fold.name, best[1], best[0])


def main() -> None:
    from emovox.asr import Transcriber, fill_transcripts
    from emovox.corpora import apply_labels
    from emovox.corpora.registry import load_corpus
    from emovox.fusion import FusionConfig, fuse_runs
    from emovox.protocols import make_folds, save_folds
    from emovox.training.experiment import fold_dir
    from emovox.training.text import TextTrainConfig, run_text_fold

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--corpus", default="ravdess")
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[2] / "shared" / "corpora" / "ravdess"))
    ap.add_argument("--labels", default="ravdess8")
    ap.add_argument("--protocol", default="leave_k_speakers_out")
    ap.add_argument("--k", type=int, default=4, help="speakers per test fold (leave_k_speakers_out)")
    ap.add_argument("--speech-run", help="speech run folder with <fold>/scores.json (same folds)")
    ap.add_argument("--text-epochs", type=int, default=2)
    ap.add_argument("--text-lr", type=float, default=2e-5)
    ap.add_argument("--cache", help="feature/transcript cache folder (default: the emovox cache)")
    ap.add_argument("--metrics", nargs="+", default=["nll", "ua"], help="w1 criteria to compare (nll ua wa)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    out = Path(args.out)
    start = time.time()

    utts = apply_labels(load_corpus(args.corpus, args.root), args.labels)
    classes = sorted({u.label for u in utts})
    opts = {"k": args.k} if args.protocol == "leave_k_speakers_out" else {}
    folds = make_folds(utts, args.protocol, seed=0, valid_fraction=0.1, **opts)
    save_folds(out / "folds.json", folds, {"corpus": args.corpus, "protocol": args.protocol, **opts})
    utts, n_empty = fill_transcripts(utts, Transcriber(cache_dir=args.cache), overwrite=True, progress=True)
    log.info("ASR: %d utterances, %d empty transcripts, %d distinct texts (%.0f s)", len(utts), n_empty,
             len({u.text for u in utts}), time.time() - start)

    speech_dir = Path(args.speech_run) if args.speech_run else out / "speech"
    if not args.speech_run:
        speech_stand_in(utts, folds, classes, speech_dir, args.cache)
    cfg = TextTrainConfig(epochs=args.text_epochs, lr=args.text_lr, max_length=32, early_stopping=1,
                          progress=False, threads=1)
    for i, fold in enumerate(folds):
        run_text_fold(utts, fold, classes, cfg, fold_dir(out / "text", i, fold.name), seed=i, save_model=False)
    print(f"speech scores from: {args.speech_run or 'stand-in (Whisper encoder + logistic regression)'}")
    for metric in args.metrics:
        summary = fuse_runs(speech_dir, out / "text", out / f"fusion_{metric}", FusionConfig(metric=metric))
        print(f"\n## w1 judged by validation {metric}\n")
        print((out / f"fusion_{metric}" / "fusion.md").read_text())
        print("weighted w1:", {f: round(w, 2) for f, w in summary["w1"]["weighted"].items()})
    print(f"total {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
