"""ASED (Amharic, acted): ``<NN><Emotion>/<e><k>-<sentence>-<repetition>-<gender>-<speaker>.(opus|wav|flac)``.

Folders ``01Neutral 02Fearful 03Happy 04Sad 05Angry``; **the folder is the label** (fearful ->
``fear``). In the name, ``e`` is the emotion letter (n f h s a; one release file has an
upper-case letter, accepted), ``k`` the folder number, then sentence, repetition (01/02),
gender (01 female, 02 male) and speaker (01..65). The gender field is wrong for a few files,
so ``extra['gender']`` is the speaker's majority value (the file's own field is kept as
``extra['gender_field']``). A letter that disagrees with the folder is logged, the folder wins.

``speaker`` = ``ased:NN`` and ``group`` = speaker: the bare numbers 01..65 would collide with
EmoDB's two-digit speaker ids when corpora are combined.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Iterator

from emovox.corpora._layout import audio_files, bad_name, require_dir
from emovox.corpora.manifest import Utterance
from emovox.errors import ManifestError

log = logging.getLogger(__name__)

LAYOUT = "<NN><Emotion>/<e><k>-<sentence>-<repetition>-<gender>-<speaker>.opus (or .wav/.flac), e.g. 05Angry/a5-03-01-02-50.opus"
EXTS = (".opus", ".ogg", ".wav", ".flac")
FOLDERS = {"neutral": "neutral", "fearful": "fear", "happy": "happy", "sad": "sad", "angry": "angry"}
LETTERS = {"n": "neutral", "f": "fear", "h": "happy", "s": "sad", "a": "angry"}
GENDER = {"01": "female", "02": "male"}
SPEAKER_PREFIX = "ased:"
FOLDER = re.compile(r"^(\d\d)([A-Za-z]+)$")
NAME = re.compile(r"^([nfhsaNFHSA])(\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)$")
_EXPECTED = "<e><k>-<sentence>-<repetition>-<gender>-<speaker> with e in n/f/h/s/a, e.g. a5-03-01-02-50"


def _label_of_folder(name: str) -> str | None:
    m = FOLDER.match(name)
    return FOLDERS.get(m.group(2).lower()) if m else None


def iter_utterances(root: str) -> Iterator[Utterance]:
    base = require_dir(root, "ased", LAYOUT)
    found = [(p, _label_of_folder(p.name)) for p in sorted(base.iterdir()) if p.is_dir()]
    folders = [(p, lab) for p, lab in found if lab is not None]
    if not folders:
        raise ManifestError(f"ased: no emotion folders (01Neutral, 02Fearful, 03Happy, 04Sad, 05Angry) in {base} "
                            f"(expected layout: {LAYOUT})")
    rows = []
    for folder, label in folders:
        for f in audio_files(folder, exts=EXTS):
            m = NAME.match(f.stem)
            if not m:
                raise bad_name("ased", f, _EXPECTED)
            letter, _k, sentence, repetition, gender, spk = m.groups()
            if LETTERS[letter.lower()] != label:
                log.warning("ased: %s has emotion letter %r but lies in folder %s; using the folder (%s)",
                            f, letter, folder.name, label)
            rows.append((f, label, letter, int(sentence), int(repetition), GENDER.get(gender, gender), spk))
    votes: dict[str, Counter] = {}
    for *_, gender, spk in rows:
        votes.setdefault(spk, Counter())[gender] += 1
    majority = {spk: c.most_common(1)[0][0] for spk, c in votes.items()}
    for f, label, letter, sentence, repetition, gender, spk in rows:
        speaker = SPEAKER_PREFIX + spk
        yield Utterance(id=f.stem, path=str(f), speaker=speaker, label=label, corpus="ased", group=speaker,
                        extra={"sentence": sentence, "repetition": repetition, "gender": majority[spk],
                               "gender_field": gender, "letter": letter})
