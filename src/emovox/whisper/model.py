"""Emotion models on Whisper hidden states: pooled-layer heads, the audio-in network, training.

Pipeline (one definition for training, prediction and export): 16 kHz waves ->
:func:`emovox.whisper.mel.torch_log_mel_module` -> :class:`emovox.whisper.encoder.WhisperLayers`
(cut after the highest layer used) -> mean ‖ std over frames per layer ``(L, B, 2d)`` ->
:class:`PooledHead`: per-layer standardisation (statistics of the training side), then the
layers combined by concatenation or by a learnable softmax-weighted sum (SUPERB style, here
over the pooled statistics), then a linear or one-hidden-layer MLP head -> logits.
Heads train on cached pooled statistics (:func:`fit_head`), so the encoder runs once per clip.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from emovox.audio_model import AudioModelConfig, clip_pieces, model_input
from emovox.errors import ConfigError
from emovox.whisper.encoder import WhisperLayers, load_encoder
from emovox.whisper.mel import torch_log_mel_module


class PooledHead(nn.Module):
    """``(L, B, 2d)`` pooled layer statistics -> ``(B, C)`` logits.

    With ``members`` > 1 it is an ensemble: ``members`` MLPs of the same shape read the same
    standardised input and the logits are their mean (:func:`ensemble_head` builds one from heads
    trained apart). The first MLP is ``net`` (so a one-member head's weights keep their names)."""

    mean: torch.Tensor  # buffers, registered in __init__
    std: torch.Tensor

    def __init__(self, n_layers: int, dim: int, n_classes: int, combine: str = "concat", hidden: int = 0,
                 dropout: float = 0.0, members: int = 1) -> None:
        super().__init__()
        if combine not in ("concat", "weighted"):
            raise ConfigError(f"combine must be 'concat' or 'weighted', got {combine!r}")
        if members < 1 or (members > 1 and combine != "concat"):
            raise ConfigError(f"an ensemble head needs members >= 1 and combine 'concat', got {members}, {combine!r}")
        self.combine = combine
        self.register_buffer("mean", torch.zeros(n_layers, 1, dim))
        self.register_buffer("std", torch.ones(n_layers, 1, dim))
        self.layer_logits = nn.Parameter(torch.zeros(n_layers)) if combine == "weighted" else None
        width = dim * (n_layers if combine == "concat" else 1)
        body: list[nn.Module] = [nn.Dropout(dropout)]
        if hidden:
            body += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
            width = hidden
        body.append(nn.Linear(width, n_classes))
        self.net = nn.Sequential(*body)
        self.others = nn.ModuleList(copy.deepcopy(self.net) for _ in range(members - 1))

    def set_stats(self, pooled: np.ndarray) -> None:
        """Fit the standardisation on training-side pooled statistics ``(N, L, 2d)``."""
        x = torch.from_numpy(np.asarray(pooled, np.float32)).transpose(0, 1)
        self.mean.copy_(x.mean(1, keepdim=True))
        self.std.copy_(x.std(1, keepdim=True).clamp_min(1e-4))

    def standardised(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(B, width)``: the standardised, combined layers every MLP reads."""
        x = (pooled - self.mean) / self.std
        if self.layer_logits is not None:
            return (torch.softmax(self.layer_logits, 0)[:, None, None] * x).sum(0)
        return x.transpose(0, 1).reshape(x.shape[1], -1)

    def features(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(B, width)``: what the first MLP's last linear layer reads (its hidden layer, when it has one)."""
        return self.net[:-1](self.standardised(pooled))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        x = self.standardised(pooled)
        logits = self.net(x)
        for other in self.others:
            logits = logits + other(x)
        return logits / (1 + len(self.others))


def config_head(config: AudioModelConfig, d_model: int) -> PooledHead:
    """The (untrained) head a package's config describes, over a ``d_model``-wide encoder."""
    return PooledHead(len(config.layers), 2 * d_model, len(config.labels), config.combine, config.hidden,
                      members=config.members)


def ensemble_head(heads: list[PooledHead]) -> PooledHead:
    """One :class:`PooledHead` whose logits are the mean of ``heads``' (same shape, same standardisation)."""
    first = heads[0]
    for head in heads[1:]:
        if head.net.state_dict().keys() != first.net.state_dict().keys() or head.others \
                or not (torch.equal(head.mean, first.mean) and torch.equal(head.std, first.std)):
            raise ConfigError("ensemble members must be one-member heads of one shape with one standardisation")
    out = copy.deepcopy(first)
    out.others = nn.ModuleList(copy.deepcopy(h.net) for h in heads[1:])
    return out.eval()

class WhisperEmotionNet(nn.Module):
    """``(1, N)`` 16 kHz waves -> ``(1, C)`` logits (log-mel, truncated encoder, pooling, head)."""

    def __init__(self, layers: WhisperLayers, head: PooledHead) -> None:
        super().__init__()
        self.log_mel = torch_log_mel_module(layers.dims.n_mels)
        self.layers, self.head = layers, head

    def forward(self, waves: torch.Tensor) -> torch.Tensor:
        return self.head(mean_std(self.layers(self.log_mel(waves))))


def mean_std(hidden: torch.Tensor) -> torch.Tensor:
    """``(L, B, T, d)`` hidden states -> ``(L, B, 2d)`` mean ‖ (population) std over time: the
    statistics every head here is trained on (``recipes/generalist/features.py`` caches them)."""
    mean = hidden.mean(2, keepdim=True)
    return torch.cat([mean.squeeze(2), (hidden - mean).pow(2).mean(2).sqrt()], dim=-1)


def build_net(config: AudioModelConfig, head_state: dict[str, torch.Tensor]) -> WhisperEmotionNet:
    encoder, dims = load_encoder(config.whisper_model)
    head = config_head(config, dims.d_model)
    head.load_state_dict(head_state)
    return WhisperEmotionNet(WhisperLayers(encoder, dims, config.layers), head).eval()


@dataclass
class HeadTraining:
    epochs: int = 60
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-2
    dropout: float = 0.2
    hidden: int = 0
    combine: str = "concat"
    seed: int = 0
    #: corpus-adversarial weight (gradient reversal on the hidden layer; needs ``hidden`` and ``domains``)
    adversarial: float = 0.0
    adversarial_warmup: int = 10  #: epochs over which the weight ramps up from 0
    #: cross-entropy label smoothing (0: none)
    label_smoothing: float = 0.0
    #: mixup (Zhang et al. 2018): each batch mixed with a shuffled copy of itself, weights ~ Beta(a, a); 0: off
    mixup: float = 0.0


class _Reverse(torch.autograd.Function):
    """Gradient reversal (Ganin & Lempitsky, 2015): identity forward, ``-weight *`` gradient backward."""

    @staticmethod
    def forward(ctx, x, weight):  # type: ignore[override]
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        return -ctx.weight * grad, None


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    classes = np.unique(y)
    return float(np.mean([(pred[y == c] == c).mean() for c in classes]))


def fit_head(x: np.ndarray, y: np.ndarray, weights: np.ndarray, n_classes: int, cfg: HeadTraining,
             valid: tuple[np.ndarray, np.ndarray] | None = None,
             domains: np.ndarray | None = None) -> tuple[PooledHead, dict[str, float]]:
    """Train a :class:`PooledHead` on pooled statistics ``x`` ``(N, L, 2d)`` with sample ``weights``.

    With ``valid`` the epoch with the best validation UA is kept (validation speakers only). With
    ``cfg.adversarial`` > 0, ``domains`` ``(N,)`` (e.g. the corpus of each clip) are predicted from
    the hidden layer through a gradient reversal, so that the hidden layer learns to hide them."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    head = PooledHead(x.shape[1], x.shape[2], n_classes, cfg.combine, cfg.hidden, cfg.dropout)
    head.set_stats(x)
    adv = _adversary(cfg, domains, len(y))
    if cfg.mixup and adv is not None:
        raise ConfigError("mixup with corpus-adversarial training is not implemented; use one of them")
    params = list(head.parameters()) + (list(adv.parameters()) if adv is not None else [])
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    xt = torch.from_numpy(np.asarray(x, np.float32)).transpose(0, 1)
    yt = torch.from_numpy(np.asarray(y, np.int64))
    p = np.asarray(weights, np.float64) / np.sum(weights)
    best, best_state, history = -1.0, None, {}
    steps = max(1, len(y) // cfg.batch_size)
    dt = None if domains is None else torch.from_numpy(np.asarray(domains, np.int64))
    for epoch in range(cfg.epochs):
        head.train()
        weight = cfg.adversarial * min(1.0, epoch / max(1, cfg.adversarial_warmup))
        for _ in range(steps):
            idx = torch.from_numpy(rng.choice(len(y), cfg.batch_size, p=p))
            if cfg.mixup:
                loss = _mixup_loss(head, xt[:, idx], yt[idx], cfg, rng)
            elif adv is None or dt is None:
                loss = nn.functional.cross_entropy(head(xt[:, idx]), yt[idx], label_smoothing=cfg.label_smoothing)
            else:
                h = head.features(xt[:, idx])
                loss = nn.functional.cross_entropy(head.net[-1](h), yt[idx], label_smoothing=cfg.label_smoothing) + \
                    nn.functional.cross_entropy(adv(_Reverse.apply(h, weight)), dt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        if valid is not None and (epoch % 5 == 4 or epoch == cfg.epochs - 1):
            ua = balanced_accuracy(valid[1], predict_head(head, valid[0]).argmax(1))
            if ua > best:
                best, best_state = ua, {k: v.clone() for k, v in head.state_dict().items()}
                history = {"valid_ua": ua, "epoch": epoch + 1}
    if best_state is not None:
        head.load_state_dict(best_state)
    return head.eval(), history


def _mixup_loss(head: PooledHead, x: torch.Tensor, y: torch.Tensor, cfg: HeadTraining,
                rng: np.random.Generator) -> torch.Tensor:
    """Cross-entropy of a batch ``x`` ``(L, B, 2d)`` mixed with a shuffled copy of itself."""
    lam = torch.from_numpy(rng.beta(cfg.mixup, cfg.mixup, size=len(y)).astype(np.float32))
    perm = torch.from_numpy(rng.permutation(len(y)))
    logits = head(lam[None, :, None] * x + (1 - lam[None, :, None]) * x[:, perm])
    ce = nn.functional.cross_entropy
    return (lam * ce(logits, y, reduction="none", label_smoothing=cfg.label_smoothing)
            + (1 - lam) * ce(logits, y[perm], reduction="none", label_smoothing=cfg.label_smoothing)).mean()


def _adversary(cfg: HeadTraining, domains: np.ndarray | None, n: int) -> nn.Module | None:
    """The domain classifier of corpus-adversarial training (None when ``cfg.adversarial`` is 0)."""
    if not cfg.adversarial:
        return None
    if not cfg.hidden:
        raise ConfigError("adversarial training needs a hidden layer (hidden > 0)")
    if domains is None or len(domains) != n:
        raise ConfigError(f"adversarial training needs one domain id per training clip ({n}), got "
                          f"{None if domains is None else len(domains)}")
    n_domains = int(np.max(domains)) + 1
    if n_domains < 2:
        raise ConfigError("adversarial training needs at least two domains (e.g. two corpora)")
    return nn.Sequential(nn.Linear(cfg.hidden, 128), nn.GELU(), nn.Linear(128, n_domains))


def predict_head(head: PooledHead, x: np.ndarray) -> np.ndarray:
    """Logits ``(N, C)`` of pooled statistics ``(N, L, 2d)``."""
    head.eval()
    with torch.inference_mode():
        return head(torch.from_numpy(np.asarray(x, np.float32)).transpose(0, 1)).numpy()


class TorchAudioModel:
    """The torch reference of an audio-in package: ``(N,)`` waves -> calibrated probabilities."""

    def __init__(self, folder, config: AudioModelConfig, threads: int = 1) -> None:
        from pathlib import Path

        from safetensors.torch import load_file

        from emovox.errors import ModelError

        torch.set_num_threads(threads)
        path = Path(folder) / "head.safetensors"
        if not path.is_file():
            raise ModelError(f"{folder}: head.safetensors is missing, so the torch backend cannot run this model; "
                             "use the onnx backend")
        self.config = config
        self.net = build_net(config, load_file(str(path)))

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        from emovox.calibration import softmax

        with torch.inference_mode():
            logits = [self.net(torch.from_numpy(model_input(p, self.config))[None])[0].numpy() for p in clip_pieces(wave, self.config)]
        return softmax(np.mean(logits, axis=0), self.config.temperature)
