"""Top-k fine-tuning of a packaged Whisper encoder through a recipe's folds (CPU).

    python recipes/whisper_ft/run.py recipes/whisper_ft/emodb_loso.yaml --k 1 -o runs/whisper_ft/emodb-k1
    python recipes/whisper_ft/run.py recipes/whisper_ft/ravdess_6x4.yaml --k 2 --folds 0 1 -o runs/whisper_ft/rav-k2
    python recipes/whisper_ft/run.py --manifest my.csv --protocol leave_one_speaker_out -o runs/whisper_ft/mine

``--manifest`` takes any emovox manifest (generic CSV: id, path, speaker, label, ...) instead of the
recipe's corpus (the ``finetune`` settings then come from ``--recipe-defaults``, EmoDB's file by
default). Every fold is written to ``OUT/folds/<fold>.json`` as soon as it ends, and
``OUT/results.json`` (per-fold UA/WA, mean ± std, settings) is rewritten after each fold; a re-run
skips folds already done with the same settings. The frozen part's fp16 states are cached under
``--cache`` (default: the emovox cache).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HERE, read_recipe, recipe_data, sample_std, summary  # noqa: E402

from emovox.errors import ConfigError  # noqa: E402
from emovox.io import atomic_write_json, read_json  # noqa: E402
from emovox.protocols import save_folds  # noqa: E402
from emovox.whisper.finetune import FineTuneConfig, fine_tune_folds  # noqa: E402

OVERRIDES = ("model", "k", "top", "epochs", "lr_encoder", "lr_head", "batch_size", "crop_frames", "combine")


def finetune_config(raw: dict, args: argparse.Namespace) -> FineTuneConfig:
    section = dict(raw.get("finetune") or {})
    known = {f.name for f in fields(FineTuneConfig)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(f"finetune: unknown key(s) {unknown}; known: {sorted(known)}")
    for name in OVERRIDES:
        if getattr(args, name) is not None:
            section[name] = getattr(args, name)
    if args.head_layers is not None:
        section["head_layers"] = args.head_layers
    return FineTuneConfig(**section)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", nargs="?", help="recipe YAML (data + finetune sections)")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--manifest", help="any corpus as an emovox manifest (CSV) instead of the recipe's data")
    ap.add_argument("--labels", help="label map preset for --manifest")
    ap.add_argument("--protocol", default="leave_one_speaker_out", help="fold protocol for --manifest")
    ap.add_argument("--recipe-defaults", default=str(HERE / "emodb_loso.yaml"),
                    help="finetune settings used with --manifest")
    ap.add_argument("--folds", type=int, nargs="+", help="run only these fold indices")
    ap.add_argument("--cache", default=None, help="frozen-state cache folder")
    ap.add_argument("--threads", type=int, default=1)
    for name in OVERRIDES:
        kind = str if name in ("model", "combine") else float if name.startswith("lr") else int
        ap.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind)
    ap.add_argument("--head-layers", type=int, nargs="+")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    if args.manifest:
        raw = read_recipe(args.recipe or args.recipe_defaults)
        raw["data"] = {"manifest": str(Path(args.manifest).resolve()), "labels": args.labels,
                       "protocol": args.protocol, "protocol_args": {"valid_fraction": 0.1}}
        raw["name"] = Path(args.manifest).stem + "-ft"
    elif args.recipe:
        raw = read_recipe(args.recipe)
    else:
        ap.error("give a recipe YAML or --manifest")
    cfg = finetune_config(raw, args)
    utts, classes, folds = recipe_data(raw)
    chosen = folds if args.folds is None else [folds[i] for i in args.folds]
    out = Path(args.out)
    save_folds(out / "folds.json", folds, {"protocol": raw["data"].get("protocol"), "seed": raw.get("seed", 0)})
    settings = {"finetune": asdict(cfg), "data": raw["data"], "seed": raw.get("seed", 0)}

    def skip(fold):
        path = out / "folds" / f"{fold.name}.json"
        if path.is_file():
            done = read_json(path)
            if done.get("config") == asdict(cfg) and done.get("test") == fold.test:
                return done
        return None

    started = time.time()

    def write(result=None):
        if result is not None:
            atomic_write_json(out / "folds" / f"{result['fold']}.json", result)
        rows = [r for f in folds if (r := skip(f)) is not None]  # every finished fold, this run or earlier
        uas, was = [r["metrics"]["ua"] for r in rows], [r["metrics"]["wa"] for r in rows]
        atomic_write_json(out / "results.json", {
            "name": raw.get("name"), "settings": settings, "folds_done": len(rows), "folds_total": len(folds),
            "partial": len(rows) < len(folds), "ua_mean": float(np.mean(uas)) if uas else None,
            "ua_std": sample_std(uas) if uas else None, "wa_mean": float(np.mean(was)) if was else None,
            "per_fold": [{"fold": r["fold"], "ua": r["metrics"]["ua"], "wa": r["metrics"]["wa"],
                          "valid_ua": r["history"].get("valid_ua"), "best_epoch": r["history"].get("best_epoch"),
                          "seconds": r["seconds"]} for r in rows],
            "wall_seconds_this_run": time.time() - started, "command": " ".join(sys.argv)})
        if rows:
            print(f"{len(rows)}/{len(folds)} folds: UA {summary(uas)}", flush=True)

    fine_tune_folds(utts, chosen, classes, cfg, cache_dir=args.cache, on_fold=write, skip=skip, progress=True)
    write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
