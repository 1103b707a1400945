"""Front-ends (log-mel, μ-law spectrogram, VGGish input), filterbanks and normalisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.errors import AudioError, ConfigError
from emovox.frontend import FRONTENDS, LogMel, MuLawSpectrogram, VGGishLogMel, build_frontend, to_patches
from emovox.frontend.filters import BandedProjection, slaney_mel_filterbank, vggish_mel_matrix
from emovox.frontend.normalize import conversation_mvn, mvn, normalize_segments
from emovox.frontend.spectrogram import mu_law
from emovox.frontend.stft import power_spectrogram
from tests.conftest import make_tone

librosa = pytest.importorskip("librosa")

SR = 16000
#: log-mel vs librosa (float32 both): |Δ| < 0.01 nats everywhere (1 % in power; the worst cells
#: are bands ~100 dB below their frame, where float32 FFT rounding dominates) and < 5e-4 in
#: bands within 60 dB of their frame's loudest band. Measured: 2.8e-3 and 1.1e-4 at worst on
#: EmoDB/RAVDESS clips.
TOL_ALL, TOL_LOUD = 1e-2, 5e-4


def sine(freq: float, seconds: float = 1.0, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def librosa_logmel(x: np.ndarray) -> np.ndarray:
    mel = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=512, hop_length=160, win_length=400, n_mels=128)
    return np.log(np.maximum(mel, 1e-10)).T


def assert_close_to_librosa(x: np.ndarray) -> None:
    ours = LogMel()(torch.from_numpy(x)).numpy()
    ref = librosa_logmel(x)
    assert ours.shape == ref.shape
    diff = np.abs(ours - ref)
    loud = ref >= ref.max(axis=1, keepdims=True) - np.log(1e6)
    assert diff.max() < TOL_ALL
    assert diff[loud].max() < TOL_LOUD


# --------------------------------------------------------------------------------- filterbanks
@pytest.mark.parametrize("kw", [
    dict(n_fft=512, n_mels=128),
    dict(n_fft=512, n_mels=40, fmin=20.0, fmax=7600.0, htk=True),
    dict(n_fft=1024, n_mels=64, norm=None),
])
def test_slaney_filterbank_matches_librosa(kw):
    ref = librosa.filters.mel(sr=SR, **kw).T
    ours = slaney_mel_filterbank(SR, kw["n_fft"], kw["n_mels"], kw.get("fmin", 0.0), kw.get("fmax"),
                                 htk=kw.get("htk", False), norm=kw.get("norm", "slaney"))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-7)


def test_default_logmel_filterbank_has_no_empty_band():
    assert (slaney_mel_filterbank(SR, 512, 128).max(axis=0) > 0).all()


def test_banded_projection_equals_dense_matmul():
    w = slaney_mel_filterbank(SR, 512, 128)
    x = torch.rand(3, 50, 257)
    dense = x @ torch.from_numpy(w)
    torch.testing.assert_close(BandedProjection(w)(x), dense, rtol=1e-5, atol=1e-6)
    assert BandedProjection(w).state_dict() == {}  # nothing persistent: safe inside saved models


# ------------------------------------------------------------------------------------ log-mel
def test_logmel_matches_librosa_on_generated_audio():
    assert_close_to_librosa(make_tone(2.0, freq=180.0, seed=3))


@pytest.mark.shared
def test_logmel_matches_librosa_on_a_real_clip(corpora_dir):
    from emovox.audio import load_audio

    assert_close_to_librosa(load_audio(corpora_dir / "emodb" / "wav" / "03a01Fa.flac"))


def test_logmel_attributes_and_frame_count():
    fe = build_frontend("logmel")
    assert (fe.hop_length, fe.n_features, fe.n_mels) == (160, 128, 128)
    for n in (400, 401, 16000, 16159, 32000):
        assert fe(torch.zeros(n)).shape == (fe.num_frames(n), 128) == (1 + n // 160, 128)


def test_logmel_floor_for_silence():
    fe = LogMel()
    out = fe(torch.zeros(4000))
    assert torch.allclose(out, torch.full_like(out, float(np.log(1e-10))))
    assert torch.isfinite(LogMel(log_floor=1e-6)(torch.zeros(4000))).all()


def test_logmel_peak_band_follows_frequency():
    fe = LogMel()
    centres = librosa.mel_frequencies(130, fmax=SR / 2)[1:-1]
    for freq in (300.0, 1000.0, 4000.0):
        band = int(fe(torch.from_numpy(sine(freq)))[50].argmax())
        assert abs(centres[band] - freq) < max(0.05 * freq, SR / 512)  # 5 % or one FFT bin


def test_chunking_does_not_change_the_output():
    x = torch.from_numpy(make_tone(3.0, seed=1))
    fe = LogMel()
    full = fe(x)
    fe.chunk_frames = 7
    torch.testing.assert_close(fe(x), full, rtol=0, atol=1e-5)


#: Front-ends under test, with the options they need ("upstream" wraps a frozen upstream).
FRONTEND_CASES = {**{name: {} for name in FRONTENDS if name != "upstream"},
                  "upstream-ge2e": {"upstream": "ge2e"}, "upstream-whisper": {"upstream": "whisper"}}


def make_frontend(case: str):
    return build_frontend(case.split("-")[0], **FRONTEND_CASES[case])


def test_every_frontend_is_under_test():
    assert {c.split("-")[0] for c in FRONTEND_CASES} == set(FRONTENDS)


@pytest.mark.parametrize("name", sorted(FRONTEND_CASES))
def test_batch_equals_items(name):
    fe = make_frontend(name)
    xb = torch.from_numpy(np.stack([make_tone(1.5, seed=s, freq=150 + 40 * s) for s in range(3)]))
    out = fe(xb)
    assert out.shape == (3, fe.num_frames(xb.shape[1]), fe.n_features)
    assert out.dtype == torch.float32
    for i in range(3):
        torch.testing.assert_close(out[i], fe(xb[i]), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(FRONTEND_CASES))
def test_accepts_numpy_and_float64(name):
    fe = make_frontend(name)
    x = make_tone(1.0).astype(np.float64)
    torch.testing.assert_close(fe(x), fe(torch.from_numpy(x.astype(np.float32))))


def test_power_spectrogram_matches_torch_stft():
    x = torch.from_numpy(make_tone(1.0, seed=2))
    ref = torch.stft(x, 512, 160, 400, torch.hann_window(400), center=True, pad_mode="constant",
                     return_complex=True).abs().T ** 2
    ours = power_spectrogram(x)
    assert ours.shape == ref.shape
    assert float((ours - ref).abs().max() / ref.max()) < 1e-5


# -------------------------------------------------------------------------------- registry
def test_build_frontend_errors():
    with pytest.raises(ConfigError, match="unknown front-end 'mfcc'.*logmel"):
        build_frontend("mfcc")
    with pytest.raises(ConfigError, match="no option.*n_mel\\b"):
        build_frontend("logmel", n_mel=64)
    with pytest.raises(ConfigError, match="win_length"):
        build_frontend("logmel", win_length=1024)
    assert build_frontend("logmel", n_mels=64).n_features == 64


@pytest.mark.parametrize("bad, problem", [
    (torch.zeros(2, 3, 400), "shape"),
    (torch.zeros(0), "zero samples"),
    (torch.zeros(400, dtype=torch.int16), "dtype"),
])
def test_bad_waveforms_raise_audio_error(bad, problem):
    with pytest.raises(AudioError, match=problem):
        LogMel()(bad)


# ------------------------------------------------------------------------------ μ-law spec
def test_mulaw_two_second_chunk_is_200_frames_by_400_bins():
    fe = build_frontend("mulaw_spec")
    out = fe(torch.from_numpy(make_tone(2.0)))
    assert out.shape == (200, 400) and fe.n_features == 400 and fe.hop_length == 160
    assert fe.num_frames(32000) == 200 and fe.num_frames(32001) == 201
    assert float(out.min()) >= 0.0 and float(out.max()) == pytest.approx(1.0)


def test_mulaw_bins_are_10_hz_up_to_3990():
    fe = MuLawSpectrogram()
    assert int(fe(torch.from_numpy(sine(1000.0)))[50].argmax()) == 100
    assert int(fe(torch.from_numpy(sine(2500.0)))[50].argmax()) == 250
    # 5 kHz lies outside the kept band: in linear magnitude (μ-law undone) only sidelobe
    # leakage of the Hamming window remains, far below the in-band peak
    linear = lambda y: torch.expm1(y * np.log1p(255.0)) / 255.0  # noqa: E731
    both = linear(fe(torch.from_numpy(sine(1000.0) + sine(5000.0)))[50])
    only = linear(fe(torch.from_numpy(sine(1000.0)))[50])
    torch.testing.assert_close(both, only, rtol=0, atol=2e-3)


def test_mulaw_matches_hamming_stft_magnitude():
    x = torch.from_numpy(make_tone(2.0, seed=5))
    mag = torch.stft(x, 1600, 160, 640, torch.hamming_window(640), center=True, pad_mode="constant",
                     return_complex=True).abs().T[:200, :400]
    expected = mu_law(mag / mag.max())
    torch.testing.assert_close(MuLawSpectrogram()(x), expected, rtol=0, atol=1e-5)


def test_mulaw_reference_modes():
    x = torch.from_numpy(make_tone(1.0))
    gain_free = MuLawSpectrogram()
    torch.testing.assert_close(gain_free(x), gain_free(0.1 * x), rtol=0, atol=1e-5)
    absolute = MuLawSpectrogram(reference="full_scale")
    assert float(absolute(0.1 * x).max()) < float(absolute(x).max()) <= 1.0
    with pytest.raises(ConfigError, match="reference"):
        build_frontend("mulaw_spec", reference="peak")


def test_mu_law_curve():
    x = torch.tensor([0.0, 0.01, 0.5, 1.0])
    y = mu_law(x)
    assert y[0] == 0 and y[-1] == pytest.approx(1.0) and bool((y.diff() > 0).all())
    assert float(mu_law(torch.tensor(0.01))) == pytest.approx(np.log1p(2.55) / np.log1p(255))


# ---------------------------------------------------------------------------------- VGGish
def reference_vggish(x: np.ndarray) -> np.ndarray:
    """The VGGish reference pipeline (mel_features.py), written out independently."""
    n = 1 + (len(x) - 400) // 160
    frames = np.stack([x[i * 160:i * 160 + 400] for i in range(n)]).astype(np.float64)
    window = 0.5 - 0.5 * np.cos(2 * np.pi / 400 * np.arange(400))
    mag = np.abs(np.fft.rfft(frames * window, 512))
    to_mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    bins = to_mel(np.linspace(0, 8000, 257))
    edges = np.linspace(to_mel(125.0), to_mel(7500.0), 66)
    w = np.empty((257, 64))
    for i in range(64):
        lo, c, hi = edges[i:i + 3]
        w[:, i] = np.maximum(0.0, np.minimum((bins - lo) / (c - lo), (hi - bins) / (hi - c)))
    w[0] = 0.0
    return np.log(mag @ w + 0.01)


def test_vggish_matches_reference_pipeline():
    x = make_tone(1.0, seed=4)
    ours = VGGishLogMel()(torch.from_numpy(x)).numpy()
    ref = reference_vggish(x)
    assert ours.shape == ref.shape == (98, 64)
    np.testing.assert_allclose(ours, ref, atol=2e-4)


def test_vggish_mel_matrix_band_limits():
    w = vggish_mel_matrix()
    freqs = np.linspace(0, 8000, 257)
    assert w.shape == (257, 64)
    assert (w[0] == 0).all()
    assert (w[(freqs < 125) | (freqs > 7500)] == 0).all()
    assert w.max() <= 1.0 and (w.max(axis=0) > 0.5).all()


def test_vggish_patches():
    fe = build_frontend("vggish")
    feats = fe(torch.from_numpy(make_tone(1.0)))
    assert feats.shape == (98, 64) and fe.n_features == 64
    assert torch.allclose(fe(torch.zeros(4000)), torch.full((23, 64), float(np.log(0.01))))
    patches = to_patches(feats)
    assert patches.shape == (1, 96, 64)
    torch.testing.assert_close(patches[0], feats[:96])
    long = torch.arange(300 * 64, dtype=torch.float32).reshape(300, 64)
    assert to_patches(long).shape == (3, 96, 64)
    overlapping = to_patches(long, hop_frames=48)
    assert overlapping.shape == (5, 96, 64)
    torch.testing.assert_close(overlapping[1], long[48:144])
    assert to_patches(long[:95]).shape == (0, 96, 64)


# --------------------------------------------------------------------------- normalisation
def test_mvn_per_utterance_per_bin():
    x = torch.randn(2, 80, 5) * torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]) + 7.0
    out = mvn(x)
    torch.testing.assert_close(out.mean(dim=1), torch.zeros(2, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=1, correction=0), torch.ones(2, 5), atol=1e-4, rtol=0)
    torch.testing.assert_close(mvn(x[0]), out[0])


def test_mvn_ignores_padding_and_constant_bins():
    x = torch.randn(2, 50, 4)
    x[0, 30:] = 1e6  # padding garbage
    out = mvn(x, lengths=[30, 50])
    torch.testing.assert_close(out[0, :30], mvn(x[0, :30]), atol=1e-5, rtol=0)
    assert (out[0, 30:] == 0).all()
    torch.testing.assert_close(out[1], mvn(x[1]), atol=1e-5, rtol=0)
    const = mvn(torch.full((20, 3), 4.0))
    assert torch.isfinite(const).all() and (const == 0).all()
    with pytest.raises(ValueError, match="lengths"):
        mvn(x, lengths=[51, 3])


def test_conversation_mvn_pools_groups():
    segs = [torch.randn(10, 3) + 5, torch.randn(20, 3) - 5, torch.randn(15, 3) * 3]
    out = conversation_mvn(segs, groups=["a", "a", "b"])
    pooled = torch.cat(out[:2])
    torch.testing.assert_close(pooled.mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(pooled.std(0, correction=0), torch.ones(3), atol=1e-4, rtol=0)
    assert float(out[0].mean()) > 0.5 > -0.5 > float(out[1].mean())  # segments keep their offsets
    torch.testing.assert_close(out[2], mvn(segs[2]), atol=1e-5, rtol=0)  # a group of one = segment MVN


def test_normalize_segments_levels():
    segs = [torch.randn(10, 3) + 5, torch.randn(12, 3) - 5]
    seg = normalize_segments(segs)  # default: segment level
    torch.testing.assert_close(seg[0], mvn(segs[0]))
    conv = normalize_segments(segs, level="conversation")
    assert abs(float(conv[0].mean())) > 0.5
    assert normalize_segments(segs, level="none")[1] is segs[1]
    with pytest.raises(ConfigError, match="unknown normalisation level"):
        normalize_segments(segs, level="global")


def test_upstream_frontend_needs_an_upstream_with_frames():
    with pytest.raises(ConfigError, match="no frame features"):
        build_frontend("upstream", upstream="egemaps")
    with pytest.raises(ConfigError, match="unknown upstream"):
        build_frontend("upstream", upstream="wav2vec")
