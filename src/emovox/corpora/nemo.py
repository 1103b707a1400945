"""nEMO (Polish, acted): ``samples/<SPK>_<emotion>_<n>.(opus|wav|flac)`` + optional ``data.tsv``.

Nine speakers (``EB0``, ``IC0``, ... ``WR0``). Emotions anger -> ``angry``, fear, happiness ->
``happy``, neutral, sadness -> ``sad``, surprised -> ``surprise``. ``data.tsv`` (columns
``file_id, emotion, raw_text, normalized_text, speaker_id, gender, age``; ``file_id`` names the
original ``.wav``) gives ``text`` and ``extra`` (gender, age, normalized text); without it the
clips still load from their names.

``speaker`` = ``nemo:<SPK>`` and ``group`` = speaker, so speaker ids stay unique when nEMO is
combined with other corpora (the bare ids such as ``EB0`` say nothing about the corpus).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from emovox.corpora._layout import audio_files, bad_name, require_dir
from emovox.corpora.manifest import Utterance
from emovox.errors import ManifestError

LAYOUT = "samples/<SPK>_<emotion>_<n>.opus (or .wav/.flac) with data.tsv next to samples/, e.g. samples/EB0_anger_1.opus"
EXTS = (".opus", ".ogg", ".wav", ".flac")
EMOTIONS = {"anger": "angry", "fear": "fear", "happiness": "happy", "neutral": "neutral", "sadness": "sad",
            "surprised": "surprise"}
SPEAKER_PREFIX = "nemo:"
_EXPECTED = f"<SPK>_<emotion>_<n> with emotion in {{{', '.join(EMOTIONS)}}}, e.g. EB0_anger_1"


def parse_name(stem: str) -> tuple[str, str, int] | None:
    """``EB0_surprised_64`` -> (``EB0``, ``surprise``, 64); None if it does not parse."""
    parts = stem.split("_")
    if len(parts) != 3 or not parts[0] or parts[1] not in EMOTIONS or not parts[2].isdigit():
        return None
    return parts[0], EMOTIONS[parts[1]], int(parts[2])


def read_metadata(path: Path) -> dict[str, dict[str, str]]:
    """``data.tsv`` rows keyed by file stem (``EB0_anger_1``); fields stripped of padding."""
    need = {"file_id", "raw_text", "speaker_id", "gender", "age"}
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            missing = need - set(reader.fieldnames or [])
            if missing:
                raise ManifestError(f"nemo: {path} lacks column(s) {', '.join(sorted(missing))} "
                                    f"(expected the nEMO data.tsv header: file_id, emotion, raw_text, "
                                    "normalized_text, speaker_id, gender, age)")
            return {Path(row["file_id"].strip()).stem: {k: (v or "").strip() for k, v in row.items() if k}
                    for row in reader}
    except UnicodeDecodeError as exc:
        raise ManifestError(f"nemo: {path} is not UTF-8 text ({exc}); use the data.tsv of the nEMO release") from None


def iter_utterances(root: str) -> Iterator[Utterance]:
    base = require_dir(root, "nemo", LAYOUT)
    folder = base / "samples" if (base / "samples").is_dir() else base
    tsv = base / "data.tsv" if (base / "data.tsv").is_file() else folder.parent / "data.tsv"
    meta = read_metadata(tsv) if tsv.is_file() else {}
    for f in audio_files(folder, exts=EXTS):
        parsed = parse_name(f.stem)
        if parsed is None:
            raise bad_name("nemo", f, _EXPECTED)
        spk, label, number = parsed
        row = meta.get(f.stem, {})
        if row.get("speaker_id") and row["speaker_id"] != spk:
            raise ManifestError(f"nemo: {f} is named for speaker {spk} but {tsv} says {row['speaker_id']!r}; "
                                "fix the file name or the data.tsv row")
        if row.get("emotion") and EMOTIONS.get(row["emotion"]) != label:
            raise ManifestError(f"nemo: {f} is named for emotion {f.stem.split('_')[1]!r} but {tsv} says "
                                f"{row['emotion']!r}; fix the file name or the data.tsv row")
        extra: dict[str, object] = {"sentence": number}
        if row:
            extra.update(gender=row.get("gender", ""), normalized_text=row.get("normalized_text", ""))
            if row.get("age", "").isdigit():
                extra["age"] = int(row["age"])
        speaker = SPEAKER_PREFIX + spk
        yield Utterance(id=f.stem, path=str(f), speaker=speaker, label=label, corpus="nemo", group=speaker,
                        text=row.get("raw_text", ""), extra=extra)
