"""RAVDESS: ``Actor_NN/MM-VV-EE-II-SS-RR-AA.(wav|flac)``.

Fields: MM modality (03 audio-only), VV vocal channel (01 speech, 02 song), EE emotion
(01 neutral, 02 calm, 03 happy, 04 sad, 05 angry, 06 fearful -> ``fear``, 07 disgust,
08 surprised -> ``surprise``), II intensity (01 normal, 02 strong), SS statement
(01 "Kids are talking by the door", 02 "Dogs are sitting by the door"), RR repetition, AA actor
(odd = male). ``speaker`` = ``Actor_NN``, ``group`` = speaker. Song files are skipped unless
``include_song=True``.
"""

from __future__ import annotations

from typing import Iterator

from emovox.corpora._layout import audio_files, bad_name, require_dir
from emovox.corpora.manifest import Utterance

LAYOUT = "Actor_NN/03-01-EE-II-SS-RR-AA.wav (or .flac)"
EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
            "06": "fear", "07": "disgust", "08": "surprise"}
STATEMENTS = {"01": "Kids are talking by the door", "02": "Dogs are sitting by the door"}
_EXPECTED = "MM-VV-EE-II-SS-RR-AA with EE in 01..08"


def iter_utterances(root: str, include_song: bool = False) -> Iterator[Utterance]:
    base = require_dir(root, "ravdess", LAYOUT)
    for actor_dir in sorted(p for p in base.glob("Actor_*") if p.is_dir()):
        for f in audio_files(actor_dir):
            parts = f.stem.split("-")
            if len(parts) != 7 or parts[2] not in EMOTIONS or not all(p.isdigit() for p in parts):
                raise bad_name("ravdess", f, _EXPECTED)
            _modality, channel, emo, intensity, statement, repetition, actor = parts
            if channel == "02" and not include_song:
                continue
            yield Utterance(
                id=f.stem, path=str(f), speaker=f"Actor_{actor}", label=EMOTIONS[emo], corpus="ravdess",
                group=f"Actor_{actor}", text=STATEMENTS.get(statement, ""),
                extra={"intensity": "strong" if intensity == "02" else "normal", "statement": int(statement),
                       "repetition": int(repetition), "gender": "male" if int(actor) % 2 else "female",
                       "vocal_channel": "song" if channel == "02" else "speech"},
            )
