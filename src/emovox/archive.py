"""Prediction over archives: folders, globs and manifests streamed through ``--jobs N`` processes.

    from emovox.archive import ModelSpec, iter_inputs, predict_archive
    summary = predict_archive(iter_inputs(["calls/"]), "results.jsonl", ModelSpec(), jobs=2)

* **Inputs** (:func:`iter_inputs`): files, folders (walked recursively, each folder's entries
  sorted, without listing the whole tree first), glob patterns (expanded and sorted: for millions
  of files pass a folder or a manifest) and manifests (``--manifest``: a CSV with a ``path``
  column, or a text file with one path per line; relative paths are relative to the manifest's
  folder). Inputs that name nothing usable become error records.
* **Workers**: ``jobs`` processes (``spawn``), each loading the model once with one intra-op
  thread; files go out through a bounded window of ``window`` pending files, so memory does not
  grow with the archive. ``jobs=1`` predicts in this process.
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
import csv
import glob
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from emovox.archive_output import Finished, ResultWriter, digest
from emovox.archive_progress import Progress
from emovox.errors import ConfigError, EmovoxError, ManifestError

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Problem:
    """An input that names nothing usable: it gets an error record with ``source`` = the input."""

    source: str
    problem: str


Item = str | Problem


def _extensions() -> tuple[str, ...]:
    from emovox.audio import SUPPORTED_EXTENSIONS

    return tuple(SUPPORTED_EXTENSIONS)


def walk(folder: Path, extensions: Sequence[str]) -> Iterator[str]:
    """Audio files under ``folder``, depth first, each folder's entries in sorted order (streamed)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        log.warning("%s: cannot list this folder (%s); skipped", folder, exc)
        return
    for entry in entries:
        try:
            if entry.is_dir():
                yield from walk(Path(entry.path), extensions)
            elif entry.is_file() and Path(entry.name).suffix.lower() in extensions:
                yield entry.path
        except OSError:
            continue


def read_manifest(path: str | os.PathLike) -> Iterator[str]:
    """Paths listed in a manifest: a CSV with a ``path`` column (``.csv``) or one path per line
    (blank lines and ``#`` comments skipped). Relative paths are relative to the manifest's folder."""
    path = Path(path)
    base = path.parent
    try:
        fh = open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise ManifestError(f"{path}: cannot open the manifest ({exc.strerror}); check the path") from None
    with fh:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(fh)
            names = reader.fieldnames or []
            column = next((c for c in ("path", "file", "source") if c in names), None)
            if column is None:
                raise ManifestError(f"{path}: a CSV manifest needs a 'path' column; its header has "
                                    f"{', '.join(names) or 'nothing'}")
            lines: Iterable[str] = ((row.get(column) or "").strip() for row in reader)
        else:
            lines = (line.strip() for line in fh)
        try:
            for entry in lines:
                if entry and not entry.startswith("#"):
                    yield entry if os.path.isabs(entry) else str(base / entry)
        except UnicodeDecodeError:
            raise ManifestError(f"{path}: not a UTF-8 text or CSV manifest; give a list of paths, one a line") from None


def iter_inputs(paths: Sequence[str] = (), manifests: Sequence[str] = ()) -> Iterator[Item]:
    """The files to predict, in input order, as paths, plus a :class:`Problem` for each input that
    names nothing usable. Missing plain paths are passed on: their records say what is wrong."""
    extensions = _extensions()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = False
            for f in walk(p, extensions):
                found = True
                yield f
            if not found:
                yield Problem(raw, f"no audio files ({', '.join(extensions)}) in this folder")
        elif not p.exists() and glob.has_magic(raw):
            found = False
            for f in sorted(glob.glob(raw, recursive=True)):
                for g in walk(Path(f), extensions) if Path(f).is_dir() else [f]:
                    found = True
                    yield g
            if not found:
                yield Problem(raw, "no files match this pattern")
        else:
            yield raw
    for manifest in manifests:
        yield from read_manifest(manifest)


# ----------------------------------------------------------------------------------- workers
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
        return Recognizer.load(self.model, **options)


def model_version(folder: Path, config: dict[str, Any]) -> str:
    """The config's ``version``, else the first 12 hex digits of the weights' SHA-256 (of
    ``model.safetensors``, else ``model.onnx``, else ``config.json``)."""
    from emovox.io import sha256_file

    if config.get("version"):
        return str(config["version"])
    names = ("model.safetensors", "model.onnx", "config.json")  # emovox.models.io's names; it imports torch
    target = next((folder / n for n in names if (folder / n).is_file()), folder / names[-1])
    return sha256_file(target)[:12]


def error_record(source: str, problem: str) -> dict[str, Any]:
    """The record of an input that could not be predicted (every prediction field present)."""
    from emovox.inference import Prediction

    return Prediction(source=source, label=None, probabilities={}, error=problem).to_dict()


class Predictor:
    """One loaded model: path -> record (``Prediction.to_dict()``; errors become records)."""

    def __init__(self, spec: ModelSpec) -> None:
        self.recognizer = spec.load()
        info = self.recognizer.info()
        self.info = {"labels": list(self.recognizer.labels), "model": str(info["name"]),
                     "model_version": model_version(self.recognizer.folder, self.recognizer.config),
                     "fields": list(error_record("", "").keys())}

    def __call__(self, source: str) -> dict[str, Any]:
        try:
            return self.recognizer.predict([source])[0].to_dict()
        except EmovoxError as exc:
            return error_record(source, str(exc))
        except Exception as exc:  # a decoder/model failure on one file must not end an archive run
            log.exception("%s: unexpected failure", source)
            return error_record(source, f"{source}: unexpected {type(exc).__name__}: {exc}")


