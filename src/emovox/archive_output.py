"""Incremental, resumable result files for :mod:`emovox.archive`: JSON Lines, CSV, Parquet.

Every record is written with one ``write`` and flushed, so a process killed at any moment
(SIGKILL included) leaves the file as complete records plus at most one torn last line.
Re-opening the file for a resumed run reads what is there, truncates the torn line, and hands
back which sources are finished; appending then continues where the dead run stopped.

* **JSON Lines** (default): one JSON object per line: the :class:`emovox.inference.Prediction`
  fields (``to_dict()``) plus ``model`` and ``model_version``.
* **CSV**: one row per file; columns ``file, label, duration, speech_fraction``, one column per
  label (its probability), ``error``, any further prediction fields, ``model, model_version``.
  Line breaks inside values (error messages) become spaces, so one row is one line.
* **Parquet** (needs ``pyarrow``): the CSV columns with types. Parquet cannot be appended to, so
  records go to a JSON Lines journal ``OUT.part.jsonl`` next to it and the Parquet file is
  written (atomically) when the run completes; a resumed run continues the journal.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from pathlib import Path
from typing import IO, Any, Callable, Iterator, Sequence

from emovox.errors import DependencyError, FileFormatError

FORMATS = ("jsonl", "csv", "parquet")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet",
               ".pq": "parquet"}
#: Prediction fields that have a fixed place in CSV/Parquet rows (the others follow ``error``).
_FIXED = ("source", "label", "probabilities", "duration", "speech_fraction", "error")
STAMP = ("model", "model_version")


def format_for(path: str | os.PathLike, explicit: str | None = None) -> str:
    """The output format: ``explicit`` if given, else from the extension (JSON Lines otherwise)."""
    if explicit is not None:
        if explicit not in FORMATS:
            raise FileFormatError(f"unknown output format {explicit!r}; choose one of {', '.join(FORMATS)}")
        return explicit
    return _EXTENSIONS.get(Path(path).suffix.lower(), "jsonl")


def digest(source: str) -> int:
    """A 64-bit key of a source path (the finished/seen sets hold these, not the strings)."""
    return int.from_bytes(hashlib.blake2b(source.encode("utf-8", "surrogateescape"), digest_size=8).digest(), "big")


# ------------------------------------------------------------------------------------ rows
def columns(labels: Sequence[str], fields: Sequence[str]) -> list[str]:
    """CSV/Parquet column names for a model's ``labels`` and the prediction's ``fields``."""
    extra = [f for f in fields if f not in _FIXED and f not in STAMP]
    return ["file", "label", "duration", "speech_fraction", *labels, "error", *extra, *STAMP]


def flat_row(record: dict[str, Any], header: Sequence[str]) -> dict[str, Any]:
    """One record as a flat row with ``header``'s columns (probabilities spread over label columns)."""
    probs = record.get("probabilities") or {}
    row: dict[str, Any] = {}
    for col in header:
        if col == "file":
            value = record.get("source")
        elif col in record and col != "probabilities":
            value = record[col]
        else:
            value = probs.get(col)
        if isinstance(value, (dict, list)):
            value = json.dumps(value, ensure_ascii=False)
        row[col] = value
    return row


def _csv_line(values: Sequence[Any]) -> str:
    buf = io.StringIO()
    clean = ["" if v is None else str(v).replace("\r", " ").replace("\n", " ") if isinstance(v, str) else v
             for v in values]
    csv.writer(buf, lineterminator="\n").writerow(clean)
    return buf.getvalue()


# ---------------------------------------------------------------------------------- resume
class Finished:
    """What an existing output already holds: finished sources (as digests) and counts."""

    def __init__(self) -> None:
        self.keys: set[int] = set()
        self.ok = 0
        self.failed = 0
        self.stamp: dict[str, Any] | None = None

    def add(self, source: str, ok: bool) -> None:
        self.keys.add(digest(source))
        self.ok += ok
        self.failed += not ok

    def __contains__(self, source: str) -> bool:
        return digest(source) in self.keys

    def __len__(self) -> int:
        return self.ok + self.failed


