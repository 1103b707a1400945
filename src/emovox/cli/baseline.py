"""``emovox baseline``: frozen features (openSMILE, GE2E, Whisper encoder) + SVM through the folds."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emovox.cli._options import parse_key_values, show_progress
from emovox.io import run_folder_lock

EPILOG = """examples:
  emovox baseline --corpus emodb --root ../shared/corpora/emodb --features egemaps \\
      --protocol leave_one_speaker_out -o runs/baseline/emodb-egemaps
  emovox baseline recipes/baseline/emodb_loso.yaml --features egemaps      # -> runs/baseline/emodb_loso-egemaps
  emovox baseline recipes/baseline/emodb_loso.yaml --features whisper --feature-option pad_seconds=10 -o runs/x

Features are cached per utterance (--cache, default $EMOVOX_CACHE or ~/.cache/emovox), finished
folds are skipped on a re-run, and the report (per-fold table, mean ± std, confusion matrix)
is written to the output folder. --speaker-norm z-scores features per speaker using all of that
speaker's audio, test speaker included; such results are labelled '+spkNorm'.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "baseline", help="frozen features (eGeMAPS, ComParE, GE2E, Whisper) + SVM, cross-validated",
        description="Classic baseline: utterance features from a frozen upstream, standardisation and an "
                    "SVM whose C is chosen on each fold's validation speakers, run through "
                    "speaker-independent folds.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", nargs="?", help="baseline recipe YAML (flags below override its values)")
    p.add_argument("-o", "--out", help="output folder (folds, per-fold results, report); default "
                                        "runs/baseline/<recipe or corpus>-<features>")
    p.add_argument("--corpus", help="corpus loader name, e.g. emodb, ravdess, tess, iemocap")
    p.add_argument("--root", help="corpus folder")
    p.add_argument("--manifest", help="a manifest CSV/JSONL instead of --corpus/--root")
    p.add_argument("--labels", help="label map preset, e.g. emodb7, ravdess8, iemocap_exp1 (default: all labels)")
    p.add_argument("--features", help="upstream: egemaps | compare | ge2e | whisper (default egemaps)")
    p.add_argument("--feature-option", action="append", default=[], metavar="KEY=VALUE",
                   help="upstream option, e.g. pad_to_30s=true (repeatable)")
    p.add_argument("--protocol", help="fold protocol, e.g. leave_one_speaker_out, leave_k_speakers_out "
                                      "(default leave_one_speaker_out)")
    p.add_argument("--protocol-option", action="append", default=[], metavar="KEY=VALUE",
                   help="protocol option, e.g. k=4 (repeatable)")
    p.add_argument("--kernel", choices=["linear", "rbf"], help="SVM kernel (default linear)")
    p.add_argument("--C", type=float, nargs="+", dest="c_grid", help="C values searched on the validation part")
    p.add_argument("--speaker-norm", action="store_true", default=None,
                   help="per-speaker feature z-scoring (test speaker's own statistics; labelled '+spkNorm')")
    p.add_argument("--name", help="run name used in the report (default: the recipe's name or the corpus)")
    p.add_argument("--cache", help="feature cache folder")
    p.add_argument("--threads", type=int, default=1, help="CPU threads for extraction and the SVM (default 1)")
    p.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="any recipe key, e.g. svm.class_weight=none (repeatable)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (shown only on a terminal anyway)")
    p.set_defaults(func=run)


def _set(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """``raw[a][b] = value`` for ``dotted = "a.b"``, creating sections."""
    from emovox.errors import ConfigError

    *parents, last = dotted.split(".")
    node = raw
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{dotted}: {p} is not a section of the recipe")
    node[last] = value


def build_raw(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The raw recipe mapping (file, then flags, then --override) and its base folder."""
    from pathlib import Path

    from emovox.config import apply_overrides, read_recipe_yaml

    raw: dict[str, Any] = {}
    base = "."
    if args.recipe:
        path = Path(args.recipe)
        raw = read_recipe_yaml(path, "recipes/baseline/emodb_loso.yaml")
        base = str(path.resolve().parent)
    flags = {"data.corpus": args.corpus, "data.manifest": args.manifest, "data.labels": args.labels,
             "data.protocol": args.protocol, "features.upstream": args.features, "svm.kernel": args.kernel,
             "svm.C": args.c_grid, "features.speaker_norm": args.speaker_norm, "name": args.name}
    # paths given on the command line are relative to the current folder, not the recipe's
    for key, value in (("data.root", args.root), ("features.cache_dir", args.cache)):
        if value is not None:
            flags[key] = str(Path(value).resolve())
    if args.manifest is not None:
        flags["data.manifest"] = str(Path(args.manifest).resolve())
    feature_options = parse_key_values(args.feature_option, "--feature-option")
    protocol_options = parse_key_values(args.protocol_option, "--protocol-option")
    flags.update({f"features.options.{k}": v for k, v in feature_options.items()})
    flags.update({f"data.protocol_args.{k}": v for k, v in protocol_options.items()})
    for key, value in flags.items():
        if value is not None:
            _set(raw, key, value)
    raw = apply_overrides(raw, list(args.override))
    if "name" not in raw:
        raw["name"] = (raw.get("data") or {}).get("corpus") or "manifest"
    return raw, base


def run(args: argparse.Namespace) -> int:
    import torch
    from threadpoolctl import threadpool_limits

    from emovox.errors import ConfigError
    from emovox.training.baseline import baseline_recipe, run_baseline

    if args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    raw, base = build_raw(args)
    recipe = baseline_recipe(raw, base)
    if recipe.features.upstream == "whisper":
        recipe.features.options.setdefault("threads", args.threads)
    torch.set_num_threads(args.threads)
    if not args.out:
        stem = Path(args.recipe).stem if args.recipe else (args.corpus or "corpus")
        args.out = str(Path("runs") / "baseline" / f"{stem}-{recipe.features.upstream}")
    with threadpool_limits(args.threads), run_folder_lock(args.out):
        summary = run_baseline(recipe, args.out, progress=show_progress(args.no_progress), overrides=args.override)
    print(_summary_line(recipe.label, summary, args.out))
    return 0


def _summary_line(label: str, summary: Any, out: str) -> str:
    try:
        ua, wa = summary["metrics"]["ua"], summary["metrics"]["wa"]
        return (f"{label}: UA {100 * ua['mean']:.1f} ± {100 * ua['std']:.1f}, "
                f"WA {100 * wa['mean']:.1f} ± {100 * wa['std']:.1f} over {summary['n_folds']} folds (report in {out})")
    except (KeyError, TypeError):
        return f"{label}: report in {out}"
