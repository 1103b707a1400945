"""Late score fusion of a speech and a text classifier (seed 001 §3.3, eq. 1–2).

Scores are natural-log posteriors, shape ``(N, classes)``, same class order in both modalities.

* ``weighted`` (eq. 1): ``S = w1 · S_speech + (1 − w1) · S_text``; ``w1`` is searched on a grid
  over [0, 1] (step 0.01) on the **validation** part only (never the test fold). The paper says
  only "the best setting"; the criterion is ``metric``: ``nll`` (default) minimises the
  cross-entropy of ``softmax(S)`` on the validation labels — a proper scoring rule, smooth in
  ``w1``, as in the logistic-regression score fusion of speaker/language recognition; ``ua`` /
  ``wa`` maximise the validation accuracy, whose flat plateaus over-fit small validation sets
  (on RAVDESS with 2 validation actors, an uninformative text model pulled w1 down to 0.38 on a
  1-utterance gain; see recipes/padi2022/README.md). Accuracy ties are broken by the median of
  the tied weights (the middle of the best plateau), then rounded to the grid.
* ``znorm`` (eq. 2): each modality's scores are z-normalised, ``(S − μ) / σ``, with one scalar
  mean and standard deviation per modality computed over all validation scores (every class,
  every utterance), then averaged with equal weights ``w1 = w2 = 0.5``.

The predicted class is the argmax of the fused score. The chosen ``w1`` and statistics are kept
in a :class:`Fusion` (``to_dict`` for the fold results).

Missing scores: a row that is entirely NaN means "this modality has no score for this
utterance" (e.g. an empty transcript); that utterance falls back to the other modality and the
counts are recorded (:class:`Coverage`). A modality missing altogether (``None``, or no usable
validation rows) makes the fusion fall back to the other one (``Fusion.modalities``), recorded.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from emovox.errors import ConfigError, FusionError
from emovox.scores import ScorePart, ScoreSet, available, check_scores, score_files  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

RULES = ("weighted", "znorm")
METRICS = ("nll", "ua", "wa")
DEFAULT_GRID = np.round(np.linspace(0.0, 1.0, 101), 2)


@dataclass
class ScoreStats:
    """Scalar z-normalisation statistics of one modality (validation scores only)."""

    mean: float
    std: float


@dataclass
class Coverage:
    """How many utterances had both scores, only speech, or only text."""

    both: int = 0
    speech_only: int = 0
    text_only: int = 0


@dataclass
class Fusion:
    """A fitted fusion rule: the weight of speech ``w1`` and, for ``znorm``, the statistics."""

    rule: str
    w1: float
    modalities: str = "both"                  # "both" | "speech" | "text" (fallback when one is missing)
    speech_stats: ScoreStats | None = None
    text_stats: ScoreStats | None = None
    metric: str = "nll"
    valid_metric: float | None = None        # validation metric at the chosen w1 (nll: lower is better)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Fusion":
        d = dict(d)
        for k in ("speech_stats", "text_stats"):
            if d.get(k) is not None:
                d[k] = ScoreStats(**d[k])
        return cls(**d)

    def apply(self, speech: np.ndarray | None, text: np.ndarray | None) -> tuple[np.ndarray, Coverage]:
        """Fused scores ``(N, classes)`` and per-utterance coverage."""
        speech, text = check_pair(speech, text)
        # A single-modality fallback has w1 = 1 (speech) or 0 (text), so the other modality only
        # ever serves utterances that lack the kept one.
        if speech is not None and self.speech_stats is not None:
            speech = (speech - self.speech_stats.mean) / self.speech_stats.std
        if text is not None and self.text_stats is not None:
            text = (text - self.text_stats.mean) / self.text_stats.std
        return combine(speech, text, self.w1)

    def predict(self, speech: np.ndarray | None, text: np.ndarray | None) -> np.ndarray:
        """Class indices (argmax of the fused scores)."""
        return self.apply(speech, text)[0].argmax(axis=1)


# --------------------------------------------------------------------------------- checking
def check_pair(speech: Any, text: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    speech, text = check_scores(speech, "speech"), check_scores(text, "text")
    if speech is None and text is None:
        raise FusionError("no scores to fuse: both the speech and the text scores are missing")
    if speech is not None and text is not None and speech.shape != text.shape:
        raise FusionError(f"speech scores {speech.shape} and text scores {text.shape} differ in shape; they must "
                          "cover the same utterances in the same order with the same classes")
    return speech, text


def combine(speech: np.ndarray | None, text: np.ndarray | None, w1: float) -> tuple[np.ndarray, Coverage]:
    """``w1·speech + (1−w1)·text`` per row; a row missing one modality takes the other's scores."""
    ref = speech if speech is not None else text
    assert ref is not None  # check_pair: at least one modality is present
    n = len(ref)
    has_s, has_t = available(speech, n), available(text, n)
    if (~has_s & ~has_t).any():
        row = int(np.flatnonzero(~has_s & ~has_t)[0])
        raise FusionError(f"utterance row {row} has neither a speech nor a text score; cannot predict it")
    shape = ref.shape
    out = np.empty(shape, dtype=np.float64)
    both = has_s & has_t
    if both.any():
        assert speech is not None and text is not None  # rows with both scores: both arrays exist
        out[both] = w1 * speech[both] + (1.0 - w1) * text[both]
    if (has_s & ~has_t).any():
        assert speech is not None
        out[has_s & ~has_t] = speech[has_s & ~has_t]
    if (has_t & ~has_s).any():
        assert text is not None
        out[has_t & ~has_s] = text[has_t & ~has_s]
    return out, Coverage(int(both.sum()), int((has_s & ~has_t).sum()), int((has_t & ~has_s).sum()))


