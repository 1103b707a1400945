"""Cross-validation reports: per-fold table + mean ± std (Markdown and JSON) and figures.

Input is one dict per fold: ``{"fold": name, "metrics": classification_metrics(...)}``
(``metrics`` may also carry seed 002's ``sa aca sca alca bca``; extra keys are ignored). Files
written (atomically) into the output folder:

* ``report.md``   - per-fold table in percent and a ``mean ± std`` row (sample std, ddof=1);
* ``report.json`` - the same numbers as fractions, plus the confusion matrix summed over folds;
* ``confusion.png`` - row-normalised confusion matrix in percent, like seed 000 Fig. 3.

:func:`plot_bars` draws grouped bars with error bars (mean ± std over folds/runs), like seed 000
Fig. 4. Figures use matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from emovox.errors import EmovoxError
from emovox.evaluation.metrics import CLIP_METRIC_NAMES, METRIC_NAMES, mean_std, row_normalize
from emovox.io import atomic_path, atomic_write_json, atomic_write_text, read_json

REPORT_METRICS = METRIC_NAMES + CLIP_METRIC_NAMES
HEADERS = {"wa": "WA", "ua": "UA", "macro_f1": "macro-F1", "weighted_f1": "weighted-F1", "sa": "SA",
           "aca": "ACA", "sca": "SCA", "alca": "ALCA", "bca": "BCA"}


def _metrics(result: Mapping[str, Any]) -> Mapping[str, Any]:
    return result.get("metrics", result)


def summarize(fold_results: Sequence[Mapping[str, Any]], labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Per-fold scores, mean ± std of every metric present in all folds, summed confusion matrix."""
    if not fold_results:
        raise EmovoxError("report: no fold results to summarise")
    names = [m for m in REPORT_METRICS if all(_metrics(r).get(m) is not None for r in fold_results)]
    folds: list[dict[str, Any]] = []
    for i, r in enumerate(fold_results):
        m = _metrics(r)
        row: dict[str, Any] = {"fold": str(r.get("fold", r.get("name", f"fold{i + 1}")))}
        row.update({k: float(m[k]) for k in names})
        if "n" in m:
            row["n"] = int(m["n"])
        folds.append(row)
    summary: dict[str, Any] = {
        "n_folds": len(folds),
        "folds": folds,
        "metrics": {k: dict(zip(("mean", "std"), mean_std([f[k] for f in folds]))) for k in names},
    }
    cms = [np.asarray(_metrics(r)["confusion"]) for r in fold_results if "confusion" in _metrics(r)]
    if cms and len(cms) == len(fold_results) and len({c.shape for c in cms}) == 1:
        total = np.sum(cms, axis=0)
        summary["confusion"] = total.astype(int).tolist()
        summary["confusion_normalized"] = row_normalize(total).tolist()
    labels = labels or _metrics(fold_results[0]).get("labels")
    summary["labels"] = [str(c) for c in labels] if labels is not None else None
    return summary


def _pct(x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{100 * x:.2f}"


def markdown_table(summary: Mapping[str, Any], title: str = "") -> str:
    """The per-fold table and the mean ± std row, in percent."""
    names = list(summary["metrics"])
    lines = [f"# {title}", ""] if title else []
    lines.append("| fold | n | " + " | ".join(HEADERS[k] + " (%)" for k in names) + " |")
    lines.append("|---|---:|" + "---:|" * len(names))
    for f in summary["folds"]:
        lines.append(f"| {f['fold']} | {f.get('n', '')} | " + " | ".join(_pct(f[k]) for k in names) + " |")
    stats = summary["metrics"]
    lines.append("| **mean ± std** | | " + " | ".join(
        f"**{_pct(stats[k]['mean'])} ± {_pct(stats[k]['std'])}**" for k in names) + " |")
    if summary.get("confusion") and summary.get("labels"):
        lines += ["", "Confusion matrix summed over folds (rows: true, columns: predicted; counts):", ""]
        labels = summary["labels"]
        lines.append("| true \\ pred | " + " | ".join(labels) + " |")
        lines.append("|---|" + "---:|" * len(labels))
        for lab, row in zip(labels, summary["confusion"]):
            lines.append(f"| {lab} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=150, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def plot_confusion(path: str | Path, matrix: Any, labels: Sequence[str], title: str = "",
                   normalize: bool = True) -> Path:
    """Confusion matrix heat map with the value in every cell (row-normalised percent by default)."""
    plt = _pyplot()
    cm = np.asarray(matrix, dtype=float)
    if cm.shape != (len(labels), len(labels)):
        raise EmovoxError(f"report: confusion matrix shape {cm.shape} does not match {len(labels)} labels")
    shown = 100 * row_normalize(cm) if normalize else cm
    size = 1.0 + 0.75 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=100 if normalize else None)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% of true class" if normalize else "count")
    ax.set(xticks=range(len(labels)), yticks=range(len(labels)), xticklabels=labels, yticklabels=labels,
           xlabel="Predicted label", ylabel="True label", title=title)
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    threshold = (100 if normalize else shown.max() or 1) / 2
    for i in range(len(labels)):
        for j in range(len(labels)):
            txt = f"{shown[i, j]:.1f}" if normalize else f"{int(shown[i, j])}"
            ax.text(j, i, txt, ha="center", va="center", color="white" if shown[i, j] > threshold else "black",
                    fontsize=9)
    return _save(fig, path)


