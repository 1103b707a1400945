"""The default model's data: five corpora, seven classes, cached pooled Whisper layers, weights."""

from __future__ import annotations

import glob
import os
from collections import Counter
from pathlib import Path

import numpy as np

from emovox.corpora.manifest import Utterance
from emovox.corpora.registry import load_corpus

CORPORA = ("ravdess", "tess", "emodb", "nemo", "ased")
LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
DROPPED = ("calm", "boredom")  # RAVDESS calm and EmoDB boredom are outside the 7-class set


def load_utterances(root: str) -> list[Utterance]:
    """Every clip of the five corpora with a label in :data:`LABELS`."""
    utts: list[Utterance] = []
    for corpus in CORPORA:
        utts += [u for u in load_corpus(corpus, os.path.join(root, corpus), check_files=False) if u.label in LABELS]
    return utts


def load_features(feats_dir: str, root: str, utts: list[Utterance], variant: str = "base-none") -> np.ndarray:
    """``(N, L + 1, 2d)`` float32 pooled hidden states in ``utts`` order (KeyError names a missing clip)."""
    table: dict[str, np.ndarray] = {}
    for shard in sorted(glob.glob(os.path.join(feats_dir, variant, "*", "*.npz"))):
        with np.load(shard) as z:
            for rel, f in zip(z["paths"], z["feats"]):
                table[str(rel)] = f
    rel = [os.path.relpath(u.path, root) for u in utts]
    missing = [r for r in rel if r not in table]
    if missing:
        raise KeyError(f"{len(missing)} clips have no cached features in {feats_dir}/{variant}, e.g. {missing[0]}; "
                       "run recipes/generalist/features.py first")
    return np.stack([table[r] for r in rel]).astype(np.float32)


def balanced_weights(utts: list[Utterance]) -> np.ndarray:
    """Class- and corpus-balanced sample weights.

    Within a class every corpus that has it gets the same total weight, and every class gets the
    same total weight: ``w = 1 / (n(corpus, class) * corpora_with(class))``.
    """
    cell = Counter((u.corpus, u.label) for u in utts)
    per_class = Counter(label for _, label in cell)
    w = np.array([1.0 / (cell[(u.corpus, u.label)] * per_class[u.label]) for u in utts])
    return w / w.mean()


def indices(utts: list[Utterance], ids: list[str]) -> np.ndarray:
    pos = {u.id: i for i, u in enumerate(utts)}
    return np.array([pos[i] for i in ids], dtype=np.int64)


def label_ids(utts: list[Utterance]) -> np.ndarray:
    return np.array([LABELS.index(u.label) for u in utts], dtype=np.int64)


def results_dir(out: str) -> Path:
    p = Path(out)
    p.mkdir(parents=True, exist_ok=True)
    return p
