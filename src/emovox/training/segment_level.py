"""Seed 002 (Sahoo et al. 2021): 1 s segments -> VGGish + one hidden layer -> clip decisions.

Per fold and run:

1. every clip is cut into segments (:mod:`emovox.segments`; 1 s, hop 0.5 s or 1 s, last one
   zero-padded) and each segment becomes one VGGish patch (``emovox.frontend.vggish_input``: the
   first 96 of its 98 log-mel frames); patches are cached per clip;
2. a :class:`~emovox.models.vggish.VGGishClassifier` (or the baseline ``vggish_mlp``) is trained on
   the training segments with Adam, batch 32, cross-entropy; early stopping on the validation
   segments' loss (patience 50 in the paper) and the best validation epoch's weights are kept;
3. the test segments are scored once: SA, ACA, SCA, ALCA, BCA (``segment_clip_metrics``) plus
   WA/UA/F1 and a confusion matrix of the clip decisions of ``segments.aggregation``
   (default ``mean_log_posteriors``, whose argmax equals the paper's average-logits ALCA rule).

Learning rate: ``optim.lr: null`` means the paper's 1e-6 when ``model.weights`` (public AudioSet
VGGish weights, torchvggish layout) are loaded, and :data:`SCRATCH_LR` when training from scratch.
``model.width`` / ``model.fc`` shrink the channels / FC units (1.0 / 4096 = Table 2) for CPU runs.

Results follow the layout of :mod:`emovox.training.harness`: ``<out>/fold_NN_<fold>/result.json``
and ``history.json`` after every fold (``fold_NN_<fold>_run<r>/`` per repetition when ``runs > 1``;
a re-run skips finished ones), then the report with one row per fold-run (mean ± std over those
rows) and, when ``runs > 1``, mean ± std over runs of the fold-averaged scores in
``report.json``'s ``extra.over_runs``.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import lightning as L
import numpy as np
import torch

from emovox.cache import extractor_key
from emovox.config import DataConfig, OptimConfig, Recipe, _build, apply_overrides, read_recipe_yaml
from emovox.errors import ConfigError
from emovox.evaluation.metrics import (
    CLIP_METRIC_NAMES,
    METRIC_NAMES,
    classification_metrics,
    mean_std,
    segment_clip_metrics,
)
from emovox.frontend.vggish_input import PATCH_FRAMES, VGGishLogMel
from emovox.models.registry import build_model
from emovox.models.vggish import VGGishClassifier, load_vggish_weights
from emovox.protocols import SPEAKER_DEPENDENT_WARNING
from emovox.segments import AGGREGATIONS, PAPER_AGGREGATION, SegmentSpec, aggregate_by_clip, segment_array
from emovox.training import harness
from emovox.training.data import FeatureDataset, eval_loader, train_loader
from emovox.training.features import cached_arrays
from emovox.training.module import EmotionModule, EpochHistory, predict_logits, quiet_lightning

log = logging.getLogger(__name__)

PAPER_LR = 1e-6  #: Adam learning rate of the paper (fine-tuning AudioSet VGGish)
SCRATCH_LR = 1e-4  #: default Adam learning rate without pretrained weights
VGGISH_MIN_SAMPLES = 400 + 95 * 160  #: samples giving 96 VGGish frames (0.975 s)


@dataclass
class SegmentsConfig:
    window: float = 1.0  #: segment length in seconds (>= 0.975 s: one 96-frame VGGish patch)
    hop: float = 0.5  #: 0.5 = the paper's overlapping segmentation, 1.0 = non-overlapping
    aggregation: str = PAPER_AGGREGATION  #: clip decision for WA/UA/confusion (see emovox.segments)

    def spec(self) -> SegmentSpec:
        return SegmentSpec(self.window, self.hop)


@dataclass
class SegmentModelConfig:
    name: Literal["vggish", "vggish_mlp"] = "vggish"
    hidden: int = 200  #: vggish: N units of the single hidden layer; vggish_mlp: M units per layer
    layers: int = 2  #: vggish_mlp: number of hidden layers
    width: float = 1.0  #: VGGish channel multiplier (1.0 = Table 2: 64/128/256/512)
    fc: int = 4096  #: VGGish FC I/II units (4096 = Table 2)
    weights: str | None = None  #: public VGGish weights file (torchvggish .pth or .safetensors)
    freeze_backbone: bool = False  #: train only the hidden + logits layers


@dataclass
class SegmentOptimConfig:
    lr: float | None = None  #: Adam lr; null = 1e-6 with model.weights (paper), else SCRATCH_LR
    weight_decay: float = 0.0


@dataclass
class SegmentTrainConfig:
    max_epochs: int = 1000
    patience: int | None = 50  #: early stopping on valid_loss (paper: 50); null = run max_epochs
    batch_size: int = 32
    eval_batch_size: int = 256
    threads: int | None = None  #: torch.set_num_threads
    limit_train_batches: int | None = None  #: smoke tests only
    progress: bool = False


@dataclass
class SegmentRecipe:
    name: str = "sahoo2021"
    seed: int = 0
    runs: int = 1  #: training repetitions per fold (seeds seed, seed+1, ...); the paper uses 6
    data: DataConfig = field(default_factory=DataConfig)
    segments: SegmentsConfig = field(default_factory=SegmentsConfig)
    cache_dir: str | None = None  #: feature cache (default: $EMOVOX_CACHE or ~/.cache/emovox)
    model: SegmentModelConfig = field(default_factory=SegmentModelConfig)
    optim: SegmentOptimConfig = field(default_factory=SegmentOptimConfig)
    train: SegmentTrainConfig = field(default_factory=SegmentTrainConfig)
    base_dir: str = field(default=".", metadata={"internal": True})

    resolve = Recipe.resolve  #: recipe paths resolve against the recipe's folder, as in every recipe
    to_dict = Recipe.to_dict  #: plain mapping without internal fields

    @property
    def lr(self) -> float:
        if self.optim.lr is not None:
            return self.optim.lr
        return PAPER_LR if self.model.weights else SCRATCH_LR


def segment_recipe(raw: Mapping[str, Any] | None, base_dir: str | Path = ".", overrides: Sequence[str] = ()
                   ) -> SegmentRecipe:
    """Validate a parsed YAML mapping (plus ``key=value`` overrides) into a :class:`SegmentRecipe`."""
    r = _build(SegmentRecipe, apply_overrides(raw or {}, list(overrides)), "")
    r.base_dir = str(base_dir)
    spec = r.segments.spec()  # window/hop checks
    checks = [
        (r.data.corpus is not None or r.data.manifest is not None, "data.corpus", "set data.corpus + data.root or data.manifest"),
        (spec.window_samples >= VGGISH_MIN_SAMPLES, "segments.window", "must be >= 0.975 s (one 96-frame VGGish patch)"),
        (r.segments.aggregation in AGGREGATIONS, "segments.aggregation", f"one of {', '.join(AGGREGATIONS)}"),
        (r.runs >= 1, "runs", "must be >= 1"),
        (r.model.hidden >= 1 and r.model.layers >= 1 and r.model.fc >= 1, "model.hidden", "sizes must be >= 1"),
        (0 < r.model.width <= 1, "model.width", "must be in (0, 1]"),
        (not r.model.weights or (r.model.width == 1 and r.model.fc == 4096 and r.model.name == "vggish"),
         "model.weights", "public VGGish weights need model.name vggish, width 1 and fc 4096"),
        (not r.model.freeze_backbone or r.model.name == "vggish", "model.freeze_backbone", "only for vggish"),
        (r.optim.lr is None or r.optim.lr > 0, "optim.lr", "must be > 0 (or null)"),
        (r.train.max_epochs >= 1 and r.train.batch_size >= 1, "train.max_epochs", "epochs and batch size >= 1"),
        (r.train.patience is None or r.train.patience >= 1, "train.patience", "null or >= 1"),
    ]
    for ok, key, what in checks:
        if not ok:
            raise ConfigError(f"{key}: {what}")
    return r


def load_segment_recipe(path: str | Path, overrides: Sequence[str] = ()) -> SegmentRecipe:
    p = Path(path)
    raw = read_recipe_yaml(p, "recipes/sahoo2021/emodb_loso.yaml")
    try:
        return segment_recipe(raw, p.resolve().parent, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


# ---------------------------------------------------------------------------------- model
def build_segment_model(cfg: SegmentModelConfig, num_classes: int):
    """VGGish classifier (optionally narrowed, optionally with public weights) or the baseline MLP."""
    if cfg.name == "vggish_mlp":
        return build_model("vggish_mlp", num_classes, num_layers=cfg.layers, hidden=cfg.hidden)
    model = build_model("vggish", num_classes, hidden=cfg.hidden)
    assert isinstance(model, VGGishClassifier)
    if cfg.width != 1.0 or cfg.fc != 4096:
        narrow_vggish(model.vggish, cfg.width, cfg.fc)
    if cfg.weights:
        load_vggish_weights(model, cfg.weights)
    if cfg.freeze_backbone:
        for p in model.vggish.parameters():
            p.requires_grad_(False)
    return model


def narrow_vggish(vggish: Any, width: float, fc: int) -> Any:
    """Rebuild a :class:`~emovox.models.vggish.VGGish`'s layers with ``width`` × the channels and
    ``fc`` FC units, same layer order and names (a CPU-sized Table 2; width 1, fc 4096 = original)."""
    from torch import nn

    chans = [max(1, int(round(c * width))) for c in (64, 128, 256, 256, 512, 512)]
    convs = [m for m in vggish.features if isinstance(m, nn.Conv2d)]
    c_in = 1
    for conv, c_out in zip(convs, chans):
        new = nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)
        idx = next(i for i, m in enumerate(vggish.features) if m is conv)
        vggish.features[idx] = new
        c_in = c_out
    emb = vggish.embeddings
    emb[0], emb[2], emb[4] = nn.Linear(c_in * 6 * 4, fc), nn.Linear(fc, fc), nn.Linear(fc, emb[4].out_features)
    return vggish


# ------------------------------------------------------------------------------- features
def vggish_patches(segments: np.ndarray) -> np.ndarray:
    """``(n, W)`` segment waves -> ``(n, 96, 64)`` VGGish patches (first 96 frames of each)."""
    frontend = _frontend(VGGishLogMel)
    with torch.no_grad():
        feats = frontend(torch.from_numpy(np.ascontiguousarray(segments, dtype=np.float32)))
    return feats[:, :PATCH_FRAMES].numpy()


_FRONTENDS: dict[type, Any] = {}


def _frontend(cls: type) -> Any:
    if cls not in _FRONTENDS:
        _FRONTENDS[cls] = cls()
    return _FRONTENDS[cls]


def clip_patches(utterances: Sequence[Any], spec: SegmentSpec, cache_dir: str | Path | None = None,
                 progress: bool = False) -> dict[str, np.ndarray]:
    """``{utterance id: (n_segments, 96, 64)}``; each clip is computed once and cached."""
    key = extractor_key("vggish-segments", {"window": spec.window_samples, "hop": spec.hop_samples})
    extractor = (key, lambda x: {"patches": vggish_patches(segment_array(x, spec))})
    return {u.id: arrays[0]["patches"] for u, arrays in
            zip(utterances, cached_arrays(utterances, [extractor], cache_dir, progress, "VGGish segment patches"))}


def segment_dataset(utterances: Sequence[Any], patches: Mapping[str, np.ndarray], classes: Sequence[str]):
    """``(FeatureDataset of segments, clip id per segment)`` for the emovox.training.data loaders."""
    index = {c: i for i, c in enumerate(classes)}
    feats, labels, clip_ids = [], [], []
    for u in utterances:
        for p in patches[u.id]:
            feats.append(torch.from_numpy(np.ascontiguousarray(p)))
            labels.append(index[u.label])
            clip_ids.append(u.id)
    return FeatureDataset(feats, labels, pad="zero"), clip_ids


# ------------------------------------------------------------------------------- training
class SegmentModule(EmotionModule):
    """EmotionModule (cross-entropy; valid loss, UA, WA) trained with Adam, as in the paper."""

    def __init__(self, model: Any, lr: float, weight_decay: float, classes: Sequence[str], seed: int) -> None:
        super().__init__(model, OptimConfig(lr=lr, weight_decay=weight_decay, schedule="constant"), classes, seed)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.model.parameters() if p.requires_grad]
        return torch.optim.Adam(params, lr=self.optim_cfg.lr, weight_decay=self.optim_cfg.weight_decay)


class BestWeights(L.Callback):
    """Keeps the weights of the epoch with the lowest ``monitor`` value (in memory, no pickles)."""

    def __init__(self, monitor: str = "valid_loss") -> None:
        self.monitor = monitor
        self.best, self.state, self.epoch = float("inf"), None, -1

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.sanity_checking or value is None or float(value) >= self.best:
            return
        self.best, self.epoch = float(value), trainer.current_epoch
        self.state = copy.deepcopy(pl_module.model.state_dict())


def train_fold(recipe: SegmentRecipe, classes: Sequence[str], train_set: Any, valid_set: Any | None,
               seed: int, history_path: Path) -> tuple[Any, dict[str, Any]]:
    """Train one model; return it (best validation weights) and training facts."""
    from lightning.pytorch.callbacks import EarlyStopping

    L.seed_everything(seed, workers=True, verbose=False)
    model = build_segment_model(recipe.model, len(classes))
    module = SegmentModule(model, recipe.lr, recipe.optim.weight_decay, classes, seed)
    t = recipe.train
    callbacks: list[Any] = [EpochHistory(history_path)]
    best = None
    if valid_set is not None:
        best = BestWeights()
        callbacks.append(best)
        if t.patience is not None:
            callbacks.append(EarlyStopping(monitor="valid_loss", patience=t.patience, mode="min"))
    quiet_lightning()
    trainer = L.Trainer(max_epochs=t.max_epochs, accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=t.progress, enable_model_summary=False,
                        callbacks=callbacks, limit_train_batches=t.limit_train_batches, num_sanity_val_steps=0,
                        deterministic=True)
    trainer.fit(module, train_loader(train_set, t.batch_size, [96], seed=seed),
                eval_loader(valid_set, t.eval_batch_size) if valid_set is not None else None)
    if best is not None and best.state is not None:
        model.load_state_dict(best.state)
    facts = {"epochs": trainer.current_epoch, "best_epoch": best.epoch if best else None,
             "best_valid_loss": best.best if best else None, "lr": recipe.lr}
    return model, facts


def evaluate(model: Any, test_set: Any, clip_ids: Sequence[str], classes: Sequence[str], aggregation: str,
             batch_size: int = 256) -> dict[str, Any]:
    """SA/ACA/SCA/ALCA/BCA and clip-level WA/UA/F1/confusion of ``aggregation``'s decisions."""
    logits = predict_logits(model, test_set, batch_size)
    y = np.asarray(test_set.labels)
    seg = segment_clip_metrics(clip_ids, y, logits)
    ids, _, decisions = aggregate_by_clip(logits, clip_ids, aggregation)
    clip_label = dict(zip(clip_ids, y.tolist()))  # every segment carries its clip's label
    metrics = classification_metrics([classes[clip_label[c]] for c in ids], [classes[d] for d in decisions], classes)
    metrics.update({k: seg[k] for k in ("sa", "aca", "sca", "alca", "bca", "n_segments", "n_clips")})
    return metrics


