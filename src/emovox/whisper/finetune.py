"""Top-k fine-tuning of a Whisper encoder on CPU, fold by fold.

The encoder is cut after block ``top`` (default: the last). Blocks ``1 .. top-k`` stay frozen and
their output is cached once per clip as fp16 (:class:`emovox.whisper.frozen.FrozenCache`), so an
epoch runs only the ``k`` trainable blocks (+ the final layer norm when ``top`` is the last block,
trainable with ``train_norm``) and a :class:`emovox.whisper.model.PooledHead` on mean ‖ std pooled
hidden states ``head_layers`` (any of ``top-k .. top``; default ``[top]``, i.e. mean ‖ std of the
top output). The encoder blocks and the head have their own learning rates (AdamW, linear warm-up
then cosine decay); the loss is class-balanced cross-entropy. Per fold the head's standardisation
is fitted on the training part (pretrained blocks), the epoch with the best validation UA is kept
(validation speakers only), and the test part is scored once with that state.

    from emovox.whisper.finetune import FineTuneConfig, fine_tune_folds
    results = fine_tune_folds(utts, folds, classes, FineTuneConfig(model="base", k=2))
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch import nn

from emovox.errors import ConfigError
from emovox.whisper.encoder import load_encoder
from emovox.whisper.frozen import (
    FrozenCache,
    TopBlocks,
    collate,
    default_audio,
    masked_mean_std,
)
from emovox.whisper.model import PooledHead

if TYPE_CHECKING:  # transformers is imported lazily, where an encoder is built
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

log = logging.getLogger(__name__)


@dataclass
class FineTuneConfig:
    model: str = "base"                 #: packaged Whisper name or a CTranslate2 folder
    k: int = 1                          #: trainable blocks (top-k+1 .. top)
    top: int | None = None              #: cut after this block (None = the last)
    train_norm: bool = True             #: train the final layer norm (only when top is the last block)
    head_layers: list[int] | None = None  #: pooled hidden states for the head (None = [top])
    combine: str = "concat"             #: PooledHead: concat | weighted
    hidden: int = 0                     #: PooledHead MLP width (0 = linear)
    dropout: float = 0.1                #: head dropout
    epochs: int = 6
    batch_size: int = 16
    lr_encoder: float = 3e-5
    lr_head: float = 1e-3
    weight_decay: float = 1e-2
    warmup: float = 0.1                 #: fraction of steps with a linear warm-up
    crop_frames: int | None = None      #: random crop of training sequences (frames at 50 Hz)
    seed: int = 0

    def resolve(self, n_layers: int) -> tuple[int, int, list[int]]:
        """(split, top, head_layers) for an encoder of ``n_layers`` blocks; raises ConfigError."""
        top = n_layers if self.top is None else int(self.top)
        if not 1 <= top <= n_layers:
            raise ConfigError(f"fine-tuning: top must be in 1..{n_layers}, got {self.top}")
        if not 1 <= self.k <= top:
            raise ConfigError(f"fine-tuning: k (trainable blocks) must be in 1..{top}, got {self.k}")
        split = top - self.k
        layers = [top] if self.head_layers is None else [int(i) for i in self.head_layers]
        if not layers or any(not split <= i <= top for i in layers):
            raise ConfigError(f"fine-tuning: head_layers must be in {split}..{top} (k={self.k}, top={top}), "
                              f"got {self.head_layers}")
        if self.combine not in ("concat", "weighted"):
            raise ConfigError(f"fine-tuning: combine must be 'concat' or 'weighted', got {self.combine!r}")
        for name in ("epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"fine-tuning: {name} must be >= 1, got {getattr(self, name)}")
        return split, top, layers


class FineTunedNet(nn.Module):
    """Cached frozen states -> trainable top blocks -> masked mean ‖ std -> PooledHead logits."""

    def __init__(self, top: TopBlocks, head: PooledHead) -> None:
        super().__init__()
        self.top, self.head = top, head

    def pooled(self, x: torch.Tensor, mask: torch.Tensor, owner: torch.Tensor, n_clips: int) -> torch.Tensor:
        return masked_mean_std(self.top(x, mask), mask, owner, n_clips)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, owner: torch.Tensor, n_clips: int) -> torch.Tensor:
        return self.head(self.pooled(x, mask, owner, n_clips))


def _batches(lengths: Sequence[int], size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Index batches; with ``rng`` shuffled, then sorted by length within groups of 8 batches."""
    idx = np.arange(len(lengths)) if rng is None else rng.permutation(len(lengths))
    group = size * 8
    out = []
    for g in range(0, len(idx), group):
        part = idx[g:g + group]
        part = part[np.argsort([lengths[i] for i in part], kind="stable")]
        out += [part[i:i + size] for i in range(0, len(part), size)]
    if rng is not None:
        out = [out[i] for i in rng.permutation(len(out))]
    return out


def _run(net: FineTunedNet, states: list, size: int, pooled: bool = False) -> np.ndarray:
    """Logits (or pooled statistics ``(N, L, 2d)``) of every clip, in order, without gradients."""
    net.eval()
    lengths = [sum(len(c) for c in s) for s in states]
    out: list[np.ndarray | None] = [None] * len(states)
    with torch.inference_mode():
        for b in _batches(lengths, size, None):
            x, mask, owner = collate([states[i] for i in b])
            r = net.pooled(x, mask, owner, len(b)).transpose(0, 1) if pooled else net(x, mask, owner, len(b))
            for j, i in enumerate(b):
                out[i] = r[j].numpy()
    return np.stack(cast(list[np.ndarray], out))  # every slot was filled above


def _ua(y: np.ndarray, pred: np.ndarray) -> float:
    from emovox.whisper.model import balanced_accuracy

    return balanced_accuracy(y, pred)