def _complete_lines(path: Path, torn_ok: Callable[[bytes], bool]) -> Iterator[tuple[int, bytes]]:
    """(offset after the line, line) for each newline-terminated line; then truncates a torn tail
    (the half record of a killed run) when there were complete lines or ``torn_ok(tail)``."""
    end = 0
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                if not end and not torn_ok(line):
                    raise FileFormatError(f"{path}: this file was not written by emovox predict (it starts with "
                                          f"{line[:20]!r}); choose another output file")
                break
            end += len(line)
            yield end, line
    if end != path.stat().st_size:
        with open(path, "r+b") as fh:  # a run killed mid-write: drop its half line
            fh.truncate(end)


def _scan_jsonl(path: Path, done: Finished) -> None:
    for number, (_, line) in enumerate(_complete_lines(path, lambda tail: tail.startswith(b'{"')), 1):
        try:
            record = json.loads(line)
            source = record["source"]
        except (ValueError, KeyError, TypeError):
            raise FileFormatError(f"{path}: line {number} is not an emovox predict record; this file was not "
                                  "written by emovox predict (or was edited): choose another output file") from None
        if done.stamp is None:
            done.stamp = {k: record.get(k) for k in STAMP}
        done.add(source, record.get("error") is None)


def _scan_csv(path: Path, header: Sequence[str], done: Finished) -> bool:
    """Read a CSV output; False when it holds not even a complete header (start afresh)."""
    head = _csv_line(header).encode("utf-8")
    lines = _complete_lines(path, head.startswith)
    first = next(lines, None)
    if first is None:
        return False
    found = next(csv.reader([first[1].decode("utf-8")]))
    if found != list(header):
        raise FileFormatError(f"{path}: its columns ({', '.join(found[:8])}...) are not the ones this run writes "
                              f"({', '.join(header[:8])}...): it holds another model's or label set's results; "
                              "choose another output file")
    i_file, i_err = found.index("file"), found.index("error")
    i_stamp = [found.index(k) for k in STAMP]
    for _, line in lines:
        row = next(csv.reader([line.decode("utf-8")]))
        if len(row) != len(found):
            raise FileFormatError(f"{path}: a row has {len(row)} columns, the header {len(found)}; "
                                  "this file was edited: choose another output file")
        if done.stamp is None:
            done.stamp = {k: row[i] for k, i in zip(STAMP, i_stamp)}
        done.add(row[i_file], row[i_err] == "")
    return True


