"""Input loudness (emovox.loudness): BS.1770 measurement and the gain-limited normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emovox.loudness import MAX_GAIN_DB, loudness, normalise, remove_dc, within_range

SR = 16000


def sine(amplitude: float, seconds: float = 3.0, freq: float = 997.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_the_same_loudness_as_the_field_implementation():
    """pyloudnorm (BS.1770-4, scipy's IIR filters) scaled the default model's training clips; the
    numpy implementation that scales its inputs must read the same."""
    pyloudnorm = pytest.importorskip("pyloudnorm", reason="the reference implementation is a dev dependency")
    meter, rng = pyloudnorm.Meter(SR), np.random.default_rng(1)
    t = np.arange(5 * SR) / SR
    signals = [rng.standard_normal(3 * SR) * 0.1, sine(1.0), rng.standard_normal(7000) * 0.01,
               np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0) * 0.3,  # bursts and silences: the gates
               np.concatenate([rng.standard_normal(SR) * 0.2, rng.standard_normal(4 * SR) * 1e-4]),
               np.sin(2 * np.pi * 30 * t) * 0.5]  # below the high-pass
    for x in signals:
        assert loudness(x) == pytest.approx(meter.integrated_loudness(np.asarray(x, np.float64)), abs=1e-3)


def test_a_full_scale_sine_reads_minus_3_lufs_and_level_follows_gain():
    assert loudness(sine(1.0)) == pytest.approx(-3.01, abs=0.3)  # BS.1770's reference tone
    assert loudness(sine(0.1)) == pytest.approx(loudness(sine(1.0)) - 20.0, abs=0.05)


@pytest.mark.parametrize("amplitude", [0.003, 0.05, 0.9])
def test_normalise_reaches_the_target_whatever_the_input_level(amplitude):
    rng = np.random.default_rng(0)
    x = (amplitude * rng.standard_normal(2 * SR) * np.sin(np.linspace(0, 12, 2 * SR)) ** 2).astype(np.float32)
    y = normalise(x, -23.0)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert loudness(y) == pytest.approx(-23.0, abs=0.1)
    assert np.allclose(y / y.max(), x / x.max(), atol=1e-6)  # a gain, nothing else


def test_the_gain_is_limited_and_unmeasurable_inputs_are_left_alone():
    quiet = sine(10 ** (-70 / 20))  # about -73 LUFS: raising it to -23 would need 50 dB
    assert loudness(normalise(quiet, -23.0)) == pytest.approx(loudness(quiet) + MAX_GAIN_DB, abs=0.1)
    silence, short = np.zeros(SR, np.float32), sine(0.5, seconds=0.3)
    assert math.isinf(loudness(silence)) and math.isinf(loudness(short))
    assert np.array_equal(normalise(silence, -23.0), silence) and np.array_equal(normalise(short, -23.0), short)


def test_a_far_too_loud_input_is_turned_down_as_far_as_needed():
    """Float samples stored at integer scale (peaks near 32767, about +90 dB over full scale): the
    -30 dB limit on the way down left them at +60 LUFS, one clipped blast to the model."""
    x = sine(0.5)
    y = normalise(x * np.float32(32767.0), -23.0)
    assert loudness(y) == pytest.approx(-23.0, abs=0.1) and np.allclose(y, normalise(x, -23.0), rtol=1e-4, atol=1e-6)


def test_within_range_raises_the_quiet_and_turns_down_what_is_beyond_full_scale():
    quiet, fine, beyond = sine(0.01), sine(0.5), sine(0.5) * np.float32(32767.0)
    assert loudness(within_range(quiet, -23.0, 0.0)) == pytest.approx(-23.0, abs=0.1)
    assert np.array_equal(within_range(fine, -23.0, 0.0), fine)  # between floor and ceiling: as it is
    assert loudness(within_range(beyond, -23.0, 0.0)) == pytest.approx(-23.0, abs=0.1)
    silence = np.zeros(SR, np.float32)
    assert np.array_equal(within_range(silence, -23.0, 0.0), silence)


def test_within_range_raises_quiet_inputs_within_the_gain_limit_and_leaves_the_rest():
    quiet, loud = sine(0.01), sine(0.5)
    assert loudness(within_range(quiet, -23.0, math.inf)) == pytest.approx(-23.0, abs=0.1)
    assert np.array_equal(within_range(loud, -23.0, math.inf), loud)  # louder than the floor: never turned down
    very_quiet = sine(10 ** (-65 / 20))
    assert loudness(within_range(very_quiet, -23.0, math.inf)) == pytest.approx(loudness(very_quiet) + MAX_GAIN_DB,
                                                                                abs=0.1)


def test_fft_lengths_are_the_smallest_with_factors_2_3_5():
    from emovox.loudness import _fft_length

    def smooth(m: int) -> bool:
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        return m == 1

    for n in [*range(1, 2000), 56000, 488000, 480641]:
        m = _fft_length(n)
        assert m >= n and smooth(m) and not any(smooth(k) for k in range(n, m)), n


def test_remove_dc_takes_the_offset_away_and_nothing_else():
    t = np.arange(16000) / 16000
    tone = (0.1 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    out = remove_dc(tone + np.float32(0.3))
    assert out.dtype == np.float32 and out.shape == tone.shape
    assert abs(float(out.mean())) < 1e-6
    np.testing.assert_allclose(out, tone, atol=1e-5)
    assert remove_dc(np.zeros(0, np.float32)).size == 0
