"""Synthetic conversations for ``benchmarks/conversations.py``: corpus clips -> audio and reference turns.

Clips come from ../shared/corpora (16 kHz FLAC): RAVDESS and EmoDB with their emotions,
LibriSpeech samples without. :func:`pools` keeps the default model's held-out speakers for
``eval`` and the others for ``calibrate``; :func:`build` joins turns of level-matched, speech-trimmed
clips of 2-4 speakers into one recording with its reference (start, end, speaker, emotion).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpora"
SR = 16000
RAVDESS = {"01": "neutral", "03": "happy", "04": "sad", "05": "angry", "06": "fear", "07": "disgust", "08": "surprise"}
#: Every clip is scaled to this RMS (-26 dBFS) so that speakers from different corpora are equally loud.
LEVEL = 0.05
EMODB = {"W": "angry", "E": "disgust", "A": "fear", "F": "happy", "T": "sad", "N": "neutral"}


@dataclass
class Clip:
    path: Path
    speaker: str
    emotion: str | None


def corpus_clips(root: Path = SHARED) -> list[Clip]:
    """Every usable clip of RAVDESS, EmoDB (with emotions) and LibriSpeech samples (without)."""
    clips = []
    for p in sorted((root / "ravdess").rglob("*.flac")):
        f = p.stem.split("-")
        if f[2] in RAVDESS:
            clips.append(Clip(p, f"Actor_{f[6]}", RAVDESS[f[2]]))
    for p in sorted((root / "emodb" / "wav").glob("*.flac")):
        if p.stem[5] in EMODB:
            clips.append(Clip(p, p.stem[:2], EMODB[p.stem[5]]))
    for p in sorted((root / "librispeech-samples").rglob("*.flac")):
        clips.append(Clip(p, "ls" + p.parent.name, None))
    return clips


def corpus_of(speaker: str) -> str:
    """The corpus of a speaker name of :func:`corpus_clips`."""
    return "ravdess" if speaker.startswith("Actor_") else "librispeech" if speaker.startswith("ls") else "emodb"


def test_speakers() -> list[str]:
    """Speakers the bundled default model never trained on (its validation speakers, model card)."""
    config = json.loads((REPO / "src" / "emovox" / "assets" / "default_model" / "config.json").read_text())
    return list(config["card"]["valid_speakers"])


def pools(clips: list[Clip], split: str) -> dict[str, list[Clip]]:
    held = set(test_speakers())
    keep = (lambda c: c.speaker in held) if split == "eval" else (lambda c: c.speaker not in held)
    out: dict[str, list[Clip]] = {}
    for c in clips:
        if keep(c) and not (split == "calibrate" and c.speaker.startswith("Actor_") and int(c.speaker[6:]) > 9):
            out.setdefault(c.speaker, []).append(c)
    return out


_TRIM: dict[Path, tuple[np.ndarray, list[tuple[float, float]]]] = {}


def forget_trimmed() -> None:
    """Empty :func:`trimmed`'s cache (a long pass over many clips, e.g. recipes/speaker_lda)."""
    _TRIM.clear()


def trimmed(path: Path) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The clip from its first to its last speech and its speech regions (Sohn VAD on the clean clip), cached."""
    if path not in _TRIM:
        import soundfile as sf

        from emovox.vad import build_vad

        x, sr = sf.read(path, dtype="float32")
        assert sr == SR, f"{path}: {sr} Hz"
        x = x if x.ndim == 1 else x.mean(axis=1)
        regions = build_vad("sohn").regions(x)
        if not regions:
            regions = [(0.0, x.size / SR)]
        a = regions[0][0]
        x = x * (LEVEL / max(float(np.sqrt(np.mean(x[int(a * SR):int(regions[-1][1] * SR)] ** 2))), 1e-6))
        _TRIM[path] = (x[int(a * SR):int(regions[-1][1] * SR)], [(float(s - a), float(e - a)) for s, e in regions])
    return _TRIM[path]


def build(rng: np.random.Generator, pool: dict[str, list[Clip]], n_speakers: int, turns: int, mix: str,
          overlap: bool, noise_db: float | None, same_corpus: bool = False, tracks: bool = False,
          ) -> tuple[np.ndarray, list[tuple[float, float, str, str | None]]]:
    """One conversation -> (audio, reference [(start, end, speaker, emotion), ...] per speech region of a clip).

    ``same_corpus``: every speaker from one corpus (one recording setup, as in a real call or
    meeting), the corpus drawn among those with enough speakers. ``tracks``: audio of shape
    (samples, speakers), each speaker alone in its column (sorted by name; no noise added), as a
    call recorder with one channel per side would store it."""
    names = sorted(pool)
    if same_corpus:
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(corpus_of(name), []).append(name)
        usable = sorted(g for g, members in groups.items() if len(members) >= n_speakers)
        names = groups[str(rng.choice(usable))]
    speakers = list(rng.choice(names, n_speakers, replace=False))
    pieces: list[tuple[int, np.ndarray]] = []
    owners: list[int] = []
    ref = []
    t, prev = 0, None
    for _ in range(turns):
        spk = str(rng.choice([s for s in speakers if s != prev] or speakers))
        prev = spk
        start_turn = True
        for _ in range(int(rng.integers(1, 7))):
            choices = pool[spk]
            if mix != "none" and choices[0].emotion is not None:
                emotions = sorted({c.emotion for c in choices})
                want = "neutral" if mix == "skewed" and rng.random() < 0.7 else str(rng.choice(
                    [e for e in emotions if e != "neutral"] if mix == "skewed" else emotions))
                choices = [c for c in choices if c.emotion == want] or choices
            clip = choices[int(rng.integers(len(choices)))]
            x, speech = trimmed(clip.path)
            gap = rng.uniform(0.2, 1.5)
            if overlap and start_turn and pieces and rng.random() < 0.3:
                gap = -rng.uniform(0.1, 0.5)
            t = max(0, t + int(gap * SR)) if pieces else 0
            pieces.append((t, x))
            owners.append(sorted(speakers).index(spk))
            ref += [(t / SR + a, t / SR + b, spk, clip.emotion) for a, b in speech]
            t += x.size
            start_turn = False
    length = max(s + x.size for s, x in pieces) + SR // 2
    if tracks:
        out = np.zeros((length, n_speakers), np.float32)
        for (s, x), k in zip(pieces, owners):
            out[s:s + x.size, k] += x
        return out, ref
    audio = np.zeros(length, np.float32)
    for s, x in pieces:
        audio[s:s + x.size] += x
    if noise_db is not None:
        power = np.mean(np.concatenate([x for _, x in pieces]) ** 2)
        audio += rng.standard_normal(audio.size).astype(np.float32) * np.sqrt(power / 10 ** (noise_db / 10))
    return audio, ref
