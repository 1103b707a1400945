"""The classic baseline: frozen utterance features + standardisation + SVM, through the folds.

One run = one corpus, one upstream (``emovox.upstreams``: openSMILE eGeMAPS/ComParE, GE2E,
Whisper encoder), one protocol. Per utterance the upstream's arrays are cached
(:class:`emovox.cache.FeatureCache`) and reduced to a fixed vector (:meth:`Upstream.pooled`).
Per fold:

1. ``StandardScaler`` fitted on the training part only;
2. ``SVC`` (linear or RBF kernel) for every C of the grid, trained on the training part and
   scored (UA by default) on the fold's validation part — whole training-side speakers, never
   test audio; the best C wins (ties -> the smaller C);
3. with ``refit: true`` (default) the scaler + SVM are refitted with that C on train + valid,
   then the test part is predicted once.

``speaker_norm: true`` z-scores every feature per speaker first, with statistics of all that
speaker's utterances, labels unused and **the test speaker included** (transductive, a known
strong option in the SER literature). It is off by default and every result that uses it is
labelled ``+spkNorm`` in its name and report.

Results follow the layout of :mod:`emovox.training.harness` (the same for every runner):
``<out>/fold_NN_<fold>/result.json`` written after each fold (a re-run skips finished folds; a
different recipe in the same folder is refused), ``<out>/folds.json`` (the exact folds),
``<out>/experiment.json`` (recipe, label, upstream, fingerprint) and the report (per-fold table,
mean ± std, confusion PNG).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, Sequence

import numpy as np

from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from tqdm.auto import tqdm

from emovox.config import DataConfig, Recipe, _build
from emovox.corpora import Utterance
from emovox.errors import ConfigError
from emovox.evaluation.metrics import classification_metrics, unweighted_accuracy, weighted_accuracy
from emovox.protocols import Fold
from emovox.training import harness
from emovox.training.checks import key
from emovox.training.features import cached_arrays
from emovox.upstreams import build_upstream

log = logging.getLogger(__name__)

DEFAULT_C = {"linear": [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0], "rbf": [0.1, 1.0, 10.0, 100.0]}


@dataclass
class BaselineFeatures:
    """Which upstream, its options, and the optional per-speaker normalisation."""

    upstream: str = "egemaps"  #: emovox.upstreams name: egemaps | compare | ge2e | whisper
    options: dict[str, Any] = field(default_factory=dict)  #: upstream constructor options (pad_to_30s...)
    speaker_norm: bool = False  #: per-speaker z-scoring (test speaker included); results get labelled
    cache_dir: str | None = None  #: feature cache folder (default: $EMOVOX_CACHE or ~/.cache/emovox)


@dataclass
class SVMConfig:
    kernel: Literal["linear", "rbf"] = "linear"
    C: list[float] | None = None  #: grid searched on the validation part (default per kernel: DEFAULT_C)
    gamma: str | float = "scale"  #: RBF width (scikit-learn's 'scale' = 1 / (n_features * var))
    class_weight: Literal["balanced", "none"] = "balanced"  #: 'balanced' weights classes by 1/frequency
    select_on: Literal["ua", "wa"] = "ua"  #: validation metric that picks C
    refit: bool = True  #: refit on train + valid with the chosen C before testing


@dataclass
class BaselineRecipe:
    name: str = "baseline"
    seed: int = 0
    data: DataConfig = field(default_factory=lambda: DataConfig(protocol="leave_one_speaker_out"))
    features: BaselineFeatures = field(default_factory=BaselineFeatures)
    svm: SVMConfig = field(default_factory=SVMConfig)
    base_dir: str = field(default=".", metadata={"internal": True})

    @property
    def label(self) -> str:
        """Name shown in reports: run name, upstream (+ options), kernel; always marks spkNorm."""
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.features.options.items()) if k != "threads")
        text = f"{self.name}: {self.features.upstream}{f'({opts})' if opts else ''} + {self.svm.kernel} SVM"
        return text + (" +spkNorm" if self.features.speaker_norm else "")

    def c_grid(self) -> list[float]:
        return list(self.svm.C) if self.svm.C else list(DEFAULT_C[self.svm.kernel])

    resolve = Recipe.resolve  #: recipe paths resolve against the recipe's folder, as in every recipe
    to_dict = Recipe.to_dict  #: plain mapping without internal fields


def baseline_recipe(raw: Mapping[str, Any] | None, base_dir: str | Path = ".") -> BaselineRecipe:
    """Validate a raw mapping (parsed YAML) into a :class:`BaselineRecipe`."""
    raw = dict(raw or {})
    raw.setdefault("data", {})
    if isinstance(raw["data"], Mapping):
        raw["data"] = {"protocol": "leave_one_speaker_out", **raw["data"]}
    recipe = _build(BaselineRecipe, raw, "")
    recipe.base_dir = str(base_dir)
    grid = recipe.c_grid()
    if not grid or any((not isinstance(c, (int, float))) or c <= 0 for c in grid):
        raise ConfigError(f"svm.C must be a non-empty list of positive numbers, got {recipe.svm.C!r}")
    if isinstance(recipe.svm.gamma, str) and recipe.svm.gamma not in ("scale", "auto"):
        raise ConfigError(f"svm.gamma must be 'scale', 'auto' or a positive number, got {recipe.svm.gamma!r}")
    if recipe.data.corpus is None and recipe.data.manifest is None:
        raise ConfigError("data: give corpus + root, or manifest")
    return recipe


# ------------------------------------------------------------------------------ features
def utterance_vectors(utterances: Sequence[Utterance], upstream: Any, cache_dir: str | Path | None = None,
                      progress: bool = False) -> np.ndarray:
    """(N, dim) float32 pooled vectors; each utterance's arrays are computed once and cached."""
    out = np.zeros((len(utterances), upstream.dim), dtype=np.float32)
    for i, arrays in enumerate(cached_arrays(utterances, [(upstream.key, upstream.extract)], cache_dir, progress,
                                             f"{upstream.name} features")):
        out[i] = upstream.pooled(arrays[0])
    return out


