"""Archive prediction on a cluster: Lightning ``Trainer.predict`` with the DDP strategy.

Every rank walks the same inputs (:func:`emovox.archive.iter_inputs`, duplicates dropped) and
keeps those whose position ``i`` has ``i % world_size == rank``: disjoint shards that together
cover every input, with nothing to exchange between ranks. Each rank writes its own shard file
next to ``-o``: ``results.jsonl`` -> ``results.rank00001-of00004.jsonl`` (records in input order
within the shard), through a :class:`lightning.pytorch.callbacks.BasePredictionWriter`, as
:mod:`emovox.archive` writes one file: incremental, and resumable when re-run with the same
output and the same number of ranks. The union of the shard files holds exactly the records a
single-process run writes.

Any launcher Lightning supports starts the ranks: Lightning itself on one machine
(``--devices N``), ``torchrun`` or SLURM (``srun``) across nodes (``--num-nodes M``). See
``docs/archive.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence, cast

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from emovox.archive import ModelSpec, Problem, Progress, Summary, Task, Worker, as_task, iter_inputs, unique
from emovox.archive_output import Finished, ResultWriter, format_for
from emovox.training.module import quiet_lightning


def shard_path(output: str | Path, rank: int, world: int) -> Path:
    """The shard file of ``rank`` among ``world`` ranks for the output ``output``."""
    output = Path(output)
    return output.with_name(f"{output.stem}.rank{rank:05d}-of{world:05d}{output.suffix}")


class Shard(torch.utils.data.IterableDataset):
    """The inputs of one rank: every ``world``-th distinct input from ``rank``, minus finished ones."""

    def __init__(self, paths: Sequence[str], manifests: Sequence[str], rank: int, world: int,
                 done: Finished | None = None) -> None:
        self.paths, self.manifests, self.rank, self.world, self.done = list(paths), list(manifests), rank, world, done

    def __iter__(self) -> Iterator[str | Problem]:
        for i, item in enumerate(unique(iter_inputs(self.paths, self.manifests))):
            if i % self.world != self.rank:
                continue
            source = item.source if isinstance(item, Problem) else item
            if self.done is None or source not in self.done:
                yield item


def _as_list(batch: list[Any]) -> list[Any]:
    return batch


class ArchiveModule(L.LightningModule):
    """Runs the task on its rank's shard; the task is built in :meth:`setup`, once per rank."""

    def __init__(self, task: Task | ModelSpec, paths: Sequence[str], manifests: Sequence[str], output: str | Path,
                 fmt: str | None = None) -> None:
        super().__init__()
        self.task, self.paths, self.manifests = as_task(task), list(paths), list(manifests)
        self.output, self.fmt = Path(output), format_for(output, fmt)
        self.worker: Worker | None = None
        self.sink: ResultWriter | None = None
        self.done = Finished()

    def setup(self, stage: str) -> None:
        self.worker = self.task.build()
        info = self.worker.info
        path = shard_path(self.output, self.trainer.global_rank, self.trainer.world_size)
        self.sink = ResultWriter(path, self.fmt, self.task.layout(info), self.task.stamp(info))
        self.done = self.sink.open()

    def predict_dataloader(self) -> torch.utils.data.DataLoader:
        shard = Shard(self.paths, self.manifests, self.trainer.global_rank, self.trainer.world_size,
                      self.done if len(self.done) else None)
        return torch.utils.data.DataLoader(shard, batch_size=1, collate_fn=_as_list, num_workers=0)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return batch  # paths, not tensors: each rank's Recognizer reads and places its own audio

    def predict_step(self, batch: list[Any], batch_idx: int) -> list[dict[str, Any]]:
        assert self.worker is not None
        return [self.task.error_record(x.source, f"{x.source}: {x.problem}") if isinstance(x, Problem)
                else self.worker(x) for x in batch]


class ShardWriter(BasePredictionWriter):
    """Appends each batch's records to the rank's shard file as soon as they exist."""

    def __init__(self, progress: bool | None = None, on_error: Any = None) -> None:
        super().__init__(write_interval="batch")
        self.summary = Summary()
        self.progress_mode, self.on_error = progress, on_error
        self.progress: Progress | None = None

    def on_predict_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        done = cast(ArchiveModule, pl_module).done
        self.summary = Summary(ok=done.ok, failed=done.failed, skipped=len(done))
        self.progress = Progress(None, initial=len(done), bar=self.progress_mode if trainer.is_global_zero else False)

    def write_on_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, prediction: Any,
                           batch_indices: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        sink = cast(ArchiveModule, pl_module).sink
        assert sink is not None  # opened in ArchiveModule.setup
        for record in prediction:
            sink.write(record)
            self.summary.predicted += 1
            if record.get("error") is None:
                self.summary.ok += 1
            else:
                self.summary.failed += 1
                if self.on_error is not None:
                    self.on_error(record)
            if self.progress is not None:
                self.progress.update()

    def on_predict_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.progress is not None:
            self.progress.close()
        sink = cast(ArchiveModule, pl_module).sink
        assert sink is not None  # opened in ArchiveModule.setup
        sink.close(complete=True)


def predict_cluster(paths: Sequence[str], manifests: Sequence[str], output: str | Path, task: Task | ModelSpec,
                    devices: int = 1, num_nodes: int = 1, fmt: str | None = None, progress: bool | None = None,
                    on_error: Any = None) -> Summary:
    """Run the archive job (a task, or a ModelSpec: predict) through ``Trainer.predict`` (DDP on CPU,
    gloo); returns this rank's summary."""
    writer = ShardWriter(progress, on_error)
    quiet_lightning()
    trainer = L.Trainer(accelerator="cpu", devices=devices, num_nodes=num_nodes, strategy="ddp", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        use_distributed_sampler=False, callbacks=[writer])
    trainer.predict(ArchiveModule(task, paths, manifests, output, fmt), return_predictions=False)
    return writer.summary


__all__ = ["ArchiveModule", "Shard", "ShardWriter", "predict_cluster", "shard_path"]
