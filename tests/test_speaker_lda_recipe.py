"""recipes/speaker_lda/train.py: its training speakers and features (the recipe behind the bundled
speaker projection must keep running after the benchmarks it borrows from are reorganised)."""

from __future__ import annotations


import numpy as np
import pytest

from tests.conftest import REPO, import_script

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def recipe():
    with import_script(REPO / "recipes" / "speaker_lda" / "train.py", "speaker_lda_train", REPO / "benchmarks") as module:
        yield module


@pytest.mark.shared
def test_training_speakers_exclude_every_evaluation_speaker_and_features_come_out(recipe, corpora_dir):
    from synthetic_conversations import test_speakers

    from emovox.audio_model import OnnxAudioModel
    from emovox.inference import DEFAULT_MODEL

    speakers = recipe.training_speakers(2, 0)
    assert len(speakers) == 80 and not set(speakers) & set(test_speakers())
    assert not any(s.startswith("Actor_0") for s in speakers)  # RAVDESS actors 01-09 calibrate the threshold
    corpus, paths = speakers["Actor_10"]
    x = recipe.features(OnnxAudioModel(DEFAULT_MODEL), paths, [1, 2, 3, 4], 3, np.random.default_rng(0), 2.0)
    assert corpus == "ravdess" and x.shape == (6, 4 * 512) and np.isfinite(x).all()
