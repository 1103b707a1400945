"""``load_corpus(name, root)``: one entry point for every supported corpus layout.

Each loader module defines ``iter_utterances(root, **kw)`` (lazy, so callers can show
progress) and ``LAYOUT`` (a one-line description for error messages and ``--help``).
"""

from __future__ import annotations

import importlib
import inspect
import os
from types import ModuleType
from typing import Any, Iterator, Mapping

from emovox.corpora.labels import LabelMap, label_map_from_config
from emovox.corpora.manifest import Utterance, validate
from emovox.errors import ManifestError

CORPORA = {
    "iemocap": "iemocap",
    "ravdess": "ravdess",
    "tess": "tess",
    "emodb": "emodb",
    "nemo": "nemo",
    "ased": "ased",
    "cremad": "cremad",
    "meld": "meld",
    "voxceleb": "voxceleb",
    "librispeech": "librispeech",
    "generic": "generic",
}
ALIASES = {"crema-d": "cremad", "crema_d": "cremad", "emo-db": "emodb", "csv": "generic", "vox": "voxceleb"}
#: Corpora without emotion labels (speaker pretraining): their ``label`` is empty.
SPEAKER_ONLY = frozenset({"voxceleb", "librispeech"})


def corpus_module(name: str) -> ModuleType:
    """The loader module for a corpus name (case-insensitive; aliases such as ``crema-d``)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in CORPORA:
        raise ManifestError(f"unknown corpus {name!r} (supported: {', '.join(CORPORA)}; "
                            "for your own data use 'generic' with a CSV of path,label,speaker)")
    return importlib.import_module(f"emovox.corpora.{CORPORA[key]}")


def iter_corpus(name: str, root: str, **kwargs: Any) -> Iterator[Utterance]:
    """Utterances of a corpus as they are found (not yet validated)."""
    module = corpus_module(name)
    try:
        inspect.signature(module.iter_utterances).bind(root, **kwargs)
    except TypeError as exc:
        raise ManifestError(f"corpus {name!r}: bad option ({exc})") from None
    return module.iter_utterances(os.path.abspath(os.path.expanduser(str(root))), **kwargs)


def load_corpus(name: str, root: str, labels: str | Mapping[str, Any] | LabelMap | None = None,
                check_files: bool = True, **kwargs: Any) -> list[Utterance]:
    """Load, validate and (optionally) relabel a corpus.

    ``labels`` is a label-map preset name or config (see :mod:`emovox.corpora.labels`); extra
    keyword arguments go to the corpus loader (e.g. ``sessions=[1, 2]`` for IEMOCAP).
    """
    key = ALIASES.get(name.lower(), name.lower())
    utts = list(iter_corpus(name, root, **kwargs))
    if not utts:
        layout = corpus_module(name).LAYOUT
        raise ManifestError(f"{name}: no utterances found under {root} (expected layout: {layout})")
    validate(utts, f"{name} corpus at {root}", check_files=check_files, require_label=key not in SPEAKER_ONLY)
    lm = label_map_from_config(labels)
    return utts if lm is None else lm.apply(utts)


def load_data(manifest: str | os.PathLike | None = None, corpus: str | None = None,
              root: str | os.PathLike | None = None, corpus_args: Mapping[str, Any] | None = None) -> list[Utterance]:
    """A recipe's ``data`` section: a manifest file, or a corpus loader run over its root folder.

    Paths are taken as given (callers resolve them against the recipe's folder first).
    """
    from emovox.corpora.manifest import read_manifest
    from emovox.errors import ConfigError

    if manifest is not None:
        return read_manifest(manifest)
    if corpus is None:
        raise ConfigError("data: give either data.manifest or data.corpus + data.root")
    if root is None:
        raise ConfigError("data.root: the corpus folder is required with data.corpus")
    return load_corpus(corpus, str(root), **dict(corpus_args or {}))