def plot_bars(path: str | Path, data: Mapping[str, Mapping[str, tuple[float, float]]], ylabel: str = "WA (%)",
              title: str = "", percent: bool = True) -> Path:
    """Grouped bars with error bars: ``data[group][series] = (mean, std)`` (fractions if ``percent``).

    E.g. groups = experiments (Exp 1/2/3), series = systems (baseline, +TL, +Aug, +SP, all) as in
    seed 000 Fig. 4.
    """
    plt = _pyplot()
    groups = list(data)
    series = list(dict.fromkeys(s for g in groups for s in data[g]))
    if not groups or not series:
        raise EmovoxError("report: nothing to plot (empty data)")
    scale = 100.0 if percent else 1.0
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(groups) * max(1, len(series)) * 0.5 + 2), 4))
    x = np.arange(len(groups))
    for k, s in enumerate(series):
        means = [scale * data[g][s][0] if s in data[g] else np.nan for g in groups]
        stds = [scale * data[g][s][1] if s in data[g] else 0.0 for g in groups]
        ax.bar(x + (k - (len(series) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=s)
    ax.set(xticks=x, xticklabels=groups, ylabel=ylabel, title=title)
    finite = [scale * v[0] for g in groups for v in data[g].values() if not math.isnan(v[0])]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 10 * scale / 100), min(scale, max(finite) + 8 * scale / 100))
    ax.legend(fontsize=8, ncol=min(len(series), 3))
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def write_report(out_dir: str | Path, fold_results: Sequence[Mapping[str, Any]], labels: Sequence[str] | None = None,
                 title: str = "", extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write ``report.md``, ``report.json`` and ``confusion.png`` into ``out_dir``; return the summary."""
    out = Path(out_dir)
    summary = summarize(fold_results, labels)
    summary["title"] = title
    if extra:
        summary["extra"] = dict(extra)
    files = {"markdown": str(out / "report.md"), "json": str(out / "report.json")}
    if summary.get("confusion") and summary.get("labels"):
        files["confusion_png"] = str(plot_confusion(out / "confusion.png", summary["confusion"], summary["labels"],
                                                    title=title))
    summary["files"] = files
    atomic_write_text(out / "report.md", markdown_table(summary, title))
    atomic_write_json(out / "report.json", summary)
    return summary


def load_report(out_dir: str | Path) -> dict[str, Any]:
    """The summary written by :func:`write_report` (``report.json`` in ``out_dir``)."""
    path = Path(out_dir) / "report.json"
    if not path.is_file():
        raise EmovoxError(f"report not found: {path} (run the experiment first)")
    return read_json(path)


def bars_from_reports(reports: Mapping[str, Mapping[str, Mapping[str, Any]]], metric: str = "wa"
                      ) -> dict[str, dict[str, tuple[float, float]]]:
    """``{group: {series: summary}}`` of :func:`write_report` summaries -> :func:`plot_bars` data."""
    return {g: {s: (r["metrics"][metric]["mean"], r["metrics"][metric]["std"]) for s, r in series.items()}
            for g, series in reports.items()}
