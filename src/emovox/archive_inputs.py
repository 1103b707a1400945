"""The inputs of an archive run: files, folders (walked, streamed), glob patterns and manifests.

* Folders are walked depth first, each folder's entries sorted, without listing the whole tree
  first, hidden entries skipped and every folder entered once (link loops); glob patterns are expanded and sorted (for millions of files pass a folder or a
  manifest); manifests are a CSV with a ``path`` column or a text file with one path per line
  (relative paths are relative to the manifest's folder).
* Inputs that name nothing usable become :class:`Problem` items (error records downstream);
  missing plain paths are passed on as paths: their records say what is wrong.
* :func:`unique` drops repeats (and, on resume, the sources already done) keeping one 64-bit
  key per distinct source.
"""

from __future__ import annotations

import csv
import glob
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from emovox.archive_output import digest
from emovox.errors import ManifestError
from emovox.io import utf8_text

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


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """A folder's warning, logged once per process: inputs are walked more than once (counted first,
    then run; sampled first for ``--adapt``), and the same line twice reads as two problems."""
    if message not in _WARNED:
        _WARNED.add(message)
        log.warning("%s", message)


def walk(folder: Path, extensions: Sequence[str], _seen: set[tuple[int, int]] | None = None) -> Iterator[str]:
    """Audio files under ``folder``, depth first, each folder's entries in sorted order (streamed).

    Hidden entries (names starting with ``.``: the ``._name.wav`` twins macOS writes on foreign
    disks, ``.git``, ``.Trash``) are skipped; name such a file or folder to predict it. A folder
    reached a second time (a link back to a folder above it, or two links to one folder) is
    walked once: a link loop used to yield the same files until the path grew too long. A link to
    a missing file is yielded (its record then says so)."""
    seen = set() if _seen is None else _seen
    try:
        info = folder.stat()
        if (info.st_dev, info.st_ino) in seen:
            _warn_once(f"{folder}: this folder was walked already (a link to it); skipped")
            return
        seen.add((info.st_dev, info.st_ino))
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        _warn_once(f"{folder}: cannot list this folder ({exc}); skipped")
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir():
                yield from walk(Path(entry.path), extensions, seen)
            elif (entry.is_file() or entry.is_symlink()) and Path(entry.name).suffix.lower() in extensions:
                yield entry.path  # a broken link too: its record says so, rather than the file silently missing
        except OSError:
            continue


def read_manifest(path: str | os.PathLike) -> Iterator[str]:
    """Paths listed in a manifest: a CSV with a ``path`` column (``.csv``) or one path per line
    (blank lines and ``#`` comments skipped). Relative paths are relative to the manifest's folder."""
    path = Path(path)
    base = path.parent
    try:
        with utf8_text(path, newline="") as fh:  # text that is not UTF-8: a ManifestError saying so
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
            for entry in lines:
                if entry and not entry.startswith("#"):
                    yield entry if os.path.isabs(entry) else str(base / entry)
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read the manifest ({exc.strerror}); check the path") from None


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
                yield Problem(raw, f"no audio files in this folder (names ending {', '.join(extensions)}); "
                                   "a file with another name can be given by its path")
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


__all__ = ["Item", "Problem", "iter_inputs", "read_manifest", "unique", "walk"]
