"""Split a Whisper encoder for top-k fine-tuning: a cached frozen bottom, a trainable top.

The hidden state that enters block ``split + 1`` (index ``split`` in
:class:`emovox.whisper.encoder.WhisperLayers`' numbering: 0 = stem, ``i`` = block ``i``) is
computed once per clip by the frozen blocks and stored as fp16 in a
:class:`emovox.cache.FeatureCache` (safetensors, written atomically). The key combines the file's
identity (path, size, mtime, segment) with the model's identity (packaged name + SHA-256, or the
model file's path/size/mtime) and the split point, so a changed clip, model or split never
returns stale states. Clips longer than 30 s are cut into 3000-frame chunks; each chunk is its
own sequence and the chunks of a clip are pooled together.

:class:`TopBlocks` runs blocks ``split+1 .. top`` (plus the final layer norm when ``top`` is the
last block, as in ``WhisperLayers``) on a padded batch with a key-padding mask, and
:func:`masked_mean_std` pools valid frames per clip (population std, as the cached pooled features).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from emovox.cache import FeatureCache, extractor_key, source_key
from emovox.errors import ConfigError
from emovox.whisper.encoder import MAX_MEL_FRAMES, WhisperLayers
from emovox.whisper.mel import HOP, log_mel
from emovox.whisper.packaged import PACKAGED, WhisperDims

if TYPE_CHECKING:  # transformers is imported lazily, where an encoder is built
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

MIN_SAMPLES = 4 * HOP  # the conv stem needs at least 2 output frames


def model_identity(model: str) -> str:
    """A string that changes when the weights change: packaged name + checksum, or file identity."""
    if model in PACKAGED:
        return f"{model}:{','.join(PACKAGED[model].sha256)}"
    return f"file:{source_key(Path(model) / 'model.bin')}"


def default_audio(utt) -> np.ndarray:
    """16 kHz mono float32 of an utterance (its ``start``/``end`` segment when set)."""
    from emovox.audio import SAMPLE_RATE, load_audio

    x = load_audio(utt.path)
    if utt.start is None and utt.end is None:
        return x
    a = round((utt.start or 0.0) * SAMPLE_RATE)
    b = len(x) if utt.end is None else round(utt.end * SAMPLE_RATE)
    return x[a:b]


class FrozenCache:
    """Per-clip fp16 hidden states ``(T', d)`` at ``split``, computed once by the frozen blocks."""

    def __init__(self, encoder: WhisperEncoder, dims: WhisperDims, model: str, split: int,
                 cache_dir: str | Path | None = None,
                 audio: Callable[[object], np.ndarray] = default_audio) -> None:
        if not 0 <= split < dims.n_layers:
            raise ConfigError(f"the frozen part must end at hidden state 0..{dims.n_layers - 1}, got {split}")
        self.dims, self.split, self.audio = dims, split, audio
        self.frozen = WhisperLayers(encoder, dims, [split]).eval()
        self.cache = FeatureCache(cache_dir, extractor_key("whisper-frozen", {
            "model": model_identity(model), "split": split, "dims": dims.to_dict(), "dtype": "float16"}))

    def compute(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """``hidden`` ``(T', d)`` fp16 (chunks concatenated) and ``chunks`` (frames per chunk)."""
        x = np.asarray(samples, np.float32).reshape(-1)
        if x.size < MIN_SAMPLES:
            x = np.pad(x, (0, MIN_SAMPLES - x.size))
        mel = log_mel(x, self.dims.n_mels)
        pieces = [mel[:, i:i + MAX_MEL_FRAMES] for i in range(0, mel.shape[1], MAX_MEL_FRAMES)]
        pieces = [p for p in pieces if p.shape[1] >= 2] or [mel]
        with torch.inference_mode():
            outs = [self.frozen(torch.from_numpy(np.ascontiguousarray(p))[None])[0, 0] for p in pieces]
        return {"hidden": torch.cat(outs).numpy().astype(np.float16),
                "chunks": np.array([o.shape[0] for o in outs], np.int64)}

    def get(self, utt) -> list[np.ndarray]:
        """The clip's chunks, each ``(T_i, d)`` fp16 (from the cache, or computed and stored)."""
        entry = self.cache.get_or_compute(source_key(utt.path, utt.start, utt.end), lambda: self.compute(self.audio(utt)))
        bounds = np.cumsum(entry["chunks"])[:-1]
        return np.split(entry["hidden"], bounds)

    def get_all(self, utts: Sequence, progress: bool = False) -> list[list[np.ndarray]]:
        from tqdm.auto import tqdm

        return [self.get(u) for u in tqdm(utts, desc=f"frozen states @{self.split}", unit="clip", disable=not progress)]


class TopBlocks(nn.Module):
    """Blocks ``split+1 .. top`` of an encoder (trainable copies) -> hidden states ``layers``.

    ``forward(x, mask)``: ``x`` ``(S, T, d)`` padded sequences entering block ``split+1``, ``mask``
    ``(S, T)`` True on valid frames; returns the requested hidden states ``(len(layers), S, T, d)``
    (index ``split`` is the input itself).
    """

    def __init__(self, encoder: WhisperEncoder, dims: WhisperDims, split: int, top: int, layers: Sequence[int],
                 train_norm: bool = True) -> None:
        super().__init__()
        wanted = [int(i) for i in layers]
        if not 0 <= split < top <= dims.n_layers:
            raise ConfigError(f"need 0 <= split < top <= {dims.n_layers}, got split={split}, top={top}")
        if not wanted or any(not split <= i <= top for i in wanted):
            raise ConfigError(f"head layers must be in {split}..{top} (the fine-tuned part), got {list(layers)}")
        self.split, self.top, self.layers = split, top, wanted
        self.blocks = nn.ModuleList(copy.deepcopy(list(encoder.layers)[split:top]))
        self.final_norm = copy.deepcopy(encoder.layer_norm) if top == dims.n_layers else None
        for p in self.blocks.parameters():
            p.requires_grad_(True)
        if self.final_norm is not None:
            for p in self.final_norm.parameters():
                p.requires_grad_(train_norm)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        bias = torch.zeros(mask.shape, dtype=x.dtype, device=x.device).masked_fill(~mask, torch.finfo(x.dtype).min)
        bias = bias[:, None, None, :]
        states = {self.split: x}
        for i, block in enumerate(self.blocks, start=self.split + 1):
            x = block(x, attention_mask=bias)
            if isinstance(x, tuple):
                x = x[0]
            if i == self.top and self.final_norm is not None:
                x = self.final_norm(x)
            states[i] = x
        return torch.stack([states[i] for i in self.layers])


def masked_mean_std(h: torch.Tensor, mask: torch.Tensor, owner: torch.Tensor, n_clips: int) -> torch.Tensor:
    """``(L, S, T, d)`` states, ``(S, T)`` mask, ``(S,)`` clip of each sequence -> ``(L, n_clips, 2d)``."""
    m = mask.to(h.dtype)[None, :, :, None]
    L, _, _, d = h.shape
    count = torch.zeros(n_clips, dtype=h.dtype, device=h.device).index_add(0, owner, mask.to(h.dtype).sum(1))
    total = torch.zeros(L, n_clips, d, dtype=h.dtype, device=h.device).index_add(1, owner, (h * m).sum(2))
    mean = total / count[None, :, None]
    dev = (h - mean[:, owner, None, :]) ** 2 * m
    var = torch.zeros_like(total).index_add(1, owner, dev.sum(2)) / count[None, :, None]
    return torch.cat([mean, torch.sqrt(var + 1e-10)], dim=-1)


def collate(clips: Sequence[Sequence[np.ndarray]], crop: int | None = None,
            rng: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad the chunks of ``clips`` into ``(S, T, d)`` float32, mask ``(S, T)`` and owner ``(S,)``.

    With ``crop`` (training only) each sequence longer than ``crop`` frames is cut to a random
    window of ``crop`` frames (its positional information was added before the cache)."""
    seqs, owner = [], []
    for c, chunks in enumerate(clips):
        for s in chunks:
            if crop is not None and rng is not None and len(s) > crop:
                a = int(rng.integers(0, len(s) - crop + 1))
                s = s[a:a + crop]
            seqs.append(s)
            owner.append(c)
    T = max(len(s) for s in seqs)
    x = np.zeros((len(seqs), T, seqs[0].shape[1]), np.float32)
    mask = np.zeros((len(seqs), T), bool)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = s
        mask[i, :len(s)] = True
    return torch.from_numpy(x), torch.from_numpy(mask), torch.tensor(owner, dtype=torch.int64)
