"""The typed utterance manifest: one row per clip, stored as CSV or JSON Lines.

Columns (both formats): ``id, path, speaker, label, corpus, group, start, end, text, duration,
extra``. ``start``/``end`` (seconds) are empty when the whole file is the utterance; ``duration``
is empty when unknown; ``extra`` is a JSON object (corpus-specific fields such as IEMOCAP's
``improvised`` flag or RAVDESS's ``intensity``). ``path`` may be empty for text-only corpora
(MELD). Relative paths in a manifest file are resolved against the manifest's own folder.

Label names are the canonical lowercase English names of :mod:`emovox.corpora.labels`.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from emovox.audio import SAMPLE_RATE, load_audio, prepare_array
from emovox.cache import source_key
from emovox.errors import ManifestError
from emovox.io import atomic_write_text, utf8_text

COLUMNS = ("id", "path", "speaker", "label", "corpus", "group", "start", "end", "text", "duration", "extra")
REQUIRED = ("id", "path", "speaker", "label")


@dataclass(frozen=True)
class Utterance:
    """One clip: where its audio is, who speaks, what emotion it carries."""

    id: str
    path: str
    speaker: str
    label: str
    corpus: str = ""
    group: str = ""
    start: float | None = None
    end: float | None = None
    text: str = ""
    duration: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def with_label(self, label: str) -> "Utterance":
        return replace(self, label=label)

    def load_audio(self) -> np.ndarray:
        """16 kHz mono float32 samples of this utterance (only its ``start``-``end`` segment when set)."""
        x = load_audio(self.path)
        if self.start is None and self.end is None:
            return x
        a = int(round((self.start or 0.0) * SAMPLE_RATE))
        b = len(x) if self.end is None else int(round(self.end * SAMPLE_RATE))
        return prepare_array(x[a:b], SAMPLE_RATE, source=f"{self.path} [{self.start}-{self.end}] s")

    @property
    def cache_key(self) -> str:
        """Key of this utterance's entries in a :class:`emovox.cache.FeatureCache` (file + segment)."""
        return source_key(self.path, self.start, self.end)

    def to_row(self) -> dict[str, Any]:
        """A plain dict (``extra`` kept as a dict) for JSON."""
        return asdict(self)


# ----------------------------------------------------------------------------------- parsing
def _float_or_none(value: Any, where: str, name: str) -> float | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ManifestError(f"{where}: field '{name}' must be a number of seconds, got {value!r}") from None


def utterance_from_row(row: dict[str, Any], where: str, base: Path | None = None) -> Utterance:
    """Build an :class:`Utterance` from a CSV/JSON row; ``where`` names file and row for errors."""
    missing = [c for c in REQUIRED if c not in row or row[c] is None]
    if missing:
        raise ManifestError(f"{where}: missing column(s) {', '.join(missing)} (required: {', '.join(REQUIRED)})")
    extra = row.get("extra") or {}
    if isinstance(extra, str):
        try:
            extra = json.loads(extra) if extra.strip() else {}
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{where}: field 'extra' is not valid JSON ({exc})") from None
    if not isinstance(extra, dict):
        raise ManifestError(f"{where}: field 'extra' must be a JSON object, got {type(extra).__name__}")
    path = str(row["path"]).strip()
    if path and base is not None and not os.path.isabs(path):
        path = str(base / path)
    return Utterance(
        id=str(row["id"]).strip(),
        path=path,
        speaker=str(row["speaker"]).strip(),
        label=str(row["label"]).strip(),
        corpus=str(row.get("corpus") or "").strip(),
        group=str(row.get("group") or "").strip(),
        start=_float_or_none(row.get("start"), where, "start"),
        end=_float_or_none(row.get("end"), where, "end"),
        text=str(row.get("text") or ""),
        duration=_float_or_none(row.get("duration"), where, "duration"),
        extra=extra,
    )


# -------------------------------------------------------------------------------- validation
def validate(
    utterances: Sequence[Utterance],
    source: str = "<manifest>",
    labels: Iterable[str] | None = None,
    check_files: bool = True,
    require_label: bool = True,
) -> None:
    """Raise :class:`ManifestError` naming ``source`` and the row for the first problem found.

    Checks: non-empty unique ids, non-empty speakers, labels present (and in ``labels`` when
    given), existing audio files (``check_files``; empty paths are allowed only for text-only
    rows), and ``start < end`` when both are set. Rows are numbered from 1 (CSV header = row 0).
    """
    allowed = set(labels) if labels is not None else None
    seen: dict[str, int] = {}
    for row, utt in enumerate(utterances, start=1):
        where = f"{source}, row {row} (id {utt.id!r})"
        if not utt.id:
            raise ManifestError(f"{source}, row {row}: empty 'id' (every utterance needs a unique id)")
        if utt.id in seen:
            raise ManifestError(f"{where}: duplicate id, first seen in row {seen[utt.id]} (ids must be unique)")
        seen[utt.id] = row
        if not utt.speaker:
            raise ManifestError(
                f"{where}: empty 'speaker' (speaker-independent evaluation needs a speaker for every row)"
            )
        if require_label and not utt.label:
            raise ManifestError(f"{where}: empty 'label'")
        if allowed is not None and utt.label not in allowed:
            raise ManifestError(
                f"{where}: unknown label {utt.label!r} (allowed: {', '.join(sorted(allowed))}; "
                "map it with a label map or drop the row)"
            )
        if check_files and utt.path and not os.path.isfile(utt.path):
            raise ManifestError(f"{where}: audio file not found: {utt.path}")
        if utt.start is not None and utt.end is not None and not utt.start < utt.end:
            raise ManifestError(f"{where}: start ({utt.start}) must be smaller than end ({utt.end})")


