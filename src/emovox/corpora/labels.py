"""Canonical emotion names and label maps from corpus labels to an experiment's class set.

Every loader writes one of the :data:`CANONICAL` names (full lowercase English) into the
manifest, whatever the corpus calls it:

============ ========== ========= ======== ===== ======= =========== ========= =======
canonical    IEMOCAP    RAVDESS   TESS     EmoDB CREMA-D MELD        nEMO      ASED
============ ========== ========= ======== ===== ======= =========== ========= =======
angry        ang        05 angry  angry    W     ANG     anger       anger     Angry
boredom      --         --        --       L     --      --          --        --
calm         --         02 calm   --       --    --      --          --        --
disgust      dis        07        disgust  E     DIS     disgust     --        --
excited      exc        --        --       --    --      --          --        --
fear         fea        06        fear     A     FEA     fear        fear      Fearful
frustrated   fru        --        --       --    --      --          --        --
happy        hap        03        happy    F     HAP     joy         happiness Happy
neutral      neu        01        neutral  N     NEU     neutral     neutral   Neutral
other        oth        --        --       --    --      --          --        --
sad          sad        04        sad      T     SAD     sadness     sadness   Sad
surprise     sur        08        ps       --    --      surprise    surprised --
============ ========== ========= ======== ===== ======= =========== ========= =======

A :class:`LabelMap` then chooses the experiment's classes (ordered: the order is the class
index order of models and confusion matrices) and merges labels (``excited -> happy``).
**Labels that the map does not cover are dropped** (counted and logged), because experiments
routinely use a subset (IEMOCAP Exp 1 drops frustrated, excited, ...). Pass ``unmapped="error"``
to make any uncovered label raise :class:`ConfigError` instead.

In a recipe: ``labels: iemocap_exp3`` (a preset name) or
``labels: {classes: [angry, happy, neutral, sad], map: {excited: happy}, unmapped: drop}``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from emovox.corpora.manifest import Utterance
from emovox.errors import ConfigError

log = logging.getLogger(__name__)

CANONICAL = (
    "angry", "boredom", "calm", "disgust", "excited", "fear", "frustrated",
    "happy", "neutral", "other", "sad", "surprise",
)
#: Common spellings of the canonical names (used for user CSVs by :func:`normalize_label`).
ALIASES = {
    "anger": "angry", "ang": "angry", "mad": "angry", "bored": "boredom", "disgusted": "disgust",
    "dis": "disgust", "exc": "excited", "excitement": "excited", "fearful": "fear", "afraid": "fear",
    "fea": "fear", "anxiety": "fear", "frustration": "frustrated", "fru": "frustrated", "happiness": "happy",
    "joy": "happy", "hap": "happy", "neu": "neutral", "sadness": "sad", "surprised": "surprise",
    "sur": "surprise", "ps": "surprise", "pleasant_surprise": "surprise", "oth": "other",
}


def normalize_label(name: str) -> str:
    """Lower-case ``name`` and map common spellings to the canonical name (others kept as is)."""
    key = name.strip().lower().replace(" ", "_")
    return ALIASES.get(key, key)


@dataclass(frozen=True)
class LabelMap:
    """Ordered target classes plus a source->target map; identity for target names."""

    classes: tuple[str, ...]
    mapping: Mapping[str, str] = field(default_factory=dict)
    unmapped: str = "drop"
    name: str = "custom"

    def __post_init__(self) -> None:
        if not self.classes:
            raise ConfigError(f"label map {self.name!r}: 'classes' is empty (list the target classes)")
        if len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"label map {self.name!r}: duplicate class in {list(self.classes)}")
        bad = {k: v for k, v in self.mapping.items() if v not in self.classes}
        if bad:
            raise ConfigError(
                f"label map {self.name!r}: map targets {bad} are not among classes {list(self.classes)}"
            )
        if self.unmapped not in ("drop", "error"):
            raise ConfigError(f"label map {self.name!r}: unmapped must be 'drop' or 'error', got {self.unmapped!r}")

    def target(self, label: str) -> str | None:
        """The class ``label`` maps to, or None when it is not covered."""
        if label in self.mapping:
            return self.mapping[label]
        return label if label in self.classes else None

    def index(self, label: str) -> int:
        """Class index of a *target* label."""
        return self.classes.index(label)

    def apply(self, utterances: Iterable[Utterance]) -> list[Utterance]:
        """Relabel utterances; uncovered labels are dropped (logged) or raise (``unmapped='error'``)."""
        out: list[Utterance] = []
        dropped: Counter[str] = Counter()
        for u in utterances:
            t = self.target(u.label)
            if t is None:
                if self.unmapped == "error":
                    raise ConfigError(
                        f"label map {self.name!r}: utterance {u.id!r} has label {u.label!r} which is not mapped "
                        f"to any of {list(self.classes)} (add it to 'map' or set unmapped: drop)"
                    )
                dropped[u.label] += 1
                continue
            out.append(u if t == u.label else u.with_label(t))
        if dropped:
            log.info("label map %s dropped %d utterances: %s", self.name, sum(dropped.values()), dict(dropped))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "classes": list(self.classes), "map": dict(self.mapping), "unmapped": self.unmapped}


def _preset(name: str, classes: Sequence[str], mapping: Mapping[str, str] | None = None) -> LabelMap:
    return LabelMap(tuple(classes), dict(mapping or {}), "drop", name)


PRESETS: dict[str, LabelMap] = {
    # seed 000/001 IEMOCAP experiments (Table 2): 4490 / 4936 / 5531 utterances.
    "iemocap_exp1": _preset("iemocap_exp1", ("angry", "happy", "neutral", "sad")),
    "iemocap_exp2": _preset("iemocap_exp2", ("angry", "excited", "neutral", "sad")),
    "iemocap_exp3": _preset("iemocap_exp3", ("angry", "happy", "neutral", "sad"), {"excited": "happy"}),
    "four_class": _preset("four_class", ("angry", "happy", "neutral", "sad")),
    "four_class_calm": _preset("four_class_calm", ("angry", "happy", "neutral", "sad"), {"calm": "neutral"}),
    "emodb7": _preset("emodb7", ("angry", "boredom", "disgust", "fear", "happy", "neutral", "sad")),
    "ravdess8": _preset("ravdess8", ("angry", "calm", "disgust", "fear", "happy", "neutral", "sad", "surprise")),
    "tess7": _preset("tess7", ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")),
    "cremad6": _preset("cremad6", ("angry", "disgust", "fear", "happy", "neutral", "sad")),
    "meld7": _preset("meld7", ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")),
    "nemo6": _preset("nemo6", ("angry", "fear", "happy", "neutral", "sad", "surprise")),
    "ased5": _preset("ased5", ("angry", "fear", "happy", "neutral", "sad")),
}


def label_map_from_config(spec: str | Mapping[str, Any] | LabelMap | None, default_name: str = "custom") -> LabelMap | None:
    """A :class:`LabelMap` from a preset name, a ``{classes, map, unmapped}`` dict, or None (no map)."""
    if spec is None or isinstance(spec, LabelMap):
        return spec
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ConfigError(f"unknown label map {spec!r} (presets: {', '.join(sorted(PRESETS))})")
        return PRESETS[spec]
    if not isinstance(spec, Mapping):
        raise ConfigError(f"labels must be a preset name or a mapping, got {type(spec).__name__}")
    unknown = set(spec) - {"classes", "map", "unmapped", "name"}
    if unknown:
        raise ConfigError(f"labels: unknown key(s) {sorted(unknown)} (allowed: classes, map, unmapped, name)")
    classes = spec.get("classes")
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        raise ConfigError("labels.classes must be a list of label names, e.g. [angry, happy, neutral, sad]")
    mapping = spec.get("map") or {}
    if not isinstance(mapping, Mapping):
        raise ConfigError("labels.map must be a mapping from corpus label to class, e.g. {excited: happy}")
    return LabelMap(tuple(classes), {str(k): str(v) for k, v in mapping.items()},
                    str(spec.get("unmapped", "drop")), str(spec.get("name", default_name)))


def apply_labels(utterances: Iterable[Utterance], spec: str | Mapping[str, Any] | LabelMap | None) -> list[Utterance]:
    """Apply a label map given in any form accepted by :func:`label_map_from_config`."""
    lm = label_map_from_config(spec)
    return list(utterances) if lm is None else lm.apply(utterances)
