"""LightningModule for utterance-level emotion classification, with the papers' SGD schedules.

Schedules (all stepped once per epoch; ``epoch`` below is 0-based as in Lightning):

* ``halving`` (seed 000 §4.2): lr constant for ``constant_epochs`` (8) epochs, then halved every
  ``halve_every`` (2) epochs: epochs 1-8 at lr, 9-10 at lr/2, 11-12 at lr/4, ... (1-based).
* ``multistep`` (seed 003 §IV.B): lr multiplied by ``gamma`` (0.1) at each 1-based milestone
  epoch (11 and 21): epochs 1-10 at lr, 11-20 at lr/10, 21-30 at lr/100.
* ``constant``.

Parameter groups: the segment-level head (``model.HEAD``: pooling, embedding, classifier) gets
``head_lr`` (seed 001: 1e-1 for the new FC layers),
the rest ``lr`` (seed 001: 1e-3 when fine-tuning the convolutions). Only parameters with
``requires_grad`` enter the optimiser, so frozen parameters never move (no weight decay either),
and batch-norm layers whose parameters are all frozen are kept in eval mode so their running
statistics stay those of the backbone.

Model selection uses the validation part only: ``valid_ua`` / ``valid_wa`` / ``valid_loss`` are
logged every epoch for checkpointing and early stopping; the test part is scored once, after
training, by the experiment runner.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import lightning as L
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emovox.config import OptimConfig
from emovox.evaluation.metrics import unweighted_accuracy, weighted_accuracy
from emovox.models.base import SpeechClassifier
from emovox.models.layers import head_modules, sync_batchnorm_freezing

log = logging.getLogger(__name__)


def quiet_lightning() -> None:
    """Hide Lightning warnings that users cannot act on: frozen batch norms are in eval mode on purpose
    (transfer modes), a fold's checkpoint folder is not empty when the fold resumes (on purpose), and
    Lightning 2.x calls torch's deprecated pytree ``LeafSpec`` on every batch."""
    warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
    warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty.*")
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