# ---------------------------------------------------------------------------------- runner
#: Keys that may change between a run and its resumption (``runs``: more repetitions reuse the done ones).
RESUMABLE_KEYS = ("train.progress", "train.threads", "runs", "name", "cache_dir")


def run_segment_experiment(recipe: SegmentRecipe, out_dir: str | Path, progress: bool = False,
                           overrides: Sequence[str] = ()) -> dict[str, Any]:
    """All folds × runs of ``recipe``; results written as they finish; returns the report summary."""
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    run = harness.prepare_run(out_dir, "segment_level", recipe, recipe.to_dict(), ignore=RESUMABLE_KEYS,
                              overrides=overrides, meta={"lr": recipe.lr})
    utts, classes = run.utterances, run.classes
    patches = clip_patches(utts, recipe.segments.spec(), recipe.resolve(recipe.cache_dir), progress)
    results = []
    for index, fold in run.selected():
        train_u, valid_u, test_u = fold.parts(utts)
        if recipe.data.limit_per_fold:
            train_u = train_u[: recipe.data.limit_per_fold]
        train_set, _ = segment_dataset(train_u, patches, classes)
        valid_set = segment_dataset(valid_u, patches, classes)[0] if valid_u else None
        test_set, test_clips = segment_dataset(test_u, patches, classes)
        for r in range(1, recipe.runs + 1):
            fdir = run.fold_dir(index, fold, r if recipe.runs > 1 else None)
            name = fold.name if recipe.runs == 1 else f"{fold.name}__run{r}"
            done = run.finished(fdir)
            if done is not None:
                log.info("%s: already done, reusing %s", name, fdir)
                results.append(done)
                continue
            t0 = time.time()
            model, facts = train_fold(recipe, classes, train_set, valid_set, recipe.seed + r - 1, fdir / "history.json")
            metrics = evaluate(model, test_set, test_clips, classes, recipe.segments.aggregation,
                               recipe.train.eval_batch_size)
            result = run.finish(fdir, {
                "fold": name, "fold_name": fold.name, "index": index, "run": r, "metrics": metrics,
                "train": facts | {"seconds": round(time.time() - t0, 1), "n_train_segments": len(train_set),
                                  "n_valid_segments": len(valid_set) if valid_set else 0},
                "speaker_independent": fold.speaker_independent})
            log.info("%s: SA %.3f ALCA %.3f (%s s)", name, metrics["sa"], metrics["alca"], result["train"]["seconds"])
            results.append(result)
    chosen = [fold for _, fold in run.selected()]
    extra: dict[str, Any] = {"lr": recipe.lr, "aggregation": recipe.segments.aggregation,
                             "speaker_independent": all(f.speaker_independent for f in chosen)}
    if not extra["speaker_independent"]:
        extra["warning"] = SPEAKER_DEPENDENT_WARNING
    if recipe.runs > 1:
        names = [m for m in METRIC_NAMES + CLIP_METRIC_NAMES if m in results[0]["metrics"]]
        per_run = {r: {m: float(np.mean([x["metrics"][m] for x in results if x["run"] == r])) for m in names}
                   for r in range(1, recipe.runs + 1)}
        extra["over_runs"] = {m: dict(zip(("mean", "std"), mean_std([per_run[r][m] for r in per_run])))
                              for m in names}
    return run.report(results, f"{recipe.name}: {recipe.model.name} on {recipe.segments.spec().name} segments", extra)
