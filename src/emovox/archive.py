"""Archive runs: folders, globs and manifests streamed through ``--jobs N`` processes, one task.

    from emovox.archive import ModelSpec, PredictTask, iter_inputs, run_archive
    summary = run_archive(iter_inputs(["calls/"]), "results.jsonl", PredictTask(ModelSpec()), jobs=2)

* **Tasks**: what is done to each file. :class:`PredictTask` (``emovox predict``: one
  :class:`emovox.inference.Prediction` per file) and :class:`emovox.archive_timeline.TimelineTask`
  (``emovox timeline``: the windows, regions and speakers of each file). A task is a picklable
  description; :meth:`Task.build` loads it (once per worker) into a :class:`Worker`, a callable
  path -> record; the task also makes error records and fixes the output's row layout and stamp.
* **Inputs** (:mod:`emovox.archive_inputs`): files, folders (walked, streamed), glob patterns,
  manifests. Inputs that name nothing usable become error records.
* **Workers**: ``jobs`` processes (``spawn``), each building the task once with one intra-op
  thread; files go out through a bounded window of ``window`` pending files, so memory does not
  grow with the archive. ``jobs=1`` works in this process.
* **Order**: records are written in **input order** (a result that arrives early waits in the
  window for the ones before it), so a complete run's file is the same whatever ``jobs`` is, and
  a run killed and resumed ends with the same file as one that was never interrupted.
* **Resume**: the output file is the state (:mod:`emovox.archive_output`): a re-run with the
  same output skips the sources it already holds and appends the rest. The parent keeps one
  64-bit key per finished or seen source (about 70 bytes each: 70 MB per million files); the rest
  of its memory does not depend on the archive size.
* **Errors**: a file that cannot be read gets a record with ``error`` set; a file that kills its
  worker process (a crash in a decoder) is retried alone and then gets an error record.

The cluster route (Lightning ``Trainer.predict``, DDP, one shard per rank) is in
:mod:`emovox.archive_cluster`.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol

from emovox.archive_inputs import Item, Problem, iter_inputs, read_manifest, unique, walk
from emovox.archive_output import FileRows, Finished, Layout, ResultWriter, format_for
from emovox.archive_progress import Progress
from emovox.errors import ConfigError, EmovoxError

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------- tasks
@dataclass(frozen=True)
class ModelSpec:
    """How each worker loads its :class:`emovox.inference.Recognizer` (picklable). A field left
    None takes ``Recognizer.load``'s default; ``vad="none"`` turns the VAD off."""

    model: str | None = None
    backend: str | None = None
    labels: tuple[str, ...] | None = None
    vad: str | None = None
    batch_size: int | None = None
    threads: int = 1
    adapt: str | None = None  #: a :class:`emovox.source_adapt.SourceShift` file (``emovox predict --adapt``)

    def load(self) -> Any:
        from emovox.inference import Recognizer

        options: dict[str, Any] = {"threads": self.threads}
        if self.backend is not None:
            options["backend"] = self.backend
        if self.labels:
            options["labels"] = list(self.labels)
        if self.vad is not None:
            options["vad"] = None if self.vad == "none" else self.vad
        if self.batch_size is not None:
            options["batch_size"] = self.batch_size
        recognizer = Recognizer.load(self.model, **options)
        if self.adapt is None:
            return recognizer
        from emovox.source_adapt import SourceShift, adapted

        return adapted(recognizer, SourceShift.load(self.adapt))


class Worker(Protocol):
    """A built task: source path -> record (never raises for a bad file); ``info`` describes it
    (``labels``, ``model``, ``model_version`` and what the task's layout needs)."""

    info: dict[str, Any]

    def __call__(self, source: str) -> dict[str, Any]: ...


class Task(Protocol):
    """What an archive run does to each file (picklable: it is sent to every worker process)."""

    @property
    def kind(self) -> str:
        """``predict`` or ``timeline``: the command, for messages."""

    @property
    def threads(self) -> int: ...

    def build(self) -> Worker: ...

    def error_record(self, source: str, problem: str) -> dict[str, Any]: ...

    def layout(self, info: dict[str, Any]) -> Layout: ...

    def stamp(self, info: dict[str, Any]) -> dict[str, Any]: ...


def model_version(folder: Path, config: dict[str, Any]) -> str:
    """The config's ``version``, else the first 12 hex digits of the weights' SHA-256 (of
    ``model.safetensors``, else ``model.onnx``, else ``config.json``)."""
    from emovox.io import sha256_file

    if config.get("version"):
        return str(config["version"])
    names = ("model.safetensors", "model.onnx", "config.json")  # emovox.models.io's names; it imports torch
    target = next((folder / n for n in names if (folder / n).is_file()), folder / names[-1])
    return sha256_file(target)[:12]


