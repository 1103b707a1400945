"""Pooled features of the project's other systems for the fusion table (ComParE, GE2E).

For every clip of a recipe (the folds' clips, loaded as ``emovox baseline`` loads them:
:meth:`Utterance.load_audio`, 16 kHz mono) this writes, with the baseline's upstreams:

* ``compare``: openSMILE ComParE_2016 functionals (6373; :class:`OpenSmileFunctionals`);
* ``ge2e``: the GE2E utterance embedding (256; :class:`GE2EEncoder`, resemblyzer weights);
* ``ge2eframes``: mean ‖ std of GE2E's last LSTM layer over frames (512; ``pooling=frames_mean_std``).

Shards of ``--shard`` clips go to ``OUT/<system>/<corpus>/NNNN.npz`` (arrays ``paths`` relative to
the corpora folder, ``feats``; the layout ``probes.read_shards`` reads), written atomically after
each shard; a re-run skips finished shards. One process, one thread.

    python recipes/whisper_ft/other_feats.py --corpus emodb --out runs/whisper_ft/fusion/feats
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import read_recipe, recipe_data  # noqa: E402
from probes import RECIPES  # noqa: E402

from emovox.io import atomic_path  # noqa: E402

SYSTEMS = ("compare", "ge2e", "ge2eframes")


def extractors():
    """One callable: 16 kHz samples -> {system: pooled vector} (the baseline's upstreams)."""
    import torch

    from emovox.upstreams.ge2e import GE2EEncoder
    from emovox.upstreams.opensmile import OpenSmileFunctionals
    from emovox.upstreams.pooling import mean_std

    torch.set_num_threads(1)
    smile, ge2e = OpenSmileFunctionals("compare"), GE2EEncoder()

    def run(x: np.ndarray) -> dict[str, np.ndarray]:
        g = ge2e.extract(x)
        return {"compare": smile.pooled(smile.extract(x)), "ge2e": g["embedding"],
                "ge2eframes": mean_std(g["frames"])}

    return run


def write_shard(target: Path, rel: list[str], feats: list[np.ndarray]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, paths=np.array(rel), feats=np.stack(feats).astype(np.float32))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="emodb", choices=list(RECIPES))
    ap.add_argument("--out", default="runs/whisper_ft/fusion/feats")
    ap.add_argument("--shard", type=int, default=100)
    args = ap.parse_args(argv)
    raw = read_recipe(RECIPES[args.corpus])
    utts, _, _ = recipe_data(raw)
    root = os.path.realpath(Path(raw["base_dir"], raw["data"]["root"]).parent)
    out = Path(args.out)
    extract = None
    for s in range(0, len(utts), args.shard):
        targets = {k: out / k / args.corpus / f"{s // args.shard:04d}.npz" for k in SYSTEMS}
        if all(t.exists() for t in targets.values()):
            continue
        extract = extract or extractors()
        part = utts[s:s + args.shard]
        rows = [extract(u.load_audio()) for u in part]
        rel = [os.path.relpath(os.path.realpath(u.path), root) for u in part]
        for k, t in targets.items():
            write_shard(t, rel, [r[k] for r in rows])
        print(args.corpus, f"{s // args.shard:04d}", len(part), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
