"""Quality floors of the bundled models on clips of speakers they never trained on.

Each bundled model's card lists its held-out speakers; :func:`held_out_clips` draws a fixed,
seeded sample of their clips per label (corpus labels mapped the way the model's training mapped
them) and :func:`held_out_ua` scores a recognizer on it (unweighted accuracy = mean recall).
The tests take the ``corpora_dir`` fixture, so they skip with a reason when ../shared is absent.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np


def held_out_clips(corpora_dir: Path, corpora: Iterable[str], speakers: Iterable[str], labels: Sequence[str],
                   label_map: Any = None, per_label: int = 12, seed: int = 0) -> dict[str, list[str]]:
    """``{label: paths}``: up to ``per_label`` clips per label of ``speakers``, drawn with ``seed``.
    ``label_map`` (an :class:`emovox.corpora.labels.LabelMap`) relabels the loaders' labels first."""
    from emovox.corpora.registry import load_corpus

    held_out = set(speakers)
    by_label: dict[str, list[str]] = defaultdict(list)
    for corpus in corpora:
        utts = [u for u in load_corpus(corpus, str(corpora_dir / corpus), check_files=False) if u.speaker in held_out]
        for u in label_map.apply(utts) if label_map is not None else utts:
            if u.label in labels:
                by_label[u.label].append(u.path)
    assert by_label, f"no clips of the held-out speakers {sorted(held_out)} in {list(corpora)}"
    rng = np.random.default_rng(seed)
    return {k: list(rng.choice(v, size=min(per_label, len(v)), replace=False)) for k, v in by_label.items()}


def held_out_ua(recognizer: Any, clips: dict[str, list[str]]) -> tuple[float, dict[str, float]]:
    """(UA, recall per label) of ``recognizer`` on :func:`held_out_clips`' sample."""
    recalls = {label: float(np.mean([p.label == label for p in recognizer.predict(paths)]))
               for label, paths in clips.items()}
    return float(np.mean(list(recalls.values()))), recalls