def fine_tune(encoder: WhisperEncoder, dims, cfg: FineTuneConfig, train: tuple[list, np.ndarray],
              valid: tuple[list, np.ndarray] | None, n_classes: int) -> tuple[FineTunedNet, dict[str, Any]]:
    """Train on cached states ``train = (states, y)``; keep the epoch with the best validation UA.

    ``states[i]`` is the list of fp16 chunks of clip ``i`` at the split point. Without ``valid``
    the last epoch is kept. Returns the network (eval mode) and a history dict."""
    split, top, layers = cfg.resolve(dims.n_layers)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    blocks = TopBlocks(encoder, dims, split, top, layers, cfg.train_norm)
    head = PooledHead(len(layers), 2 * dims.d_model, n_classes, cfg.combine, cfg.hidden, cfg.dropout)
    net = FineTunedNet(blocks, head)
    states, y = train
    head.set_stats(_run(net, states, cfg.batch_size, pooled=True))
    enc_params = [p for p in blocks.parameters() if p.requires_grad]
    opt = torch.optim.AdamW([{"params": enc_params, "lr": cfg.lr_encoder},
                             {"params": list(head.parameters()), "lr": cfg.lr_head}], weight_decay=cfg.weight_decay)
    lengths = [sum(len(c) for c in s) for s in states]
    steps = cfg.epochs * math.ceil(len(states) / cfg.batch_size)
    warm = max(1, int(cfg.warmup * steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm))))
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    weight = torch.tensor(np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), 0.0), dtype=torch.float32)
    yt = torch.from_numpy(np.asarray(y, np.int64))
    history: dict[str, Any] = {"epochs": []}
    best, best_state = -1.0, None
    for epoch in range(cfg.epochs):
        t0, total = time.perf_counter(), 0.0
        net.train()
        for b in _batches(lengths, cfg.batch_size, rng):
            x, mask, owner = collate([states[i] for i in b], cfg.crop_frames, rng)
            loss = nn.functional.cross_entropy(net(x, mask, owner, len(b)), yt[b], weight=weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
        row = {"epoch": epoch + 1, "loss": total / len(states), "seconds": time.perf_counter() - t0}
        if valid is not None and len(valid[0]):
            row["valid_ua"] = _ua(valid[1], _run(net, valid[0], cfg.batch_size).argmax(1))
            if row["valid_ua"] > best:
                best = row["valid_ua"]
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                history.update(valid_ua=best, best_epoch=epoch + 1)
        history["epochs"].append(row)
        log.info("epoch %d: loss %.4f valid UA %s (%.1f s)", epoch + 1, row["loss"], row.get("valid_ua"), row["seconds"])
    if best_state is not None:
        net.load_state_dict(best_state)
    return net.eval(), history


@dataclass
class FineTuneRun:
    """Everything one run needs: the loaded encoder and the cached frozen states of its clips."""

    cfg: FineTuneConfig
    cache_dir: str | Path | None = None
    audio: Callable[[object], np.ndarray] = default_audio
    encoder: Any = field(init=False)
    dims: Any = field(init=False)
    frozen: FrozenCache = field(init=False)

    def __post_init__(self) -> None:
        self.encoder, self.dims = load_encoder(self.cfg.model)
        split, _, _ = self.cfg.resolve(self.dims.n_layers)
        self.frozen = FrozenCache(self.encoder, self.dims, self.cfg.model, split, self.cache_dir, self.audio)


def fine_tune_folds(utts: Sequence, folds: Sequence, classes: Sequence[str], cfg: FineTuneConfig,
                    cache_dir: str | Path | None = None, on_fold: Callable[[dict[str, Any]], None] | None = None,
                    skip: Callable[[Any], dict[str, Any] | None] | None = None, progress: bool = False,
                    run: FineTuneRun | None = None) -> list[dict[str, Any]]:
    """Fine-tune and test once per fold; returns per-fold results (UA, WA, predictions, history).

    ``on_fold`` is called after each fold (write results incrementally); ``skip(fold)`` may return a
    finished fold's stored result to reuse it. Frozen states are computed (or read) for all clips first."""
    from emovox.evaluation.metrics import classification_metrics
    from emovox.protocols import check_fold

    run = run or FineTuneRun(cfg, cache_dir)
    pending = [f for f in folds if skip is None or skip(f) is None]
    needed = sorted({i for f in pending for i in (*f.train, *f.valid, *f.test)})
    by_id = {u.id: u for u in utts}
    states = dict(zip(needed, run.frozen.get_all([by_id[i] for i in needed], progress)))
    label = {u.id: u.label for u in utts}
    cls = list(classes)
    results = []
    for fold in folds:
        done = skip(fold) if skip is not None else None
        if done is not None:
            results.append(done)
            continue
        check_fold(fold, utts)
        part = {p: ([states[i] for i in ids], np.array([cls.index(label[i]) for i in ids], np.int64))
                for p, ids in (("train", fold.train), ("valid", fold.valid), ("test", fold.test))}
        t0 = time.perf_counter()
        net, hist = fine_tune(run.encoder, run.dims, cfg, part["train"], part["valid"], len(cls))
        pred = _run(net, part["test"][0], cfg.batch_size).argmax(1)
        truth = [cls[i] for i in part["test"][1]]
        result = {"fold": fold.name, "config": asdict(cfg), "history": hist, "test": list(fold.test),
                  "pred": [cls[i] for i in pred], "seconds": time.perf_counter() - t0,
                  "metrics": classification_metrics(truth, [cls[i] for i in pred], cls)}
        log.info("fold %s: UA %.4f (valid UA %s, %.0f s)", fold.name, result["metrics"]["ua"], hist.get("valid_ua"),
                 result["seconds"])
        results.append(result)
        if on_fold is not None:
            on_fold(result)
    return results
