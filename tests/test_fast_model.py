"""The bundled ``fast`` model (ResNet18 on 64 log-mels): its typed package and quality on held-out speakers."""

from __future__ import annotations

import json

import pytest

from emovox.inference import FAST_MODEL, Recognizer
from emovox.models.io import read_package
from tests.conftest import REPO
from tests.held_out import held_out_clips, held_out_ua

LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
#: UA measured on the 84-clip sample below: 0.548 (all 391 held-out clips: 0.518, as the model card says).
FLOOR = 0.45


def test_package_config_is_typed_and_canonical():
    package = read_package(FAST_MODEL)
    assert package.labels == LABELS and package.model.name == "resnet18"
    assert package.pipeline.frontend == "logmel" and package.pipeline.options == {"n_mels": 64}
    assert package.pipeline.normalize == "segment" and package.pipeline.vad is False
    # the file is already in canonical form: reading and writing it back changes nothing
    assert package.to_dict() == json.loads((FAST_MODEL / "config.json").read_text())


@pytest.mark.shared
def test_quality_floor_on_held_out_test_speakers(corpora_dir):
    """Clips of the fold-1 test speakers (EmoDB 03, 11; RAVDESS actors 4, 10, 16, 20, 21), labelled
    with the label map of the recipe that trained the model (calm -> neutral, boredom dropped)."""
    from emovox.config import load_recipe
    from emovox.corpora import label_map_from_config

    training = read_package(FAST_MODEL).extra["training"]
    assert training["recipe"] == "default-model" and set(training["corpora"]) == {"ravdess", "tess", "emodb"}
    recipe = load_recipe(REPO / "recipes" / "default" / "default.yaml")
    assert recipe.name == training["recipe"]
    clips = held_out_clips(corpora_dir, training["corpora"], training["test_speakers"], LABELS,
                           label_map_from_config(recipe.data.labels))
    assert sum(map(len, clips.values())) >= 60
    ua, recalls = held_out_ua(Recognizer.load("fast", vad=None, threads=1), clips)
    assert ua >= FLOOR, f"held-out UA {ua:.3f} < {FLOOR} ({json.dumps(recalls)})"
