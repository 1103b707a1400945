"""Small helpers shared by the corpus loaders: root checks and audio file discovery."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from emovox.errors import ManifestError

AUDIO_EXTS = (".wav", ".flac")


def require_dir(root: str | os.PathLike, corpus: str, layout: str) -> Path:
    """``root`` as a Path, or a ManifestError that shows the expected layout."""
    p = Path(root).expanduser()
    if not p.is_dir():
        raise ManifestError(f"{corpus}: corpus folder not found: {p} (expected layout: {layout})")
    return p


def audio_files(folder: Path, recursive: bool = False, exts: tuple[str, ...] = AUDIO_EXTS) -> Iterator[Path]:
    """Audio files in ``folder`` (sorted, hidden and AppleDouble ``._`` files skipped)."""
    pattern = "**/*" if recursive else "*"
    for p in sorted(folder.glob(pattern)):
        if p.suffix.lower() in exts and not p.name.startswith(".") and p.is_file():
            yield p


def bad_name(corpus: str, path: Path, expected: str) -> ManifestError:
    return ManifestError(f"{corpus}: cannot parse file name {path} (expected {expected}); "
                         "rename or remove the file")
