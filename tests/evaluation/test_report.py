"""Report writer: per-fold table, mean ± std, JSON, figures (written atomically)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emovox.errors import EmovoxError
from emovox.evaluation.metrics import classification_metrics
from emovox.evaluation.report import bars_from_reports, load_report, plot_bars, summarize, write_report

LABELS = ["angry", "happy", "sad"]


def folds():
    f1 = classification_metrics(["angry", "happy", "sad", "sad"], ["angry", "happy", "sad", "happy"], LABELS)
    f2 = classification_metrics(["angry", "happy", "sad", "sad"], ["angry", "sad", "sad", "sad"], LABELS)
    return [{"fold": "test-A", "metrics": f1}, {"fold": "test-B", "metrics": f2}]


def test_summary_mean_std_and_summed_confusion():
    s = summarize(folds())
    assert s["n_folds"] == 2 and s["labels"] == LABELS
    assert s["metrics"]["wa"]["mean"] == pytest.approx(0.75)  # both folds 3/4
    assert s["metrics"]["wa"]["std"] == pytest.approx(0.0)
    # UA fold1 = (1 + 1 + 1/2)/3, fold2 = (1 + 0 + 1)/3
    ua = [2.5 / 3, 2 / 3]
    assert s["metrics"]["ua"]["mean"] == pytest.approx(np.mean(ua))
    assert s["metrics"]["ua"]["std"] == pytest.approx(np.std(ua, ddof=1))
    assert s["confusion"] == [[2, 0, 0], [0, 1, 1], [0, 1, 3]]


def test_write_report_files(tmp_path):
    s = write_report(tmp_path / "out", folds(), LABELS, title="EmoDB LOSO")
    md = (tmp_path / "out" / "report.md").read_text()
    assert "| test-A | 4 |" in md and "**mean ± std**" in md and "# EmoDB LOSO" in md
    assert "| happy | 0 | 1 | 1 |" in md
    assert f"**{100 * s['metrics']['ua']['mean']:.2f} ± " in md
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert data["metrics"]["wa"]["mean"] == pytest.approx(0.75)
    assert load_report(tmp_path / "out")["folds"][1]["fold"] == "test-B"
    png = tmp_path / "out" / "confusion.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")], "no temp files left"


def test_clip_metrics_appear_when_present(tmp_path):
    rows = [{"fold": "run1", "metrics": {"sa": 0.5, "aca": 0.1, "sca": 0.4, "alca": 0.6, "bca": 0.7}},
            {"fold": "run2", "metrics": {"sa": 0.7, "aca": 0.3, "sca": 0.6, "alca": 0.8, "bca": 0.9}}]
    s = write_report(tmp_path, rows, title="seed 002")
    assert list(s["metrics"]) == ["sa", "aca", "sca", "alca", "bca"]
    assert s["metrics"]["alca"]["mean"] == pytest.approx(0.7)
    assert "ALCA (%)" in (tmp_path / "report.md").read_text()
    assert not (tmp_path / "confusion.png").exists()


def test_bar_chart(tmp_path):
    reports = {"Exp 1": {"baseline": summarize(folds()), "+SP": summarize(folds()[:1])},
               "Exp 3": {"baseline": summarize(folds())}}
    data = bars_from_reports(reports, "wa")
    assert data["Exp 1"]["+SP"] == (pytest.approx(0.75), 0.0)
    path = plot_bars(tmp_path / "bars.png", data, title="WA with and without SP")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_errors(tmp_path):
    with pytest.raises(EmovoxError, match="no fold results"):
        summarize([])
    with pytest.raises(EmovoxError, match="nothing to plot"):
        plot_bars(tmp_path / "x.png", {})
    with pytest.raises(EmovoxError, match="report not found"):
        load_report(tmp_path)
