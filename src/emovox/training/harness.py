"""The fold harness every runner uses: utterances -> folds -> finished-fold bookkeeping -> report.

A runner (CNN/upstream-head experiment, segment level, text, SVM baseline) supplies only what
it trains and scores per fold; this module does the rest, the same way for all of them:

* loads the recipe's utterances (manifest or corpus loader with ``data.corpus_args``), warns
  about labels that are no canonical emotion name, applies the label map;
* makes the folds (``data.protocol`` + ``data.protocol_args``), checks ``data.folds`` (a
  :class:`ConfigError` for an index the protocol does not give), saves ``folds.json``;
* refuses an output folder that holds results of a different recipe (one fingerprint: a hash of
  the runner's recipe mapping without the keys that may change between a run and its resumption);
* one output layout::

      <out>/experiment.json       runner, recipe, fingerprint, classes, folds run, overrides
      <out>/folds.json            every fold of the protocol (deterministic)
      <out>/fold_NN_<name>/       one folder per fold (``..._runR`` per repetition when runs > 1)
          result.json             the fold's metrics; written last, it marks the fold finished
      <out>/report.md|json, confusion.png

* one report writer (:func:`emovox.evaluation.report.write_report`) whose title says when the
  run used ``--override`` edits or a subset of the folds.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from emovox.corpora import CANONICAL, Utterance, apply_labels, label_map_from_config
from emovox.corpora.registry import load_data
from emovox.errors import ConfigError
from emovox.evaluation.report import write_report
from emovox.io import atomic_write_json, read_json
from emovox.protocols import Fold, make_folds, save_folds

log = logging.getLogger(__name__)

RUN_FILE = "experiment.json"
RESULT_FILE = "result.json"


# ----------------------------------------------------------------------------- utterances
def load_utterances(recipe: Any) -> list[Utterance]:
    """The recipe's utterances (its ``data`` section), label map applied (ConfigError/ManifestError)."""
    d = recipe.data
    utts = load_data(recipe.resolve(d.manifest), d.corpus, recipe.resolve(d.root), d.corpus_args)
    warn_unknown_labels(utts)
    utts = apply_labels(utts, d.labels)
    if not utts:
        raise ConfigError(f"data.labels: no utterances left after the label map {d.labels!r}")
    return utts


def warn_unknown_labels(utts: Sequence[Utterance]) -> None:
    """Warn about labels that are no canonical emotion name (typos such as 'angyr')."""
    odd = Counter(u.label for u in utts if u.label not in CANONICAL)
    if odd:
        first = {lab: next(u.id for u in utts if u.label == lab) for lab in odd}
        log.warning("labels that are no emotion name emovox knows (a typo?): %s; first ids: %s. Canonical names: %s",
                    dict(odd), first, ", ".join(CANONICAL))


def class_names(recipe: Any, utterances: Iterable[Utterance]) -> list[str]:
    """Class order: the label map's, else the sorted labels found."""
    lm = label_map_from_config(recipe.data.labels)
    return list(lm.classes) if lm is not None else sorted({u.label for u in utterances})


