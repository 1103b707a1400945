"""The bundled default model's validation speakers, for the benchmarks that choose how ``predict``
scores a recording (``long_recordings.py``, ``padded_clips.py``): choices made on them are model
choices made on validation speakers (its config card's ``valid_speakers``: never trained on, used
to choose its epoch and temperature)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpora"
sys.path.insert(0, str(REPO / "recipes" / "generalist"))


def validation_utterances(model_folder: str | Path) -> list:
    """Every clip of the five corpora (``recipes/generalist/data.py``) by a validation speaker of the
    model in ``model_folder``, in the corpora's order; exits with a message without ../shared."""
    if not SHARED.is_dir():
        sys.exit(f"no corpora under {SHARED}; this benchmark needs ../shared/corpora")
    from data import load_utterances

    from emovox.audio_model import read_audio_config

    held = set(read_audio_config(model_folder).card["valid_speakers"])
    return [u for u in load_utterances(str(SHARED)) if u.speaker in held]


def default_model_and_clips() -> tuple:
    """``(recogniser, utterances)``: the bundled default model at one torch thread and its
    validation speakers' clips (:func:`validation_utterances`)."""
    import torch

    from emovox import Recognizer

    torch.set_num_threads(1)
    rec = Recognizer.load()
    return rec, validation_utterances(rec.folder)


def report_again(out: str | Path, summarise: Callable[[list[dict], list[str], float], list[str]]) -> int:
    """``--report``: print ``summarise(rows, labels, confident)`` of a finished run's ``OUT/rows.json``."""
    from emovox.audio_model import read_audio_config
    from emovox.inference import DEFAULT_MODEL

    cfg = read_audio_config(DEFAULT_MODEL)
    rows = json.loads((Path(out) / "rows.json").read_text())
    print("\n".join(summarise(rows, list(cfg.labels), float(cfg.uncertain_below or 0.5))))
    return 0
