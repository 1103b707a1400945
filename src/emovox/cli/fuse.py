"""``emovox fuse`` (late fusion of saved speech and text scores) and ``emovox multimodal`` (all three)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emovox.cli._options import show_progress
from emovox.io import run_folder_lock

FUSE_EPILOG = """examples:
  emovox fuse --speech runs/exp3-speech --text runs/exp3-text -o runs/exp3-fusion
  emovox fuse --speech a/scores.json --text b/scores.json -o fused --rules weighted

Each side is a run folder holding <fold>/scores.json (validation and test log posteriors, as
written by 'emovox text-train' and 'emovox multimodal') or one scores.json; folds are matched by
folder name, utterances by id. Rule 'weighted': S = w1*S_speech + (1-w1)*S_text with w1 searched
on a grid over [0, 1] on the validation part only (--metric: cross-entropy by
default, or UA/WA). Rule 'znorm': each modality z-normalised with
its validation mean/std, then equal weights. Utterances lacking one modality's score use the
other one (counted in <fold>/fusion.json).
"""

MULTI_EPILOG = """examples:
  emovox multimodal recipes/padi2022/fusion_exp3_loso.yaml -o runs/padi2022-fusion

Runs the speech experiment (as 'emovox experiment'), the text model (as 'emovox text-train') on the
same folds, and the fusion (as 'emovox fuse'): <out>/speech, <out>/text, <out>/fusion with
speech-only, text-only and both fusion rules (per-fold WA/UA, mean ± std, three confusion matrices).
Finished folds are skipped on a re-run.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fuse", help="late fusion of speech and text scores per fold (seed 001 §3.3)",
        description="Fuse per-utterance log posteriors of a speech and a text model, fold by fold, "
                    "with the fusion parameters fitted on each fold's validation part.",
        epilog=FUSE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speech", required=True, help="speech run folder or scores.json")
    p.add_argument("--text", required=True, help="text run folder or scores.json")
    p.add_argument("-o", "--out", required=True, help="output folder (per-fold fusion.json, reports, fusion.md)")
    p.add_argument("--rules", nargs="+", choices=["weighted", "znorm"], default=["weighted", "znorm"])
    p.add_argument("--metric", choices=["nll", "ua", "wa"], default="nll",
                   help="how the w1 grid is judged on validation: nll = cross-entropy of the fused scores "
                        "(default), ua / wa = accuracy")
    p.add_argument("--grid-step", type=float, default=0.01, help="w1 grid step (default 0.01)")
    p.add_argument("--names", nargs=2, default=["speech", "text"], metavar=("FIRST", "SECOND"),
                   help="what the two sides are called in the reports, e.g. --names resnet whisper when "
                        "fusing two speech runs (every 'emovox experiment' fold writes scores.json)")
    p.set_defaults(func=run_fuse)

    m = subparsers.add_parser(
        "multimodal", help="speech, text and their late fusion over one recipe's folds",
        description="Speech-only, text-only and fused emotion recognition on the same folds (seed 001).",
        epilog=MULTI_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    m.add_argument("recipe", help="recipe YAML: a speech recipe plus text/asr/fusion sections")
    m.add_argument("-o", "--out", required=True, help="output folder")
    m.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="any recipe key, e.g. train.epochs=2 or text.epochs=1 (repeatable)")
    m.add_argument("--no-progress", action="store_true", help="hide progress bars (shown only on a terminal anyway)")
    m.set_defaults(func=run_multimodal)


def _print_summary(summary: dict[str, Any], out: str | Path) -> None:
    names = list(summary["systems"])
    for system, report in summary["systems"].items():
        ua, wa = report["metrics"]["ua"], report["metrics"]["wa"]
        print(f"{system:>9}: UA {100 * ua['mean']:.2f} ± {100 * ua['std']:.2f}  WA {100 * wa['mean']:.2f} ± "
              f"{100 * wa['std']:.2f}")
    for rule, weights in summary["w1"].items():
        if rule == "weighted":
            print(f"w1 ({names[0]} weight) per fold: {', '.join(f'{w:.2f}' for w in weights.values())}")
    print(f"reports in {out} (fusion.md, {', '.join(f'{n}/' for n in names)})")


def run_fuse(args: argparse.Namespace) -> int:
    from emovox.fusion import FusionConfig, fuse_runs

    summary = fuse_runs(args.speech, args.text, args.out,
                        FusionConfig(rules=list(args.rules), metric=args.metric, grid_step=args.grid_step),
                        names=tuple(args.names))
    _print_summary(summary, args.out)
    return 0


def run_multimodal(args: argparse.Namespace) -> int:
    from emovox.fusion import fuse_runs
    from emovox.training.experiment import run_experiment
    from emovox.training.text import load_multimodal_recipe, run_text_experiment

    mm = load_multimodal_recipe(args.recipe, args.override)
    out = Path(args.out)
    progress = show_progress(args.no_progress)
    if mm.text.threads:
        import torch

        torch.set_num_threads(mm.text.threads)
    with run_folder_lock(out):
        run_experiment(mm.recipe, out / "speech", progress=progress and mm.recipe.train.progress,
                       overrides=args.override)
        run_text_experiment(mm, out / "text", progress=progress and mm.text.progress, overrides=args.override)
        summary = fuse_runs(out / "speech", out / "text", out / "fusion", mm.fusion)
    _print_summary(summary, out / "fusion")
    return 0
