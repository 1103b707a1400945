"""Cross-validated experiments: ``run_experiment(recipe, out_dir)``.

One run = utterances (corpus + label map) → folds (saved to ``folds.json``) → features computed
once (feature cache) → for every fold one model trained with Lightning, selected on the fold's
validation part, scored once on its test part → per-fold files and the report.

Output folder::

    experiment.json            runner, recipe, fingerprint, classes, folds run, overrides
    folds.json                 the folds (deterministic; saved with the results)
    fold_NN_<name>/
        checkpoints/last.ckpt  Lightning checkpoint after every epoch (resume point)
        checkpoints/best.ckpt  best epoch on the validation part (``train.monitor``)
        history.json           per-epoch train/valid metrics and learning rates
        predictions.csv        test utterances: id, speaker, true, predicted, logits
        scores.json            validation + test log posteriors (input of ``emovox fuse``)
        model/                 best model package (model.safetensors + config.json)
        result.json            fold metrics; written last, it marks the fold as finished
    report.md / report.json    per-fold table, mean ± std, confusion matrices (emovox.evaluation.report)

The run-level files, folds, fingerprint check and report come from :mod:`emovox.training.harness`
(the same for every runner); this module trains and scores one fold.

Crash safety and determinism: every file is written atomically; checkpoints are saved at the end
of every epoch. Re-running the same command skips finished folds and resumes an interrupted one
from ``last.ckpt`` (a kill mid-epoch loses only that epoch, which is replayed identically:
batches, chunk offsets and augmentation draw their randomness from (seed, epoch) only, and the
model, optimiser and schedule state come from the checkpoint), so the fold metrics equal those of
an uninterrupted run with the same seed. Raising ``train.epochs`` and re-running continues
finished folds from their last checkpoint. A different recipe (other than epochs, early stopping,
folds, threads, workers or progress) in the same folder is refused.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from emovox.config import Recipe
from emovox.evaluation.metrics import classification_metrics
from emovox.io import atomic_path, atomic_write_json, atomic_write_text, read_json
from emovox.models.io import save_model
from emovox.pipeline import PipelineConfig
from emovox.scores import ScoreSet
from emovox.training import harness
from emovox.training.checks import check_recipe, key
from emovox.training.data import FeatureDataset, FoldData, load_features, make_augmenter
from emovox.training.distill import distill_for_fold
from emovox.training.harness import FoldRun, class_names, fold_dir, load_utterances
from emovox.training.module import EmotionModule, EpochHistory, ResumeCheckpoint, predict_logits, quiet_lightning
from emovox.training.transfer import build_emotion_model

log = logging.getLogger(__name__)

#: Recipe keys that may change between a run and its resumption.
RESUMABLE_KEYS = ("train.epochs", "train.early_stopping", "train.progress", "train.threads", "train.num_workers",
                  "data.folds", "train.devices", "train.strategy", "train.accelerator")


def fingerprint(recipe: Recipe) -> str:
    """Hash of everything in the recipe that changes results (see :data:`RESUMABLE_KEYS`)."""
    return harness.fingerprint(recipe.to_dict(), RESUMABLE_KEYS)


# ------------------------------------------------------------------------------ folds
class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning checkpoints written to a temporary file and renamed (never half-written)."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Any = None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)


def _trainer(recipe: Recipe, fdir: Path, callbacks: list[Any], progress: bool) -> L.Trainer:
    quiet_lightning()
    t = recipe.train
    return L.Trainer(max_epochs=t.epochs, accelerator=t.accelerator, devices=t.devices, strategy=t.strategy,
                     deterministic=True, logger=False, callbacks=callbacks, plugins=[AtomicCheckpointIO()],
                     use_distributed_sampler=False, num_sanity_val_steps=0, enable_progress_bar=progress,
                     enable_model_summary=False, limit_train_batches=t.limit_train_batches,
                     sync_batchnorm=t.devices > 1 and t.accelerator != "cpu",  # SyncBatchNorm needs GPU
                     default_root_dir=str(fdir))


def _callbacks(recipe: Recipe, fdir: Path, has_valid: bool) -> list[Any]:
    monitor = recipe.train.monitor if has_valid else None
    mode = "min" if monitor == "valid_loss" else "max"
    cbs: list[Any] = [ModelCheckpoint(dirpath=fdir / "checkpoints", filename="best", monitor=monitor, mode=mode,
                                      save_top_k=1, save_last=False, enable_version_counter=False,
                                      save_on_train_epoch_end=False),
                      EpochHistory(fdir / "history.json"), ResumeCheckpoint(fdir / "checkpoints" / "last.ckpt")]
    if recipe.train.early_stopping is not None and has_valid:
        assert monitor is not None  # has_valid: the recipe's monitor
        cbs.append(EarlyStopping(monitor=monitor, mode=mode, patience=recipe.train.early_stopping,
                                 check_on_train_epoch_end=False))
    # Model selection and early stopping act at validation end, so their state is final before
    # ResumeCheckpoint saves the epoch (at train-epoch end).
    return cbs


def _write_predictions(path: Path, utts: Sequence[Any], classes: Sequence[str], logits: np.ndarray) -> None:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["id", "speaker", "label", "pred", *[f"logit_{c}" for c in classes]])
    for u, row in zip(utts, logits):
        w.writerow([u.id, u.speaker, u.label, classes[int(row.argmax())], *[f"{v:.5f}" for v in row]])
    atomic_write_text(path, buf.getvalue())


def fold_scores(model: torch.nn.Module, fold: Any, classes: Sequence[str], label_of: dict[str, int],
                dataset: Any, batch_size: int, meta: dict[str, Any],
                known: dict[str, np.ndarray] | None = None) -> ScoreSet:
    """A :class:`emovox.scores.ScoreSet` of ``model`` on the fold's ``valid`` and ``test`` parts
    (log posteriors; the file ``emovox fuse`` reads). ``dataset(ids)`` builds a part's dataset;
    logits already computed for a part can be passed in ``known`` instead of predicted again."""
    scores = ScoreSet(classes, meta)
    for part in ("valid", "test"):
        ids = list(getattr(fold, part))
        if not ids:
            continue
        logits = (known or {}).get(part)
        if logits is None:
            logits = predict_logits(model, dataset(ids), batch_size)
        scores.add(part, ids, [label_of[i] for i in ids], torch.log_softmax(torch.from_numpy(logits), 1).numpy())
    return scores


def run_fold(recipe: Recipe, index: int, fold: Any, utts: Sequence[Any], features: dict[str, torch.Tensor],
             classes: Sequence[str], out: Path, progress: bool = True,
             pipeline: PipelineConfig | None = None) -> dict[str, Any]:
    """Train, select and test one fold (resuming from its checkpoint); returns its result dict.
    ``pipeline`` (default: the recipe's) is the feature pipeline ``features`` came from; it is
    saved unchanged in the fold's model package."""
    fdir = fold_dir(out, index, fold.name)
    done = fdir / harness.RESULT_FILE
    if done.is_file():
        result = read_json(done)
        if result.get("fingerprint") == fingerprint(recipe) and (
                result.get("max_epochs") == recipe.train.epochs or result.get("stopped_early")):
            log.info("fold %s already finished (%s)", fold.name, done)
            return result
    fold.save(fdir / "fold.json")
    pipeline = pipeline or PipelineConfig.from_recipe(recipe.features)
    by_id = {u.id: u for u in utts}
    label_index = {c: i for i, c in enumerate(classes)}

    def dataset(ids: Sequence[str], augment: Any = None) -> FeatureDataset:
        return FeatureDataset([features[i] for i in ids], [label_index[by_id[i].label] for i in ids], augment,
                              recipe.train.pad, recipe.train.eval_frames)

    train_ids = list(fold.train)[: recipe.data.limit_per_fold] if recipe.data.limit_per_fold else list(fold.train)
    seed = recipe.seed * 1000 + index
    L.seed_everything(seed, workers=True, verbose=False)
    n_features = int(features[train_ids[0]].shape[1])
    backbone = None
    if recipe.transfer.distill:
        backbone = distill_for_fold(recipe, fold, utts, features, fdir / "distilled", progress)
    model = build_emotion_model(recipe, len(classes), n_features, backbone)
    fit_inputs = getattr(model, "fit_inputs", None)
    if callable(fit_inputs):  # e.g. FrameHead: standardisation from the training side only
        fit_inputs([features[i] for i in train_ids])
    module = EmotionModule(model, recipe.optim, classes, seed, recipe.train.loss, recipe.train.aam_margin,
                           recipe.train.aam_scale)
    data = FoldData(dataset(train_ids, make_augmenter(recipe.augment.policy)),
                    dataset(fold.valid) if fold.valid else None, recipe.train, recipe.augment.copies, seed)
    callbacks = _callbacks(recipe, fdir, bool(fold.valid))
    trainer = _trainer(recipe, fdir, callbacks, progress)
    last = fdir / "checkpoints" / "last.ckpt"
    started = time.time()
    trainer.fit(module, datamodule=data, ckpt_path=str(last) if last.is_file() else None, weights_only=True)
    best = callbacks[0].best_model_path or str(last)
    state = torch.load(best, map_location="cpu", weights_only=True)
    module.load_state_dict(state["state_dict"])
    test_utts = [by_id[i] for i in fold.test]
    logits = predict_logits(module.model, dataset(fold.test), recipe.train.eval_batch_size)
    pred = [classes[i] for i in logits.argmax(1)]
    metrics = classification_metrics([u.label for u in test_utts], pred, list(classes))
    result = {
        "fold": fold.name, "index": index, "metrics": metrics, "test": list(fold.test), "pred": pred,
        "best_epoch": int(state.get("epoch", -1)), "best_checkpoint": Path(best).name,
        "max_epochs": recipe.train.epochs, "epochs_run": int(trainer.current_epoch),
        "stopped_early": bool(trainer.should_stop and trainer.current_epoch < recipe.train.epochs),
        "train_seconds": round(time.time() - started, 1), "seed": seed,
        "n_train": len(train_ids), "n_valid": len(fold.valid), "n_test": len(fold.test),
        "speaker_norm": recipe.features.normalize == "speaker", "fingerprint": fingerprint(recipe),
    }
    if trainer.is_global_zero:
        _write_predictions(fdir / "predictions.csv", test_utts, classes, logits)
        label_of = {i: label_index[by_id[i].label] for i in [*fold.valid, *fold.test]}
        fold_scores(module.model, fold, classes, label_of, dataset, recipe.train.eval_batch_size,
                    {"modality": "speech", "fold": fold.name, "recipe": recipe.name},
                    known={"test": logits}).save(fdir / "scores.json")
        save_model(fdir / "model", module.model, {  # model spec filled in by save_model
            **pipeline.to_dict(), "labels": list(classes),
            "training": {"recipe": recipe.name, "fold": fold.name, "metrics": {k: metrics[k] for k in ("ua", "wa")}},
        })
        atomic_write_json(done, result)
    trainer.strategy.barrier()
    log.info("fold %s: UA %.4f WA %.4f (best epoch %s)", fold.name, metrics["ua"], metrics["wa"], result["best_epoch"])
    return result


# ----------------------------------------------------------------------------- the run
def run_experiment(recipe: Recipe, out_dir: str | Path, progress: bool | None = None,
                   overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Run (or resume) the whole cross-validation of ``recipe`` into ``out_dir``; returns the summary.
    ``overrides`` (the ``--override`` edits the recipe was loaded with) are named in the report title."""
    check_recipe(recipe)
    progress = recipe.train.progress if progress is None else progress
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    run: FoldRun = harness.prepare_run(
        out_dir, "experiment", recipe, recipe.to_dict(), ignore=RESUMABLE_KEYS, overrides=overrides,
        meta={"speaker_norm": recipe.features.normalize == "speaker"}, protocol_key=key)
    pipeline = PipelineConfig.from_recipe(recipe.features)  # trains on it, and is saved with every model
    feats = load_features(run.utterances, pipeline, recipe.resolve(recipe.features.cache_dir), progress)
    features = {u.id: f for u, f in zip(run.utterances, feats)}
    results = [run_fold(recipe, i, fold, run.utterances, features, run.classes, run.out, progress, pipeline)
               for i, fold in run.selected()]
    title = recipe.name + (" [speaker-normalised features]" if recipe.features.normalize == "speaker" else "")
    return run.report(results, title)


__all__ = ["RESUMABLE_KEYS", "class_names", "fingerprint", "fold_dir", "fold_scores", "load_utterances",
           "run_experiment", "run_fold"]