def speaker_normalize(features: np.ndarray, speakers: Sequence[str]) -> np.ndarray:
    """Z-score every column within each speaker (all that speaker's rows; labels unused)."""
    x = np.asarray(features, dtype=np.float64)
    out = np.empty_like(x)
    spk = np.asarray(list(speakers))
    for s in np.unique(spk):
        rows = spk == s
        mu, sd = x[rows].mean(axis=0), x[rows].std(axis=0)
        out[rows] = (x[rows] - mu) / np.where(sd > 1e-8, sd, 1.0)
    return out.astype(np.float32)


# ------------------------------------------------------------------------------------ SVM
def make_svm(svm: SVMConfig, C: float, seed: int = 0):
    """StandardScaler + SVC pipeline (scikit-learn)."""
    return make_pipeline(StandardScaler(), SVC(
        kernel=svm.kernel, C=float(C), gamma=svm.gamma,
        class_weight="balanced" if svm.class_weight == "balanced" else None,
        decision_function_shape="ovr", random_state=seed))


def _score(metric: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return (unweighted_accuracy if metric == "ua" else weighted_accuracy)(y_true, y_pred)


def class_scores(model: Any, x: np.ndarray) -> np.ndarray:
    """``(N, classes)`` continuous class scores of a fitted SVC (or a pipeline ending in one).

    Columns follow ``model.classes_``. Each class's score is its mean signed one-vs-one margin
    (libsvm's pairwise decision values): scikit-learn's ``"ovr"`` output is mostly vote counts,
    too coarse to calibrate; these margins are continuous, so ``softmax(scores / T)`` with a
    temperature fitted on validation speakers (:func:`emovox.calibration.fit_temperature`) gives
    log-posteriors for score fusion (:mod:`emovox.fusion`).
    """
    svc = model[-1] if hasattr(model, "steps") else model
    k = len(svc.classes_)
    if k == 2:  # binary: one decision value, positive = classes_[1]
        d = np.asarray(model.decision_function(x), dtype=float).reshape(-1)
        return np.stack([-d, d], axis=1)
    shape = svc.decision_function_shape
    svc.decision_function_shape = "ovo"
    try:
        d = np.asarray(model.decision_function(x), dtype=float)
    finally:
        svc.decision_function_shape = shape
    out = np.zeros((len(d), k))
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]  # libsvm's order; positive = class i
    for col, (i, j) in enumerate(pairs):
        out[:, i] += d[:, col]
        out[:, j] -= d[:, col]
    return out / (k - 1)