# ---------------------------------------------------------------------------- fingerprint
def fingerprint(raw: Mapping[str, Any], ignore: Iterable[str] = ()) -> str:
    """16-hex hash of a recipe mapping without the dotted keys in ``ignore`` (``train.epochs``)."""
    data = json.loads(json.dumps(raw, default=str))
    for dotted in ignore:
        *parents, last = dotted.split(".")
        node = data
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return hashlib.sha1(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fold_dir(out: str | Path, index: int, name: str, run: int | None = None) -> Path:
    """``<out>/fold_NN_<name>`` (``_runR`` appended for repetition R of a multi-run recipe)."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in name)
    return Path(out) / (f"fold_{index:02d}_{safe}" + (f"_run{run}" if run is not None else ""))


def check_fold_indices(chosen: Sequence[int], n_folds: int) -> None:
    bad = [i for i in chosen if not isinstance(i, int) or not 0 <= i < n_folds]
    if bad:
        raise ConfigError(f"data.folds: fold index {bad[0]} does not exist (the protocol gives {n_folds} folds); "
                          f"use indices 0..{n_folds - 1}, or drop data.folds to run all folds")


# ------------------------------------------------------------------------------------ run
@dataclass
class FoldRun:
    """A prepared run: utterances, classes, every fold, the chosen ones and the output folder."""

    out: Path
    runner: str
    utterances: list[Utterance]
    classes: list[str]
    folds: list[Fold]
    chosen: list[int]
    fingerprint: str
    overrides: list[str] = field(default_factory=list)

    def selected(self) -> list[tuple[int, Fold]]:
        """``(index, fold)`` of the folds this run trains, in order."""
        return [(i, self.folds[i]) for i in self.chosen]

    def fold_dir(self, index: int, fold: Fold, run: int | None = None) -> Path:
        return fold_dir(self.out, index, fold.name, run)

    def finished(self, fdir: Path) -> dict[str, Any] | None:
        """The saved result of a finished fold of this recipe, else None (then the fold is run)."""
        path = fdir / RESULT_FILE
        if not path.is_file():
            return None
        result = read_json(path)
        if result.get("fingerprint") != self.fingerprint:
            log.info("%s: written by another recipe version; the fold is run again", path)
            return None
        return result

    def finish(self, fdir: Path, result: dict[str, Any]) -> dict[str, Any]:
        """Write ``result.json`` (last, atomically: it marks the fold finished)."""
        result = {**result, "fingerprint": self.fingerprint}
        atomic_write_json(fdir / RESULT_FILE, result)
        return result

    def title(self, base: str) -> str:
        """``base`` plus what makes this run differ from the recipe file: fold subset, overrides."""
        notes = []
        if len(self.chosen) < len(self.folds):
            notes.append(f"folds {', '.join(str(i) for i in self.chosen)} of {len(self.folds)}")
        if self.overrides:
            notes.append(f"overrides: {', '.join(self.overrides)}")
        return base + "".join(f" [{n}]" for n in notes)

    def report(self, results: Sequence[Mapping[str, Any]], title: str,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The one report writer (report.md/json, confusion.png) with the annotated title."""
        info = {"runner": self.runner, "folds_run": list(self.chosen), "n_folds_protocol": len(self.folds),
                "overrides": list(self.overrides), **dict(extra or {})}
        return write_report(self.out, results, self.classes, title=self.title(title), extra=info)


def prepare_run(out_dir: str | Path, runner: str, recipe: Any, raw: Mapping[str, Any], *,
                ignore: Iterable[str] = (), overrides: Sequence[str] = (), meta: Mapping[str, Any] | None = None,
                utterances: Callable[[list[Utterance]], list[Utterance]] | None = None,
                protocol_key: Callable[[str], Any] | None = None) -> FoldRun:
    """Load, fold, check and record a run of ``recipe`` (its dict form ``raw``) into ``out_dir``.

    ``ignore`` lists the dotted recipe keys that may change between a run and its resumption
    (and ``data.folds``, always); ``utterances`` may transform the loaded utterances (e.g. fill
    transcripts); ``protocol_key`` wraps fold making to name the recipe key in errors.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():  # before the corpus loads: a run writes a folder
        raise ConfigError(f"{out}: a file of that name exists; a run writes a folder there: give another --out")
    fp = fingerprint(raw, [*ignore, "data.folds"])
    meta_path = out / RUN_FILE
    if meta_path.is_file():
        old = read_json(meta_path).get("fingerprint")
        if old is None:  # written before runners shared the harness (e.g. text runs): redone
            log.warning("%s has no recipe fingerprint (an older emovox wrote it); unfinished folds are run", meta_path)
        elif old != fp:
            raise ConfigError(f"{out} holds results of a different recipe (fingerprint {old} != {fp}); "
                              "use another --out folder or delete it")
    utts = load_utterances(recipe)
    if utterances is not None:
        utts = utterances(utts)
    classes = class_names(recipe, utts)
    d = recipe.data
    if protocol_key is not None:
        with protocol_key("data.protocol_args"):
            folds = make_folds(utts, d.protocol, seed=recipe.seed, **d.protocol_args)
    else:
        folds = make_folds(utts, d.protocol, seed=recipe.seed, **d.protocol_args)
    chosen = list(range(len(folds))) if d.folds is None else list(d.folds)
    check_fold_indices(chosen, len(folds))
    save_folds(out / "folds.json", folds, {"protocol": d.protocol, "seed": recipe.seed, "corpus": d.corpus,
                                          "n_utterances": len(utts)})
    atomic_write_json(meta_path, {"runner": runner, "recipe": dict(raw), "fingerprint": fp, "classes": classes,
                                  "n_utterances": len(utts), "folds_run": chosen, "overrides": list(overrides),
                                  **dict(meta or {})})
    return FoldRun(out, runner, utts, classes, folds, chosen, fp, list(overrides))


__all__ = ["FoldRun", "RESULT_FILE", "RUN_FILE", "check_fold_indices", "class_names", "fingerprint", "fold_dir",
           "load_utterances", "prepare_run", "warn_unknown_labels"]
