"""Corpora: the typed manifest, label maps and one loader per corpus layout.

``load_corpus(name, root, **kw)`` returns a validated list of :class:`Utterance`.
"""

from emovox.corpora.labels import (
    CANONICAL,
    PRESETS,
    LabelMap,
    apply_labels,
    label_map_from_config,
    normalize_label,
)
from emovox.corpora.manifest import (
    Utterance,
    by_id,
    fill_durations,
    label_counts,
    read_manifest,
    select,
    speaker_counts,
    validate,
    write_manifest,
)
from emovox.corpora.registry import CORPORA, SPEAKER_ONLY, corpus_module, iter_corpus, load_corpus, load_data

__all__ = [
    "CANONICAL",
    "CORPORA",
    "SPEAKER_ONLY",
    "corpus_module",
    "iter_corpus",
    "load_corpus",
    "load_data",
    "normalize_label",
    "PRESETS",
    "LabelMap",
    "Utterance",
    "apply_labels",
    "by_id",
    "fill_durations",
    "label_counts",
    "label_map_from_config",
    "read_manifest",
    "select",
    "speaker_counts",
    "validate",
    "write_manifest",
]
