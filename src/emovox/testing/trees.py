"""Miniature corpus trees in exactly the official file layouts, with tiny tone "speech".

Used by the loader tests and by recipe smoke tests (IEMOCAP and CREMA-D cannot be shipped;
VoxCeleb is huge). Every clip is a short harmonic tone whose pitch depends on the label and
the speaker, so a model trained on a tree can learn something in a few steps.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

SAMPLE_RATE = 16_000

#: Per-label utterance counts of the real IEMOCAP release for the labels seed 000 uses
#: (Exp 1 = 4490, Exp 2 = 4936, Exp 3 = 5531).
IEMOCAP_REAL_COUNTS = {"ang": 1103, "hap": 595, "exc": 1041, "neu": 1708, "sad": 1084}
IEMOCAP_SMALL_COUNTS = {"ang": 6, "hap": 4, "exc": 5, "neu": 8, "sad": 6, "fru": 3, "xxx": 3}
_IEMOCAP_NAMES = {
    "ang": "Anger", "hap": "Happiness", "exc": "Excited", "neu": "Neutral state", "sad": "Sadness",
    "fru": "Frustration", "sur": "Surprise", "fea": "Fear", "dis": "Disgust", "oth": "Other",
}


def tone(seconds: float, freq: float, seed: int = 0, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A harmonic tone with a little noise (a cheap stand-in for voiced speech)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    x = sum(0.3 / k * np.sin(2 * np.pi * freq * k * t) for k in range(1, 5))
    return (x + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


class _Writer:
    """Writes tones, caching one waveform per (label, speaker) pitch."""

    def __init__(self, seconds: float, labels: Sequence[str], speakers: Sequence[str],
                 audio_format: tuple[str, str] = ("WAV", "PCM_16")) -> None:
        import soundfile as sf

        self._sf = sf
        self.audio_format = audio_format
        self.seconds = seconds
        self.lab = {lab: i for i, lab in enumerate(sorted(set(labels)))}
        self.spk = {s: i for i, s in enumerate(sorted(set(speakers)))}
        self.cache: dict[tuple[str, str], bytes] = {}
        self.dirs: set[Path] = set()

    def write(self, path: Path, label: str, speaker: str) -> None:
        key = (label, speaker)
        if key not in self.cache:
            freq = 110.0 + 45.0 * self.lab.get(label, 0) + 7.0 * self.spk.get(speaker, 0)
            buf = io.BytesIO()
            self._sf.write(buf, tone(self.seconds, freq, seed=len(self.cache)), SAMPLE_RATE,
                           format=self.audio_format[0], subtype=self.audio_format[1])
            self.cache[key] = buf.getvalue()
        if path.parent not in self.dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.dirs.add(path.parent)
        path.write_bytes(self.cache[key])


def _interleave(counts: Mapping[str, int]) -> list[str]:
    left = dict(sorted(counts.items()))
    out: list[str] = []
    while any(left.values()):
        for code in left:
            if left[code]:
                out.append(code)
                left[code] -= 1
    return out


def make_iemocap_tree(root: str | os.PathLike, counts: Mapping[str, int] | None = None, sessions: int = 5,
                      seconds: float = 0.25) -> Path:
    """An ``IEMOCAP_full_release``-like tree with ``counts[code]`` turns per summary label.

    Codes are IEMOCAP's (``ang hap exc neu sad fru sur fea dis oth xxx``). Turns are spread over
    ``sessions`` sessions x 2 actors (F, M) x 2 dialogues (``impro01``, ``script01_1``).
    Writes EmoEvaluation files (header, summary lines, annotator lines, a decoy
    ``Categorical/`` sub-folder), one wav per turn and transcriptions. Returns ``root``.
    """
    counts = dict(IEMOCAP_SMALL_COUNTS if counts is None else counts)
    base = Path(root)
    codes = _interleave(counts)
    speakers = [f"Ses{s:02d}{g}" for s in range(1, sessions + 1) for g in "FM"]
    writer = _Writer(seconds, list(counts), speakers)
    dialogues: dict[tuple[int, str], list[tuple[str, str, float, float]]] = {}
    turn_no: dict[tuple[str, str], int] = {}
    for k, code in enumerate(codes):
        s = k % sessions + 1
        gender = "FM"[(k // sessions) % 2]
        dialogue = f"Ses{s:02d}F_impro01" if (k // (2 * sessions)) % 2 == 0 else f"Ses{s:02d}M_script01_1"
        n = turn_no.get((dialogue, gender), 0)
        turn_no[(dialogue, gender)] = n + 1
        turn = f"{dialogue}_{gender}{n:03d}"
        turns = dialogues.setdefault((s, dialogue), [])
        t0 = 1.0 + len(turns) * (seconds + 0.5)
        turns.append((turn, code, t0, t0 + seconds))
        writer.write(base / f"Session{s}" / "sentences" / "wav" / dialogue / f"{turn}.wav", code, f"Ses{s:02d}{gender}")
    for (s, dialogue), turns in dialogues.items():
        dialog = base / f"Session{s}" / "dialog"
        _write_text(dialog / "EmoEvaluation" / f"{dialogue}.txt", _evaluation_text(turns))
        _write_text(dialog / "EmoEvaluation" / "Categorical" / f"{dialogue}_e1_cat.txt",
                    "".join(f"{t} :{_IEMOCAP_NAMES.get(c, 'Other')}; ()\n" for t, c, _, _ in turns))
        _write_text(dialog / "transcriptions" / f"{dialogue}.txt",
                    "".join(f"{t} [{a:08.4f}-{b:08.4f}]: Synthetic line {i} of {dialogue}.\n"
                            for i, (t, _, a, b) in enumerate(turns)))
    return base


def _evaluation_text(turns: list[tuple[str, str, float, float]]) -> str:
    lines = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    for turn, code, t0, t1 in turns:
        lines.append(f"[{t0:.4f} - {t1:.4f}]\t{turn}\t{code}\t[2.5000, 3.0000, 2.5000]")
        if code == "xxx":  # no majority among the annotators
            cats = ["Anger", "Frustration", "Neutral state"]
        else:
            name = _IEMOCAP_NAMES[code]
            cats = [name, name, "Other"]
        for who, cat in zip(("C-E1", "C-E2", "C-E3"), cats):
            lines.append(f"{who}:\t{cat};\t()")
        lines += ["A-E1:\tval 3; act 3; dom  2;\t()", "A-E2:\tval 2; act 3; dom  3;\t()", ""]
    return "\n".join(lines) + "\n"


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def make_cremad_tree(root: str | os.PathLike, speakers: Sequence[int] = (1001, 1002, 1003, 1004),
                     sentences: Sequence[str] = ("DFA", "IEO"),
                     emotions: Sequence[str] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD"),
                     seconds: float = 0.25) -> Path:
    """A CREMA-D tree: ``AudioWAV/<actor>_<sentence>_<EMO>_<level>.wav`` + ``VideoDemographics.csv``.

    As in the release, sentence IEO is recorded at level HI for emotions (XX for neutral) and all
    other sentences at XX. Returns ``root``.
    """
    base = Path(root)
    writer = _Writer(seconds, emotions, [str(s) for s in speakers])
    for spk in speakers:
        for sent in sentences:
            for emo in emotions:
                level = "HI" if sent == "IEO" and emo != "NEU" else "XX"
                writer.write(base / "AudioWAV" / f"{spk}_{sent}_{emo}_{level}.wav", emo, str(spk))
    rows = ["ActorID,Age,Sex,Race,Ethnicity"]
    rows += [f"{spk},{30 + i},{'Male' if i % 2 == 0 else 'Female'},Caucasian,Not Hispanic" for i, spk in enumerate(speakers)]
    _write_text(base / "VideoDemographics.csv", "\n".join(rows) + "\n")
    return base


def make_voxceleb_tree(root: str | os.PathLike, n_speakers: int = 3, videos_per_speaker: int = 2,
                       utts_per_video: int = 2, seconds: float = 0.5, first_id: int = 10001) -> Path:
    """A VoxCeleb 1 tree: ``wav/idNNNNN/<11-char video id>/NNNNN.wav``. Returns ``root``."""
    base = Path(root)
    rng = np.random.default_rng(0)
    alphabet = np.array(list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"))
    speakers = [f"id{first_id + i:05d}" for i in range(n_speakers)]
    writer = _Writer(seconds, ["speech"], speakers)
    for spk in speakers:
        for _ in range(videos_per_speaker):
            video = "".join(rng.choice(alphabet, 11))
            for u in range(1, utts_per_video + 1):
                writer.write(base / "wav" / spk / video / f"{u:05d}.wav", "speech", spk)
    return base


def make_ravdess_tree(root: str | os.PathLike, actors: int = 4, statements: Sequence[int] = (1,),
                      seconds: float = 0.25) -> Path:
    """A RAVDESS speech tree ``Actor_NN/03-01-EE-II-SS-RR-AA.wav`` (8 emotions, intensity 01/02)."""
    base = Path(root)
    speakers = [f"Actor_{a:02d}" for a in range(1, actors + 1)]
    writer = _Writer(seconds, [f"{e:02d}" for e in range(1, 9)], speakers)
    for a in range(1, actors + 1):
        for emo in range(1, 9):
            for intensity in (1,) if emo == 1 else (1, 2):
                for st in statements:
                    name = f"03-01-{emo:02d}-{intensity:02d}-{st:02d}-01-{a:02d}.wav"
                    writer.write(base / f"Actor_{a:02d}" / name, f"{emo:02d}", f"Actor_{a:02d}")
    return base


def make_emodb_tree(root: str | os.PathLike, speakers: Sequence[str] = ("03", "08", "09", "10"),
                    texts: Sequence[str] = ("a01", "b01"), emotions: str = "WLEAFTN", seconds: float = 0.25) -> Path:
    """An EmoDB tree ``wav/SSTTTEv.wav`` (speaker, text code, emotion letter, version 'a')."""
    base = Path(root)
    writer = _Writer(seconds, list(emotions), list(speakers))
    for spk in speakers:
        for text in texts:
            for emo in emotions:
                writer.write(base / "wav" / f"{spk}{text}{emo}a.wav", emo, spk)
    return base


def make_tess_tree(root: str | os.PathLike, words: Sequence[str] = ("back", "bar", "base"),
                   emotions: Sequence[str] = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad"),
                   seconds: float = 0.25) -> Path:
    """A TESS tree ``<SPK>_<emotion>/<SPK>_<word>_<emotion>.wav`` for speakers OAF and YAF."""
    base = Path(root)
    writer = _Writer(seconds, emotions, ["OAF", "YAF"])
    for spk in ("OAF", "YAF"):
        for emo in emotions:
            for word in words:
                writer.write(base / f"{spk}_{emo}" / f"{spk}_{word}_{emo}.wav", emo, spk)
    return base


#: soundfile (format, subtype) per file extension the trees can write.
_FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".opus": ("OGG", "OPUS")}


def _audio_format(ext: str) -> tuple[str, str]:
    if ext not in _FORMATS:
        raise ValueError(f"unsupported tree audio extension {ext!r} (choose from {', '.join(_FORMATS)})")
    return _FORMATS[ext]


def make_nemo_tree(root: str | os.PathLike, speakers: Sequence[str] = ("EB0", "KS0", "MP0"),
                   emotions: Sequence[str] = ("anger", "fear", "happiness", "neutral", "sadness", "surprised"),
                   sentences: int = 2, seconds: float = 0.25, ext: str = ".opus", tsv: bool = True) -> Path:
    """An nEMO tree ``samples/<SPK>_<emotion>_<n>.opus`` (+ ``data.tsv`` unless ``tsv=False``).

    Sentence numbers run 1..``sentences`` per speaker and emotion; ``data.tsv`` lists every clip
    under its original ``.wav`` name with padded speaker ids, as the release does. Returns ``root``.
    """
    base = Path(root)
    writer = _Writer(seconds, emotions, speakers, _audio_format(ext))
    rows = ["file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage"]
    for i, spk in enumerate(speakers):
        for emo in emotions:
            for n in range(1, sentences + 1):
                writer.write(base / "samples" / f"{spk}_{emo}_{n}{ext}", emo, spk)
                rows.append(f"{spk}_{emo}_{n}.wav\t{emo}\tZdanie numer {n}.\tzdanie numer {n}\t        {spk}\t"
                            f"{'female' if i % 2 else 'male'}\t{20 + i}")
    if tsv:
        _write_text(base / "data.tsv", "\n".join(rows) + "\n")
    return base


_ASED_FOLDERS = {"n": "01Neutral", "f": "02Fearful", "h": "03Happy", "s": "04Sad", "a": "05Angry"}


def make_ased_tree(root: str | os.PathLike, speakers: Sequence[int] = (1, 2, 3, 4), sentences: Sequence[int] = (1, 2),
                   emotions: str = "nfhsa", seconds: float = 0.25, ext: str = ".opus") -> Path:
    """An ASED tree ``<NN><Emotion>/<e><k>-<sentence>-<repetition>-<gender>-<speaker>.opus``.

    Two repetitions per sentence; odd speakers are female (gender field 01), even male (02).
    Returns ``root``.
    """
    base = Path(root)
    names = [f"{s:02d}" for s in speakers]
    writer = _Writer(seconds, list(emotions), names, _audio_format(ext))
    for spk in names:
        gender = "01" if int(spk) % 2 else "02"
        for e in emotions:
            folder = _ASED_FOLDERS[e]
            for sent in sentences:
                for rep in (1, 2):
                    writer.write(base / folder / f"{e}{folder[1]}-{sent:02d}-{rep:02d}-{gender}-{spk}{ext}", e, spk)
    return base
