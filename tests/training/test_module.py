"""Schedules' learning rates, parameter groups, frozen parameters really frozen under training."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from torch import nn

from emovox.config import OptimConfig
from emovox.training.data import FeatureDataset, eval_loader, train_loader
from emovox.training.module import EmotionModule, lr_factor, param_groups


class Tiny(nn.Module):
    """Conv body + BN + mean pooling + linear head: (B, T, F) -> (B, C)."""

    HEAD = ("head",)

    def __init__(self, n_mels: int = 8, classes: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(n_mels, 6, 3, padding=1), nn.BatchNorm1d(6), nn.PReLU())
        self.head = nn.Linear(6, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x.transpose(1, 2)).mean(-1))


def lrs(cfg: OptimConfig, epochs: int) -> list[float]:
    return [cfg.lr * lr_factor(cfg, e) for e in range(epochs)]


def test_seed000_halving_schedule() -> None:
    cfg = OptimConfig(lr=1e-2, schedule="halving", constant_epochs=8, halve_every=2)
    got = lrs(cfg, 14)
    assert got[:8] == [1e-2] * 8
    assert got[8:10] == [5e-3, 5e-3] and got[10:12] == [2.5e-3, 2.5e-3] and got[12] == 1.25e-3


def test_seed003_multistep_schedule() -> None:
    cfg = OptimConfig(lr=1e-2, schedule="multistep", milestones=[11, 21], gamma=0.1)
    got = lrs(cfg, 30)
    assert got[0] == got[9] == 1e-2  # 1-based epochs 1..10
    assert got[10] == pytest.approx(1e-3) and got[19] == pytest.approx(1e-3)  # epochs 11..20
    assert got[20] == pytest.approx(1e-4) and got[29] == pytest.approx(1e-4)  # epochs 21..30
    assert lrs(OptimConfig(schedule="constant"), 5) == [1e-2] * 5


def test_head_gets_its_own_learning_rate() -> None:
    model = Tiny()
    groups = {g["name"]: g for g in param_groups(model, OptimConfig(lr=1e-3, head_lr=1e-1))}
    assert groups["body"]["lr"] == 1e-3 and groups["head"]["lr"] == 1e-1
    assert {id(p) for p in groups["head"]["params"]} == {id(p) for p in model.head.parameters()}


def _fit(model: nn.Module, optim: OptimConfig, epochs: int = 2) -> EmotionModule:
    torch.manual_seed(0)
    feats = [torch.randn(40 + 7 * i, 8) for i in range(12)]
    ds = FeatureDataset(feats, [i % 3 for i in range(12)])
    module = EmotionModule(model, optim, ["a", "b", "c"])
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, use_distributed_sampler=False)
    trainer.fit(module, train_loader(ds, 4, [32, 48]), eval_loader(ds, 4))
    return module


def test_frozen_parameters_and_their_bn_statistics_stay_unchanged() -> None:
    model = Tiny()
    for p in model.body.parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    module = _fit(model, OptimConfig(lr=0.1, weight_decay=0.01))
    after = model.state_dict()
    for k, v in before.items():
        if k.startswith("body."):
            assert torch.equal(v, after[k]), f"{k} changed although frozen"
    assert not torch.equal(before["head.weight"], after["head.weight"])  # the head did train
    assert module.trainer.callback_metrics["valid_ua"] >= 0


def test_lr_scheduler_follows_schedule_in_training() -> None:
    module = _fit(Tiny(), OptimConfig(lr=0.1, schedule="halving", constant_epochs=1, halve_every=1), epochs=3)
    # after 3 epochs the scheduler has stepped 3 times: factor(3) = 0.5 ** 3
    assert module.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
