"""TESS: ``<SPK>_<emotion>/<SPK>_<word>_<emotion>.(wav|flac)``, speakers OAF and YAF.

Emotions angry, disgust, fear, happy, neutral, sad and ``ps`` (pleasant surprise) ->
``surprise``; spellings of the original release (``Fear``, ``pleasant_surprised``) are
accepted. Text: "Say the word <word>". ``speaker`` = OAF / YAF, ``group`` = speaker.
"""

from __future__ import annotations

from typing import Iterator

from emovox.corpora._layout import audio_files, bad_name, require_dir
from emovox.corpora.manifest import Utterance

LAYOUT = "<SPK>_<emotion>/<SPK>_<word>_<emotion>.wav (or .flac), SPK in {OAF, YAF}"
EMOTIONS = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy", "neutral": "neutral",
            "sad": "sad", "ps": "surprise", "pleasant_surprise": "surprise", "pleasant_surprised": "surprise"}


def parse_name(stem: str) -> tuple[str, str, str] | None:
    """``OAF_back_ps`` -> (``OAF``, ``back``, ``surprise``); None if it does not parse."""
    parts = stem.split("_")
    if len(parts) < 3:
        return None
    low = [p.lower() for p in parts]
    for n_tail in (2, 1):  # 'pleasant_surprised' spans two parts
        emo = "_".join(low[-n_tail:])
        if emo in EMOTIONS and len(parts) - n_tail >= 2:
            return parts[0].upper(), "_".join(parts[1:-n_tail]), EMOTIONS[emo]
    return None


def iter_utterances(root: str) -> Iterator[Utterance]:
    base = require_dir(root, "tess", LAYOUT)
    for f in audio_files(base, recursive=True):
        parsed = parse_name(f.stem)
        if parsed is None:
            raise bad_name("tess", f, "<SPK>_<word>_<emotion>")
        speaker, word, label = parsed
        yield Utterance(id=f.stem, path=str(f), speaker=speaker, label=label, corpus="tess", group=speaker,
                        text=f"Say the word {word}", extra={"word": word})
