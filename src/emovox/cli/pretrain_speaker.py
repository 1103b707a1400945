"""``emovox pretrain-speaker``: train a speaker-recognition backbone for transfer to emotion."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emovox.cli._options import show_progress
from emovox.io import run_folder_lock

EPILOG = """examples:
  emovox pretrain-speaker --corpus voxceleb --root /data/voxceleb1/wav -o runs/speaker/resnet34
  emovox pretrain-speaker --corpus librispeech --root ../shared/corpora/librispeech-samples \\
      -o runs/speaker/libri --override model.options.base_channels=8 --override features.n_mels=64
  emovox pretrain-speaker recipes/xi2019/speaker_resnet20_adapters.yaml -o runs/speaker/resnet20-adapters

Without a recipe the defaults are the seed-000 speaker model: ResNet34 (32 base channels) with
statistics pooling and a 512-d embedding on 128 log-mels, cross-entropy (--loss aam for
AAM-softmax), SGD lr 1e-2 constant for 8 epochs then halved every other epoch, batch 32, random
150-300-frame chunks. Any speaker-labelled corpus or manifest works (labels are ignored; the
speaker column is the class). The backbone package is written to <out>/backbone; point an emotion
recipe's transfer.backbone at it. Re-running resumes an interrupted run.
"""

DEFAULT_RECIPE: dict[str, Any] = {
    "name": "speaker-pretraining",
    "features": {"frontend": "logmel", "n_mels": 128, "normalize": "segment"},
    "augment": {"policy": "none", "copies": 0},
    "model": {"name": "resnet34", "pooling": "stats", "options": {"base_channels": 32, "embed_dim": 512}},
    "optim": {"lr": 0.01, "momentum": 0.9, "schedule": "halving", "constant_epochs": 8, "halve_every": 2},
    "train": {"epochs": 20, "batch_size": 32, "chunk_frames": [150, 200, 250, 300], "monitor": "valid_wa",
              "threads": 1},
}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "pretrain-speaker", help="train a speaker-recognition backbone (VoxCeleb layout or any speaker manifest)",
        description="Speaker identification pretraining (cross-entropy or AAM-softmax) whose model is the "
                    "backbone for emotion transfer (linear probe, fine-tune, residual adapters).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", nargs="?", help="recipe YAML (model/features/optim/train sections; data = speakers)")
    p.add_argument("-o", "--out", required=True, help="output folder (checkpoints, report, backbone/)")
    p.add_argument("--corpus", help="corpus loader: voxceleb, librispeech, or any emotion corpus (speakers only)")
    p.add_argument("--root", help="corpus folder")
    p.add_argument("--manifest", help="a manifest CSV/JSONL with a speaker column instead of --corpus/--root")
    p.add_argument("--loss", choices=["ce", "aam"], help="cross-entropy (default) or AAM-softmax")
    p.add_argument("--max-speakers", type=int, help="keep the N speakers with the most utterances (seed 003: 50)")
    p.add_argument("--valid-fraction", type=float, default=0.1,
                   help="share of each speaker's utterances held out for model selection (default 0.1)")
    p.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="any recipe key, e.g. train.epochs=5 or model.name=resnet20 (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (shown only on a terminal anyway)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    import torch

    if not getattr(args, "verbose", 0):  # Lightning's own INFO lines (GPU available, tips...) only with -v
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

    from emovox.config import load_recipe, recipe_from_dict
    from emovox.errors import ConfigError
    from emovox.training.speaker import pretrain_speaker

    overrides = list(args.override)
    for key, value in (("data.corpus", args.corpus), ("data.root", args.root), ("data.manifest", args.manifest),
                       ("train.loss", args.loss)):
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.recipe:
        recipe = load_recipe(args.recipe, overrides)
    else:
        if not (args.corpus and args.root) and not args.manifest:
            raise ConfigError("give a recipe, --corpus with --root, or --manifest (the speaker-labelled data)")
        recipe = recipe_from_dict(DEFAULT_RECIPE, base_dir=Path.cwd(), overrides=overrides)
    if not 0 <= args.valid_fraction < 1:
        raise ConfigError(f"--valid-fraction must be in [0, 1), got {args.valid_fraction}")
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    with run_folder_lock(args.out):
        result = pretrain_speaker(recipe, args.out, args.valid_fraction, args.max_speakers,
                                  progress=show_progress(args.no_progress) and recipe.train.progress)
    n = result["metrics"]["n"]
    print(f"speaker backbone -> {Path(args.out) / 'backbone'} (held-out speaker-ID accuracy "
          f"{100 * result['metrics']['wa']:.2f} % on {n} utterances)")
    return 0
