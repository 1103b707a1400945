"""GE2E speaker knowledge distilled into the seed ResNet34, on training-side audio only.

No VoxCeleb-trained ResNet exists offline, but the GE2E speaker encoder (resemblyzer, trained
on LibriSpeech + VoxCeleb 1/2) does. Distillation gives the seed architecture that speaker
knowledge: the student (the recipe's model with a 256-d output instead of the class layer)
learns to predict the teacher's unit-norm utterance embedding from random chunks
(loss ``1 - cos(student, teacher)``), on unlabelled speech. The result is a backbone package
that the recipe's transfer mode then starts from (fine-tune, linear probe...).

**Never test-fold audio.** The unlabelled pool of a fold is its train + valid utterances plus any
extra manifests (``transfer.distill_manifests``, e.g. LibriSpeech or another corpus);
:func:`check_pool` raises :class:`ProtocolError` if the pool contains a test utterance, a test
file, or any utterance of a test speaker (same corpus). Distillation runs once per fold and is
saved in ``<fold>/distilled``; a killed distillation restarts from scratch (deterministic).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from emovox.config import Recipe
from emovox.pipeline import PipelineConfig
from emovox.corpora import read_manifest
from emovox.errors import ProtocolError
from emovox.models.io import save_model
from emovox.models.registry import build_model
from emovox.training.data import FeatureDataset, load_features, train_loader
from emovox.training.features import cached_arrays
from emovox.training.module import quiet_lightning
from emovox.training.transfer import model_kwargs

log = logging.getLogger(__name__)

TEACHER_DIM = 256


def check_pool(pool: Sequence[Any], test: Sequence[Any]) -> None:
    """ProtocolError if the unlabelled distillation ``pool`` touches the ``test`` utterances."""
    test_ids = {u.id for u in test}
    test_paths = {str(Path(u.path).resolve()) for u in test if u.path}
    test_speakers = {(u.corpus, u.speaker) for u in test}
    for u in pool:
        if u.id in test_ids:
            raise ProtocolError(f"distillation pool contains test utterance {u.id!r} (test-fold audio is never used)")
        if u.path and str(Path(u.path).resolve()) in test_paths:
            raise ProtocolError(f"distillation pool contains test-fold audio file {u.path}")
        if (u.corpus, u.speaker) in test_speakers:
            raise ProtocolError(f"distillation pool contains speaker {u.speaker!r} of the test fold ({u.id!r})")


def teacher_embeddings(utterances: Sequence[Any], cache_dir: str | Path | None, progress: bool = False) -> torch.Tensor:
    """(N, 256) GE2E utterance embeddings (cached per utterance, shared with the baseline)."""
    from emovox.upstreams import build_upstream  # the GE2E network loads on first use

    upstream = build_upstream("ge2e")
    out = np.zeros((len(utterances), TEACHER_DIM), dtype=np.float32)
    for i, arrays in enumerate(cached_arrays(utterances, [(upstream.key, upstream.extract)], cache_dir, progress,
                                             "GE2E teacher")):
        out[i] = arrays[0]["embedding"]
    return torch.from_numpy(out)


class DistillModule(L.LightningModule):
    """Student regression onto teacher embeddings: loss = 1 - cosine similarity."""

    teacher: torch.Tensor  # buffer, registered in __init__

    def __init__(self, student: torch.nn.Module, teacher: torch.Tensor, lr: float, momentum: float = 0.9,
                 seed: int = 0) -> None:
        super().__init__()
        self.student, self.lr, self.momentum, self.seed = student, lr, momentum, seed
        self.register_buffer("teacher", teacher)

    def on_train_epoch_start(self) -> None:
        torch.manual_seed(self.seed * 100_003 + self.current_epoch)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, target, _ = batch
        loss = (1 - F.cosine_similarity(self.student(x), self.teacher[target], dim=1)).mean()
        self.log("distill_loss", loss, prog_bar=True, batch_size=len(target))
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.student.parameters(), lr=self.lr, momentum=self.momentum)


def distill_for_fold(recipe: Recipe, fold: Any, utts: Sequence[Any], features: dict[str, torch.Tensor],
                     out_dir: str | Path, progress: bool = False) -> Path:
    """Distil GE2E into a fresh ``recipe.model`` on the fold's training side; returns the package folder."""
    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    by_id = {u.id: u for u in utts}
    pool = [by_id[i] for i in list(fold.train) + list(fold.valid)]
    extra: list[Any] = []
    for manifest in recipe.transfer.distill_manifests:
        extra += read_manifest(recipe.resolve(manifest))
    test = [by_id[i] for i in fold.test]
    check_pool(pool + extra, test)
    feats = [features[u.id] for u in pool]
    if extra:
        feats += load_features(extra, recipe.features, recipe.resolve(recipe.features.cache_dir), progress)
    pool = pool + extra
    teacher = teacher_embeddings(pool, recipe.resolve(recipe.features.cache_dir), progress)
    n_features = int(feats[0].shape[1])
    L.seed_everything(recipe.seed, verbose=False)
    student = build_model(recipe.model.name, TEACHER_DIM, **model_kwargs(recipe, n_features))
    dataset = FeatureDataset(feats, list(range(len(pool))), pad=recipe.train.pad)
    loader = train_loader(dataset, recipe.train.batch_size, recipe.train.chunk_frames, seed=recipe.seed)
    quiet_lightning()
    trainer = L.Trainer(max_epochs=recipe.transfer.distill_epochs, accelerator=recipe.train.accelerator, devices=1,
                        deterministic=True, logger=False, enable_checkpointing=False, enable_progress_bar=progress,
                        enable_model_summary=False, use_distributed_sampler=False)
    lr = recipe.transfer.distill_lr if recipe.transfer.distill_lr is not None else recipe.optim.lr
    module = DistillModule(student, teacher, lr, recipe.optim.momentum, recipe.seed)
    trainer.fit(module, loader)
    loss = float(trainer.callback_metrics.get("distill_loss", float("nan")))
    save_model(out, student.eval(), {
        **PipelineConfig.from_recipe(recipe.features).to_dict(), "labels": [f"ge2e_{i}" for i in range(TEACHER_DIM)],
        "training": {"task": "GE2E distillation", "fold": fold.name, "n_utterances": len(pool),
                     "epochs": recipe.transfer.distill_epochs, "final_loss": loss},
    })
    log.info("fold %s: distilled GE2E into %s on %d training-side utterances (loss %.4f)", fold.name,
             recipe.model.name, len(pool), loss)
    return out


__all__ = ["DistillModule", "TEACHER_DIM", "check_pool", "distill_for_fold", "teacher_embeddings"]
