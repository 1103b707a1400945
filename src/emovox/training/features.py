"""The one "cache each utterance's features" loop every runner uses.

:func:`cached_arrays` runs one or more extractors (16 kHz samples -> named float32 arrays) over
utterances; each extractor's arrays are kept in its own :class:`emovox.cache.FeatureCache` folder
(named by the extractor key), keyed by the utterance's file and segment
(:attr:`Utterance.cache_key`). Audio is decoded (:meth:`Utterance.load_audio`) at most once per
utterance and only when some extractor has no cached entry for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from tqdm.auto import tqdm

from emovox.cache import Extractor, FeatureCache
from emovox.corpora import Utterance


def cached_arrays(utterances: Sequence[Utterance], extractors: Sequence[tuple[str, Extractor]],
                  cache_dir: str | Path | None = None, progress: bool = False, desc: str = "features"
                  ) -> Iterator[list[dict[str, np.ndarray]]]:
    """For each utterance (in order), the arrays of every ``(key, extractor)``, cached under ``key``."""
    caches = [(FeatureCache(cache_dir, key), extract) for key, extract in extractors]
    for utt in tqdm(utterances, desc=desc, unit="utt", disable=not progress):
        memo: dict[str, np.ndarray] = {}

        def samples(u: Utterance = utt, memo: dict[str, np.ndarray] = memo) -> np.ndarray:
            if "x" not in memo:
                memo["x"] = u.load_audio()
            return memo["x"]

        def compute(extract: Extractor) -> Callable[[], dict[str, np.ndarray]]:
            return lambda: extract(samples())

        yield [cache.get_or_compute(utt.cache_key, compute(extract)) for cache, extract in caches]


__all__ = ["Extractor", "cached_arrays"]
