"""Crash-safe file output: write to a temporary file in the same folder, fsync, rename.

A crash never leaves a half-written file under the final name, so later runs can trust any
file that exists; the file that was there before stays intact until the rename. The new file
gets the permissions a plain ``open(path, "w")`` would give it (the umask, or the mode of the
file it replaces), not the private 0600 of a temporary file. :func:`atomic_folder` does the same
for a whole folder (model packages).
"""

from __future__ import annotations

import contextlib
import json
import hashlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator

from emovox.errors import ConfigError, FileFormatError, ManifestError


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # fallback: read by setting and restoring
    os.umask(mask)
    return mask


def normal_mode(directory: bool = False) -> int:
    """The mode ``open()``/``mkdir()`` would give a new file/folder (umask applied).

    For writers that build in a private temporary (``mkstemp``: 0600, ``mkdtemp``: 0700) and
    rename it into place: chmod the temporary to this first.
    """
    return (0o777 if directory else 0o666) & ~_umask()


def _mode_for(final: Path) -> int:
    try:
        return stat.S_IMODE(final.stat().st_mode)
    except OSError:
        return normal_mode()


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every platform can open a directory)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    Use for writers that want a file name (``torch.onnx.export``, ``savefig``, safetensors).
    If the body raises, the temporary file is removed and ``path`` is left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix or final.suffix + ".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, _mode_for(final))
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a new, empty temporary folder next to ``path``; on success it replaces ``path``.

    For writers of a whole package (a model folder). When the body returns, every file in the
    folder is fsynced, files and folders get the modes a plain ``open``/``mkdir`` gives them (the
    temporary folder is private, as some writers' files are), a folder already at ``path`` is
    moved aside, the new one renamed into place and the old one removed. If the body raises,
    the temporary folder is removed and ``path`` is left as it was. Callers check beforehand
    that whatever is at ``path`` may be replaced.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    old: Path | None = None
    try:
        yield tmp
        for item in sorted(tmp.rglob("*")):
            if item.is_file():
                with open(item, "rb+") as fh:
                    os.fsync(fh.fileno())
            item.chmod(normal_mode(directory=item.is_dir()))
        tmp.chmod(normal_mode(directory=True))
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.replace(final, old / final.name)
        try:
            os.replace(tmp, final)
        except BaseException:
            if old is not None:  # put the old folder back rather than lose it
                os.replace(old / final.name, final)
            raise
        _fsync_dir(final.parent)
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def utf8_text(path: str | os.PathLike, newline: str | None = None) -> Iterator[Any]:
    """A user's text file (a manifest, a CSV of clips) open for reading as UTF-8, with or without the
    byte-order mark Excel's "CSV UTF-8" starts with. Text in another encoding, found whenever it is
    read inside the block, is a ManifestError that says how to save it."""
    with open(path, encoding="utf-8-sig", newline=newline) as fh:
        try:
            yield fh
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{path}: not UTF-8 text (it has the byte 0x{exc.object[exc.start]:02X}); save it as "
                                "UTF-8 (Excel: 'CSV UTF-8')") from None


def json_text(obj: Any, **options: Any) -> str:
    """``json.dumps`` keeping non-ASCII text as it is, unless some text cannot be UTF-8 (a file name
    whose bytes are not UTF-8 holds them as surrogates): then ASCII escapes, which load back to the
    same string, so a resumed run still recognises that file."""
    text = json.dumps(obj, ensure_ascii=False, **options)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj, ensure_ascii=True, **options)
    return text


def display_text(text: str) -> str:
    """``text`` made writable as UTF-8: the undecodable bytes of a file name shown as ``\\udcXX``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def one_line(text: str) -> str:
    """``text`` as :func:`display_text`, and on one line: line breaks (a file name may hold them)
    written as ``\\n`` and ``\\r``. What CSV outputs and tables show."""
    return display_text(text).replace("\r", "\\r").replace("\n", "\\n")


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Serialise ``obj`` as JSON (sorted keys, UTF-8) and write it atomically.

    The object is serialised before anything is written, so an unserialisable value leaves
    ``path`` untouched.
    """
    return atomic_write_text(path, json_text(obj, indent=indent, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file (counterpart of :func:`atomic_write_json`).

    A missing file raises :class:`FileNotFoundError`; a corrupt one (not UTF-8 or not JSON)
    raises :class:`emovox.errors.FileFormatError` naming the file.
    """
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FileFormatError(f"{path}: not a valid JSON file ({exc}); it is corrupt or was edited by hand - "
                              "fix it, or delete it so emovox recomputes it") from None


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, read in ``chunk``-byte pieces (memory stays O(chunk) for any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def try_lock(fh: IO[Any]) -> bool:
    """An exclusive advisory lock on an open file (released when it is closed or the process dies);
    False when another process holds it. Without ``fcntl`` (Windows) or on a file system without
    locks (some network mounts), True: unlocked, as before."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return True
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


#: The file inside a run folder that :func:`run_folder_lock` locks.
RUN_LOCK = ".emovox-run.lock"


@contextlib.contextmanager
def run_folder_lock(folder: str | os.PathLike) -> Iterator[None]:
    """Hold a run folder (``--out``) for one command: a second command on the same folder, while
    this one runs, gets a ConfigError instead of training the same folds beside it. A path that is
    a file is left to the runner's own check."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        yield
        return
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / RUN_LOCK
    with open(lock, "a", encoding="utf-8") as fh:  # kept open (and locked) while the run goes on
        if not try_lock(fh):
            raise ConfigError(f"{folder}: another emovox command is running in this folder now; let it finish "
                              "(a run resumes where it stopped) or give another --out")
        try:
            yield
        finally:
            if created and [p.name for p in folder.iterdir()] == [RUN_LOCK]:  # the command wrote nothing
                lock.unlink()
                folder.rmdir()
