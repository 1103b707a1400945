"""Write MODEL_CARD.md and the recipe README tables from train.py's JSON results.

    python recipes/generalist/card.py --runs runs/generalist --out src/emovox/assets/default_model/MODEL_CARD.md
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

CMD = "python recipes/generalist/train.py --stage {stage}"


def pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def loco_table(ev: dict, key: str = "loco") -> str:
    rows = ["| held-out corpus | n | 4-class UA | own-label UA (labels) | most predicted (share) |", "|---|---|---|---|---|"]
    for r in ev[key]:
        rows.append(f"| {r['corpus']} | {r['n']} | {pct(r['shared']['ua'])} | {pct(r['own']['ua'])} "
                    f"({len(r['corpus_labels'])}) | {r['top_class']} ({100 * r['max_share']:.0f} %) |")
    s = ev[f"{key}_summary"]
    rows.append(f"| **mean** | | **{pct(s['mean_shared_ua'])}** (min {pct(s['min_shared_ua'])}) | "
                f"**{pct(s['mean_own_ua'])}** (min {pct(s['min_own_ua'])}) | |")
    return "\n".join(rows)


def kfold_table(ev: dict) -> str:
    ua = np.array([r["ua"] for r in ev["kfold"]])
    wa = np.array([r["wa"] for r in ev["kfold"]])
    rows = ["| fold | UA | WA | UA telephone | ECE before | ECE after (T) |", "|---|---|---|---|---|---|"]
    for r in ev["kfold"]:
        rows.append(f"| {r['fold']} | {pct(r['ua'])} | {pct(r['wa'])} | {pct(r.get('ua_telephone'))} | "
                    f"{r['ece_before']:.3f} | {r['ece_after']:.3f} ({r['temperature']:.2f}) |")
    tel = [r["ua_telephone"] for r in ev["kfold"] if r.get("ua_telephone") is not None]
    rows.append(f"| **mean ± std** | **{100 * ua.mean():.1f} ± {100 * ua.std(ddof=1):.1f}** | "
                f"{100 * wa.mean():.1f} ± {100 * wa.std(ddof=1):.1f} | "
                f"{(f'{100 * np.mean(tel):.1f} ± {100 * np.std(tel, ddof=1):.1f}') if tel else '–'} | "
                f"{np.mean([r['ece_before'] for r in ev['kfold']]):.3f} | {np.mean([r['ece_after'] for r in ev['kfold']]):.3f} |")
    return "\n".join(rows)


def select_table(sel: dict) -> str:
    rows = ["| candidate | mean validation UA over LOCO folds |", "|---|---|"]
    for name, r in sel["candidates"].items():
        mark = " ← chosen" if name == sel["chosen"] else ""
        rows.append(f"| {name}{mark} | {pct(r['valid_ua_mean'])} |")
    return "\n".join(rows)


def augment_table(aug: dict) -> str:
    """Training augmentations: the choice (validation copies) and, beside it, the held-out corpora."""
    copies = list(next(iter(aug["augments"].values()))["valid"])
    rows = ["| training copy | " + " | ".join(f"valid UA, {c} copies" for c in copies) + " | **valid score** | "
            "LOCO 4-class UA mean (min) | LOCO, telephone copies |", "|---" * (len(copies) + 4) + "|"]
    for name, r in aug["augments"].items():
        mark = " ← chosen" if name == aug["chosen_augment"] else ""
        s, t = r["loco_summary"], r["loco_telephone_summary"]
        rows.append(f"| {name}{mark} | " + " | ".join(pct(np.mean(r["valid"][c])) for c in copies)
                    + f" | **{pct(r['valid_score'])}** | {pct(s['mean_shared_ua'])} ({pct(s['min_shared_ua'])}) | "
                    f"{pct(t['mean_shared_ua'])} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", default="runs/generalist")
    ap.add_argument("--out", required=True)
    ap.add_argument("--extra", default=None, help="markdown file appended (speed, before-figures)")
    args = ap.parse_args(argv)
    runs = Path(args.runs)
    sel = json.loads((runs / "select.json").read_text())
    parts = ["## Model selection (validation speakers only)", f"Command: `{CMD.format(stage='select')}`", "",
             select_table(sel), ""]
    suffix = ""
    if (runs / "augment.json").is_file():
        aug = json.loads((runs / "augment.json").read_text())
        suffix = "" if aug["chosen_augment"] == "none" else f"-{aug['chosen_augment']}"
        parts += ["### Training augmentation (validation copies only)",
                  f"Command: `{CMD.format(stage='augment')}`. Each row trains every LOCO fold on each training clip "
                  "plus one degraded copy of it (`features.py --degrade NAME`); the choice is the highest **valid "
                  f"score**: {aug['rule']}. The LOCO columns are the held-out corpora, shown beside it and never "
                  "read by the choice.", "", augment_table(aug), ""]
    ev = json.loads((runs / f"evaluate{suffix}.json").read_text())
    ship = json.loads((runs / f"ship{suffix}.json").read_text())
    flag = f" --augment {suffix[1:]}" if suffix else ""
    parts += [
        "## Leave-one-corpus-out (train on four corpora, test on the fifth)",
        f"Command: `{CMD.format(stage='evaluate')}{flag}`. 4-class UA = angry/happy/neutral/sad (every corpus has "
        "them; scores restricted to those 4); own-label UA = every label of the held-out corpus that the "
        "model knows. Chance: 25 % (4-class).", "", loco_table(ev), "",
    ]
    if ev.get("loco_telephone"):
        parts += ["### Telephone-band copies of each held-out corpus (8 kHz, G.711 μ-law, back to 16 kHz)", "",
                  loco_table(ev, "loco_telephone"), ""]
    parts += ["## 5-fold speaker-disjoint cross-validation over all five corpora (7 classes)",
              "Temperature fitted on each fold's validation speakers; ECE with 15 bins on the test fold.", "",
              kfold_table(ev), "",
              "## Shipped model", f"Command: `{CMD.format(stage='ship')}{flag}`. Trained on every speaker except the "
              f"validation speakers ({len(ship['valid_speakers'])}), used to choose the epoch and the temperature "
              f"(T = {ship['temperature']:.3f}; validation UA {pct(ship['valid_ua'])}; validation ECE "
              f"{ship['ece_valid_before']:.3f} → {ship['ece_valid_after']:.3f}).", ""]
    text = "\n".join(parts)
    if args.extra and Path(args.extra).is_file():
        text += "\n" + Path(args.extra).read_text()
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
