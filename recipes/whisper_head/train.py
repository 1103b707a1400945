"""Train the bundled Whisper model: a linear head on pooled frozen Whisper tiny.en encoder frames.

    python recipes/whisper_head/train.py [--corpora ../shared/corpora] [-o runs/whisper_head/model]

Data, classes and split are the default model's (recipes/default): RAVDESS + TESS + EmoDB, 7 classes
(calm -> neutral, boredom dropped), speaker_kfold fold 1 (seed 0) as the held-out test speakers and
its validation speakers for choosing the weight decay. Features: unpadded int8 Whisper frames
(``emovox.upstreams.whisper``), pooled to mean ‖ std and cached by
:func:`emovox.training.baseline.utterance_vectors` (the same cache as recipes/baseline).
The head (``frame_head``) is multinomial logistic regression fitted with L-BFGS; after the
held-out report it is refitted on train + valid and written as the model package.

    python recipes/whisper_head/train.py --cv [--cv-output runs/whisper_head/cv]

runs the same recipe on all 5 folds of that split (weight decay chosen on each fold's validation
speakers, test speakers scored once) and writes per-fold metrics + mean ± std with
:func:`emovox.evaluation.report.write_report`; it writes no model.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CORPORA = ("ravdess", "tess", "emodb")
CLASSES = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
LABEL_MAP = {"name": "default7", "classes": CLASSES, "map": {"calm": "neutral"}, "unmapped": "drop"}
WEIGHT_DECAYS = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2]
#: fold 1 of recipes/default (its MODEL_CARD.md); checked against speaker_kfold below
TEST_SPEAKERS = {"03", "11", "Actor_04", "Actor_10", "Actor_16", "Actor_20", "Actor_21"}

log = logging.getLogger("whisper_head")


def load_data(corpora: Path) -> list:
    from emovox.corpora.registry import load_corpus

    utts = []
    for name in CORPORA:
        utts += load_corpus(name, str(corpora / name), labels=LABEL_MAP)
    return utts


def fit_head(x: np.ndarray, y: np.ndarray, weight_decay: float, seed: int = 0):
    """``frame_head`` whose standardisation is ``x``'s and whose linear layer is L2-regularised
    multinomial logistic regression on it (full-batch L-BFGS)."""
    import torch

    from emovox.models import build_model

    torch.manual_seed(seed)
    model = build_model("frame_head", len(CLASSES), in_features=x.shape[1] // 2)
    xt = torch.from_numpy(x).float()
    model.set_standardization(xt.mean(0), xt.std(0, unbiased=False))
    z, yt = model.standardize(xt), torch.from_numpy(y).long()
    layer = model.classifier
    opt = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=500, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(z), yt) + 0.5 * weight_decay * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return model.eval()


def predict(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.inference_mode():
        return model.classifier(model.standardize(torch.from_numpy(x).float())).argmax(-1).numpy()


def run_fold(fold, by_id: dict, feats: dict) -> dict:
    """Choose the weight decay on ``fold``'s validation speakers, fit on its training speakers and
    score its test speakers once; the arrays are kept for the shipped refit."""
    from emovox.evaluation.metrics import classification_metrics

    train, valid, test_utts = ([by_id[i] for i in ids] for ids in (fold.train, fold.valid, fold.test))

    def xy(part):
        return (np.stack([feats[id(u)] for u in part]), np.array([CLASSES.index(u.label) for u in part]))

    (xtr, ytr), (xva, yva), (xte, yte) = xy(train), xy(valid), xy(test_utts)
    valid_ua = {}
    for wd in WEIGHT_DECAYS:
        valid_ua[wd] = classification_metrics(yva, predict(fit_head(xtr, ytr, wd), xva), range(len(CLASSES)))["ua"]
        log.info("%s weight_decay %g: valid UA %.3f", fold.name, wd, valid_ua[wd])
    best = max(WEIGHT_DECAYS, key=lambda wd: (valid_ua[wd], wd))
    pred = predict(fit_head(xtr, ytr, best), xte)
    test = classification_metrics(yte, pred, range(len(CLASSES)))
    by_corpus = {}
    for corpus in sorted({u.corpus for u in test_utts}):
        part = np.array([u.corpus == corpus for u in test_utts])
        by_corpus[corpus] = classification_metrics(yte[part], pred[part], range(len(CLASSES)))
    log.info("held-out %s (wd %g): UA %.3f WA %.3f macro-F1 %.3f (n=%d)",
             fold.name, best, test["ua"], test["wa"], test["macro_f1"], test["n"])
    for corpus, m in by_corpus.items():
        log.info("  %s speakers only: UA %.3f WA %.3f (n=%d)", corpus, m["ua"], m["wa"], m["n"])
    return {"train": train, "valid": valid, "test_utts": test_utts, "best": best, "valid_ua": valid_ua,
            "test": test, "by_corpus": by_corpus, "x_fit": np.concatenate([xtr, xva]),
            "y_fit": np.concatenate([ytr, yva])}


def cross_validate(folds: list, by_id: dict, feats: dict, out_dir: str) -> dict:
    """All folds with the same recipe; per-fold metrics + mean ± std written by ``write_report``."""
    from emovox.evaluation.report import write_report

    results, extra = [], {}
    for fold in folds:
        r = run_fold(fold, by_id, feats)
        results.append({"fold": fold.name, "metrics": r["test"]})
        extra[fold.name] = {
            "weight_decay": r["best"], "valid_ua": r["valid_ua"][r["best"]],
            "test_speakers": fold.info["test_speakers"],
            "valid_speakers": sorted({u.speaker for u in r["valid"]}),
            "n_train": len(r["train"]), "n_valid": len(r["valid"]), "n_test": len(r["test_utts"]),
            "test_by_corpus": {c: {k: m[k] for k in ("n", "ua", "wa", "macro_f1")} for c, m in r["by_corpus"].items()},
        }
    title = "Whisper head, speaker_kfold (5 folds, seed 0), RAVDESS + TESS + EmoDB, 7 classes"
    summary = write_report(out_dir, results, labels=CLASSES, title=title,
                           extra={"recipe": "recipes/whisper_head/train.py --cv", "folds": extra})
    for k in ("ua", "wa", "macro_f1"):
        log.info("%s: %.3f ± %.3f", k, summary["metrics"][k]["mean"], summary["metrics"][k]["std"])
    return summary


def main(argv: list[str] | None = None) -> int:
    import torch

    from emovox.training.baseline import utterance_vectors
    from emovox.models.io import save_model
    from emovox.pipeline import PipelineConfig
    from emovox.protocols import speaker_kfold
    from emovox.upstreams import build_upstream

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpora", default=str(REPO.parent / "shared" / "corpora"), help="folder with the corpora")
    p.add_argument("-o", "--output", default=str(REPO / "runs" / "whisper_head" / "model"), help="model folder")
    p.add_argument("--report", default=str(REPO / "runs" / "whisper_head" / "report.json"), help="metrics JSON")
    p.add_argument("--cv", action="store_true",
                   help="run all 5 folds with the same recipe and write a cross-validation report; writes no model")
    p.add_argument("--cv-output", default=str(REPO / "runs" / "whisper_head" / "cv"),
                   help="folder for the --cv report (report.md, report.json, confusion.png)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)

    utts = load_data(Path(args.corpora))
    folds = speaker_kfold(utts, n_folds=5, valid_fraction=0.1, seed=0)
    fold = folds[0]
    by_id = {u.id: u for u in utts}
    test_spk = set(fold.info["test_speakers"])
    if test_spk != TEST_SPEAKERS:
        sys.exit(f"fold 1 test speakers {sorted(test_spk)} differ from the default model's {sorted(TEST_SPEAKERS)}")
    upstream = build_upstream("whisper")  # unpadded, int8: the key recipes/baseline cached
    feats = {id(u): v for u, v in zip(utts, utterance_vectors(utts, upstream, progress=True))}
    if args.cv:
        cross_validate(folds, by_id, feats, args.cv_output)
        log.info("wrote %s (no model written)", args.cv_output)
        return 0

    r = run_fold(fold, by_id, feats)
    train, valid, test_utts, best, valid_ua, test = (r[k] for k in ("train", "valid", "test_utts", "best",
                                                                       "valid_ua", "test"))
    model = fit_head(r["x_fit"], r["y_fit"], best)
    config = {
        "name": "emovox-whisper-7class-v1",
        "card": "MODEL_CARD.md",
        # frozen Whisper tiny.en frames, unpadded, int8 (the upstream the features came from)
        **PipelineConfig("upstream", {"upstream": "whisper", "options": {}}, vad=False, normalize="none").to_dict(),
        "labels": CLASSES,
        "training": {
            "recipe": "recipes/whisper_head/train.py",
            "corpora": list(CORPORA),
            "upstream": {"name": "whisper", **upstream.params()},
            "protocol": "speaker_kfold (5 folds, seed 0), fold 1",
            "test_speakers": sorted(test_spk),
            "valid_speakers": sorted({u.speaker for u in valid}),
            "weight_decay": best,
            "valid_ua": valid_ua[best],
            "metrics": {"ua": test["ua"], "wa": test["wa"], "macro_f1": test["macro_f1"]},
            "n_train": len(train), "n_valid": len(valid), "n_test": len(test_utts),
            "shipped_fit": "train + valid speakers",
        },
    }
    save_model(args.output, model, config)
    from emovox.io import atomic_write_json

    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.report, {"weight_decay": best, "valid_ua": {str(k): v for k, v in valid_ua.items()},
                                    "test": test, "test_by_corpus": r["by_corpus"]})
    log.info("wrote %s and %s", args.output, args.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