def fit_fold(x_train: np.ndarray, y_train: np.ndarray, x_valid: np.ndarray, y_valid: np.ndarray,
             svm: SVMConfig, grid: Sequence[float], seed: int = 0) -> tuple[Any, float, dict[str, float]]:
    """Choose C on the validation part, (re)fit; returns (model, chosen C, validation score per C)."""
    scores: dict[str, float] = {}
    best_c, best = float(grid[0]), -1.0
    if len(x_valid) and len(grid) > 1:
        for c in sorted(float(c) for c in grid):
            model = make_svm(svm, c, seed).fit(x_train, y_train)
            scores[repr(c)] = s = _score(svm.select_on, y_valid, model.predict(x_valid))
            if s > best:
                best_c, best = c, s
    elif len(grid) > 1:
        log.warning("no validation part: using the first C of the grid (%s) without selection", grid[0])
    if svm.refit and len(x_valid):
        x_fit, y_fit = np.concatenate([x_train, x_valid]), np.concatenate([y_train, y_valid])
    else:
        x_fit, y_fit = x_train, y_train
    return make_svm(svm, best_c, seed).fit(x_fit, y_fit), best_c, scores


def run_folds(x: np.ndarray, utterances: Sequence[Utterance], folds: Sequence[tuple[int, Fold]],
              recipe: BaselineRecipe, classes: Sequence[str], run: harness.FoldRun | None = None,
              progress: bool = False) -> list[dict[str, Any]]:
    """Train/test one SVM per ``(index, fold)``; inside a harness ``run`` each fold's result is
    saved as ``fold_NN_<name>/result.json`` and a finished fold of the same recipe is reused."""
    index = {u.id: i for i, u in enumerate(utterances)}
    labels = np.asarray([u.label for u in utterances])
    results = []
    for i, fold in tqdm(folds, desc="folds", unit="fold", disable=not progress):
        fdir = run.fold_dir(i, fold) if run is not None else None
        done = run.finished(fdir) if run is not None and fdir is not None else None
        if done is not None and done.get("test") == list(fold.test):
            log.info("fold %s already done, reusing %s", fold.name, fdir)
            results.append(done)
            continue
        tr, va, te = ([index[u] for u in part] for part in (fold.train, fold.valid, fold.test))
        model, c, valid_scores = fit_fold(x[tr], labels[tr], x[va], labels[va], recipe.svm, recipe.c_grid(),
                                          recipe.seed)
        pred = model.predict(x[te])
        decision = np.asarray(model.decision_function(x[te]), dtype=float).reshape(len(te), -1)
        result = {
            "fold": fold.name,
            "index": i,
            "C": c,
            "valid_scores": valid_scores,
            "metrics": classification_metrics(labels[te], pred, list(classes)),
            "test": list(fold.test),
            "pred": pred.tolist(),
            "svm_classes": [str(k) for k in model.classes_],
            "decision": np.round(decision, 5).tolist(),
        }
        if run is not None and fdir is not None:
            result = run.finish(fdir, result)
        log.info("fold %s: C=%g UA=%.4f WA=%.4f", fold.name, c, result["metrics"]["ua"], result["metrics"]["wa"])
        results.append(result)
    return results


# ----------------------------------------------------------------------------------- runs
#: Keys that may change between a run and its resumption.
RESUMABLE_KEYS = ("features.cache_dir",)


def run_baseline(recipe: BaselineRecipe, out_dir: str | Path, progress: bool = False,
                 upstream_factory: Callable[..., Any] | None = None, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The whole run: utterances, folds, cached features, one SVM per fold, report. Returns the summary."""
    upstream = (upstream_factory or build_upstream)(recipe.features.upstream, **recipe.features.options)
    run = harness.prepare_run(out_dir, "baseline", recipe, recipe.to_dict(), ignore=RESUMABLE_KEYS,
                              overrides=overrides, protocol_key=key,
                              meta={"label": recipe.label, "upstream": repr(upstream), "feature_key": upstream.key})
    utts = run.utterances
    x = utterance_vectors(utts, upstream, recipe.resolve(recipe.features.cache_dir), progress)
    if recipe.features.speaker_norm:
        x = speaker_normalize(x, [u.speaker for u in utts])
    results = run_folds(x, utts, run.selected(), recipe, run.classes, run, progress)
    extra = {"label": recipe.label, "speaker_norm": recipe.features.speaker_norm, "feature_key": upstream.key,
             "chosen_C": {r["fold"]: r["C"] for r in results}, "n_utterances": len(utts)}
    return run.report(results, recipe.label, extra)
