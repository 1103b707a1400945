"""Training data over cached per-utterance features: seed-000 chunk batching and whole-utterance eval.

Training (seed 000 §4.2): for every batch one chunk length T is drawn from ``chunk_frames``
({150, 200, 250, 300} frames by default) and every utterance in the batch contributes a T-frame
chunk at a random offset. **Padding** of utterances shorter than T: ``repeat`` (default) tiles
the utterance along time (wrap-around, so the chunk holds only real speech frames, which keeps
the statistics-pooling mean/std close to the utterance's own), ``zero`` appends zero frames (after
segment MVN, zero is the utterance mean).

SpecAugment with K copies: each epoch iterates over every utterance ``1 + K`` times, once clean
and K times through the augmenter with its own seed, shuffled together; the augmented copies are
extra training samples, as in the papers ("two spectro-temporally modified versions" per segment).

Determinism: all randomness (order, T, offsets, augmentation seeds) is drawn by
:class:`ChunkBatchSampler` from ``(seed, epoch)`` only, so an epoch replays bit-identically after
a resume, with any number of workers. For DDP the sampler shards whole batches by rank (every
rank sees the same number of batches); set ``use_distributed_sampler=False`` in the Trainer.

Evaluation feeds whole utterances (variable length; statistics pooling makes it possible).
:class:`LengthBatchSampler` batches only utterances of identical length, so no padding ever
reaches the model at evaluation time. ``eval_frames`` instead truncates to the first N frames
(padding as above) for models without a pooling layer (the seed 000 Fig. 4 ablation).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from emovox.frontend.pipeline import FeaturePipeline
from emovox.pipeline import PipelineConfig
from emovox.training.features import cached_arrays

if TYPE_CHECKING:
    from emovox.config import FeatureConfig, TrainConfig
    from emovox.corpora.manifest import Utterance

log = logging.getLogger(__name__)

#: Smallest number of frames fed to a model (shorter utterances are padded), so that the
#: strided convolutions of ResNet34/ResNet20 always leave at least one frame.
MIN_FRAMES = 32

Augmenter = Callable[[torch.Tensor, int], torch.Tensor]  # (T, F) features, seed -> augmented (T, F)


@dataclass(frozen=True)
class ChunkRequest:
    """What a training batch asks for one item: which utterance, chunk length/offset, augmentation."""

    index: int
    frames: int
    offset: int
    augment_seed: int | None = None  #: None = the clean copy


def pad_frames(x: torch.Tensor, frames: int, mode: str = "repeat") -> torch.Tensor:
    """Pad a (T, F) tensor along time to ``frames`` rows (``repeat`` = wrap-around, ``zero``)."""
    t = x.shape[0]
    if t >= frames:
        return x
    if t == 0:
        return x.new_zeros(frames, x.shape[1])
    if mode == "repeat":
        return x.repeat(math.ceil(frames / t), 1)[:frames]
    if mode == "zero":
        return torch.cat([x, x.new_zeros(frames - t, x.shape[1])])
    raise ValueError(f"unknown pad mode {mode!r} (repeat | zero)")


def take_chunk(x: torch.Tensor, frames: int, offset: int, mode: str = "repeat") -> torch.Tensor:
    """The ``frames``-long chunk of ``x`` starting at ``offset`` (padded when ``x`` is shorter)."""
    if x.shape[0] <= frames:
        return pad_frames(x, frames, mode)
    offset = min(max(offset, 0), x.shape[0] - frames)
    return x[offset: offset + frames]


class ChunkBatchSampler(Sampler[list[ChunkRequest]]):
    """Yields training batches of :class:`ChunkRequest` with one chunk length per batch."""

    def __init__(self, lengths: Sequence[int], batch_size: int, chunk_frames: Sequence[int] = (150, 200, 250, 300),
                 copies: int = 0, seed: int = 0, drop_last: bool = False, rank: int = 0, world_size: int = 1,
                 epoch_fn: Callable[[], int] | None = None) -> None:
        if not lengths:
            raise ValueError("ChunkBatchSampler needs at least one utterance")
        self.lengths = [int(n) for n in lengths]
        self.batch_size = int(batch_size)
        self.chunk_frames = [int(t) for t in chunk_frames]
        self.copies = int(copies)
        self.seed = int(seed)
        self.drop_last = drop_last
        self.rank, self.world_size = int(rank), int(world_size)
        self.epoch = 0
        #: When given (the trainer's current epoch), read at the start of every iteration: Lightning
        #: creates the iterator of a resumed epoch before it calls ``set_epoch``.
        self.epoch_fn = epoch_fn
        # Lightning calls set_epoch on ``batch_sampler.sampler`` before every epoch.
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _num_batches_total(self) -> int:
        n = len(self.lengths) * (1 + self.copies)
        if self.drop_last or (n % self.batch_size == 1 and n > 1):
            return n // self.batch_size  # a last batch of one is merged into the one before (batch norm)
        return math.ceil(n / self.batch_size)

    def __len__(self) -> int:
        return self._num_batches_total() // self.world_size if self.world_size > 1 else self._num_batches_total()

    def batches(self) -> list[list[ChunkRequest]]:
        """All batches of the current epoch (every rank computes the same list)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        n = len(self.lengths)
        order = rng.permutation(n * (1 + self.copies))
        out: list[list[ChunkRequest]] = []
        count = self._num_batches_total()
        for b in range(count):
            stop = (b + 1) * self.batch_size if b < count - 1 or self.drop_last else len(order)
            items = order[b * self.batch_size: stop]
            frames = int(rng.choice(self.chunk_frames))
            batch = []
            for item in items:
                index, copy = int(item) % n, int(item) // n
                offset = int(rng.integers(0, max(self.lengths[index] - frames, 0) + 1))
                aug_seed = int(rng.integers(2**31)) if copy > 0 else None
                batch.append(ChunkRequest(index, frames, offset, aug_seed))
            out.append(batch)
        return out

    def __iter__(self) -> Iterator[list[ChunkRequest]]:
        if self.epoch_fn is not None:
            self.epoch = int(self.epoch_fn())
        batches = self.batches()
        if self.world_size > 1:
            batches = batches[: len(self)* self.world_size][self.rank:: self.world_size]
        return iter(batches)