# ---------------------------------------------------------------------------------- fitting
def _score(metric: str, y: np.ndarray, fused: np.ndarray) -> float:
    """Higher is better: UA / WA of the argmax, or minus the mean cross-entropy of softmax(fused)."""
    from scipy.special import log_softmax

    from emovox.evaluation.metrics import unweighted_accuracy, weighted_accuracy

    if metric == "nll":
        return float(log_softmax(fused, axis=1)[np.arange(len(y)), y].mean())
    return (unweighted_accuracy if metric == "ua" else weighted_accuracy)(y, fused.argmax(1))


def _fallback(rule: str, speech: np.ndarray | None, text: np.ndarray | None, where: str) -> Fusion | None:
    """A single-modality :class:`Fusion` when one modality has no usable validation scores."""
    ref = speech if speech is not None else text
    assert ref is not None  # check_pair: at least one modality is present
    n = len(ref)
    if available(text, n).any() and available(speech, n).any():
        return None
    missing, kept = ("text", "speech") if not available(text, n).any() else ("speech", "text")
    note = f"{missing} scores missing on the {where}; fusion falls back to {kept} only"
    log.warning(note)
    return Fusion(rule, 1.0 if kept == "speech" else 0.0, modalities=kept, note=note)


def fit_weighted(speech: Any, text: Any, y: Sequence[int] | np.ndarray, grid: Sequence[float] | np.ndarray = DEFAULT_GRID,
                 metric: str = "nll") -> Fusion:
    """Eq. 1: the grid weight of speech that is best by ``metric`` on these (validation) scores."""
    speech, text = check_pair(speech, text)
    y = np.asarray(y)
    if metric not in METRICS:
        raise ConfigError(f"fusion metric must be one of {METRICS}, got {metric!r}")
    grid = np.asarray(grid, dtype=float)
    if grid.size == 0 or grid.min() < 0 or grid.max() > 1:
        raise ConfigError("fusion weight grid must be non-empty values in [0, 1]")
    if len(y) != len(speech if speech is not None else text):
        raise FusionError(f"{len(y)} validation labels for {len(speech if speech is not None else text)} score rows")
    fallback = _fallback("weighted", speech, text, "validation part")
    if fallback is not None:
        return fallback
    values = np.array([_score(metric, y, combine(speech, text, w)[0]) for w in grid])
    tied = np.sort(grid[np.isclose(values, values.max(), rtol=0, atol=1e-12)])
    w1 = float(grid[np.abs(grid - np.median(tied)).argmin()])
    best = -values.max() if metric == "nll" else values.max()
    return Fusion("weighted", w1, metric=metric, valid_metric=float(best),
                  note=f"{tied.size} grid weight(s) tie at validation {metric}={best:.4f}")


def score_stats(scores: np.ndarray, name: str) -> ScoreStats:
    """Scalar mean/std over every finite validation score of one modality.

    Constant scores carry no information; they get ``std = 1`` (a warning) so their normalised
    scores are all zero and the other modality decides.
    """
    values = scores[np.isfinite(scores)]
    std = float(values.std())
    if std <= 1e-12:
        log.warning("%s validation scores are constant (no information); using std = 1 so the other modality "
                    "decides", name)
        std = 1.0
    return ScoreStats(float(values.mean()), std)


