"""MELD text: ``{train,dev,test}_sent_emo.csv`` (TV dialogue from *Friends*).

Columns used: ``Utterance`` (text), ``Speaker``, ``Emotion`` (anger -> angry, joy -> happy,
sadness -> sad; disgust, fear, neutral, surprise kept), ``Sentiment``, ``Dialogue_ID``,
``Utterance_ID``, ``Season``, ``Episode``, ``StartTime``, ``EndTime``. Ids are
``<split>_dia<D>_utt<U>``; ``group`` = ``<split>_dia<D>``; ``extra['split']`` holds the official
split (use protocol ``predefined`` with ``allow_speaker_overlap=True``: the same characters appear
in every split). ``path`` is empty (text only) unless ``audio_root`` holds the release's clips
(``<audio_root>/<split folder>/dia<D>_utt<U>.<ext>``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator, Sequence

from emovox.corpora._layout import require_dir
from emovox.corpora.manifest import Utterance
from emovox.errors import ManifestError

LAYOUT = "{train,dev,test}_sent_emo.csv"
EMOTIONS = {"anger": "angry", "disgust": "disgust", "fear": "fear", "joy": "happy", "neutral": "neutral",
            "sadness": "sad", "surprise": "surprise"}
AUDIO_DIRS = {"train": ("train_splits", "train"), "dev": ("dev_splits_complete", "dev"),
              "test": ("output_repeated_splits_test", "test")}
REQUIRED = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")


def _audio(audio_root: Path | None, split: str, name: str) -> str:
    if audio_root is None:
        return ""
    for folder in AUDIO_DIRS[split]:
        for ext in (".wav", ".flac", ".mp4"):
            p = audio_root / folder / f"{name}{ext}"
            if p.is_file():
                return str(p)
    return ""


def iter_utterances(root: str, splits: Sequence[str] = ("train", "dev", "test"),
                    audio_root: str | None = None) -> Iterator[Utterance]:
    base = require_dir(root, "meld", LAYOUT)
    audio = Path(audio_root) if audio_root else None
    for split in splits:
        if split not in AUDIO_DIRS:
            raise ManifestError(f"meld: unknown split {split!r} (train, dev, test)")
        path = base / f"{split}_sent_emo.csv"
        if not path.is_file():
            raise ManifestError(f"meld: {path} not found (expected layout: {LAYOUT})")
        with open(path, encoding="utf-8", errors="replace", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise ManifestError(f"{path}: missing column(s) {', '.join(missing)}")
            for row_no, row in enumerate(reader, start=1):
                emo = row["Emotion"].strip().lower()
                if emo not in EMOTIONS:
                    raise ManifestError(f"{path}, row {row_no}: unknown emotion {row['Emotion']!r} "
                                        f"(known: {', '.join(EMOTIONS)})")
                d, u = row["Dialogue_ID"].strip(), row["Utterance_ID"].strip()
                yield Utterance(
                    id=f"{split}_dia{d}_utt{u}", path=_audio(audio, split, f"dia{d}_utt{u}"),
                    speaker=row["Speaker"].strip(), label=EMOTIONS[emo], corpus="meld", group=f"{split}_dia{d}",
                    text=row["Utterance"].strip(),
                    extra={"split": split, "sentiment": row.get("Sentiment", "").strip(),
                           "season": row.get("Season", ""), "episode": row.get("Episode", ""),
                           "start_time": row.get("StartTime", ""), "end_time": row.get("EndTime", "")},
                )
