"""The clip VAD of abstention (emovox.speech): quiet speech is still speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emovox.audio import load_audio
from emovox.loudness import loudness
from emovox.speech import VAD_LOUDNESS, speech_probabilities, speech_summary

pytest.importorskip("silero_vad", reason="the Silero VAD is part of the core install")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "03-01-03-02-01-01-04.flac"  # a bundled RAVDESS clip


def at_loudness(wave: np.ndarray, lufs: float) -> np.ndarray:
    return (wave * 10 ** ((lufs - loudness(wave)) / 20)).astype(np.float32)


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    return load_audio(EXAMPLE)


def test_a_quiet_clip_is_still_speech(clip):
    """At -65 LUFS this clip's speech was all but missed (fraction 0.02, no_speech) before quiet
    clips were raised to VAD_LOUDNESS for the VAD."""
    normal = speech_summary(at_loudness(clip, VAD_LOUDNESS))
    for lufs in (-45.0, -55.0, -65.0):
        quiet = speech_summary(at_loudness(clip, lufs))
        assert not quiet.no_speech
        assert quiet.fraction == pytest.approx(normal.fraction, abs=0.05), lufs


def test_loud_clips_keep_their_speech(clip):
    loud = np.clip(at_loudness(clip, -12.0), -1.0, 1.0)
    assert speech_summary(loud).fraction == pytest.approx(speech_summary(clip).fraction, abs=0.05)
    assert speech_probabilities(loud).shape == speech_probabilities(clip).shape


def test_quiet_noise_is_not_raised_into_speech():
    rng = np.random.default_rng(0)
    for level in (1e-4, 1e-3):  # white noise at about -80 and -60 dBFS
        assert speech_summary((level * rng.standard_normal(3 * 16000)).astype(np.float32)).no_speech