class LengthBatchSampler(Sampler[list[int]]):
    """Evaluation batches of utterances with identical length (no padding ever needed)."""

    def __init__(self, lengths: Sequence[int], batch_size: int) -> None:
        groups: dict[int, list[int]] = {}
        for i, n in enumerate(lengths):
            groups.setdefault(int(n), []).append(i)
        self._batches = [idx[s: s + batch_size] for n in sorted(groups) for idx in [groups[n]]
                         for s in range(0, len(idx), batch_size)]

    def __len__(self) -> int:
        return len(self._batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches)


class FeatureDataset(Dataset):
    """Per-utterance (T, F) feature tensors with integer labels.

    ``dataset[ChunkRequest]`` gives a training chunk, ``dataset[int]`` the evaluation input
    (whole utterance, or the first ``eval_frames`` frames). Items are ``(x, y, index)``.
    """

    def __init__(self, features: Sequence[torch.Tensor], labels: Sequence[int], augment: Augmenter | None = None,
                 pad: str = "repeat", eval_frames: int | None = None, min_frames: int = MIN_FRAMES) -> None:
        if len(features) != len(labels):
            raise ValueError(f"{len(features)} feature tensors but {len(labels)} labels")
        self.features = list(features)
        self.labels = [int(y) for y in labels]
        self.augment = augment
        self.pad = pad
        self.eval_frames = eval_frames
        self.min_frames = min_frames

    def __len__(self) -> int:
        return len(self.features)

    def eval_length(self, index: int) -> int:
        """Number of frames the evaluation input of ``index`` will have."""
        if self.eval_frames is not None:
            return self.eval_frames
        return max(int(self.features[index].shape[0]), self.min_frames)

    def __getitem__(self, item: ChunkRequest | int) -> tuple[torch.Tensor, int, int]:
        if isinstance(item, ChunkRequest):
            x = take_chunk(self.features[item.index], max(item.frames, self.min_frames), item.offset, self.pad)
            if item.augment_seed is not None and self.augment is not None:
                x = self.augment(x, item.augment_seed)
            return x, self.labels[item.index], item.index
        index = int(item)
        x = self.features[index]
        x = x[: self.eval_frames] if self.eval_frames is not None else x
        return pad_frames(x, self.eval_length(index), self.pad), self.labels[index], index


