"""EmoDB (Berlin): ``wav/SSTTTEv.(wav|flac)``.

SS speaker (03, 08..16), TTT text code (a01..b10), E emotion letter (W Wut -> angry,
L Langeweile -> boredom, E Ekel -> disgust, A Angst -> fear, F Freude -> happy,
T Trauer -> sad, N neutral), v version letter. ``speaker`` = SS, ``group`` = speaker, ``text`` =
the German sentence, ``extra`` = text code, version, gender.
"""

from __future__ import annotations

import re
from typing import Iterator

from emovox.corpora._layout import audio_files, bad_name, require_dir
from emovox.corpora.manifest import Utterance

LAYOUT = "wav/SSTTTEv.wav (or .flac), e.g. wav/03a01Fa.wav"
EMOTIONS = {"W": "angry", "L": "boredom", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"}
GENDER = {"03": "male", "08": "female", "09": "female", "10": "male", "11": "male", "12": "male",
          "13": "female", "14": "female", "15": "male", "16": "female"}
TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
NAME = re.compile(r"^(\d\d)([ab]\d\d)([WLEAFTN])([a-z])$")


def iter_utterances(root: str) -> Iterator[Utterance]:
    base = require_dir(root, "emodb", LAYOUT)
    folder = base / "wav" if (base / "wav").is_dir() else base
    for f in audio_files(folder):
        m = NAME.match(f.stem)
        if not m:
            raise bad_name("emodb", f, "SSTTTEv, e.g. 03a01Fa")
        spk, text, emo, version = m.groups()
        yield Utterance(id=f.stem, path=str(f), speaker=spk, label=EMOTIONS[emo], corpus="emodb", group=spk,
                        text=TEXTS.get(text, ""),
                        extra={"text_code": text, "version": version, "gender": GENDER.get(spk, "")})
