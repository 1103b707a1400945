"""Markdown tables of the probe, fine-tuning and fusion results (the numbers in README.md).

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
    """Fine-tuning runs (base) next to base's SVM probes of the run's corpus on exactly the folds done."""
    refs = ("layer 6", "layer 3", "1+3+5")
    lines = ["| run | folds done | UA mean ± std (done folds) | per fold: test UA (valid UA, best epoch, s) | "
             + " / ".join(f"SVM {n}" for n in refs) + ", same folds |", "|---|---|---|---|---|"]
    for f in sorted(runs.glob("*/results.json")):
        r = json.loads(f.read_text())
        corpus = r["settings"]["data"].get("corpus", "emodb")
        probes = (load(runs / "probes" / f"base-{corpus}.json") or {}).get("probes", {})
        per = "; ".join(f"{p['fold']} {100 * p['ua']:.1f} ({100 * (p['valid_ua'] or 0):.1f}, {p['best_epoch']}, "
                        f"{p['seconds']:.0f})" for p in r["per_fold"])
        done = {p["fold"] for p in r["per_fold"]}
        same = " / ".join(cell([p for p in probes[n]["per_fold"] if p["fold"] in done]) if n in probes else "-"
                          for n in refs)
        ft = r["settings"]["finetune"]
        name = f"{f.parent.name} (k={ft['k']}, top={ft['top'] or 'last'}, head on {ft['head_layers'] or 'top'})"
        lines.append(f"| {name} | {r['folds_done']}/{r['folds_total']} | {cell(r['per_fold'])} | {per} | {same} |")
    return lines


SYSTEM_NAMES = {"whisper 1+3+5": "Whisper base, states 1+3+5", "whisper 2+3+4": "Whisper base, states 2+3+4",
                "compare": "ComParE_2016 functionals (6373)", "ge2e": "GE2E utterance embedding (256)",
                "ge2eframes": "GE2E frames, mean ‖ std (512)"}
FUSION_LABELS = {"feature": "feature-level (standardised concatenation → SVM)",
                 "score": "score-level (calibrated SVM scores, weight on validation)"}


def _fusion_rows(result: dict) -> dict[str, tuple[dict, bool]]:
    """Display name -> (row, chosen on validation); fusions named by role (W* = the chosen Whisper set)."""
    out = {}
    for name, row in result["rows"].items():
        if row["kind"] == "single":
            label = SYSTEM_NAMES.get(name, name)
        else:
            label = f"{FUSION_LABELS[row['kind']]}: W* + " + " + ".join(row["members"][1:])
        out[label] = (row, name in result["chosen"].values())
    order = [*SYSTEM_NAMES.values(), *FUSION_LABELS]
    return dict(sorted(out.items(), key=lambda kv: (next(i for i, o in enumerate(order) if kv[0].startswith(o)),
                                                    len(kv[1][0]["members"]), kv[0])))


def fusion_table(runs: Path) -> list[str]:
    """Single systems and their fusions (``fusion.py``), both corpora; validation choices in bold."""
    res = {c: load(runs / "fusion" / f"{c}.json") for c in ("emodb", "ravdess")}
    rows = {c: _fusion_rows(r) for c, r in res.items() if r}
    names: list[str] = []
    for r in rows.values():
        names += [n for n in r if n not in names]
    lines = ["| system (SVM per fold, C on validation) | EmoDB LOSO: test UA (valid UA) | RAVDESS 6×4: test UA (valid UA) "
             "| command |", "|---|---|---|---|"]
    for n in names:
        cells = []
        for c in ("emodb", "ravdess"):
            row, chosen = rows.get(c, {}).get(n, (None, False))
            text = "-" if row is None else f"{cell(row['per_fold'])} ({100 * row['valid_ua_mean']:.1f})"
            cells.append(f"**{text}**" if chosen else text)
        lines.append(f"| {n} | {cells[0]} | {cells[1]} | `python recipes/whisper_ft/fusion.py --corpus emodb` / `ravdess` |")
    lines.append("")
    for c, r in res.items():
        if r:
            lines.append(f"{c}: W* = `{r['chosen']['whisper']}`, GE2E = `{r['chosen']['ge2e']}`, fusion = "
                         f"`{r['chosen']['fusion']}` (chosen on validation UA)  ")
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
