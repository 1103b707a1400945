"""Incremental, resumable result files for :mod:`emovox.archive`: JSON Lines, CSV, Parquet.

Every record is written with one ``write`` and flushed, so a process killed at any moment
(SIGKILL included) leaves the file as complete records plus at most one torn last record.
Re-opening the file for a resumed run reads what is there, truncates the torn record, and hands
back which sources are finished; appending then continues where the dead run stopped.

* **JSON Lines** (default): one JSON object per line: the task's record (for ``predict`` the
  :class:`emovox.inference.Prediction` fields) plus its stamp (``model``, ``model_version``, and
  for ``timeline`` its ``settings``).
* **CSV**: flat rows in the task's :class:`Layout`: for ``predict`` one row per file
  (:class:`FileRows`: ``file, label, duration, speech_fraction``, one column per label, ``error``,
  further prediction fields, ``model, model_version``); for ``timeline`` one row per window
  (:class:`emovox.archive_timeline.WindowRows`). Line breaks inside values (error messages)
  become spaces, so one row is one line. A file's rows are written together; a resumed run
  drops the rows of a file whose rows were cut short.
* **Parquet** (needs ``pyarrow``): the CSV rows with types. Parquet cannot be appended to, so
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
from typing import IO, Any, Callable, Iterator, Protocol, Sequence

from emovox.errors import DependencyError, FileFormatError
from emovox.io import display_text, json_text, one_line, try_lock

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
    """A 64-bit key of a source path (the finished/seen sets hold these, not the strings), taken of
    its :func:`emovox.io.one_line` form: a name that is not UTF-8, or holds a line break, has the key
    of the text every output format stores for it, so a resumed run finds it done."""
    return int.from_bytes(hashlib.blake2b(one_line(source).encode("utf-8"), digest_size=8).digest(), "big")


# ---------------------------------------------------------------------------------- layouts
class Layout(Protocol):
    """How a task's records become flat CSV/Parquet rows (and back, for a finished Parquet file).

    ``header`` ends with ``stamp_keys``; ``required``: keys every JSON record of this kind has
    (a file without them was written by another command); ``types``: Parquet column types
    (``float``, ``int``; the others are text, JSON for non-strings).
    """

    @property
    def kind(self) -> str: ...

    @property
    def header(self) -> list[str]: ...

    @property
    def stamp_keys(self) -> tuple[str, ...]: ...

    @property
    def required(self) -> tuple[str, ...]: ...

    @property
    def types(self) -> dict[str, str]: ...

    def rows(self, record: dict[str, Any]) -> list[list[Any]]:
        """The rows of one record (stamp included), values in ``header`` order."""

    def complete(self, rows: list[dict[str, str]]) -> bool:
        """Whether these CSV rows (one source's, in order) are all the rows of its record."""

    def record(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        """A record (stamp included) whose :meth:`rows` are these Parquet rows of one source."""


def columns(labels: Sequence[str], fields: Sequence[str]) -> list[str]:
    """CSV/Parquet column names of a prediction for a model's ``labels`` and the prediction's ``fields``."""
    extra = [f for f in fields if f not in _FIXED and f not in STAMP]
    return ["file", "label", "duration", "speech_fraction", *labels, "error", *extra, *STAMP]


def flat_row(record: dict[str, Any], header: Sequence[str]) -> dict[str, Any]:
    """One prediction as a flat row with ``header``'s columns (probabilities spread over label columns)."""
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


class FileRows:
    """``emovox predict``: one row per file (see the module docstring)."""

    kind = "predict"
    stamp_keys: tuple[str, ...] = STAMP
    required: tuple[str, ...] = ("source", "probabilities")

    def __init__(self, labels: Sequence[str], fields: Sequence[str]) -> None:
        self.labels = list(labels)
        self.header = columns(labels, fields)
        self.extra = self.header[self.header.index("error") + 1:-len(STAMP)]
        self.types = {c: "float" for c in ("duration", "speech_fraction", *self.labels)}

    def rows(self, record: dict[str, Any]) -> list[list[Any]]:
        return [list(flat_row(record, self.header).values())]

    def complete(self, rows: list[dict[str, str]]) -> bool:
        return len(rows) == 1

    def record(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        (row,) = rows
        ok = row.get("error") is None
        return {"source": row.get("file"), "label": row.get("label"),
                "probabilities": {k: row.get(k) for k in self.labels} if ok else {},
                "duration": row.get("duration"), "speech_fraction": row.get("speech_fraction"),
                "error": row.get("error"), **{k: unjson(row.get(k)) for k in self.extra},
                **{k: row.get(k) for k in STAMP}}


def unjson(value: Any) -> Any:
    """A Parquet text cell back to its value (JSON for non-strings)."""
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def csv_line(values: Sequence[Any]) -> str:
    """One CSV row as text: None empty, strings on one line (:func:`emovox.io.one_line`)."""
    buf = io.StringIO()
    clean = ["" if v is None else one_line(v) if isinstance(v, str) else v for v in values]
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


def _foreign(path: Path, what: str, kind: str) -> FileFormatError:
    return FileFormatError(f"{path}: {what}; this file was not written by emovox {kind} (or was edited): "
                           "choose another output file")


def _complete_lines(path: Path, torn_ok: Callable[[bytes], bool], kind: str) -> Iterator[tuple[int, bytes]]:
    """(offset after the line, line) for each newline-terminated line; then truncates a torn tail
    (the half record of a killed run) when there were complete lines or ``torn_ok(tail)``."""
    end = 0
    with open(path, "rb") as fh:
        for line in fh:
            if not line.endswith(b"\n"):
                if not end and not torn_ok(line):
                    raise _foreign(path, f"it starts with {line[:20]!r}", kind)
                break
            end += len(line)
            yield end, line
    if end != path.stat().st_size:
        with open(path, "r+b") as fh:  # a run killed mid-write: drop its half line
            fh.truncate(end)


def _scan_jsonl(path: Path, layout: Layout, done: Finished) -> None:
    lines = _complete_lines(path, lambda tail: tail.startswith(b'{"'), layout.kind)
    for number, (_, line) in enumerate(lines, 1):
        try:
            record = json.loads(line)
            source = record["source"]
        except (ValueError, KeyError, TypeError):
            raise _foreign(path, f"line {number} is not an emovox {layout.kind} record", layout.kind) from None
        if done.stamp is None:
            if not all(k in record for k in layout.required):
                raise _foreign(path, f"line 1 is not an emovox {layout.kind} record (it has no "
                                     f"{' or '.join(k for k in layout.required if k not in record)})", layout.kind)
            done.stamp = {k: record.get(k) for k in layout.stamp_keys}
        done.add(source, record.get("error") is None)


def _scan_csv(path: Path, layout: Layout, done: Finished) -> bool:
    """Read a CSV output; False when it holds not even a complete header (start afresh). Rows of
    one source are consecutive; the last source's rows, when cut short, are truncated away."""
    header = layout.header
    lines = _complete_lines(path, csv_line(header).encode("utf-8").startswith, layout.kind)
    first = next(lines, None)
    if first is None:
        return False
    found = next(csv.reader([first[1].decode("utf-8")]))
    if found != list(header):
        raise FileFormatError(f"{path}: its columns ({', '.join(found[:8])}...) are not the ones this run writes "
                              f"({', '.join(header[:8])}...): it holds another command's, model's or label set's "
                              "results; choose another output file")
    group: list[dict[str, str]] = []
    start = end = first[0]  # offsets: where the current source's rows start, and end
    for offset, line in lines:
        row = next(csv.reader([line.decode("utf-8")]))
        if len(row) != len(found):
            raise _foreign(path, f"a row has {len(row)} columns, the header {len(found)}", layout.kind)
        named = dict(zip(found, row))
        if group and named["file"] != group[0]["file"]:
            _finish(path, layout, group, done)
            group, start = [], end
        group.append(named)
        end = offset
    if group and not layout.complete(group):  # a run killed while writing this source's rows
        with open(path, "r+b") as fh:
            fh.truncate(start)
    elif group:
        _finish(path, layout, group, done)
    return True


def _finish(path: Path, layout: Layout, group: list[dict[str, str]], done: Finished) -> None:
    if not layout.complete(group):
        raise _foreign(path, f"the rows of {group[0]['file']} are incomplete", layout.kind)
    if done.stamp is None:
        done.stamp = {k: group[0][k] for k in layout.stamp_keys}
    done.add(group[0]["file"], group[0]["error"] == "")


# ---------------------------------------------------------------------------------- writer
def _describe(stamp: dict[str, Any]) -> str:
    text = f"model {stamp.get('model')!r} version {stamp.get('model_version')!r}"
    rest = [f"{k} {v!r}" for k, v in stamp.items() if k not in STAMP]
    return ", ".join([text, *rest])


class ResultWriter:
    """Appends records to ``path`` in ``fmt``; :meth:`open` resumes, :meth:`close` finishes.

    ``layout`` fixes the CSV/Parquet rows; ``stamp`` (model name and version, and any further
    ``layout.stamp_keys``) goes into every record and must match a resumed file's.
    """

    def __init__(self, path: str | os.PathLike, fmt: str, layout: Layout, stamp: dict[str, Any]) -> None:
        self.path = Path(path)
        self.fmt = fmt
        self.layout = layout
        self.header = layout.header
        self.stamp = {k: stamp[k] for k in layout.stamp_keys}
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
        """Open for appending; returns what a previous (possibly killed) run already finished.

        The output is locked first (another run writing it is an error), then read; a new or empty
        one gets the CSV header through the same handle (a header cut short by a kill is a torn
        line, dropped by the next run). From then on it is only appended to."""
        done = Finished()
        target = self.journal
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.fmt == "parquet" and self.path.exists() and not self.journal.exists():
                self._parquet_to_journal()
            fh = open(target, "a", encoding="utf-8", newline="")  # noqa: SIM115 - kept open until close()
        except OSError as exc:
            raise FileFormatError(f"{target}: cannot read or create the output file ({exc.strerror}); "
                                  "choose another output path") from None
        try:
            if not try_lock(fh):
                raise FileFormatError(f"{target}: another emovox run is writing this file now; let it finish (run "
                                      "the same command again afterwards to add what it did not do) or choose "
                                      "another output file")
            fresh = self._scan(target, done)
            if done.stamp is not None and done.stamp != self.stamp:
                raise FileFormatError(f"{target}: holds results of {_describe(done.stamp)}, this run uses "
                                      f"{_describe(self.stamp)}: choose another output file")
            if fresh and self.fmt == "csv":
                fh.write(csv_line(self.header))
                fh.flush()
        except BaseException:
            fh.close()
            raise
        self._fh = fh
        return done

    def _scan(self, target: Path, done: Finished) -> bool:
        """Read what ``target`` holds into ``done``; True when it holds nothing yet (start afresh)."""
        try:
            if target.stat().st_size == 0:
                return True
            if self.fmt == "csv":
                return not _scan_csv(target, self.layout, done)
            _scan_jsonl(target, self.layout, done)
            return False
        except UnicodeDecodeError:
            raise FileFormatError(f"{target}: not a UTF-8 text file, so not an emovox {self.layout.kind} output; "
                                  "choose another output file") from None
        except OSError as exc:
            raise FileFormatError(f"{target}: cannot read the output file ({exc.strerror}); "
                                  "choose another output path") from None

    def _put(self, text: str) -> None:
        assert self._fh is not None, "ResultWriter.open() first"
        self._fh.write(text)
        self._fh.flush()  # in the kernel now: survives the death of this process

    def write(self, record: dict[str, Any]) -> None:
        record = {**record, **self.stamp}
        if self.fmt == "csv":
            self._put("".join(csv_line(row) for row in self.layout.rows(record)))
        else:
            self._put(json_text(record) + "\n")

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

        kinds = {"float": pa.float64(), "int": pa.int64()}
        return pa.schema([(c, kinds.get(self.layout.types.get(c, ""), pa.string())) for c in self.header])

    def _parquet_rows(self, record: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Flat rows whose text columns hold text (JSON for non-strings)."""
        for values in self.layout.rows(record):
            row = dict(zip(self.header, values))
            for col, value in row.items():
                if col not in self.layout.types and value is not None and not isinstance(value, str):
                    row[col] = json.dumps(value)
                elif isinstance(value, str):
                    row[col] = display_text(value)  # Parquet strings are UTF-8
            yield row

    def _journal_to_parquet(self, chunk: int = 10_000) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from emovox.io import atomic_path

        schema = self._schema()
        with atomic_path(self.path) as tmp, pq.ParquetWriter(tmp, schema) as out:
            rows: list[dict[str, Any]] = []
            with open(self.journal, encoding="utf-8") as fh:
                for line in fh:
                    rows.extend(self._parquet_rows(json.loads(line)))
                    if len(rows) >= chunk:
                        out.write_table(pa.Table.from_pylist(rows, schema=schema))
                        rows = []
            if rows:
                out.write_table(pa.Table.from_pylist(rows, schema=schema))
        self.journal.unlink()

    def _parquet_to_journal(self) -> None:
        """A finished Parquet output gets more inputs: continue from its rows as a journal."""
        import pyarrow.parquet as pq

        from emovox.io import atomic_path

        try:
            table = pq.ParquetFile(self.path)
            with atomic_path(self.journal) as tmp, open(tmp, "w", encoding="utf-8") as fh:
                group: list[dict[str, Any]] = []
                for batch in table.iter_batches():
                    for row in batch.to_pylist():
                        if group and row.get("file") != group[0].get("file"):
                            fh.write(json_text(self.layout.record(group)) + "\n")
                            group = []
                        group.append(row)
                if group:
                    fh.write(json_text(self.layout.record(group)) + "\n")
        except (OSError, ValueError, KeyError) as exc:
            raise FileFormatError(f"{self.path}: not a readable Parquet file of emovox {self.layout.kind} "
                                  f"({exc}); choose another output file") from None
