"""Your own corpus as a CSV: one row per clip with at least ``path``, ``label`` and ``speaker``.

Optional columns: ``id`` (default: the path without extension, relative to the CSV's folder),
``group``, ``start``, ``end`` (seconds within the file), ``text``, ``duration``, ``corpus``
(default: the CSV's file name). Any other column goes into ``extra``. Relative paths are
resolved against the CSV's folder. Labels are lower-cased and common spellings mapped to the
canonical names (``anger`` -> ``angry``, ``joy`` -> ``happy``...; see
:func:`emovox.corpora.labels.normalize_label`) unless ``normalize_labels=False``.

The speaker column is required: without it no evaluation can be speaker-independent. If you
really have one speaker per file, put the file name there.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from emovox.corpora.labels import normalize_label
from emovox.corpora.manifest import COLUMNS, utterance_from_row
from emovox.errors import ManifestError
from emovox.io import utf8_text

LAYOUT = "a CSV file with columns path,label,speaker[,id,group,start,end,text]"
REQUIRED = ("path", "label", "speaker")


def iter_utterances(root: str, normalize_labels: bool = True, corpus: str | None = None) -> Iterator:
    src = Path(root).expanduser()
    if not src.is_file():
        raise ManifestError(f"generic: CSV file not found: {src} (expected {LAYOUT})")
    base = src.resolve().parent
    name = corpus or src.stem
    with utf8_text(src, newline="") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ManifestError(f"{src}: missing column(s) {', '.join(missing)} (has: {', '.join(header) or 'nothing'}); "
                                "every row needs path, label and speaker")
        for i, raw in enumerate(reader, start=1):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k}
            if not row["path"]:
                raise ManifestError(f"{src}, row {i}: empty 'path'")
            if not row.get("id"):
                row["id"] = str(Path(row["path"]).with_suffix("")).replace("\\", "/")
            if normalize_labels:
                row["label"] = normalize_label(row["label"])
            row["corpus"] = row.get("corpus") or name
            row["extra"] = {k: v for k, v in row.items() if k not in COLUMNS}
            yield utterance_from_row({k: v for k, v in row.items() if k in COLUMNS}, f"{src}, row {i}", base)