def fit_znorm(speech: Any, text: Any) -> Fusion:
    """Eq. 2: validation statistics per modality, then equal weights (w1 = 0.5)."""
    speech, text = check_pair(speech, text)
    fallback = _fallback("znorm", speech, text, "validation part")
    if fallback is not None:
        return fallback
    return Fusion("znorm", 0.5, speech_stats=score_stats(speech, "speech"), text_stats=score_stats(text, "text"))


def fit_fusion(rule: str, speech: Any, text: Any, y: Sequence[int] | np.ndarray | None = None, **kwargs: Any) -> Fusion:
    """Fit ``rule`` (``weighted`` needs the validation labels ``y``)."""
    if rule == "weighted":
        if y is None:
            raise ConfigError("the weighted fusion rule needs validation labels to search w1")
        return fit_weighted(speech, text, y, **kwargs)
    if rule == "znorm":
        return fit_znorm(speech, text)
    raise ConfigError(f"unknown fusion rule {rule!r} (choose from: {', '.join(RULES)})")


@dataclass
class FusedFold:
    """One rule's fitted fusion and its fused test scores for one fold."""

    fusion: Fusion
    scores: np.ndarray
    coverage: Coverage

    @property
    def predictions(self) -> np.ndarray:
        return self.scores.argmax(axis=1)

    def record(self) -> dict[str, Any]:
        """What is saved with the fold results."""
        return {"fusion": self.fusion.to_dict(), "coverage": asdict(self.coverage)}


def fuse_fold(speech_valid: Any, text_valid: Any, y_valid: Sequence[int] | np.ndarray, speech_test: Any, text_test: Any,
              rules: Sequence[str] = RULES, **kwargs: Any) -> dict[str, FusedFold]:
    """Fit every rule on the validation part and apply it to the test part of one fold."""
    out = {}
    for rule in rules:
        fusion = fit_fusion(rule, speech_valid, text_valid, y_valid, **kwargs)
        s_test, t_test = check_pair(speech_test, text_test)
        if fusion.modalities == "both":
            ref = s_test if s_test is not None else t_test
            assert ref is not None  # check_pair: at least one modality is present
            n = len(ref)
            for name, scores in (("speech", s_test), ("text", t_test)):
                if not available(scores, n).any():
                    kept = "text" if name == "speech" else "speech"
                    fusion.modalities, fusion.note = kept, f"{name} scores missing on the test part; {kept} only"
                    log.warning("fusion %s: %s", rule, fusion.note)
        scores, coverage = fusion.apply(s_test, t_test)
        if coverage.speech_only or coverage.text_only:
            log.warning("fusion %s: %d test utterance(s) had speech only and %d text only (fallback per utterance)",
                        rule, coverage.speech_only, coverage.text_only)
        out[rule] = FusedFold(fusion, scores, coverage)
    return out


# ------------------------------------------------------------------------------ score files
@dataclass
class FusionConfig:
    """The ``fusion`` section of a multimodal recipe."""

    rules: list[str] = field(default_factory=lambda: list(RULES))
    metric: str = "nll"  #: how the w1 grid is judged on the validation part (nll | ua | wa)
    grid_step: float = 0.01

    def validate(self) -> None:
        bad = [r for r in self.rules if r not in RULES]
        if bad or not self.rules:
            raise ConfigError(f"fusion.rules: {bad or self.rules} not allowed; choose from {', '.join(RULES)}")
        if self.metric not in METRICS:
            raise ConfigError(f"fusion.metric: {self.metric!r} not allowed; choose from {', '.join(METRICS)}")
        if not 0 < self.grid_step <= 0.5:
            raise ConfigError(f"fusion.grid_step: must be in (0, 0.5], got {self.grid_step}")

    @property
    def grid(self) -> np.ndarray:
        n = int(round(1.0 / self.grid_step))
        return np.round(np.linspace(0.0, 1.0, n + 1), 6)


