"""The generated non-speech set: >= 100 clips of 1-30 s, finite float32, what each name says."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from emovox.testing.nonspeech import KINDS, SAMPLE_RATE, iter_nonspeech, nonspeech_clips


@pytest.fixture(scope="module")
def short():
    return dict(nonspeech_clips(seed=0, max_seconds=2.0))


def dbfs(x):
    return 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def peak_hz(x):
    return np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE)[np.argmax(np.abs(np.fft.rfft(x)))]


def test_full_set_counts_durations_and_values():
    names, seconds = [], []
    for name, x in iter_nonspeech(seed=0):
        assert x.dtype == np.float32 and x.ndim == 1
        assert np.isfinite(x).all() and np.abs(x).max() <= 0.99 + 1e-6
        dur = x.size / SAMPLE_RATE
        assert name.endswith(f"_{dur:g}s")
        names.append(name)
        seconds.append(dur)
    assert len(names) >= 100 and len(set(names)) == len(names)
    assert min(seconds) == 1.0 and max(seconds) == 30.0 and all(1.0 <= s <= 30.0 for s in seconds)
    kinds = Counter(n.split("_")[0] for n in names)
    assert set(kinds) == set(KINDS) and kinds["chord"] + kinds["arpeggio"] >= 20
    # every kind with several clips gets more than one duration
    for kind in KINDS:
        durs = {s for n, s in zip(names, seconds) if n.startswith(kind + "_")}
        assert len(durs) >= min(2, kinds[kind]), kind


def test_deterministic_per_seed(short):
    again = dict(nonspeech_clips(seed=0, max_seconds=2.0))
    assert list(again) == list(short) and all(np.array_equal(again[k], short[k]) for k in short)
    other = dict(nonspeech_clips(seed=1, max_seconds=2.0))
    noisy = [k for k in short if k.startswith("noise_white")]
    other_noisy = [k for k in other if k.startswith("noise_white")]
    assert not np.array_equal(short[noisy[0]], other[other_noisy[0]])


def test_clips_are_what_their_names_say(short):
    by_prefix = {k.rsplit("_", 1)[0]: v for k, v in short.items()}
    assert not by_prefix["silence_zero"].any()
    assert dbfs(by_prefix["silence_dither"]) < -90
    assert dbfs(by_prefix["noisefloor_white_60dB"]) == pytest.approx(-60, abs=0.5)
    assert dbfs(by_prefix["noise_pink_20dB"]) == pytest.approx(-20, abs=0.5)
    assert dbfs(by_prefix["hum_50Hz_30dB"]) == pytest.approx(-30, abs=0.5)
    for f in (100, 1000, 5000):
        assert peak_hz(by_prefix[f"tone_{f}Hz"]) == pytest.approx(f, abs=1)
    # hum: all energy on multiples of the mains frequency
    hum = by_prefix["hum_60Hz_20dB"].astype(np.float64)
    spec = np.abs(np.fft.rfft(hum)) ** 2
    f = np.fft.rfftfreq(hum.size, 1 / SAMPLE_RATE)
    on_harmonics = np.isclose(np.mod(f + 1, 60), 1, atol=1.5) & (f > 0)
    assert spec[on_harmonics].sum() / spec.sum() > 0.99
    # clicks: a 5 Hz train has 5 impulses a second
    clicks = np.abs(by_prefix["clicks_train_5Hz"])
    onsets = np.flatnonzero((clicks[1:] > 0.5 * clicks.max()) & (clicks[:-1] <= 0.5 * clicks.max()))
    assert len(onsets) == pytest.approx(5 * clicks.size / SAMPLE_RATE, abs=1)
    # music: notes above 100 Hz, not silent
    chord = by_prefix["chord_held_0"]
    assert dbfs(chord) > -40 and peak_hz(chord) > 80
