"""The one feature pipeline: its typed description (aliases, errors) and the same features in
training and prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from emovox.config import FeatureConfig
from emovox.corpora import Utterance
from emovox.errors import ConfigError, ModelError
from emovox.frontend.pipeline import FeaturePipeline
from emovox.pipeline import ALIASES, PipelineConfig
from tests.conftest import make_tone

WHISPER = {"upstream": "whisper", "options": {"pad_seconds": 10}}


def test_round_trip_and_package_keys():
    p = PipelineConfig("logmel", {"n_mels": 32}, vad=True, normalize="none")
    assert p.to_dict() == {"frontend": {"name": "logmel", "kwargs": {"n_mels": 32}}, "vad": True, "normalize": "none"}
    assert PipelineConfig.from_dict(p.to_dict()) == p
    assert PipelineConfig.from_dict({"frontend": {"name": "logmel"}}) == PipelineConfig("logmel", {}, False, "segment")


def test_old_spellings_read_as_the_canonical_names():
    assert {where for where, _ in ALIASES} == {"package", "recipe"}
    old = PipelineConfig.from_dict({"frontend": {"name": "whisper_encoder", "kwargs": {"threads": 4}},
                                    "normalize": "none"})
    assert old.frontend == "upstream" and old.upstream == "whisper" and old.torch_only
    assert old.options == {"upstream": "whisper", "options": {"pad_to_30s": False}}  # threads: runtime only
    assert old.to_dict()["frontend"] == {"name": "upstream", "kwargs": {"upstream": "whisper",
                                                                       "options": {"pad_to_30s": False}}}
    short = PipelineConfig.from_recipe(FeatureConfig(frontend="whisper", options={"pad_seconds": 10}, normalize="none"))
    canonical = PipelineConfig.from_recipe(FeatureConfig(frontend="upstream", options=WHISPER, normalize="none"))
    assert short == canonical == PipelineConfig("upstream", WHISPER, False, "none")
    logmel = PipelineConfig.from_recipe(FeatureConfig(n_mels=40))
    assert logmel.options == {"n_mels": 40} and not logmel.torch_only
    assert "n_mels" not in PipelineConfig.from_recipe(FeatureConfig(frontend="mulaw_spec")).options


@pytest.mark.parametrize("raw,match", [
    ({"frontend": "logmel"}, "'frontend' must be"),
    ({"frontend": {"name": "logmel"}, "vad": "yes"}, "'vad' must be true or false"),
    ({"frontend": {"name": "logmel"}, "normalize": "global"}, "'normalize' must be one of segment, speaker, none"),
    ({"frontend": {"name": "logmel", "kwargs": {"n_mels": 2.5}}}, "frontend.kwargs.n_mels must be an integer"),
    ({"frontend": {"name": "upstream", "kwargs": {"upstream": 3}}}, "'upstream' front-end takes"),
    ({"frontend": {"name": "waves", "kwargs": {"x": 1}}}, "'waves' front-end"),
])
def test_bad_package_values_are_model_errors_naming_the_file(raw, match):
    with pytest.raises(ModelError, match=f"m/config.json: .*{match}"):
        PipelineConfig.from_dict(raw, "m/config.json")


def test_bad_recipe_values_are_config_errors_naming_the_key():
    with pytest.raises(ConfigError, match="^features.frontend: 'mfcc' is neither a front-end"):
        PipelineConfig.from_recipe(FeatureConfig(frontend="mfcc"))
    with pytest.raises(ConfigError, match="^features.options: n_mels must be an integer"):
        PipelineConfig.from_recipe(FeatureConfig(options={"n_mels": "64"}))
    with pytest.raises(ConfigError, match="VAD works at 10 ms frames"):
        FeaturePipeline(PipelineConfig("logmel", {"hop_length": 320}, vad=True))
    with pytest.raises(ModelError, match="not supported for prediction"):
        PipelineConfig("vggish").check_predictable("m")
    with pytest.raises(ModelError, match="'speaker' cannot be used for prediction"):
        PipelineConfig(normalize="speaker").check_predictable("m")


def test_training_and_prediction_give_the_same_features(tmp_path):
    """load_features (cached, training) and the Recognizer's calls of the same FeaturePipeline agree."""
    from emovox.training.data import load_features

    wave = np.concatenate([np.zeros(8000, np.float32), make_tone(1.0), np.zeros(8000, np.float32)])
    sf.write(tmp_path / "a.wav", wave, 16000, subtype="FLOAT")
    config = PipelineConfig("logmel", {"n_mels": 20}, vad=True, normalize="segment")
    trained = load_features([Utterance("a", str(tmp_path / "a.wav"), "s", "sad")], config, tmp_path / "cache")[0]
    pipeline = FeaturePipeline(config)
    predicted = pipeline.normalise(pipeline.speech_only(pipeline.frames(wave[None])[0], wave))
    assert predicted.shape[0] < pipeline.frames(wave[None]).shape[1]  # the silence was dropped
    torch.testing.assert_close(predicted, trained, atol=1e-5, rtol=0)


def test_recognizer_runs_the_saved_pipeline(tiny_model, tmp_path):
    from emovox.inference import Recognizer
    from tests.product_fixtures import make_tiny_model

    r = Recognizer.load(tiny_model, vad=None, threads=1)
    assert r.features.config == r.package.pipeline == PipelineConfig("logmel", {"n_mels": 32})
    assert r.info()["frontend"] == "logmel" and r.config["frontend"]["name"] == "logmel"
    folder = make_tiny_model(tmp_path / "vad")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vad": True}))
    assert Recognizer.load(folder, vad=None, threads=1).features.vad is not None


def test_audio_in_models_are_described_as_samples_in():
    from emovox.inference import Recognizer

    r = Recognizer.load("default", vad=None)
    assert r.features is None and r.package.pipeline == PipelineConfig.samples_in()
    assert r.package.pipeline.takes_waves and r.info()["frontend"] == "waves" and r.package.format.startswith(
        "emovox-audio-model/")
