"""Train and evaluate the default model: Whisper-layer head on five corpora, seven classes.

    python recipes/generalist/train.py --stage select     # candidates x leave-one-corpus-out, valid UA
    python recipes/generalist/train.py --stage augment    # chosen candidate x training augmentations
    python recipes/generalist/train.py --stage evaluate   # chosen candidate: LOCO, 5-fold CV, telephone, ECE
    python recipes/generalist/train.py --stage ship       # final fit on all speakers -> model package
    python recipes/generalist/train.py --stage nested --recipe recipes/generalist/nested.yaml --augment robust
                                                          # candidates chosen by nested leave-one-corpus-out

Candidates are in ``recipe.yaml``; the choice uses validation speakers only (the mean over the
leave-one-corpus-out folds of the validation UA), never a test corpus; the training augmentation
is chosen the same way on clean, telephone and degraded copies of the validation speakers. Every stage writes JSON
(and the tables of README.md) under ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

from emovox.calibration import expected_calibration_error, fit_temperature, softmax
from emovox.evaluation.cross_corpus import score_held_out, summarize_cross_corpus
from emovox.errors import ProtocolError
from emovox.protocols import check_fold, leave_one_corpus_out, speaker_kfold
from emovox.whisper.model import HeadTraining, balanced_accuracy, ensemble_head, fit_head, predict_head

sys.path.insert(0, str(Path(__file__).parent))
from data import LABELS, balanced_weights, indices, label_ids, load_features, load_utterances  # noqa: E402
from features import variant_name  # noqa: E402

HERE = Path(__file__).parent


def candidate_training(cand: dict) -> HeadTraining:
    keys = {k: cand[k] for k in ("epochs", "lr", "weight_decay", "dropout", "hidden", "combine", "adversarial",
                                 "label_smoothing", "mixup") if k in cand}
    return HeadTraining(**keys)


def run_fold(feats, y, w, utts, fold, cand, classes=LABELS, aug=None):
    if fold.test:
        check_fold(fold, utts)
    else:  # the shipped model: no test part, but validation speakers are still never trained on
        spk = {u.id: u.speaker for u in utts}
        shared = {spk[i] for i in fold.train} & {spk[i] for i in fold.valid}
        if shared:
            raise ProtocolError(f"fold {fold.name!r}: validation speakers also in training: {sorted(shared)[:3]}")
    tr, va, te = (indices(utts, ids) for ids in (fold.train, fold.valid, fold.test))
    layers = cand["layers"]
    x = feats[:, layers]
    xt, yt, wt = x[tr], y[tr], w[tr]
    names = sorted({utts[i].corpus for i in tr})
    dom = np.array([names.index(utts[i].corpus) for i in tr])  # corpus ids (used by adversarial candidates)
    if aug is not None:  # robust training: the degraded copy of every training clip is one more sample
        xt, yt, wt = np.concatenate([xt, aug[tr][:, layers]]), np.concatenate([yt, yt]), np.concatenate([wt, wt])
        dom = np.concatenate([dom, dom])
    heads, hist = [], {}
    for member in cand.get("members", [{}]):  # an ensemble candidate: heads differing in seed/adversarial weight
        cfg = dataclasses.replace(candidate_training(cand), **member)
        head, hist = fit_head(xt, yt, wt, len(classes), cfg, valid=(x[va], y[va]), domains=dom if cfg.adversarial else None)
        heads.append(head)
    if len(heads) > 1:
        head = ensemble_head(heads)
        hist = {"valid_ua": balanced_accuracy(y[va], predict_head(head, x[va]).argmax(1)), "members": len(heads)}
    return head, hist, (tr, va, te), predict_head(head, x[va]), predict_head(head, x[te]) if len(te) else None


def stage_select(args, recipe, feats, y, w, utts):
    folds = leave_one_corpus_out(utts, valid_fraction=recipe["valid_fraction"], seed=0)
    rows = {}
    for name, cand in recipe["candidates"].items():
        uas = []
        for fold in folds:
            _, hist, *_ = run_fold(feats, y, w, utts, fold, cand)
            uas.append(hist["valid_ua"])
        rows[name] = {"valid_ua_mean": float(np.mean(uas)), "valid_ua": uas}
        print(name, f"{100 * np.mean(uas):.1f}", flush=True)
    best = max(rows, key=lambda k: rows[k]["valid_ua_mean"])
    return {"candidates": rows, "chosen": best, "rule": "max mean validation UA over the LOCO folds"}


#: --stage augment: the validation copies the choice between training augmentations is scored on
#: (declared before the one-effect runs existed): clean, telephone band, and the random chain of
#: every effect. The score is the mean over these copies and over the LOCO folds of the valid UA.
VALID_COPIES = ("none", "telephone", "robust")
AUGMENTS = ("none", "telephone", "robust", "noise", "reverb", "codec", "speed")


def stage_augment(args, recipe, feats, y, w, utts, variants):
    """Training augmentations x LOCO folds: valid UA on each validation copy (the choice) and, beside
    it, the held-out corpus clean and telephone (the per-effect table; never read by the choice)."""
    cand = recipe["candidates"][args.candidate]
    truth = np.array([u.label for u in utts])
    rows: dict = {}
    for aug_name in args.augments or AUGMENTS:
        if aug_name not in variants:
            print(f"{aug_name}: no features, skipped", flush=True)
            continue
        aug = None if aug_name == "none" else variants[aug_name]
        row: dict = {"valid": {c: [] for c in VALID_COPIES}, "loco": [], "loco_telephone": []}
        for fold in leave_one_corpus_out(utts, valid_fraction=recipe["valid_fraction"], seed=0):
            head, _, (tr, va, te), _, logits = run_fold(feats, y, w, utts, fold, cand, aug=aug)
            for c in VALID_COPIES:
                row["valid"][c].append(balanced_accuracy(y[va], predict_head(head, variants[c][va][:, cand["layers"]]).argmax(1)))
            corpus = fold.info["test_corpus"]
            row["loco"].append(score_held_out(truth[te], logits, LABELS, corpus=corpus))
            tl = predict_head(head, variants["telephone"][te][:, cand["layers"]])
            row["loco_telephone"].append(score_held_out(truth[te], tl, LABELS, corpus=corpus))
        row["valid_score"] = float(np.mean([np.mean(v) for v in row["valid"].values()]))
        row["loco_summary"] = summarize_cross_corpus(row["loco"])
        row["loco_telephone_summary"] = summarize_cross_corpus(row["loco_telephone"])
        rows[aug_name] = row
        print(aug_name, "valid", {c: round(100 * float(np.mean(v)), 1) for c, v in row["valid"].items()},
              "score", round(100 * row["valid_score"], 1), flush=True)
    previous = Path(args.out) / "augment.json"
    if args.augments and previous.exists():  # a later run adds rows to the earlier ones
        rows = {**json.loads(previous.read_text())["augments"], **rows}
    best = max(rows, key=lambda k: rows[k]["valid_score"])  # validation copies only
    return {"candidate": args.candidate, "augments": rows, "chosen_augment": best,
            "rule": "max over augmentations of the mean valid UA over copies " + "/".join(VALID_COPIES) + " and LOCO folds"}


def stage_evaluate(args, recipe, feats, y, w, utts, tel):
    cand = recipe["candidates"][args.candidate]
    aug = args.aug_feats
    out: dict = {"candidate": args.candidate, "augment": args.augment, "loco": [], "loco_telephone": [], "kfold": []}
    truth = np.array([u.label for u in utts])
    loco = leave_one_corpus_out(utts, valid_fraction=recipe["valid_fraction"], seed=0) if args.part != "kfold" else []
    for fold in loco:
        head, hist, (tr, va, te), _, logits = run_fold(feats, y, w, utts, fold, cand, aug=aug)
        corpus = fold.info["test_corpus"]
        res = score_held_out(truth[te], logits, LABELS, corpus=corpus)
        res["valid_ua"] = hist["valid_ua"]
        out["loco"].append(res)
        if tel is not None:
            tl = predict_head(head, tel[te][:, cand["layers"]])
            out["loco_telephone"].append(score_held_out(truth[te], tl, LABELS, corpus=corpus))
        print("loco", corpus, round(100 * res["shared"]["ua"], 1), round(100 * res["own"]["ua"], 1), flush=True)
    if out["loco"]:
        out["loco_summary"] = summarize_cross_corpus(out["loco"])
    if out["loco_telephone"]:
        out["loco_telephone_summary"] = summarize_cross_corpus(out["loco_telephone"])
    eces = []
    kfold = speaker_kfold(utts, n_folds=5, valid_fraction=recipe["valid_fraction"], seed=0) if args.part != "loco" else []
    for fold in kfold:
        head, hist, (tr, va, te), vlog, tlog = run_fold(feats, y, w, utts, fold, cand, aug=aug)
        t = fit_temperature(vlog, y[va])
        ua = balanced_accuracy(y[te], tlog.argmax(1))
        row = {"fold": fold.name, "ua": ua, "wa": float((tlog.argmax(1) == y[te]).mean()), "temperature": t,
               "ece_before": expected_calibration_error(softmax(tlog), y[te]),
               "ece_after": expected_calibration_error(softmax(tlog, t), y[te])}
        if tel is not None:
            row["ua_telephone"] = balanced_accuracy(y[te], predict_head(head, tel[te][:, cand["layers"]]).argmax(1))
        out["kfold"].append(row)
        eces.append(row["ece_after"])
        print("kfold", fold.name, round(100 * ua, 1), round(row["ece_before"], 3), round(row["ece_after"], 3), flush=True)
    return out


def stage_nested(args, recipe, feats, y, w, utts, aug=None):
    """Nested leave-one-corpus-out: a choice for *cross-corpus* generalisation that never sees the test corpus.

    Per outer fold (one corpus held out) and candidate: inner folds leave out each training corpus
    in turn (train = the outer training speakers of the other training corpora, validation = the
    outer validation speakers among them, test = every speaker of the inner corpus; clean training,
    no degraded copies, to halve the cost), scored by the 4-class UA. The rule: max mean inner UA.
    The outer held-out corpus (trained with ``--augment`` copies, as shipped) is reported beside it
    and never read by the rule. One JSON per candidate (``nested-NAME.json``), resumable.
    """
    from emovox.protocols import Fold

    truth = np.array([u.label for u in utts])
    corpus_of = {u.id: u.corpus for u in utts}
    rows = {}
    for name in args.candidates or list(recipe["candidates"]):
        cand = recipe["candidates"][name]
        path = Path(args.out) / f"nested-{name}.json"
        row = json.loads(path.read_text()) if path.exists() else {"inner": {}, "outer": {}}
        for fold in leave_one_corpus_out(utts, valid_fraction=recipe["valid_fraction"], seed=0):
            test_corpus = fold.info["test_corpus"]
            if test_corpus not in row["outer"]:
                *_, logits = run_fold(feats, y, w, utts, fold, cand, aug=aug)
                row["outer"][test_corpus] = score_held_out(truth[indices(utts, fold.test)], logits, LABELS,
                                                           corpus=test_corpus)["shared"]["ua"]
                path.write_text(json.dumps(row, indent=1, default=float))
            for inner in fold.info["train_corpora"]:
                key = f"{test_corpus}/{inner}"
                if key in row["inner"]:
                    continue
                part = Fold(key, [i for i in fold.train if corpus_of[i] != inner],
                            [i for i in fold.valid if corpus_of[i] != inner],
                            [i for i in fold.train + fold.valid if corpus_of[i] == inner], info={"protocol": "nested"})
                *_, logits = run_fold(feats, y, w, utts, part, cand)
                row["inner"][key] = score_held_out(truth[indices(utts, part.test)], logits, LABELS,
                                                   corpus=inner)["shared"]["ua"]
                path.write_text(json.dumps(row, indent=1, default=float))
                print(name, key, round(100 * row["inner"][key], 1), flush=True)
        row["inner_mean"] = float(np.mean(list(row["inner"].values())))
        row["outer_mean"] = float(np.mean(list(row["outer"].values())))
        path.write_text(json.dumps(row, indent=1, default=float))
        rows[name] = row
        print(name, "inner", round(100 * row["inner_mean"], 2), "outer", round(100 * row["outer_mean"], 2), flush=True)
    return {"candidates": rows, "chosen": max(rows, key=lambda k: rows[k]["inner_mean"]),
            "rule": "max mean 4-class UA of the inner leave-one-corpus-out folds"}


def stage_ship(args, recipe, feats, y, w, utts, aug=None):
    from emovox.audio_model import AudioModelConfig
    from emovox.whisper.export import write_package

    cand = recipe["candidates"][args.candidate]
    fold = speaker_kfold(utts, n_folds=5, valid_fraction=recipe["valid_fraction"], seed=1)[0]
    # the final model trains on every speaker but the validation ones (epoch + temperature choice)
    from emovox.protocols import Fold

    final = Fold("final", fold.train + fold.test, fold.valid, [], info={"protocol": "final"})
    head, hist, (tr, va, _), vlog, _ = run_fold(feats, y, w, utts, final, cand, aug=aug)
    t = fit_temperature(vlog, y[va])
    card = {"augment": args.augment, "valid_ua": hist["valid_ua"], "valid_speakers": sorted({utts[i].speaker for i in va}),
            "temperature": t, "ece_valid_before": expected_calibration_error(softmax(vlog), y[va]),
            "ece_valid_after": expected_calibration_error(softmax(vlog, t), y[va])}
    config = AudioModelConfig(labels=list(LABELS), whisper_model=cand.get("whisper", "base"), layers=list(cand["layers"]),
                              combine=cand.get("combine", "concat"), hidden=int(cand.get("hidden", 0)),
                              members=len(cand.get("members", [{}])),
                              temperature=t, name="default", version=recipe["version"], input_loudness=args.loudness,
                              card=card)
    state = {k: v.detach().clone() for k, v in head.state_dict().items()}
    target = write_package(args.package, config, state)
    return {"package": str(target), **card}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", choices=["select", "augment", "evaluate", "ship", "nested"], required=True)
    ap.add_argument("--recipe", default=str(HERE / "recipe.yaml"))
    ap.add_argument("--root", default="../shared/corpora")
    ap.add_argument("--feats", default="runs/generalist/feats")
    ap.add_argument("--out", default="runs/generalist")
    ap.add_argument("--candidate", default=None, help="default: the one --stage select chose")
    ap.add_argument("--package", default="runs/generalist/package")
    ap.add_argument("--augment", choices=["none", "telephone", "robust", "speed", "reverb", "noise", "codec"], default="none",
                    help="also train on the degraded copy of every training clip (features.py --degrade)")
    ap.add_argument("--loudness", type=float, default=None, metavar="LUFS",
                    help="use the features of clips scaled to this loudness (features.py --loudness) and ship a model "
                         "that scales its inputs the same way (config input_loudness)")
    ap.add_argument("--crop", type=float, default=None, metavar="S",
                    help="use the features of clips cropped to their speech, S s on each side (features.py --crop)")
    ap.add_argument("--part", choices=["all", "loco", "kfold"], default="all",
                    help="--stage evaluate: only the leave-one-corpus-out or the 5-fold half (two processes; "
                         "evaluate-loco.json, evaluate-kfold.json)")
    ap.add_argument("--candidates", nargs="+", default=None, help="--stage nested: only these candidates")
    ap.add_argument("--augments", nargs="+", choices=AUGMENTS, default=None,
                    help="--stage augment: only these (rows are added to an earlier augment.json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    recipe = yaml.safe_load(Path(args.recipe).read_text())
    utts = load_utterances(args.root)
    feats = load_features(args.feats, args.root, utts, variant=variant_name("base", "none", args.loudness, args.crop))
    y, w = label_ids(utts), balanced_weights(utts)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.candidate is None and args.stage not in ("select", "nested"):
        args.candidate = json.loads((out / "select.json").read_text())["chosen"]
    tel = None
    if args.stage == "evaluate" or args.augment == "telephone":
        try:
            tel = load_features(args.feats, args.root, utts, variant=variant_name("base", "telephone", args.loudness, args.crop))
        except KeyError as exc:
            if args.augment == "telephone":
                raise
            print(f"no telephone-band features ({exc}); skipping the telephone rows", flush=True)
    args.aug_feats = None if args.augment == "none" else \
        tel if args.augment == "telephone" else load_features(args.feats, args.root, utts,
                                                                        variant=variant_name("base", args.augment, args.loudness, args.crop))
    if args.stage == "select":
        result = stage_select(args, recipe, feats, y, w, utts)
    elif args.stage == "augment":
        variants = {"none": feats}
        for name in AUGMENTS[1:]:
            try:
                variants[name] = load_features(args.feats, args.root, utts, variant=variant_name("base", name, args.loudness, args.crop))
            except KeyError:
                pass
        result = stage_augment(args, recipe, feats, y, w, utts, variants)
    elif args.stage == "evaluate":
        result = stage_evaluate(args, recipe, feats, y, w, utts, tel)
    elif args.stage == "nested":
        result = stage_nested(args, recipe, feats, y, w, utts, args.aug_feats)
    else:
        result = stage_ship(args, recipe, feats, y, w, utts, args.aug_feats)
    suffix = ("" if args.augment == "none" else f"-{args.augment}") + ("" if args.part == "all" else f"-{args.part}")
    (out / f"{args.stage}{suffix}.json").write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