def lr_factor(cfg: OptimConfig, epoch: int) -> float:
    """Multiplier of the base learning rate at 0-based ``epoch`` for ``cfg.schedule``."""
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "halving":
        if epoch < cfg.constant_epochs:
            return 1.0
        return 0.5 ** ((epoch - cfg.constant_epochs) // cfg.halve_every + 1)
    if cfg.schedule == "multistep":
        return cfg.gamma ** sum(1 for m in cfg.milestones if epoch + 1 >= m)
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def param_groups(model: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """SGD parameter groups: trainable body params at ``lr``, trainable head params at ``head_lr``."""
    head_ids = {id(p) for m in head_modules(model) for p in m.parameters()}
    body = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    top = [p for p in model.parameters() if p.requires_grad and id(p) in head_ids]
    groups = []
    if body:
        groups.append({"params": body, "lr": cfg.lr, "name": "body"})
    if top:
        groups.append({"params": top, "lr": cfg.head_lr if cfg.head_lr is not None else cfg.lr, "name": "head"})
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return groups


class EmotionModule(L.LightningModule):
    """Cross-entropy training of ``model`` ((B, T, F) -> (B, classes) logits)."""

    def __init__(self, model: SpeechClassifier, optim: OptimConfig, class_names: Sequence[str], seed: int = 0,
                 loss: str = "ce", aam_margin: float = 0.2, aam_scale: float = 30.0) -> None:
        super().__init__()
        self.model = model
        self.optim_cfg = optim
        self.class_names = list(class_names)
        self.seed = int(seed)
        self.loss_name, self.aam_margin, self.aam_scale = loss, float(aam_margin), float(aam_scale)
        self._val: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._loss_sum, self._loss_count = 0.0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def _logits_and_loss(self, x: torch.Tensor, y: torch.Tensor, margin: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy on the model's logits, or AAM-softmax (ArcFace: s·cos(θ_y + m) for the target
        class, on the cosine between the embedding and the output layer's weight rows)."""
        if self.loss_name != "aam":
            logits = self.model(x)
            return logits, F.cross_entropy(logits, y)
        cos = F.linear(F.normalize(self.model.embed(x)), F.normalize(self.model.classifier.weight))
        if margin:
            theta = torch.acos(cos.clamp(-1 + 1e-7, 1 - 1e-7))
            target = torch.cos(theta + self.aam_margin)
            cos = torch.where(F.one_hot(y, cos.shape[1]).bool(), target, cos)
        logits = self.aam_scale * cos
        return logits, F.cross_entropy(logits, y)

    def train(self, mode: bool = True) -> "EmotionModule":
        super().train(mode)
        if mode:
            sync_batchnorm_freezing(self.model)
        return self

    # ------------------------------------------------------------------ training
    def on_train_epoch_start(self) -> None:
        # Lightning restores saved train/eval flags instead of calling train(); re-freeze here.
        sync_batchnorm_freezing(self.model)
        # Any stochastic layer (dropout) draws from a stream fixed by (seed, epoch), so an epoch
        # replays identically after resuming from the previous epoch's checkpoint.
        torch.manual_seed(self.seed * 100_003 + self.current_epoch)
        self._loss_sum, self._loss_count = 0.0, 0

    def epoch_train_loss(self) -> float | None:
        """Mean training loss of the current epoch so far (this rank)."""
        return self._loss_sum / self._loss_count if self._loss_count else None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y, _ = batch
        _, loss = self._logits_and_loss(x, y, margin=True)
        self._loss_sum += float(loss.detach()) * len(y)
        self._loss_count += len(y)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(y))
        return loss

    # ---------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._val = []

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y, _ = batch
        logits, _ = self._logits_and_loss(x, y, margin=False)
        self._val.append((logits.detach().float().cpu(), y.cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        logits = torch.cat([v[0] for v in self._val])
        y = torch.cat([v[1] for v in self._val])
        pred = logits.argmax(1).numpy()
        self.log_dict({
            "valid_loss": F.cross_entropy(logits, y).item(),
            "valid_ua": unweighted_accuracy(y.numpy(), pred),
            "valid_wa": weighted_accuracy(y.numpy(), pred),
        }, prog_bar=True, sync_dist=False)
        self._val = []

    # ----------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        cfg = self.optim_cfg
        opt = torch.optim.SGD(param_groups(self.model, cfg), lr=cfg.lr, momentum=cfg.momentum,
                              nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: lr_factor(cfg, epoch))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


@torch.no_grad()
def predict_logits(model: nn.Module, dataset: Any, batch_size: int = 16) -> np.ndarray:
    """(N, C) logits of every item of an evaluation dataset, in dataset order (eval mode)."""
    from emovox.training.data import eval_loader

    was_training = model.training
    model.eval()
    out: np.ndarray | None = None
    for x, _, idx in eval_loader(dataset, batch_size):
        logits = model(x).float().cpu().numpy()
        if out is None:
            out = np.zeros((len(dataset), logits.shape[1]), dtype=np.float32)
        out[idx.numpy()] = logits
    model.train(was_training)
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)


class EpochHistory(L.Callback):
    """Per-epoch train loss, validation metrics and learning rates, kept in the checkpoint (so a
    resumed run continues the same list) and written atomically to ``path`` after every epoch."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []
        self._lr: list[float] = []

    def _record(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if self.rows and self.rows[-1]["epoch"] == epoch:
            return
        row: dict[str, Any] = {"epoch": epoch, "train_loss": getattr(pl_module, "epoch_train_loss", lambda: None)()}
        for key in ("valid_loss", "valid_ua", "valid_wa"):
            if key in trainer.callback_metrics:
                row[key] = float(trainer.callback_metrics[key])
        row["lr"] = self._lr
        self.rows.append(row)
        if trainer.is_global_zero:
            from emovox.io import atomic_write_json

            atomic_write_json(self.path, self.rows)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._lr = [g["lr"] for g in trainer.optimizers[0].param_groups] if trainer.optimizers else []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._record(trainer, pl_module)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._record(trainer, pl_module)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": json.dumps(self.rows)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = json.loads(state_dict.get("rows", "[]"))


class ResumeCheckpoint(L.Callback):
    """The resume point: a full Lightning checkpoint written at the end of every epoch (after
    validation, model selection and early stopping have seen it) and at the end of training.

    The checkpoint is marked as a *finished* epoch (fit-loop progress ``completed = processed``),
    so a resumed run starts cleanly at the next epoch, where Lightning sets the sampler's epoch
    before it creates the iterator. (Lightning's own ``save_last`` checkpoint is taken inside the
    epoch; resuming from it reuses an iterator built before ``set_epoch``, so the next epoch
    would replay the previous epoch's batches.) A kill mid-epoch loses only that epoch, which the
    resumed run replays exactly."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._saving = False

    def _save(self, trainer: L.Trainer) -> None:
        self._saving = True
        try:
            trainer.save_checkpoint(self.path, weights_only=False)
        finally:
            self._saving = False

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer)

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if not self._saving:
            return
        progress = checkpoint.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {})
        for part in ("current", "total"):
            if part in progress:
                progress[part]["completed"] = progress[part]["processed"]


__all__ = ["EmotionModule", "EpochHistory", "ResumeCheckpoint", "predict_logits", "head_modules", "sync_batchnorm_freezing", "lr_factor", "param_groups"]
