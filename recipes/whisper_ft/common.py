"""Shared by run.py and probes.py: a recipe's utterances, classes and folds (the baselines' way)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from emovox.corpora import apply_labels, label_map_from_config, load_data
from emovox.errors import ConfigError
from emovox.protocols import Fold, make_folds

HERE = Path(__file__).resolve().parent


def read_recipe(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"recipe {p} not found; see {HERE}/*.yaml")
    raw = yaml.safe_load(p.read_text()) or {}
    if not isinstance(raw.get("data"), dict):
        raise ConfigError(f"{p}: a 'data' section (corpus + root, or manifest) is required")
    raw["base_dir"] = str(p.parent)
    return raw


def recipe_data(raw: dict[str, Any]) -> tuple[list, list[str], list[Fold]]:
    """Utterances (label map applied), class order and folds of a recipe's ``data`` section."""
    d, base = raw["data"], Path(raw.get("base_dir", "."))

    def resolve(p: str | None) -> str | None:
        return None if p is None else str(p if Path(p).is_absolute() else base / p)

    utts = apply_labels(load_data(resolve(d.get("manifest")), d.get("corpus"), resolve(d.get("root")),
                                  d.get("corpus_args")), d.get("labels"))
    if not utts:
        raise ConfigError(f"no utterances left after the label map {d.get('labels')!r}")
    lm = label_map_from_config(d.get("labels"))
    classes = list(lm.classes) if lm is not None else sorted({u.label for u in utts})
    folds = make_folds(utts, d.get("protocol", "leave_one_speaker_out"), seed=int(raw.get("seed", 0)),
                       **dict(d.get("protocol_args") or {}))
    return utts, classes, folds


def sample_std(values: list[float]) -> float:
    """Standard deviation over folds with ddof=1 (as the baselines' reports); 0 for one fold."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summary(uas: list[float]) -> str:
    """``mean ± sample std`` in %."""
    return f"{100 * np.mean(uas):.1f} ± {100 * sample_std(uas):.1f}" if uas else "-"
