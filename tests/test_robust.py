"""Robust waveform augmentation: each effect measured on tiny generated audio, configs, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.robust_config import RobustConfig, robust_config
from emovox.robust import (
    RobustAugmenter,
    add_noise,
    babble_noise,
    codec_roundtrip,
    colored_noise,
    mulaw_companding,
    reverberate,
    speed_perturb,
    synthetic_rir,
    telephone_band,
)

SR = 16000


def voiced(seconds=1.0, f0=200.0, seed=0):
    """Harmonics of ``f0`` up to 7 kHz plus a little noise: energy on both sides of 4 kHz."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k ** 0.5 for k in range(1, int(7000 // f0)))
    x = x + 0.01 * np.random.default_rng(seed).standard_normal(t.size)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def high_band_fraction(x, cutoff=4000.0):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / SR)
    return float(spec[f > cutoff].sum() / spec.sum())


def snr_db(clean, noisy):
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean).astype(np.float64) ** 2))


def test_noise_at_exact_snr_and_colours():
    x = voiced()
    rng = np.random.default_rng(0)
    for snr in (0.0, 7.5, 20.0):
        assert snr_db(x, add_noise(x, colored_noise(x.size, "pink", rng), snr)) == pytest.approx(snr, abs=0.05)
    # spectral slope of log PSD vs log f (0.1-4 kHz): white ~0, pink ~-1, brown ~-2
    n = 1 << 16
    f = np.fft.rfftfreq(n, 1 / SR)
    band = (f > 100) & (f < 4000)
    for color, slope in (("white", 0.0), ("pink", -1.0), ("brown", -2.0)):
        noise = colored_noise(n, color, np.random.default_rng(1))
        assert np.sqrt(np.mean(noise.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
        psd = np.abs(np.fft.rfft(noise)) ** 2
        fit = np.polyfit(np.log(f[band]), np.log(psd[band]), 1)[0]
        assert fit == pytest.approx(slope, abs=0.15), color


def test_babble_from_other_clips():
    others = [voiced(0.3, f0, seed=i) for i, f0 in enumerate((120, 180, 250, 310))]
    rng = np.random.default_rng(0)
    b = babble_noise(SR, others, rng)
    assert b.shape == (SR,) and np.sqrt(np.mean(b.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    x = voiced(1.0, 440.0)
    assert snr_db(x, add_noise(x, b, 5.0)) == pytest.approx(5.0, abs=0.05)
    with pytest.raises(ConfigError, match="babble"):
        babble_noise(100, [np.zeros(10, np.float32)], rng)


def test_telephone_band_removes_everything_above_4k():
    x = voiced()
    assert high_band_fraction(x) > 0.05
    y = telephone_band(x)
    assert y.shape == x.shape and y.dtype == np.float32
    assert high_band_fraction(y) < 1e-4
    ym = telephone_band(x, mulaw=True)
    assert high_band_fraction(ym) < 1e-3 and not np.allclose(ym, y)
    # μ-law quantisation: a small error relative to the signal, larger for quiet signals in absolute terms
    q = mulaw_companding(x)
    assert 20 < snr_db(x, q) < 50


def test_speed_changes_length_and_pitch():
    x = voiced(1.0, 200.0)
    for factor in (0.9, 1.1):
        y = speed_perturb(x, factor)
        assert abs(y.size - x.size / factor) <= 2
        f = np.fft.rfftfreq(y.size, 1 / SR)
        peak = f[np.argmax(np.abs(np.fft.rfft(y)))]
        assert peak == pytest.approx(200.0 * factor, rel=0.02)


def test_codecs_round_trip_at_requested_rate():
    x = voiced(2.0)
    for codec in ("opus", "mp3", "vorbis"):
        y, size = codec_roundtrip(x, codec, 16, return_size=True)
        assert y.shape == x.shape and np.isfinite(y).all()
        err = snr_db(x, y)
        assert 0 < err < 40, codec  # lossy, but the signal is still there and aligned
        kbps = size * 8 / 2.0 / 1000
        if codec == "vorbis":
            assert kbps < 48  # its lowest quality
        else:
            assert 12 < kbps < 24, (codec, kbps)  # 16 kbit/s + container overhead of a 2 s file
    low, high = codec_roundtrip(x, "opus", 8), codec_roundtrip(x, "opus", 32)
    assert snr_db(x, low) < snr_db(x, high)


def test_synthetic_reverb_decays_at_rt60():
    rt60 = 0.5
    h = synthetic_rir(rt60, np.random.default_rng(0)).astype(np.float64)
    assert h[0] == 1.0 and h.size == int(1.2 * rt60 * SR)
    edc = np.cumsum((h[1:] ** 2)[::-1])[::-1]  # Schroeder integration of the tail
    edc_db = 10 * np.log10(edc / edc[0])
    t = np.arange(edc.size) / SR
    sel = (edc_db < -5) & (edc_db > -25)
    slope = np.polyfit(t[sel], edc_db[sel], 1)[0]  # dB per second
    assert -60 / slope == pytest.approx(rt60, rel=0.15)
    x = np.zeros(SR, np.float32)
    x[: SR // 4] = voiced(0.25)
    y = reverberate(x, synthetic_rir(rt60, np.random.default_rng(1)))
    assert y.shape == x.shape
    assert np.sqrt(np.mean(y ** 2)) == pytest.approx(np.sqrt(np.mean(x ** 2)), rel=1e-4)
    assert np.abs(y[SR // 4 + 800: SR // 2]).max() > 1e-3  # the tail rings on after the sound stops


def test_pyroomacoustics_reverb():
    pytest.importorskip("pyroomacoustics", reason="pyroomacoustics not installed (pip install 'emovox[robust]')")
    cfg = robust_config({"reverb": {"p": 1, "rt60": [0.2, 0.3], "method": "pyroomacoustics", "n_rirs": 1}})
    aug = RobustAugmenter(cfg, seed=0)
    x = np.zeros(SR, np.float32)
    x[: SR // 4] = voiced(0.25)
    y, applied = aug.augment(x, 0)
    assert applied == ["reverb pyroomacoustics"] and aug._bank is not None and len(aug._bank) == 1
    assert np.abs(y[SR // 4 + 400: SR // 2]).max() > 1e-3


def test_augmenter_is_deterministic_per_seed_and_key():
    cfg = robust_config({"speed": 1, "reverb": {"p": 1, "method": "synthetic"}, "noise": {"p": 1, "babble": 0.5},
                         "telephone": 1, "codec": {"p": 1, "codecs": ["opus", "mp3"]}})
    x = voiced(0.5)
    others = [voiced(0.4, 150.0, seed=3)]
    a, b = RobustAugmenter(cfg, seed=7, babble_clips=others), RobustAugmenter(cfg, seed=7, babble_clips=others)
    y1, e1 = a.augment(x, (0, 3))
    y2, e2 = b.augment(x, (0, 3))
    assert e1 == e2 and np.array_equal(y1, y2)
    assert [e.split()[0] for e in e1] == ["speed", "reverb", "noise", "telephone", "codec"]
    for n in (0, 1, 100):  # degenerate lengths do not crash
        assert np.isfinite(a(np.full(n, 0.1, np.float32), n)).all()
    y3, _ = a.augment(x, (1, 3))
    assert not np.array_equal(y1, y3)
    assert np.abs(y1).max() <= 0.99 + 1e-6 and high_band_fraction(y1) < 0.05


def test_effects_off_leave_audio_untouched():
    x = voiced(0.5)
    cfg = robust_config({"speed": 0, "noise": False, "codec": None})
    assert not cfg.enabled and cfg == RobustConfig()
    y, applied = RobustAugmenter(cfg).augment(x, 0)
    assert applied == [] and np.array_equal(y, x)
    # p = 0.5: some items get the effect, some not
    half = RobustAugmenter(robust_config({"telephone": 0.5}), seed=0)
    hits = sum(bool(half.augment(x, k)[1]) for k in range(40))
    assert 10 < hits < 30
