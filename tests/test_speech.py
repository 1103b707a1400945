"""The clip VAD of abstention (emovox.speech): quiet speech is still speech."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from emovox.audio import load_audio
from emovox.errors import DependencyError
from emovox.loudness import loudness
from emovox.speech import (BLOCK, CHUNK, MIN_SPEECH_RUN, VAD_LOUDNESS, SpeechStats, is_no_speech, silero_onnx_path,
                           speech_probabilities, speech_regions, speech_summary)
from tests.conftest import import_script

pytest.importorskip("silero_vad", reason="the Silero VAD is part of the core install")
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "03-01-03-02-01-01-04.flac"  # a bundled RAVDESS clip


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


def test_a_realistic_dc_offset_changes_no_speech_decision(clip):
    """The check hears the samples as they are (no DC removal: taking each block's mean away
    turned a borderline clip of the generated brown noise into speech). Offsets of hardware
    (under 0.01) leave it alone; at 0.1 under a quiet clip (peak 0.05) it began to miss speech."""
    for peak in (0.05, 0.3):
        x = (peak * clip / np.abs(clip).max()).astype(np.float32)
        shifted = speech_summary(x + np.float32(0.01))
        assert not shifted.no_speech
        assert shifted.fraction == pytest.approx(speech_summary(x).fraction, abs=0.05)


def test_quiet_noise_is_not_raised_into_speech():
    rng = np.random.default_rng(0)
    for level in (1e-4, 1e-3):  # white noise at about -80 and -60 dBFS
        assert speech_summary((level * rng.standard_normal(3 * 16000)).astype(np.float32)).no_speech


@pytest.fixture(scope="module")
def chunk_at_a_time():
    """The graph emovox used before the sequence graph: silero_vad.onnx, one chunk per call."""
    with import_script(REPO / "benchmarks" / "vad_speed.py", "benchmark_vad_speed") as module:
        yield module.ChunkAtATime()


def test_the_sequence_graph_gives_the_chunk_graphs_probabilities(clip, chunk_at_a_time):
    """Blocks of BLOCK chunks, the context carried across them, a ragged last chunk, a quiet clip
    raised first: the same probabilities as the chunk-at-a-time graph."""
    rng = np.random.default_rng(0)
    noise = (0.05 * rng.standard_normal(CHUNK * 3 + 17)).astype(np.float32)
    long = np.concatenate([clip, noise, at_loudness(clip, -50.0)] * 6)  # > BLOCK chunks
    assert long.size > BLOCK * CHUNK
    for wave in (clip, noise, long, clip[: CHUNK - 5]):
        new, ref = speech_probabilities(wave), chunk_at_a_time(wave)
        assert new.shape == ref.shape == (-(-wave.size // CHUNK),)
        np.testing.assert_allclose(new, ref, atol=1e-5)
    assert speech_probabilities(np.zeros(0, np.float32)).shape == (0,)


def test_an_old_silero_package_is_named(monkeypatch, tmp_path):
    """silero-vad before 6.2.2 has no sequence graph: the error says which file and what to install."""
    (tmp_path / "silero_vad" / "data").mkdir(parents=True)
    (tmp_path / "silero_vad" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "silero_vad", raising=False)
    with pytest.raises(DependencyError, match=r"silero_vad_16k_sequence\.onnx missing.*6\.2\.2"):
        silero_onnx_path()


def test_the_abstention_rule():
    assert is_no_speech(0.2, 1.0, 0.2)  # under MIN_SPEECH_SECONDS in all
    assert is_no_speech(2.0, 0.02, 0.5)  # a small share, in short bursts: noise the VAD half-liked
    assert not is_no_speech(2.0, 0.02, MIN_SPEECH_RUN)  # a small share, but one real stretch of speech
    assert not is_no_speech(2.0, 0.5, 0.5)
    assert not SpeechStats().no_speech  # a model without VAD never abstains
    assert SpeechStats(0.02, 2.0, 0.5).no_speech


def test_the_longest_region_is_that_of_the_regions(clip):
    """speech_summary's longest region is the longest of speech_regions (the same bridging)."""
    rng = np.random.default_rng(1)
    gap = (1e-3 * rng.standard_normal(16000)).astype(np.float32)
    wave = np.concatenate([clip, gap, clip[: clip.size // 2]])
    regions = speech_regions(wave)
    summary = speech_summary(wave)
    assert len(regions) >= 2
    assert summary.longest == pytest.approx(max(e - s for s, e in regions))
    assert summary.no_speech == is_no_speech(summary.seconds, summary.fraction, summary.longest)


def test_one_clip_s_probabilities_are_computed_once_and_kept_by_content(clip, monkeypatch):
    """``predict`` asks for a clip's speech twice (the speech check, and the speech crop of a model
    that sets ``speech_crop``): the second time costs nothing, and any change to the samples, or a
    clip beyond the last ``RECENT``, is run again."""
    from emovox import speech

    runs = []
    real = speech._probabilities
    monkeypatch.setattr(speech, "_probabilities", lambda x, threads: runs.append(x.size) or real(x, threads))
    monkeypatch.setattr(speech, "_RECENT", type(speech._RECENT)())
    first = speech_probabilities(clip)
    again = speech_probabilities(clip.copy())  # the same samples in another array
    assert again is first and len(runs) == 1 and not first.flags.writeable
    changed = clip.copy()
    changed[100] += 1e-3
    assert speech_probabilities(changed) is not first and len(runs) == 2
    assert speech_probabilities(clip[:-1]) is not first and len(runs) == 3
    for i in range(speech.RECENT):
        speech_probabilities(clip * (0.5 + 0.01 * i))
    speech_probabilities(clip)
    assert len(runs) == 4 + speech.RECENT  # pushed out by newer clips: run again
