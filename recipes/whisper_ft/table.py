"""Markdown tables of the probe and fine-tuning results (the numbers in README.md).

    python recipes/whisper_ft/table.py --runs runs/whisper_ft
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def cell(rows: list[dict] | None) -> str:
    """mean ± sample std (ddof=1, as the baselines' reports) of the per-fold test UAs, in %."""
    if not rows:
        return "-"
    uas = np.array([r["ua"] for r in rows])
    std = uas.std(ddof=1) if len(uas) > 1 else 0.0
    return f"{100 * uas.mean():.1f} ± {100 * std:.1f}"


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def probe_table(runs: Path, model: str) -> list[str]:
    res = {c: load(runs / "probes" / f"{model}-{c}.json") for c in ("emodb", "ravdess")}
    names: list[str] = []
    for r in res.values():
        for n in (r or {}).get("probes", {}):
            if n not in names:
                names.append(n)
    lines = [f"| {model}: hidden state(s), linear SVM | EmoDB LOSO (10 folds) | RAVDESS 6×4 |", "|---|---|---|"]
    for n in sorted(names, key=lambda n: (not n.startswith("layer"), n)):
        row = [cell(p["per_fold"]) if (p := (r or {}).get("probes", {}).get(n)) else "-"
               for r in res.values()]
        lines.append(f"| {n} | {row[0]} | {row[1]} |")
    for tag, label in (("-head-weighted", "PooledHead, weighted sum of all states (SUPERB style)"),
                       ("-head-concat-2", "PooledHead, concat, state 2 only (same training; diagnostic)")):
        heads = [load(runs / "probes" / f"{model}-{c}{tag}.json") for c in ("emodb", "ravdess")]
        if any(heads):
            row = [cell(h["weighted_head"]["per_fold"]) if h else "-" for h in heads]
            lines.append(f"| {label} | {row[0]} | {row[1]} |")
    return lines


def ft_table(runs: Path) -> list[str]:
    """Fine-tuning runs (EmoDB, base) next to base's SVM probes on exactly the folds done."""
    probes = (load(runs / "probes" / "base-emodb.json") or {}).get("probes", {})
    refs = [n for n in ("layer 6", "layer 3", "1+3+5") if n in probes]
    lines = ["| run | folds done | UA mean ± std (done folds) | per fold: test UA (valid UA, best epoch, s) | "
             + " / ".join(f"SVM {n}" for n in refs) + ", same folds |", "|---|---|---|---|---|"]
    for f in sorted(runs.glob("*/results.json")):
        r = json.loads(f.read_text())
        per = "; ".join(f"{p['fold']} {100 * p['ua']:.1f} ({100 * (p['valid_ua'] or 0):.1f}, {p['best_epoch']}, "
                        f"{p['seconds']:.0f})" for p in r["per_fold"])
        done = {p["fold"] for p in r["per_fold"]}
        same = " / ".join(cell([p for p in probes[n]["per_fold"] if p["fold"] in done]) for n in refs)
        ft = r["settings"]["finetune"]
        name = f"{f.parent.name} (k={ft['k']}, top={ft['top'] or 'last'}, head on {ft['head_layers'] or 'top'})"
        lines.append(f"| {name} | {r['folds_done']}/{r['folds_total']} | {cell(r['per_fold'])} | {per} | {same} |")
    return lines


FUSION_LABELS = {"single": "alone", "feature": "feature-level (standardised concatenation, one SVM)",
                 "score": "score-level (calibrated SVM scores, weight on validation)"}


def fusion_table(runs: Path) -> list[str]:
    """Single systems and their fusions (``fusion.py``), both corpora; chosen rows in bold."""
    res = {c: load(runs / "fusion" / f"{c}.json") for c in ("emodb", "ravdess")}
    names: list[str] = []
    for r in res.values():
        names += [n for n in (r or {}).get("rows", {}) if n not in names]
    lines = ["| system | kind | EmoDB LOSO: test UA (valid UA) | RAVDESS 6×4: test UA (valid UA) |",
             "|---|---|---|---|"]
    for n in names:
        cells, kind = [], "-"
        for r in res.values():
            row = (r or {}).get("rows", {}).get(n)
            if row is None:
                cells.append("-")
                continue
            kind = FUSION_LABELS[row["kind"]]
            text = f"{cell(row['per_fold'])} ({100 * row['valid_ua_mean']:.1f})"
            cells.append(f"**{text}**" if n in r["chosen"].values() else text)
        lines.append(f"| {n.split(': ')[-1]} | {kind} | {cells[0]} | {cells[1]} |")
    for c, r in res.items():
        if r:
            lines.append(f"\nChosen on validation ({c}): Whisper `{r['chosen']['whisper']}`, GE2E "
                         f"`{r['chosen']['ge2e']}`, fusion `{r['chosen']['fusion']}`; command: `{r['command']}`")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", default="runs/whisper_ft")
    runs = Path(ap.parse_args(argv).runs)
    for model in ("tiny.en", "base"):
        print("\n".join(probe_table(runs, model)) + "\n")
    print("\n".join(ft_table(runs)))
    if (runs / "fusion").is_dir():
        print("\n" + "\n".join(fusion_table(runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
