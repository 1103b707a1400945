"""Speech emotion models on EmoDB LOSO and RAVDESS 6 × 4, on the openSMILE baseline's folds.

Runs the issue-3 benchmark list through ``emovox experiment`` (same folds as
``recipes/baseline/*``: same protocol, seed and validation speakers) and prints, per system,
UA / WA mean ± std over folds and wall time; a Markdown summary is appended after every system to
``<out>/<corpus>/summary.md`` (so a long run reports incrementally).

CPU sizing (one thread; the machine is shared): the paper-size ResNet34 (32 base channels,
128 log-mels) is ~10 GFLOPs per 3 s forward, so the systems below default to ``--base-channels 8
--n-mels 64 --embed-dim 128`` and ``--epochs 12`` (lr constant for 6 epochs, then halved every
other one), SpecAugment with ``--copies 1``. Every choice is printed and stored with the results.

    python benchmarks/ser_models.py --corpus emodb --systems scratch specaug avg
    python benchmarks/ser_models.py --corpus ravdess --systems scratch --epochs 10

Systems: ``scratch`` (ResNet34 + stats pooling, no augmentation), ``specaug`` (+ SpecAugment
conservative), ``avg`` (average instead of statistics pooling, no augmentation),
``distilled`` (ResNet34 first distilled from the GE2E speaker encoder on the training side,
then fine-tuned), ``adapters`` (ResNet34 with residual adapters from a speaker-pretrained
backbone, ``--backbone``); ``distilled_adapters`` (residual adapters + BN + head trained on the
fold's GE2E-distilled trunk, 3×3 convolutions frozen); ``whisper_head`` / ``ge2e_head`` (frozen Whisper encoder / GE2E
speaker-encoder frames + statistics pooling + MLP head; their own recipes, no CNN sizing).
``--fuse A B`` fuses two finished systems (validation-chosen weight). Baseline numbers are read from ``--baseline-dir`` (reports of
``emovox baseline``) when present.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPES = {"emodb": REPO / "recipes/emodb/loso_resnet34.yaml", "ravdess": REPO / "recipes/ravdess/6x4_resnet34.yaml"}
#: Systems with a recipe of their own (frozen upstream frames + trainable head; no CNN sizing).
HEAD_RECIPES = {
    "whisper_head": {"emodb": REPO / "recipes/emodb/loso_whisper_head.yaml",
                     "ravdess": REPO / "recipes/ravdess/6x4_whisper_head.yaml"},
    "ge2e_head": {"emodb": REPO / "recipes/emodb/loso_ge2e_head.yaml",
                  "ravdess": REPO / "recipes/ravdess/6x4_ge2e_head.yaml"},
}


def system_overrides(name: str, args: argparse.Namespace) -> list[str]:
    """Recipe overrides of one benchmark system (on top of the CPU sizing)."""
    systems = {
        "scratch": ["augment.policy=none"],
        "specaug": ["augment.policy=conservative", f"augment.copies={args.copies}"],
        "avg": ["augment.policy=none", "model.pooling=avg"],
        "distilled": ["augment.policy=none", "transfer.distill=true", "transfer.mode=fine_tune",
                      f"transfer.distill_epochs={args.distill_epochs}", "optim.head_lr=0.01"],
        "adapters": ["augment.policy=none", "transfer.mode=residual_adapter", f"transfer.backbone={args.backbone}",
                     "model.options.adapters=true", "optim.nesterov=true", "optim.weight_decay=0.005"],
        # residual adapters on the fold's own GE2E-distilled trunk (speaker knowledge without VoxCeleb)
        "distilled_adapters": ["augment.policy=none", "transfer.distill=true", "transfer.mode=residual_adapter",
                               f"transfer.distill_epochs={args.distill_epochs}", "model.options.adapters=true",
                               "optim.nesterov=true", "optim.weight_decay=0.005"],
    }
    if name not in systems:
        sys.exit(f"unknown system {name!r}; choose from {sorted([*systems, *HEAD_RECIPES])}")
    return systems[name]


def sizing(args: argparse.Namespace) -> list[str]:
    return [f"model.name={args.model}", f"model.options.base_channels={args.base_channels}", f"model.options.embed_dim={args.embed_dim}",
            f"features.n_mels={args.n_mels}", f"train.epochs={args.epochs}",
            f"optim.constant_epochs={args.constant_epochs}", "optim.halve_every=2", "train.threads=1",
            "train.progress=false", f"features.cache_dir={args.cache}"]


def baseline_rows(corpus: str, folder: Path) -> list[tuple[str, dict]]:
    rows = []
    for report in sorted(folder.glob(f"{corpus}-*/report.json")):
        data = json.loads(report.read_text())
        rows.append((f"baseline {report.parent.name}", data["metrics"]))
    return rows


def fmt(metrics: dict, key: str) -> str:
    m = metrics.get(key)
    return f"{100 * m['mean']:.2f} ± {100 * m['std']:.2f}" if m else "–"


def valid_ua(run: Path) -> float | None:
    """Mean over folds of the validation UA at each fold's selected epoch (the only number a
    choice between variants may look at; test UA never chooses)."""
    values = []
    for result in run.glob("fold_*/result.json"):
        best = json.loads(result.read_text()).get("best_epoch")
        history = result.parent / "history.json"
        if best is None or best < 0 or not history.is_file():
            continue
        epochs = {e["epoch"]: e for e in json.loads(history.read_text())}
        if best in epochs and epochs[best].get("valid_ua") is not None:
            values.append(epochs[best]["valid_ua"])
    return sum(values) / len(values) if values else None


def print_table(args: argparse.Namespace) -> int:
    """Markdown table of every finished system under ``<out>/<corpus>`` plus the baselines."""
    rows = []
    for report in sorted((args.out / args.corpus).glob("*/report.json")):
        data = json.loads(report.read_text())
        results = [json.loads(f.read_text()) for f in report.parent.glob("fold_*/result.json")]
        minutes = sum(r.get("train_seconds", 0) for r in results) / 60
        v = valid_ua(report.parent)
        rows.append(f"| {report.parent.name} | {fmt(data['metrics'], 'ua')} | {fmt(data['metrics'], 'wa')} | "
                    f"{'–' if v is None else f'{100 * v:.1f}'} | {data['n_folds']} | {minutes:.0f} |")
    for name, metrics in baseline_rows(args.corpus, args.baseline_dir):
        rows.append(f"| {name} | {fmt(metrics, 'ua')} | {fmt(metrics, 'wa')} | | | |")
    print("| system | UA (%) | WA (%) | valid UA (%) | folds | train (min) |\n|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


def fuse(args: argparse.Namespace) -> int:
    """Weighted late fusion of two finished runs (``emovox fuse --names A B``); one summary row."""
    from emovox.fusion import FusionConfig, fuse_runs

    a, b = args.fuse
    folder = args.out / args.corpus
    summary = fuse_runs(folder / a, folder / b, folder / f"fuse-{a}+{b}", FusionConfig(rules=["weighted"]), names=(a, b))
    rows = []
    for system, report in summary["systems"].items():
        rows.append(f"| {system if system != 'weighted' else f'fusion {a} + {b}'} | {fmt(report['metrics'], 'ua')} | "
                    f"{fmt(report['metrics'], 'wa')} | {len(summary['folds'])} | |")
    print("\n".join(rows))
    print("w1 per fold:", ", ".join(f"{w:.2f}" for w in summary["w1"]["weighted"].values()))
    with (folder / "summary.md").open("a") as fh:
        fh.write(rows[-1] + "\n")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", choices=sorted(RECIPES), default="emodb")
    p.add_argument("--systems", nargs="+", default=["scratch", "specaug", "avg"])
    p.add_argument("--out", type=Path, default=REPO / "runs/bench")
    p.add_argument("--cache", type=Path, default=REPO / "runs/cache")
    p.add_argument("--model", default="resnet34", help="resnet34 (paper) or resnet18 (half the blocks, ~2x faster)")
    p.add_argument("--base-channels", type=int, default=8)
    p.add_argument("--embed-dim", type=int, default=128)
    p.add_argument("--n-mels", type=int, default=64)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--constant-epochs", type=int, default=6)
    p.add_argument("--copies", type=int, default=1, help="SpecAugment copies per clip (paper: 2)")
    p.add_argument("--distill-epochs", type=int, default=5)
    p.add_argument("--backbone", default="runs/speaker/backbone", help="speaker-pretrained model for adapters")
    p.add_argument("--folds", default=None, help="e.g. [0,1] to run only some folds")
    p.add_argument("--override", action="append", default=[], help="extra recipe overrides")
    p.add_argument("--baseline-dir", type=Path, default=REPO / "runs/baseline")
    p.add_argument("--tag", default="", help="suffix of the output folder/row name (variants of a system)")
    p.add_argument("--table", action="store_true", help="only print the table of the finished runs under --out")
    p.add_argument("--fuse", nargs=2, metavar=("A", "B"),
                   help="score-level fusion of two finished systems (folder names under --out/CORPUS), "
                        "w1 chosen on each fold's validation part by cross-entropy; writes fuse-A+B/")
    args = p.parse_args()
    if args.table:
        return print_table(args)
    if args.fuse:
        return fuse(args)

    import torch

    torch.set_num_threads(1)
    from emovox.config import load_recipe
    from emovox.training.experiment import run_experiment

    out = args.out / args.corpus
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "summary.md"
    if not summary.exists():
        summary.write_text(f"# {args.corpus}: speech models (sizing: {' '.join(sizing(args))})\n\n"
                           "| system | UA (%) | WA (%) | folds | wall (min) |\n|---|---:|---:|---:|---:|\n")
    for name, metrics in baseline_rows(args.corpus, args.baseline_dir):
        print(f"{name:40s} UA {fmt(metrics, 'ua'):>15s}  WA {fmt(metrics, 'wa'):>15s}")
    for name in args.systems:
        if name in HEAD_RECIPES:
            path, overrides = HEAD_RECIPES[name][args.corpus], ["train.progress=false", *args.override]
        else:
            path, overrides = RECIPES[args.corpus], sizing(args) + system_overrides(name, args) + args.override
        if args.folds:
            overrides.append(f"data.folds={args.folds}")
        label = name + (f"-{args.tag}" if args.tag else "")
        recipe = load_recipe(path, overrides)
        recipe.name = f"{args.corpus}-{label}"
        started = time.time()
        result = run_experiment(recipe, out / label, progress=False)
        minutes = (time.time() - started) / 60
        row = (f"| {label} | {fmt(result['metrics'], 'ua')} | {fmt(result['metrics'], 'wa')} | "
               f"{result['n_folds']} | {minutes:.1f} |")
        print(row, flush=True)
        with summary.open("a") as fh:
            fh.write(row + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
