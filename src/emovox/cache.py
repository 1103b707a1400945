"""Feature cache: compute per-utterance features once, reuse them across folds and runs.

Keys combine the audio file's identity (path, size, mtime, optional start/end) with a
description of the extractor (name + parameters), so a changed file or changed front-end never
returns stale features. Entries are safetensors files written atomically, so a crash never
leaves a half-written entry that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from emovox.io import atomic_path

#: 16 kHz mono float32 samples -> named float32 arrays to cache (a front-end, an upstream, a VAD mask).
Extractor = Callable[[np.ndarray], dict[str, np.ndarray]]

DEFAULT_CACHE_DIR = Path(os.environ.get("EMOVOX_CACHE", Path.home() / ".cache" / "emovox"))


def extractor_key(name: str, params: Mapping[str, Any] | None = None) -> str:
    """A short stable hash naming an extractor and its parameters."""
    blob = json.dumps({"name": name, "params": dict(params or {})}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha1(blob.encode()).hexdigest()[:12]}"


def source_key(path: str | os.PathLike, start: float | None = None, end: float | None = None) -> str:
    """Hash of an audio file's identity (resolved path, size, mtime) and optional segment bounds."""
    p = Path(path).resolve()
    try:
        st = p.stat()
        ident = f"{p}|{st.st_size}|{st.st_mtime_ns}|{start}|{end}"
    except OSError:
        ident = f"{p}|missing|{start}|{end}"
    return hashlib.sha1(ident.encode()).hexdigest()


class FeatureCache:
    """A folder of ``<extractor>/<aa>/<sourcehash>.safetensors`` entries, each a dict of arrays."""

    def __init__(self, root: str | os.PathLike | None = None, extractor: str = "features") -> None:
        self.root = Path(root) if root is not None else DEFAULT_CACHE_DIR
        self.extractor = extractor
        self.folder = self.root / extractor

    def _entry(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.safetensors"

    def get(self, key: str) -> dict[str, np.ndarray] | None:
        """The cached arrays for ``key``, or None (also for an unreadable entry, which is removed)."""
        from safetensors.numpy import load_file

        entry = self._entry(key)
        if not entry.exists():
            return None
        try:
            return load_file(str(entry))
        except Exception:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            entry.unlink(missing_ok=True)  # corrupt: recompute rather than trust it
            return None

    def put(self, key: str, arrays: Mapping[str, np.ndarray]) -> None:
        from safetensors.numpy import save_file

        entry = self._entry(key)
        with atomic_path(entry) as tmp:
            save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp))

    def get_or_compute(self, key: str, compute: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """Return cached arrays, computing and storing them on a miss."""
        hit = self.get(key)
        if hit is not None:
            return hit
        arrays = {k: np.asarray(v) for k, v in compute().items()}
        self.put(key, arrays)
        return arrays