def collate(items: list[tuple[torch.Tensor, int, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack equal-length items into (B, T, F) features, (B,) labels, (B,) dataset indices."""
    xs, ys, idx = zip(*items)
    return torch.stack(xs), torch.tensor(ys, dtype=torch.long), torch.tensor(idx, dtype=torch.long)


def train_loader(dataset: FeatureDataset, batch_size: int, chunk_frames: Sequence[int], copies: int = 0,
                 seed: int = 0, rank: int = 0, world_size: int = 1, num_workers: int = 0,
                 epoch_fn: Callable[[], int] | None = None) -> DataLoader:
    """DataLoader of seed-000 chunk batches over ``dataset``."""
    lengths = [int(f.shape[0]) for f in dataset.features]
    sampler = ChunkBatchSampler(lengths, batch_size, chunk_frames, copies=copies if dataset.augment else 0,
                                seed=seed, rank=rank, world_size=world_size, epoch_fn=epoch_fn)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers,
                      persistent_workers=num_workers > 0)


def eval_loader(dataset: FeatureDataset, batch_size: int, num_workers: int = 0) -> DataLoader:
    """DataLoader of whole utterances, batched by identical length."""
    sampler = LengthBatchSampler([dataset.eval_length(i) for i in range(len(dataset))], batch_size)
    return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers)


# ---------------------------------------------------------------------------- features

def load_features(utterances: Sequence["Utterance"], pipeline: "PipelineConfig | FeatureConfig",
                  cache_dir: str | Path | None = None, progress: bool = False) -> list[torch.Tensor]:
    """Normalised (T, F) features of every utterance through the :class:`FeaturePipeline` of
    ``pipeline`` (a recipe's ``features`` section is read with :meth:`PipelineConfig.from_recipe`).
    Raw features (and VAD masks) are computed once and kept in the feature cache, so later runs and
    other folds only read them."""
    config = pipeline if isinstance(pipeline, PipelineConfig) else PipelineConfig.from_recipe(pipeline)
    features = FeaturePipeline(config)
    out = [features.from_arrays(arrays) for arrays in cached_arrays(
        utterances, features.extractors(), cache_dir, progress, f"features ({config.upstream or config.frontend})")]
    return features.normalise_all(out, [u.speaker for u in utterances])


def make_augmenter(policy: str) -> Augmenter | None:
    """SpecAugment ``policy`` as an :data:`Augmenter` (None for ``none``)."""
    if policy == "none":
        return None
    from emovox.augment import SpecAugment

    SpecAugment.from_policy(policy, seed=0)  # validate the name now, not in the first batch

    def augment(x: torch.Tensor, seed: int) -> torch.Tensor:
        return SpecAugment.from_policy(policy, seed=seed)(x)

    return augment


class FoldData(L.LightningDataModule):
    """Train (chunk batches) and validation (whole utterances) loaders of one fold; the train
    sampler is sharded by the trainer's rank under DDP."""

    def __init__(self, train: FeatureDataset, valid: FeatureDataset | None, cfg: "TrainConfig",
                 copies: int = 0, seed: int = 0) -> None:
        super().__init__()
        self.train_set, self.valid_set, self.cfg, self.copies, self.seed = train, valid, cfg, copies, seed

    def train_dataloader(self) -> DataLoader:
        trainer = self.trainer
        if trainer is None:
            return train_loader(self.train_set, self.cfg.batch_size, self.cfg.chunk_frames, self.copies, self.seed,
                                num_workers=self.cfg.num_workers)
        return train_loader(self.train_set, self.cfg.batch_size, self.cfg.chunk_frames, self.copies, self.seed,
                            trainer.global_rank, trainer.world_size, self.cfg.num_workers,
                            epoch_fn=lambda: trainer.current_epoch)

    def val_dataloader(self) -> Any:
        if self.valid_set is None or len(self.valid_set) == 0:
            return []
        return eval_loader(self.valid_set, self.cfg.eval_batch_size, self.cfg.num_workers)


__all__ = [
    "Augmenter", "ChunkBatchSampler", "FoldData", "load_features", "make_augmenter", "ChunkRequest", "FeatureDataset", "LengthBatchSampler", "MIN_FRAMES",
    "collate", "eval_loader", "pad_frames", "take_chunk", "train_loader",
]
