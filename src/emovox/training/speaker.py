"""Speaker-recognition pretraining: a backbone for transfer to emotion (seeds 000/001/003).

Any speaker-labelled manifest works: VoxCeleb 1/2 trees (``idNNNNN/<video>/<utt>.wav``),
LibriSpeech, or an emotion corpus used for its speakers only. Every utterance's class is its
speaker; the model (recipe ``model`` section) is trained with cross-entropy (the papers) or
AAM-softmax (``train.loss: aam``) through the same Lightning machinery as emotion experiments,
so it is resumable and deterministic. Speaker identification is closed-set, so the validation
part is ``valid_fraction`` of every speaker's utterances (speakers with one utterance stay in
training); its accuracy selects the best epoch.

The result, ``<out>/backbone``, is a model package whose labels are the speaker ids; emotion
recipes point ``transfer.backbone`` at it (the output layer is replaced on transfer).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from emovox.config import Recipe
from emovox.corpora.registry import load_data
from emovox.errors import ConfigError
from emovox.io import atomic_write_json
from emovox.models.io import load_model, save_model
from emovox.protocols import Fold
from emovox.training.checks import check_recipe
from emovox.training.data import load_features
from emovox.training.experiment import fold_dir, run_fold

log = logging.getLogger(__name__)


def speaker_utterances(recipe: Recipe, max_speakers: int | None = None, min_utterances: int = 1) -> list[Any]:
    """The recipe's utterances labelled by speaker (``max_speakers`` with the most utterances)."""
    from collections import Counter

    d = recipe.data
    utts = load_data(recipe.resolve(d.manifest), d.corpus, recipe.resolve(d.root), d.corpus_args)
    counts = Counter(u.speaker for u in utts)
    keep = [s for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_utterances]
    if max_speakers is not None:
        keep = keep[:max_speakers]
    if len(keep) < 2:
        raise ConfigError(f"speaker pretraining needs at least 2 speakers with >= {min_utterances} utterances; "
                          f"found {len(keep)} in {d.manifest or d.root}")
    chosen = set(keep)
    return [u.with_label(u.speaker) for u in utts if u.speaker in chosen]


def split_by_speaker(utterances: Sequence[Any], valid_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train ids, valid ids): ``valid_fraction`` of each speaker's utterances (at least one when the
    speaker has two or more), drawn reproducibly."""
    rng = np.random.default_rng(seed)
    by_speaker: dict[str, list[str]] = {}
    for u in utterances:
        by_speaker.setdefault(u.speaker, []).append(u.id)
    train, valid = [], []
    for spk in sorted(by_speaker):
        ids = list(by_speaker[spk])
        rng.shuffle(ids)
        n = 0 if len(ids) < 2 or valid_fraction <= 0 else max(1, int(round(valid_fraction * len(ids))))
        valid += ids[:n]
        train += ids[n:]
    return train, valid


def pretrain_speaker(recipe: Recipe, out_dir: str | Path, valid_fraction: float = 0.1,
                     max_speakers: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Train a speaker classifier with ``recipe`` and export ``<out>/backbone``; returns the result."""
    check_recipe(recipe)
    out = Path(out_dir)
    utts = speaker_utterances(recipe, max_speakers)
    speakers = sorted({u.speaker for u in utts})
    train, valid = split_by_speaker(utts, valid_fraction, recipe.seed)
    # closed-set speaker identification: "test" = the held-out utterances of the same speakers
    fold = Fold("speaker", train, valid, valid, speaker_independent=False,
                info={"task": "speaker identification", "n_speakers": len(speakers)})
    atomic_write_json(out / "speakers.json", {"speakers": speakers, "n_train": len(train), "n_valid": len(valid)})
    feats = load_features(utts, recipe.features, recipe.resolve(recipe.features.cache_dir), progress)
    features = {u.id: f for u, f in zip(utts, feats)}
    result = run_fold(recipe, 0, fold, utts, features, speakers, out, progress)
    model, config = load_model(fold_dir(out, 0, fold.name) / "model")
    config["training"] = {**config.get("training", {}), "task": "speaker identification",
                          "corpus": recipe.data.corpus or recipe.data.manifest, "n_speakers": len(speakers),
                          "loss": recipe.train.loss}
    config.pop("weights_sha256", None)
    save_model(out / "backbone", model, config)
    log.info("speaker backbone: %d speakers, held-out speaker-ID accuracy %.4f -> %s", len(speakers),
             result["metrics"]["wa"], out / "backbone")
    return result


__all__ = ["pretrain_speaker", "speaker_utterances", "split_by_speaker"]
