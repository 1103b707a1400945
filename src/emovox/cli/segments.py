"""``emovox segment-experiment`` and ``emovox segment-counts``: seed 002's segment-level approach."""

from __future__ import annotations

import argparse
from typing import Any

EXPERIMENT_EPILOG = """examples:
  emovox segment-experiment recipes/sahoo2021/emodb_loso.yaml -o runs/sahoo2021/emodb-loso
  emovox segment-experiment recipes/sahoo2021/iemocap_8-1-1.yaml --override data.root=/data/IEMOCAP_full_release
  emovox segment-experiment recipes/sahoo2021/ravdess_6x4.yaml --override segments.hop=1.0 --override runs=3

Each clip is cut into 1 s segments (segments.hop 0.5 = overlapping, 1.0 = non-overlapping), each
segment is classified, and clip decisions are scored with SA, ACA, SCA, ALCA and BCA (mean ± std
over fold-runs). Finished fold-runs are reused on a re-run with the same settings.
"""

COUNTS_EPILOG = """examples:
  emovox segment-counts recipes/sahoo2021/iemocap_8-1-1.yaml --override data.root=/data/IEMOCAP_full_release
  emovox segment-counts recipes/sahoo2021/emodb_loso.yaml

Prints a table like seed 002's Table 1: clips and segments per class for non-overlapping (1 s) and
overlapping (1 s, hop 0.5 s) segmentation. 'Total' counts every clip the corpus loader returns,
'Relevant' those the recipe's label map keeps. For IEMOCAP's Table 1 total (10039 turns, incl. the
ones without annotator agreement) add --override data.corpus_args.keep_unagreed=true.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "segment-experiment", help="seed 002: VGGish on 1 s segments, clip decisions, SA/ACA/SCA/ALCA/BCA",
        description="Train and evaluate the segment-level model of Sahoo et al. (2021) through a recipe's folds.",
        epilog=EXPERIMENT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", help="segment recipe YAML (recipes/sahoo2021/*.yaml)")
    p.add_argument("-o", "--out", help="output folder (default: runs/<recipe name>)")
    p.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="any recipe key, e.g. train.max_epochs=5 or model.width=0.25 (repeatable)")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.set_defaults(func=run)

    c = subparsers.add_parser(
        "segment-counts", help="clips and 1 s segments per class (seed 002 Table 1)",
        description="Count clips and segments per class for a recipe's corpus, without decoding audio.",
        epilog=COUNTS_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("recipe", help="segment recipe YAML (its data section is used)")
    c.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE", help="recipe key=value")
    c.add_argument("--window", type=float, default=1.0, help="segment length in seconds (default 1.0)")
    c.add_argument("--overlap", type=float, default=0.5, help="overlap of the overlapping variant (default 0.5 s)")
    c.set_defaults(func=run_counts)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from emovox.io import run_folder_lock
    from emovox.training.segment_level import load_segment_recipe, run_segment_experiment

    recipe = load_segment_recipe(args.recipe, args.override)
    out = Path(args.out) if args.out else Path("runs") / recipe.name
    if args.progress:
        recipe.train.progress = True
    with run_folder_lock(out):
        summary = run_segment_experiment(recipe, out, progress=args.progress, overrides=args.override)
    print(Path(summary["files"]["markdown"]).read_text(encoding="utf-8"))
    print(f"results in {out}/")
    return 0


def run_counts(args: argparse.Namespace) -> int:
    from emovox.corpora import fill_durations
    from emovox.segments import SegmentSpec, count_table, format_count_table
    from emovox.training.harness import class_names, load_utterances
    from emovox.training.segment_level import load_segment_recipe

    recipe = load_segment_recipe(args.recipe, args.override)
    relevant = load_utterances(recipe)
    classes = class_names(recipe, relevant)
    recipe.data.labels = None
    everything = fill_durations(load_utterances(recipe))
    # Relevant rows carry the mapped label (e.g. excited -> happy); durations come from the full list.
    relevant_ids = {u.id: u.label for u in relevant}
    rows = [u.with_label(relevant_ids.get(u.id, f"({u.label})")) for u in everything]
    specs = {"non-overlapping": SegmentSpec.non_overlapping(args.window),
             f"overlapping ({args.overlap:g} s)": SegmentSpec.overlapping(args.window, args.overlap)}
    print(format_count_table(count_table(rows, specs, labels=classes)))
    return 0
