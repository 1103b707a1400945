"""``emovox experiment RECIPE.yaml``: a whole cross-validated training run from a recipe."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emovox.cli._options import show_progress
from emovox.io import run_folder_lock

EPILOG = """examples:
  emovox experiment recipes/emodb/loso_resnet34.yaml --out runs/emodb-resnet34
  emovox experiment recipes/padi2021/exp1_loso.yaml --override data.root=/data/IEMOCAP_full_release
  emovox experiment recipes/emodb/loso_resnet34.yaml --override train.epochs=2 \\
      --override model.options.base_channels=8 --override data.folds=[0]

Features are computed once and cached (features.cache_dir, default $EMOVOX_CACHE or ~/.cache/emovox).
Each fold writes a Lightning checkpoint after every epoch: re-running the same command skips
finished folds and resumes an interrupted one where it stopped, with the same final metrics as an
uninterrupted run. Results: <out>/report.md (per-fold table, mean ± std), report.json,
confusion.png, and per fold predictions.csv, history.json and the best model package (model/).
--override paths (data.root, data.manifest, transfer.backbone, features.cache_dir, ...; the keys of
emovox.config.PATH_KEYS) are taken relative to the current folder; paths inside the recipe relative
to the recipe's folder.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "experiment", help="train and evaluate a model through speaker-independent folds (a recipe)",
        description="Run a recipe: one model per fold (train / validation-based selection / test), "
                    "resumable, with per-fold metrics, the exported best model of every fold and a report.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", help="recipe YAML (see recipes/ for the papers' and corpora's recipes)")
    p.add_argument("-o", "--out", help="output folder (default runs/<recipe name>)")
    p.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="set any recipe key, e.g. train.epochs=2 or model.options.base_channels=8 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (shown only on a terminal anyway)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    import torch

    if not getattr(args, "verbose", 0):  # Lightning's own INFO lines (GPU available, tips...) only with -v
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

    from emovox.config import load_recipe
    from emovox.training.experiment import run_experiment

    recipe = load_recipe(args.recipe, args.override)
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    out = Path(args.out) if args.out else Path("runs") / recipe.name
    with run_folder_lock(out):
        summary = run_experiment(recipe, out, progress=show_progress(args.no_progress) and recipe.train.progress,
                                 overrides=args.override)
    metrics = summary.get("metrics", {})
    parts = [f"{name.upper()} {100 * m['mean']:.2f} ± {100 * m['std']:.2f}" for name, m in metrics.items()
             if name in ("ua", "wa")]
    print(f"{recipe.name}: {', '.join(parts)} over {len(summary.get('folds', []))} folds -> {out / 'report.md'}")
    return 0