# ---------------------------------------------------------------------------------- writer
class ResultWriter:
    """Appends records to ``path`` in ``fmt``; :meth:`open` resumes, :meth:`close` finishes.

    ``labels`` and ``fields`` (the prediction's ``to_dict`` keys) fix the CSV/Parquet columns;
    ``stamp`` (model name and version) goes into every record and must match a resumed file's.
    """

    def __init__(self, path: str | os.PathLike, fmt: str, labels: Sequence[str], fields: Sequence[str],
                 stamp: dict[str, Any]) -> None:
        self.path = Path(path)
        self.fmt = fmt
        self.header = columns(labels, fields)
        self.stamp = dict(stamp)
        self._fh: IO[str] | None = None
        if fmt == "parquet":
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise DependencyError("pyarrow", "Parquet output (--parquet)", "pip install 'emovox[parquet]'") from None

    @property
    def journal(self) -> Path:
        """The file records are appended to (the output itself, or the Parquet journal)."""
        return self.path.with_name(self.path.name + ".part.jsonl") if self.fmt == "parquet" else self.path

    def open(self) -> Finished:
        """Open for appending; returns what a previous (possibly killed) run already finished."""
        done = Finished()
        target = self.journal
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.fmt == "parquet" and self.path.exists() and not self.journal.exists():
                self._parquet_to_journal()
            fresh = not target.exists() or target.stat().st_size == 0
            if not fresh:
                if self.fmt == "csv":
                    fresh = not _scan_csv(target, self.header, done)
                else:
                    _scan_jsonl(target, done)
        except UnicodeDecodeError:
            raise FileFormatError(f"{target}: not a UTF-8 text file, so not an emovox predict output; "
                                  "choose another output file") from None
        except OSError as exc:
            raise FileFormatError(f"{target}: cannot read or create the output file ({exc.strerror}); "
                                  "choose another output path") from None
        if done.stamp is not None and done.stamp != self.stamp:
            raise FileFormatError(f"{target}: holds results of model {done.stamp.get('model')!r} version "
                                  f"{done.stamp.get('model_version')!r}, this run uses {self.stamp['model']!r} "
                                  f"version {self.stamp['model_version']!r}: choose another output file")
        from emovox.io import atomic_write_text

        try:
            if fresh:  # created whole (empty, or the CSV header), then only ever appended to
                atomic_write_text(target, _csv_line(self.header) if self.fmt == "csv" else "")
            self._fh = open(target, "a", encoding="utf-8", newline="")
        except OSError as exc:
            raise FileFormatError(f"{target}: cannot write the output file ({exc.strerror}); "
                                  "choose another output path") from None
        return done

    def _put(self, text: str) -> None:
        assert self._fh is not None, "ResultWriter.open() first"
        self._fh.write(text)
        self._fh.flush()  # in the kernel now: survives the death of this process

    def write(self, record: dict[str, Any]) -> None:
        record = {**record, **self.stamp}
        if self.fmt == "csv":
            self._put(_csv_line(list(flat_row(record, self.header).values())))
        else:
            self._put(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self, complete: bool = True) -> None:
        """Close; with ``complete`` (every input done) a Parquet output is written from its journal."""
        if self._fh is None:
            return
        os.fsync(self._fh.fileno())
        self._fh.close()
        self._fh = None
        if complete and self.fmt == "parquet":
            self._journal_to_parquet()

    # ------------------------------------------------------------------------------ parquet
    def _schema(self) -> Any:
        import pyarrow as pa

        numbers = {"duration", "speech_fraction", *self._labels()}
        return pa.schema([(c, pa.float64() if c in numbers else pa.string()) for c in self.header])

    def _labels(self) -> list[str]:
        return self.header[4:self.header.index("error")]

    def _parquet_row(self, record: dict[str, Any]) -> dict[str, Any]:
        """A flat row whose further prediction fields are text (JSON for non-strings)."""
        row = flat_row(record, self.header)
        for col in self.header[self.header.index("error") + 1:-len(STAMP)]:
            if row[col] is not None and not isinstance(row[col], str):
                row[col] = json.dumps(row[col])
        return row

    def _journal_to_parquet(self, chunk: int = 10_000) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from emovox.io import atomic_path

        schema = self._schema()
        with atomic_path(self.path) as tmp, pq.ParquetWriter(tmp, schema) as out:
            rows: list[dict[str, Any]] = []
            with open(self.journal, encoding="utf-8") as fh:
                for line in fh:
                    rows.append(self._parquet_row(json.loads(line)))
                    if len(rows) >= chunk:
                        out.write_table(pa.Table.from_pylist(rows, schema=schema))
                        rows = []
            if rows:
                out.write_table(pa.Table.from_pylist(rows, schema=schema))
        self.journal.unlink()

    def _parquet_to_journal(self) -> None:
        """A finished Parquet output gets more inputs: continue from its rows as a journal."""
        import pyarrow.parquet as pq

        label_cols = self._labels()
        extra = self.header[self.header.index("error") + 1:-len(STAMP)]
        from emovox.io import atomic_path

        try:
            table = pq.ParquetFile(self.path)
            batches = table.iter_batches()
            with atomic_path(self.journal) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                for batch in batches:
                    for row in batch.to_pylist():
                        ok = row.get("error") is None
                        rec = {"source": row.get("file"), "label": row.get("label"),
                               "probabilities": {k: row.get(k) for k in label_cols} if ok else {},
                               "duration": row.get("duration"), "speech_fraction": row.get("speech_fraction"),
                               "error": row.get("error"), **{k: _unjson(row.get(k)) for k in extra},
                               **{k: row.get(k) for k in STAMP}}
                        fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        except (OSError, ValueError) as exc:
            raise FileFormatError(f"{self.path}: not a readable Parquet file ({exc}); choose another output file") from None


def _unjson(value: Any) -> Any:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value
