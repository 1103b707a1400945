"""LibriSpeech (speaker-labelled): ``<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` (official) or the
flat ``<spk>/<spk>-<chapter>-<utt>.flac`` of ``../shared/corpora/librispeech-samples``.

``speaker`` = reader id, ``group`` = chapter, ``label`` = "" (no emotion), ``text`` from
``<spk>-<chapter>.trans.txt`` when present, ``extra['gender']`` from ``SPEAKERS.TXT`` when present.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from emovox.corpora._layout import audio_files, bad_name, require_dir
from emovox.corpora.manifest import Utterance

LAYOUT = "<spk>/[<chapter>/]<spk>-<chapter>-<utt>.flac (+ SPEAKERS.TXT, *.trans.txt)"
NAME = re.compile(r"^(\d+)-(\d+)-(\d+)$")


def read_genders(base: Path) -> dict[str, str]:
    """Reader id -> 'female'/'male' from SPEAKERS.TXT (``ID | SEX | ...``)."""
    path = base / "SPEAKERS.TXT"
    out: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 2 and not line.startswith(";") and parts[1] in ("F", "M"):
                out[parts[0]] = "female" if parts[1] == "F" else "male"
    return out


def _transcripts(folder: Path, cache: dict[Path, dict[str, str]]) -> dict[str, str]:
    if folder not in cache:
        texts: dict[str, str] = {}
        for t in folder.glob("*.trans.txt"):
            for line in t.read_text(encoding="utf-8", errors="replace").splitlines():
                key, _, text = line.partition(" ")
                texts[key] = text.strip()
        cache[folder] = texts
    return cache[folder]


def iter_utterances(root: str) -> Iterator[Utterance]:
    base = require_dir(root, "librispeech", LAYOUT)
    gender = read_genders(base)
    cache: dict[Path, dict[str, str]] = {}
    for f in audio_files(base, recursive=True):
        m = NAME.match(f.stem)
        if not m:
            raise bad_name("librispeech", f, "<spk>-<chapter>-<utt>")
        spk, chapter, _ = m.groups()
        yield Utterance(id=f.stem, path=str(f), speaker=spk, label="", corpus="librispeech", group=chapter,
                        text=_transcripts(f.parent, cache).get(f.stem, ""), extra={"gender": gender.get(spk, "")})