# ------------------------------------------------------------------------------- read/write
def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False) if value else ""
    return str(value)


def write_manifest(path: str | os.PathLike, utterances: Sequence[Utterance], relative: bool = False) -> Path:
    """Write ``utterances`` atomically; the format follows the suffix (``.csv`` or ``.jsonl``).

    Audio paths are written absolute, or relative to the manifest's folder with ``relative=True``
    (portable when corpus and manifest move together). Relative input paths are taken from the
    current directory.
    """
    out = Path(path)
    kind = _kind(out)
    folder = os.path.abspath(out.parent)
    utterances = [u if not u.path else replace(
        u, path=os.path.relpath(os.path.abspath(u.path), folder) if relative else os.path.abspath(u.path))
        for u in utterances]
    if kind == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for utt in utterances:
            writer.writerow([_fmt(getattr(utt, c)) for c in COLUMNS])
        text = buf.getvalue()
    else:
        text = "".join(json.dumps(u.to_row(), ensure_ascii=False, sort_keys=True) + "\n" for u in utterances)
    return atomic_write_text(out, text)


def read_manifest(
    path: str | os.PathLike,
    labels: Iterable[str] | None = None,
    check_files: bool = True,
    require_label: bool = True,
) -> list[Utterance]:
    """Read and validate a ``.csv`` or ``.jsonl`` manifest (see :func:`validate`)."""
    src = Path(path)
    if not src.is_file():
        raise ManifestError(f"manifest not found: {src} (create one with `emovox prepare CORPUS ROOT -o {src.name}`)")
    base = src.resolve().parent
    utts = _read_csv(src, base) if _kind(src) == "csv" else _read_jsonl(src, base)
    validate(utts, str(src), labels=labels, check_files=check_files, require_label=require_label)
    return utts


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ManifestError(f"{path}: unknown manifest format {suffix!r} (use .csv or .jsonl)")


def _read_csv(src: Path, base: Path) -> list[Utterance]:
    with utf8_text(src, newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise ManifestError(
                f"{src}: header lacks column(s) {', '.join(missing)} (has: {', '.join(header) or 'nothing'})"
            )
        return [utterance_from_row(row, f"{src}, row {i}", base) for i, row in enumerate(reader, start=1)]


def _read_jsonl(src: Path, base: Path) -> list[Utterance]:
    utts = []
    with utf8_text(src) as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{src}, line {i}: not valid JSON ({exc})") from None
            if not isinstance(row, dict):
                raise ManifestError(f"{src}, line {i}: expected a JSON object per line")
            utts.append(utterance_from_row(row, f"{src}, line {i}", base))
    return utts


# ----------------------------------------------------------------------------------- helpers
def label_counts(utterances: Iterable[Utterance]) -> Counter:
    """Number of utterances per label."""
    return Counter(u.label for u in utterances)


def speaker_counts(utterances: Iterable[Utterance]) -> Counter:
    """Number of utterances per speaker."""
    return Counter(u.speaker for u in utterances)


def by_id(utterances: Iterable[Utterance]) -> dict[str, Utterance]:
    """Index utterances by id."""
    return {u.id: u for u in utterances}


def select(utterances: Sequence[Utterance], ids: Iterable[str]) -> list[Utterance]:
    """The utterances with the given ids, in the order of ``ids``; unknown ids raise."""
    index = by_id(utterances)
    out = []
    for uid in ids:
        if uid not in index:
            raise ManifestError(f"id {uid!r} is not in the manifest (fold file and manifest do not match)")
        out.append(index[uid])
    return out


def fill_durations(utterances: Sequence[Utterance]) -> list[Utterance]:
    """Fill missing ``duration`` from the audio header (cheap, no decoding) or ``end - start``."""
    from emovox.audio import audio_duration

    out = []
    for u in utterances:
        if u.duration is None:
            if u.start is not None and u.end is not None:
                u = replace(u, duration=u.end - u.start)
            elif u.path:
                u = replace(u, duration=audio_duration(u.path))
        out.append(u)
    return out


FIELD_NAMES = tuple(f.name for f in fields(Utterance))
assert FIELD_NAMES == COLUMNS
