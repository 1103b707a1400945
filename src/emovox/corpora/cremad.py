"""CREMA-D: ``AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav`` (+ optional ``VideoDemographics.csv``).

EMO: ANG angry, DIS disgust, FEA fear, HAP happy, NEU neutral, SAD sad. Level LO/MD/HI/XX
(XX = unspecified). ``speaker`` = actor id (1001..1091), ``group`` = speaker, ``text`` = the
sentence for the 3-letter code, ``extra`` = sentence code, level, and sex from the
demographics file when present.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from emovox.corpora._layout import audio_files, bad_name, require_dir
from emovox.corpora.manifest import Utterance

LAYOUT = "AudioWAV/1001_DFA_ANG_XX.wav (actor_sentence_emotion_level)"
EMOTIONS = {"ANG": "angry", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified", "X": "unspecified"}
SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.", "IOM": "I'm on my way to the meeting.",
    "IWW": "I wonder what this is about.", "TAI": "The airplane is almost full.",
    "MTI": "Maybe tomorrow it will be cold.", "IWL": "I would like a new alarm clock.",
    "ITH": "I think I have a doctor's appointment.", "DFA": "Don't forget a jacket.",
    "ITS": "I think I've seen this before.", "TSI": "The surface is slick.", "WSI": "We'll stop in a couple of minutes.",
}


def _demographics(base: Path) -> dict[str, str]:
    path = base / "VideoDemographics.csv"
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as fh:
        return {row["ActorID"].strip(): row.get("Sex", "").strip().lower() for row in csv.DictReader(fh)}


def iter_utterances(root: str) -> Iterator[Utterance]:
    base = require_dir(root, "cremad", LAYOUT)
    folder = base / "AudioWAV" if (base / "AudioWAV").is_dir() else base
    sex = _demographics(base)
    for f in audio_files(folder):
        parts = f.stem.split("_")
        if len(parts) != 4 or not parts[0].isdigit() or parts[2] not in EMOTIONS or parts[3] not in LEVELS:
            raise bad_name("cremad", f, "<actor>_<sentence>_<EMO>_<level>, e.g. 1001_DFA_ANG_XX")
        actor, sentence, emo, level = parts
        yield Utterance(id=f.stem, path=str(f), speaker=actor, label=EMOTIONS[emo], corpus="cremad", group=actor,
                        text=SENTENCES.get(sentence, ""),
                        extra={"sentence": sentence, "level": LEVELS[level], "gender": sex.get(actor, "")})
