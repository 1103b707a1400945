"""IEMOCAP from the official release layout (``IEMOCAP_full_release``).

Read per session ``SessionN/dialog/EmoEvaluation/<dialogue>.txt``: each turn has a summary line
``[START - END]<TAB>TURN<TAB>LABEL<TAB>[V, A, D]`` followed by annotator lines (``C-E1: ...``,
``A-E1: ...``) that are ignored. The summary LABEL is the majority of the annotators; ``xxx``
means no majority and is dropped (seed 000 §4.1: "at least two annotators agree"). Audio is
``SessionN/sentences/wav/<dialogue>/<TURN>.wav``; the transcript comes from
``SessionN/dialog/transcriptions/<dialogue>.txt`` (``TURN [start-end]: text``).

Manifest fields: ``speaker`` = session + gender letter of the turn id's last part
(``Ses01F_impro01_M012`` -> ``Ses01M``: in each dialogue both actors speak), ``group`` = the
dialogue, ``extra`` = ``session``, ``dialogue``, ``improvised`` (dialogue name contains
``impro``), ``vad`` (valence, activation, dominance) and the turn's ``dialog_start``/``dialog_end``
in the dialogue recording. Labels: ang angry, hap happy, exc excited, neu neutral, sad sad,
fru frustrated, sur surprise, fea fear, dis disgust, oth other. Seed 000's Exp 1/2/3 are the
label maps ``iemocap_exp1`` / ``iemocap_exp2`` / ``iemocap_exp3``. With ``keep_unagreed=True``
the ``xxx`` turns are kept with the label ``unagreed`` (for statistics only).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Sequence

from emovox.corpora._layout import require_dir
from emovox.corpora.manifest import Utterance
from emovox.errors import ManifestError

LAYOUT = ("Session{1..5}/dialog/EmoEvaluation/<dialogue>.txt, Session*/sentences/wav/<dialogue>/<turn>.wav, "
          "Session*/dialog/transcriptions/<dialogue>.txt")
CODES = {
    "ang": "angry", "hap": "happy", "exc": "excited", "neu": "neutral", "sad": "sad",
    "fru": "frustrated", "sur": "surprise", "fea": "fear", "dis": "disgust", "oth": "other",
}
NO_AGREEMENT = "xxx"
_NUM = r"(\d+(?:\.\d*)?)"
SUMMARY = re.compile(rf"^\[{_NUM}\s*-\s*{_NUM}\]\t(\S+)\t(\S+)\t\[([^\]]*)\]")
TRANSCRIPT = re.compile(rf"^(\S+)\s+\[{_NUM}\s*-\s*{_NUM}\]:\s?(.*)$")


def speaker_of(turn: str) -> str:
    """``Ses01F_impro01_M012`` -> ``Ses01M`` (session + gender of the speaking actor)."""
    last = turn.rsplit("_", 1)[-1]
    if not turn.startswith("Ses") or len(turn) < 5 or not last or last[0] not in "FM":
        raise ValueError(turn)
    return turn[:5] + last[0]


def read_transcripts(path: Path) -> dict[str, str]:
    """Turn id -> text from a ``dialog/transcriptions`` file (missing file -> empty)."""
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = TRANSCRIPT.match(line.strip())
        if m:
            out[m.group(1)] = m.group(4).strip()
    return out


def read_evaluation(path: Path) -> Iterator[tuple[int, str, str, float, float, list[float]]]:
    """(line number, turn, label code, start, end, [v, a, d]) for every summary line."""
    for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.startswith("["):
            continue
        m = SUMMARY.match(line)
        if not m:
            raise ManifestError(f"{path}, line {n}: malformed summary line {line!r} "
                                "(expected '[START - END]<TAB>TURN<TAB>LABEL<TAB>[V, A, D]')")
        try:
            vad = [float(x) for x in m.group(5).split(",") if x.strip()]
        except ValueError:
            vad = []
        yield n, m.group(3), m.group(4), float(m.group(1)), float(m.group(2)), vad


def iter_utterances(root: str, sessions: Sequence[int] = (1, 2, 3, 4, 5), keep_unagreed: bool = False,
                    improvised_only: bool = False) -> Iterator[Utterance]:
    """Utterances of the chosen sessions (agreed labels only unless ``keep_unagreed``)."""
    base = require_dir(root, "iemocap", LAYOUT)
    found = False
    for s in sessions:
        session_dir = base / f"Session{s}"
        eval_dir = session_dir / "dialog" / "EmoEvaluation"
        if not eval_dir.is_dir():
            continue
        found = True
        for ev in sorted(eval_dir.glob("*.txt")):
            if ev.name.startswith("."):
                continue
            dialogue = ev.stem
            improvised = "impro" in dialogue
            if improvised_only and not improvised:
                continue
            texts = read_transcripts(session_dir / "dialog" / "transcriptions" / f"{dialogue}.txt")
            for n, turn, code, t0, t1, vad in read_evaluation(ev):
                if code == NO_AGREEMENT and not keep_unagreed:
                    continue
                if code not in CODES and code != NO_AGREEMENT:
                    raise ManifestError(f"{ev}, line {n}: unknown IEMOCAP label {code!r} "
                                        f"(known: {', '.join(sorted(CODES))}, xxx)")
                try:
                    speaker = speaker_of(turn)
                except ValueError:
                    raise ManifestError(f"{ev}, line {n}: turn id {turn!r} does not end in _F### or _M###") from None
                yield Utterance(
                    id=turn,
                    path=str(session_dir / "sentences" / "wav" / dialogue / f"{turn}.wav"),
                    speaker=speaker,
                    label=CODES.get(code, "unagreed"),
                    corpus="iemocap",
                    group=dialogue,
                    text=texts.get(turn, ""),
                    extra={"session": turn[:5], "dialogue": dialogue, "improvised": improvised, "vad": vad,
                           "dialog_start": t0, "dialog_end": t1},
                )
    if not found:
        raise ManifestError(f"iemocap: no Session*/dialog/EmoEvaluation folder under {base} for sessions "
                            f"{list(sessions)} (expected layout: {LAYOUT})")