_WORKER: Predictor | None = None
_INIT_ERROR: tuple[str, str] = ("EmovoxError", "the worker could not load the model")


def _init_worker(spec: ModelSpec) -> None:
    os.environ["OMP_NUM_THREADS"] = str(spec.threads)  # before torch is imported in this process
    os.environ["MKL_NUM_THREADS"] = str(spec.threads)
    parent = multiprocessing.parent_process()
    if parent is not None:  # a parent killed with SIGKILL cannot stop its pool: leave with it
        threading.Thread(target=_exit_with, args=(parent,), daemon=True).start()
    global _WORKER, _INIT_ERROR
    try:
        _WORKER = Predictor(spec)
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


def _worker_predict(source: str) -> dict[str, Any]:
    assert _WORKER is not None
    return _WORKER(source)


class Engine:
    """Predicts sources in order with ``jobs`` worker processes (or in-process for ``jobs=1``)."""

    def __init__(self, spec: ModelSpec, jobs: int = 1, window: int | None = None,
                 start_method: str = "spawn") -> None:
        if jobs < 1:
            raise ConfigError(f"jobs must be a positive integer, got {jobs}")
        self.spec, self.jobs = spec, jobs
        self.window = window or 8 * jobs
        self.start_method = start_method
        self._local: Predictor | None = None
        self._pool: ProcessPoolExecutor | None = None
        if jobs == 1:
            self._local = Predictor(spec)
            self.info = self._local.info
        else:
            self._pool = self._new_pool()
            self.info = self._pool.submit(_worker_info).result()
            if "error" in self.info:
                self.close()
                _raise_init_error(*self.info["error"])

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.jobs, mp_context=multiprocessing.get_context(self.start_method),
                                   initializer=_init_worker, initargs=(self.spec,))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> "Engine":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def run(self, sources: Iterable[Item]) -> Iterator[dict[str, Any]]:
        """One record per source, in the order given (problems become error records here)."""
        if self._local is not None:
            for item in sources:
                yield error_record(item.source, f"{item.source}: {item.problem}") if isinstance(item, Problem) \
                    else self._local(item)
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
                yield error_record(item.source, f"{item.source}: {item.problem}")
                continue
            try:
                yield future.result()
            except BrokenProcessPool:
                yield from self._recover([(item, future), *pending])
                pending.clear()

    def _submit(self, source: str) -> Future:
        assert self._pool is not None
        return self._pool.submit(_worker_predict, source)

    def _recover(self, pending: list[tuple[Item, Future | None]]) -> Iterator[dict[str, Any]]:
        """A worker died: predict the pending files one at a time in a fresh pool, so the file that
        kills a worker is found and gets an error record while the others get their results."""
        log.warning("a worker process died; retrying %d pending files one at a time", len(pending))
        self.close()
        self._pool = self._new_pool()
        for item, _ in pending:
            if isinstance(item, Problem):
                yield error_record(item.source, f"{item.source}: {item.problem}")
                continue
            try:
                yield self._submit(item).result()
            except BrokenProcessPool:
                self.close()
                self._pool = self._new_pool()
                yield error_record(item, f"{item}: the worker process died while decoding or predicting this "
                                         "file (a crash in a decoder or the model); check the file")


# ------------------------------------------------------------------------------------- runs
@dataclass
class Summary:
    """What a run did: records now in the output, of which failed; how many this run predicted."""

    ok: int = 0
    failed: int = 0
    predicted: int = 0
    skipped: int = 0


def unique(items: Iterable[Item], skip: Callable[[str], bool] | None = None) -> Iterator[Item]:
    """``items`` without repeats (first occurrence kept) and without those ``skip`` says are done."""
    seen: set[int] = set()
    for item in items:
        source = item.source if isinstance(item, Problem) else item
        key = digest(source)
        if key in seen:
            continue
        seen.add(key)
        if skip is None or not skip(source):
            yield item


def predict_archive(items: Iterable[Item], output: str | os.PathLike, spec: ModelSpec, jobs: int = 1,
                    fmt: str | None = None, total: int | None = None, progress: bool | None = None,
                    window: int | None = None, log_every: float = 10.0,
                    on_error: Callable[[dict[str, Any]], None] | None = None) -> Summary:
    """Predict every input into ``output`` (resuming it) and return a :class:`Summary`.

    ``total`` (the number of distinct inputs, if known) gives the progress display its ETA;
    ``on_error`` is called with each error record this run writes.
    """
    from emovox.archive_output import format_for

    fmt = format_for(output, fmt)
    summary = Summary()
    with Engine(spec, jobs, window) as engine:
        writer = ResultWriter(output, fmt, engine.info["labels"], engine.info["fields"],
                              {"model": engine.info["model"], "model_version": engine.info["model_version"]})
        done: Finished = writer.open()
        summary.ok, summary.failed, summary.skipped = done.ok, done.failed, len(done)
        bar = Progress(total, initial=len(done), bar=progress, every=log_every)
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
            bar.close()
            writer.close(complete=complete)
    return summary


__all__ = ["Engine", "ModelSpec", "Predictor", "Problem", "Progress", "Summary", "iter_inputs", "predict_archive",
           "read_manifest", "walk"]