def fuse_scoresets(speech: ScoreSet, text: ScoreSet, cfg: FusionConfig,
                   names: tuple[str, str] = ("speech", "text")) -> dict[str, Any]:
    """Fuse one fold: every rule fitted on the valid part, applied to the test part; metrics of all
    systems (the two inputs reported under ``names``)."""
    from emovox.evaluation.metrics import classification_metrics

    ids = {n: speech.part(n).ids for n in ("valid", "test")}
    y = {n: speech.part(n).y for n in ("valid", "test")}
    t = {n: text.aligned(n, ids[n], speech.classes) for n in ("valid", "test")}
    fused = fuse_fold(speech.part("valid").scores, t["valid"], y["valid"], speech.part("test").scores, t["test"],
                      rules=cfg.rules, grid=cfg.grid, metric=cfg.metric)
    labels = list(range(len(speech.classes)))
    text_only = ScoreSet(speech.classes)
    text_only.source = text.source
    text_only.add("test", ids["test"], y["test"], t["test"])
    systems = {names[0]: speech.metrics("test"), names[1]: text_only.metrics("test")}
    for rule, result in fused.items():
        systems[rule] = classification_metrics(y["test"], result.predictions, labels)
    for m in systems.values():
        m["labels"] = list(speech.classes)
    return {"systems": systems, "fusion": {rule: r.record() for rule, r in fused.items()}}


def fuse_runs(speech_dir: str | Path, text_dir: str | Path, out_dir: str | Path,
              cfg: FusionConfig | None = None, names: tuple[str, str] = ("speech", "text")) -> dict[str, Any]:
    """Fuse the per-fold score files of a speech run and a text run (folds matched by folder name).

    Any two runs on the same folds fuse the same way (two speech systems too): ``names`` are
    what the two sides are called in the reports (``w1`` is always the weight of the first).

    Writes ``<fold>/fusion.json`` (chosen w1, statistics, coverage, metrics of every system), one
    report per system (``speech/``, ``text/``, ``weighted/``, ``znorm/``: table, mean ± std,
    confusion PNG) and ``fusion.md`` (all systems side by side, w1 per fold); returns the summary.
    """
    from emovox.evaluation.metrics import mean_std
    from emovox.evaluation.report import write_report
    from emovox.io import atomic_write_json, atomic_write_text

    cfg = cfg or FusionConfig()
    cfg.validate()
    if len(set(names)) != 2 or set(names) & set(cfg.rules):
        raise FusionError(f"fusion names {names} must be two different names other than {cfg.rules}")
    s_files, t_files = score_files(speech_dir), score_files(text_dir)
    common = [f for f in s_files if f in t_files]
    if not common:
        raise FusionError(f"no fold folder is in both {speech_dir} ({', '.join(s_files)}) and {text_dir} "
                          f"({', '.join(t_files)}); run both on the same recipe/folds")
    for f in sorted(set(s_files) ^ set(t_files)):
        log.warning("fold %s has scores for one modality only; it is left out of the fusion", f)
    out = Path(out_dir)
    per_fold = {}
    for f in common:
        per_fold[f] = fuse_scoresets(ScoreSet.load(s_files[f]), ScoreSet.load(t_files[f]), cfg, names)
        atomic_write_json(out / f / "fusion.json", {"fold": f, **per_fold[f]})
    classes = ScoreSet.load(s_files[common[0]]).classes
    summary: dict[str, Any] = {"folds": common, "systems": {}, "w1": {}}
    for system in [*names, *cfg.rules]:
        results = [{"fold": f, "metrics": per_fold[f]["systems"][system]} for f in common]
        summary["systems"][system] = write_report(out / system, results, classes, title=f"{system}")
    for rule in cfg.rules:
        summary["w1"][rule] = {f: per_fold[f]["fusion"][rule]["fusion"]["w1"] for f in common}
    lines = ["| system | UA % (mean ± std) | WA % (mean ± std) |", "|---|---|---|"]
    for system in summary["systems"]:
        cells = []
        for metric in ("ua", "wa"):
            m, s = mean_std([per_fold[f]["systems"][system][metric] for f in common])
            cells.append(f"{100 * m:.2f} ± {100 * s:.2f}")
        lines.append(f"| {system} | {cells[0]} | {cells[1]} |")
    if "weighted" in summary["w1"]:
        lines += ["", f"w1 (weight of {names[0]}) chosen on each fold's validation part: "
                  + "; ".join(f"{f}: {w:.2f}" for f, w in summary["w1"]["weighted"].items())]
    atomic_write_text(out / "fusion.md", "\n".join(lines) + "\n")
    atomic_write_json(out / "fusion.json", summary)
    return summary
