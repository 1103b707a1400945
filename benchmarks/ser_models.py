"""Table of the trained speech-emotion systems on EmoDB LOSO / RAVDESS 6 × 4 (the recipe READMEs' rows).

Every system is one recipe file run by one command, on the openSMILE baseline's folds (same
protocol, seed and validation speakers as ``recipes/baseline/*``); the CPU sizing of the CNNs is
part of those files (``recipes/<corpus>/*_cpu_*.yaml``), not of this script::

    emovox experiment recipes/emodb/loso_cpu_scratch.yaml -o runs/bench/emodb/scratch
    emovox experiment recipes/emodb/loso_whisper_head.yaml -o runs/bench/emodb/whisper_head
    emovox fuse --speech runs/bench/emodb/whisper_head --text runs/bench/emodb/ge2e_head \\
        --names whisper_head ge2e_head --rules weighted -o runs/bench/emodb/fuse-whisper_head+ge2e_head
    python benchmarks/ser_models.py --corpus emodb            # the table of everything under runs/bench/emodb

Per finished run: UA / WA mean ± std over folds, the mean validation UA of the selected epochs
(the only number a choice between variants may look at) and the summed training time; baseline
rows are read from ``--baseline-dir`` (reports of ``emovox baseline``) when present.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def fmt(metrics: dict, key: str) -> str:
    m = metrics.get(key)
    return f"{100 * m['mean']:.2f} ± {100 * m['std']:.2f}" if m else "–"


def valid_ua(run: Path) -> float | None:
    """Mean over folds of the validation UA at each fold's selected epoch (test UA never chooses)."""
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


def rows(folder: Path, baseline_dir: Path, corpus: str) -> list[str]:
    out = []
    for report in sorted(folder.glob("*/report.json")):
        data = json.loads(report.read_text())
        results = [json.loads(f.read_text()) for f in report.parent.glob("fold_*/result.json")]
        minutes = sum(r.get("train_seconds", 0) for r in results) / 60
        v = valid_ua(report.parent)
        out.append(f"| {report.parent.name} | {fmt(data['metrics'], 'ua')} | {fmt(data['metrics'], 'wa')} | "
                   f"{'–' if v is None else f'{100 * v:.1f}'} | {data['n_folds']} | {minutes:.0f} |")
    for fusion in sorted(folder.glob("fuse-*/fusion.json")):
        data = json.loads(fusion.read_text())
        for system, report in data.get("systems", {}).items():
            if system == "weighted":
                out.append(f"| {fusion.parent.name} | {fmt(report['metrics'], 'ua')} | "
                           f"{fmt(report['metrics'], 'wa')} | | {len(data.get('folds', []))} | |")
    for report in sorted(baseline_dir.glob(f"{corpus}-*/report.json")):
        data = json.loads(report.read_text())
        out.append(f"| baseline {report.parent.name} | {fmt(data['metrics'], 'ua')} | {fmt(data['metrics'], 'wa')} "
                   "| | | |")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", choices=["emodb", "ravdess"], default="emodb")
    p.add_argument("--out", type=Path, default=REPO / "runs/bench", help="folder holding <corpus>/<system> runs")
    p.add_argument("--baseline-dir", type=Path, default=REPO / "runs/baseline")
    args = p.parse_args()
    print("| system | UA (%) | WA (%) | valid UA (%) | folds | train (min) |\n|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows(args.out / args.corpus, args.baseline_dir, args.corpus)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
