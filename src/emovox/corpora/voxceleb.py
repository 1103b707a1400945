"""VoxCeleb 1/2 for speaker pretraining: ``idNNNNN/<video>/<utt>.(wav|flac|m4a)``.

The speaker folders may sit directly under ``root`` or under ``wav/``, ``dev/wav/``,
``test/wav/``, ``dev/aac/`` or ``aac/`` (the release layouts). ``speaker`` = ``idNNNNN``,
``group`` = the video id, ``id`` = ``idNNNNN/<video>/<utt>``, ``label`` = "" (no emotion).
VoxCeleb 2's ``.m4a`` (AAC) files are decoded through PyAV (:mod:`emovox.audio_av`); converting
them to FLAC once (``ffmpeg -i x.m4a -ar 16000 -ac 1 x.flac``) makes repeated epochs cheaper.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from emovox.corpora._layout import audio_files, require_dir
from emovox.corpora.manifest import Utterance

LAYOUT = "[wav/|dev/wav/|dev/aac/]idNNNNN/<video>/<utt>.wav"
EXTS = (".wav", ".flac", ".m4a")
SUBDIRS = ("", "wav", "dev/wav", "test/wav", "dev/aac", "test/aac", "aac")


def speaker_dirs(base: Path) -> list[Path]:
    """All ``id*`` speaker folders under the known sub-folders of ``base``."""
    out = []
    for sub in SUBDIRS:
        folder = base / sub if sub else base
        if folder.is_dir():
            out += sorted(p for p in folder.glob("id*") if p.is_dir())
    return out


def iter_utterances(root: str, max_per_speaker: int | None = None) -> Iterator[Utterance]:
    base = require_dir(root, "voxceleb", LAYOUT)
    for spk_dir in speaker_dirs(base):
        n = 0
        for video in sorted(p for p in spk_dir.iterdir() if p.is_dir()):
            for f in audio_files(video, exts=EXTS):
                if max_per_speaker is not None and n >= max_per_speaker:
                    break
                n += 1
                yield Utterance(id=f"{spk_dir.name}/{video.name}/{f.stem}", path=str(f), speaker=spk_dir.name,
                                label="", corpus="voxceleb", group=video.name)