def model_info(recognizer: Any, *, whole_files: bool = True) -> dict[str, Any]:
    """The ``labels``, ``model`` (name) and ``model_version`` of a loaded Recognizer. The version
    carries ``+long-windows-6s`` when long recordings are scored by their windows
    (:func:`emovox.long_inputs.scoring_tag`) and ``+adapt-`` with the shift's hash when ``--adapt``
    shifted it: results of another scoring rule, or adapted and plain ones, never share a file.
    ``whole_files=False`` (timelines: every window is scored alike) leaves the scoring rule out."""
    from emovox.long_inputs import scoring_tag
    from emovox.source_adapt import ShiftedModel

    version = model_version(recognizer.folder, recognizer.config)
    tags = [scoring_tag(recognizer) if whole_files else "", recognizer.engine.tag if isinstance(recognizer.engine, ShiftedModel) else ""]
    return {"labels": list(recognizer.labels), "model": str(recognizer.info()["name"]),
            "model_version": "+".join([version, *(t for t in tags if t)])}


def error_record(source: str, problem: str) -> dict[str, Any]:
    """The prediction record of an input that could not be predicted (every field present)."""
    from emovox.inference import Prediction

    return Prediction(source=source, label=None, probabilities={}, error=problem).to_dict()


def guarded(task: Task, source: str, work: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """``work(source)``, or the task's error record when it fails (one file never ends a run)."""
    try:
        return work(source)
    except EmovoxError as exc:
        return task.error_record(source, str(exc))
    except Exception as exc:  # a decoder/model failure on one file must not end an archive run
        log.exception("%s: unexpected failure", source)
        return task.error_record(source, f"{source}: unexpected {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class PredictTask:
    """``emovox predict``: one record per file, ``Prediction.to_dict()`` (CSV: one row per file)."""

    model: ModelSpec = ModelSpec()
    kind: str = "predict"

    @property
    def threads(self) -> int:
        return self.model.threads

    def build(self) -> "Predictor":
        return Predictor(self.model)

    def error_record(self, source: str, problem: str) -> dict[str, Any]:
        return error_record(source, problem)

    def layout(self, info: dict[str, Any]) -> Layout:
        return FileRows(info["labels"], info["fields"])

    def stamp(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"model": info["model"], "model_version": info["model_version"]}


class Predictor:
    """One loaded model: path -> record (``Prediction.to_dict()``; errors become records)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.task = PredictTask(spec)
        self.recognizer = spec.load()
        self.info = {**model_info(self.recognizer), "fields": list(error_record("", "").keys())}

    def __call__(self, source: str) -> dict[str, Any]:
        return guarded(self.task, source, lambda s: self.recognizer.predict([s])[0].to_dict())


def as_task(task: Task | ModelSpec) -> Task:
    """A task; a bare :class:`ModelSpec` means :class:`PredictTask` with that model."""
    return PredictTask(task) if isinstance(task, ModelSpec) else task


# ----------------------------------------------------------------------------------- workers
_WORKER: Worker | None = None
_INIT_ERROR: tuple[str, str] = ("EmovoxError", "the worker could not load the model")


def _init_worker(task: Task) -> None:
    os.environ["OMP_NUM_THREADS"] = str(task.threads)  # before torch is imported in this process
    os.environ["MKL_NUM_THREADS"] = str(task.threads)
    parent = multiprocessing.parent_process()
    if parent is not None:  # a parent killed with SIGKILL cannot stop its pool: leave with it
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    global _WORKER, _INIT_ERROR
    try:
        _WORKER = task.build()
    except EmovoxError as exc:  # reported by _worker_info: a failing initializer only says "broken pool"
        _INIT_ERROR = (type(exc).__name__, str(exc))


def _exit_with(parent: Any) -> None:
    parent.join()
    os._exit(1)


def _worker_info() -> dict[str, Any]:
    if _WORKER is None:
        return {"error": _INIT_ERROR}
    return _WORKER.info


def _raise_init_error(name: str, message: str) -> None:
    from emovox import errors

    cls = getattr(errors, name, None)
    simple = (errors.ConfigError, errors.ModelError, errors.ManifestError, errors.FileFormatError)
    raise cls(message) if cls in simple else EmovoxError(message)


def _worker_run(source: str) -> dict[str, Any]:
    assert _WORKER is not None
    return _WORKER(source)


class Engine:
    """Runs a task over sources in order with ``jobs`` worker processes (in-process for ``jobs=1``)."""

    def __init__(self, task: Task | ModelSpec, jobs: int = 1, window: int | None = None,
                 start_method: str = "spawn") -> None:
        if jobs < 1:
            raise ConfigError(f"jobs must be a positive integer, got {jobs}")
        self.task, self.jobs = as_task(task), jobs
        self.window = window or 8 * jobs
        self.start_method = start_method
        self._local: Worker | None = None
        self._pool: ProcessPoolExecutor | None = None
        if jobs == 1:
            self._local = self.task.build()
            self.info = self._local.info
        else:
            self._pool = self._new_pool()
            self.info = self._pool.submit(_worker_info).result()
            if "error" in self.info:
                self.close()
                _raise_init_error(*self.info["error"])

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context(self.start_method),
                                   initializer=_init_worker, initargs=(self.task,))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _problem(self, item: Problem) -> dict[str, Any]:
        return self.task.error_record(item.source, f"{item.source}: {item.problem}")

    def run(self, sources: Iterable[Item]) -> Iterator[dict[str, Any]]:
        """One record per source, in the order given (problems become error records here)."""
        if self._local is not None:
            for item in sources:
                yield self._problem(item) if isinstance(item, Problem) else self._local(item)
            return
        pending: collections.deque[tuple[Item, Future | None]] = collections.deque()
        it = iter(sources)
        exhausted = False
        while True:
            while not exhausted and len(pending) < self.window:
                got = next(it, None)
                if got is None:
                    exhausted = True
                else:
                    pending.append((got, None if isinstance(got, Problem) else self._submit(got)))
            if not pending:
                return
            item, future = pending.popleft()
            if future is None:
                assert isinstance(item, Problem)
                yield self._problem(item)
                continue
            try:
                yield future.result()
            except BrokenProcessPool:
                yield from self._recover([(item, future), *pending])
                pending.clear()

    def _submit(self, source: str) -> Future:
        assert self._pool is not None
        return self._pool.submit(_worker_run, source)

    def _recover(self, pending: list[tuple[Item, Future | None]]) -> Iterator[dict[str, Any]]:
        """A worker died: run the pending files one at a time in a fresh pool, so the file that
        kills a worker is found and gets an error record while the others get their results."""
        log.warning("a worker process died; retrying %d pending files one at a time", len(pending))
        self.close()
        self._pool = self._new_pool()
        for item, _ in pending:
            if isinstance(item, Problem):
                yield self._problem(item)
                continue
            try:
                yield self._submit(item).result()
            except BrokenProcessPool:
                self.close()
                self._pool = self._new_pool()
                yield self.task.error_record(item, f"{item}: the worker process died while decoding or "
                                                   "analysing this file (a crash in a decoder or the model); "
                                                   "check the file")


# ------------------------------------------------------------------------------------- runs
@dataclass
class Summary:
    """What a run did: records now in the output, of which failed; how many this run processed."""

    ok: int = 0
    failed: int = 0
    predicted: int = 0
    skipped: int = 0


def run_archive(items: Iterable[Item], output: str | os.PathLike, task: Task | ModelSpec, jobs: int = 1,
                fmt: str | None = None, total: int | None = None, progress: bool | None = None,
                window: int | None = None, log_every: float = 10.0,
                on_error: Callable[[dict[str, Any]], None] | None = None) -> Summary:
    """Run ``task`` on every input into ``output`` (resuming it) and return a :class:`Summary`.

    ``total`` (the number of distinct inputs, if known) gives the progress display its ETA;
    ``on_error`` is called with each error record this run writes.
    """
    fmt = format_for(output, fmt)
    summary = Summary()
    with Engine(task, jobs, window) as engine:
        writer = ResultWriter(output, fmt, engine.task.layout(engine.info), engine.task.stamp(engine.info))
        done: Finished = writer.open()
        summary.ok, summary.failed, summary.skipped = done.ok, done.failed, len(done)
        desc = "predicting" if engine.task.kind == "predict" else engine.task.kind
        bar = Progress(total, initial=len(done), bar=progress, every=log_every, desc=desc)
        complete = False
        try:
            for record in engine.run(unique(items, done.__contains__ if len(done) else None)):
                writer.write(record)
                summary.predicted += 1
                if record.get("error") is None:
                    summary.ok += 1
                else:
                    summary.failed += 1
                    if on_error is not None:
                        on_error(record)
                bar.update()
            complete = True
        finally:
            bar.close(complete)
            writer.close(complete=complete)
    return summary


#: The name of :func:`run_archive` from before there were several tasks.
predict_archive = run_archive

__all__ = ["Engine", "ModelSpec", "PredictTask", "Predictor", "Problem", "Progress", "Summary", "Task", "Worker",
           "as_task", "error_record", "guarded", "iter_inputs", "model_info", "predict_archive", "read_manifest",
           "run_archive", "unique", "walk"]
