"""Input loudness: what a model's graph input is scaled to before its features.

A recording's absolute level says little about emotion: it depends on the microphone, its gain
and the distance to it. The acted corpora were recorded at very different levels (integrated
loudness of their clips, medians: EmoDB -17.5 LUFS, nEMO -23.9, ASED -22.0, TESS -29.6, RAVDESS
-39.0), so a head trained on them can learn "quiet" for "a RAVDESS-like recording". Measured on
the default model's validation speakers, turning a clip down by 30 dB moved most answers to
``sad``. Models whose config sets ``input_loudness`` therefore scale every graph input (a clip,
or a timeline piece) to that integrated loudness first, in training, inference and export alike.

Loudness is ITU-R BS.1770-4 integrated loudness in LUFS: K-weighting (the RBJ-cookbook high shelf,
+4 dB above 1.5 kHz, and 38 Hz high-pass of ``pyloudnorm``, the field implementation), 400 ms
blocks every 100 ms, absolute gate -70 LUFS, relative gate -10 LU. It is computed here with numpy
alone (the filters applied in the frequency domain to the zero-padded signal, which is the causal
IIR filtering up to a negligible tail): importing ``pyloudnorm`` imports ``scipy.signal``, which
would triple the cold start of ``emovox predict``. ``tests/test_loudness.py`` checks it against
``pyloudnorm`` (the default model's training features were scaled with ``pyloudnorm``). Inputs
shorter than one block, and inputs without a block above the absolute gate (digital silence), are
left as they are. The gain up is limited to ``MAX_GAIN_DB`` so that near-silent noise is not
blown up into full-scale noise. The gain down is not limited (it was -30 dB until 2026-12-02): no
clip within full scale is louder than about +3 LUFS, so only a clip far outside it (float samples
stored at integer scale, peaks near 32767) needs more, and it read as one long clipped blast.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from emovox.audio_budget import SAMPLE_RATE

#: The largest gain up (dB) :func:`normalise` and :func:`within_range` apply; down is not limited.
MAX_GAIN_DB = 30.0
BLOCK, STEP = 0.4, 0.1  # gating blocks (s) and their hop (75 % overlap)
ABSOLUTE_GATE, RELATIVE_GATE = -70.0, -10.0
_PAD = SAMPLE_RATE // 2  # zeros after the signal: the filters' responses have died out well within them


def _biquad(gain_db: float, q: float, fc: float, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """RBJ-cookbook biquad coefficients ``(b, a)`` at 16 kHz (``high_shelf`` or ``high_pass``)."""
    a_ = 10 ** (gain_db / 40.0)
    w0 = 2.0 * np.pi * fc / SAMPLE_RATE
    alpha, c = np.sin(w0) / (2.0 * q), np.cos(w0)
    if kind == "high_shelf":
        r = 2 * np.sqrt(a_) * alpha
        b = [a_ * ((a_ + 1) + (a_ - 1) * c + r), -2 * a_ * ((a_ - 1) + (a_ + 1) * c), a_ * ((a_ + 1) + (a_ - 1) * c - r)]
        a = [(a_ + 1) - (a_ - 1) * c + r, 2 * ((a_ - 1) - (a_ + 1) * c), (a_ + 1) - (a_ - 1) * c - r]
    else:
        b = [(1 + c) / 2, -(1 + c), (1 + c) / 2]
        a = [1 + alpha, -2 * c, 1 - alpha]
    return np.array(b), np.array(a)


K_WEIGHTING = (_biquad(4.0, 1 / np.sqrt(2), 1500.0, "high_shelf"), _biquad(0.0, 0.5, 38.0, "high_pass"))


def _fft_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (lengths the FFT handles fastest)."""
    best = 1 << (n - 1).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35 << max(0, (-(-n // p35) - 1).bit_length())
            best = min(best, m) if m >= n else best
            p35 *= 3
        p5 *= 5
    return best


@functools.lru_cache(maxsize=8)  # at most 8 x 4 MB (30 s inputs)
def _response(n: int) -> np.ndarray:
    """The K-weighting filters' frequency response on the bins of an ``n``-point rfft."""
    z = np.exp(-2j * np.pi * np.arange(n // 2 + 1) / n)  # z^-1
    response = np.ones_like(z)
    for b, a in K_WEIGHTING:
        response *= np.polyval(b[::-1], z) / np.polyval(a[::-1], z)
    return response


def k_weighted(x: np.ndarray) -> np.ndarray:
    """``x`` (float64) through the K-weighting filters."""
    n = _fft_length(x.size + _PAD)
    return np.fft.irfft(np.fft.rfft(x, n) * _response(n), n)[:x.size]


def loudness(wave: np.ndarray) -> float:
    """Integrated loudness (LUFS) of 16 kHz mono ``wave``; ``-inf`` when it cannot be measured
    (not longer than one 0.4 s block, or no block above the absolute gate)."""
    x = np.asarray(wave, np.float64).reshape(-1)
    if x.size <= int(BLOCK * SAMPLE_RATE) or not np.any(x):
        return -math.inf
    energy = np.concatenate([[0.0], np.cumsum(k_weighted(x) ** 2)])
    j = np.arange(int(np.round((x.size / SAMPLE_RATE - BLOCK) / STEP)) + 1)
    lo = (BLOCK * (j * 0.25) * SAMPLE_RATE).astype(np.int64)  # block bounds as BS.1770 implementations round them
    hi = np.minimum((BLOCK * (j * 0.25 + 1) * SAMPLE_RATE).astype(np.int64), x.size)
    z = (energy[hi] - energy[lo]) / (BLOCK * SAMPLE_RATE)
    with np.errstate(divide="ignore"):
        level = -0.691 + 10.0 * np.log10(z)
        kept = z[level >= ABSOLUTE_GATE]
        if not kept.size:
            return -math.inf
        relative = -0.691 + 10.0 * np.log10(kept.mean()) + RELATIVE_GATE
        final = z[(level > relative) & (level > ABSOLUTE_GATE)]
    return float(-0.691 + 10.0 * np.log10(final.mean())) if final.size else -math.inf


def normalise(wave: np.ndarray, target: float) -> np.ndarray:
    """``wave`` (float32) scaled to ``target`` LUFS, raised by at most :data:`MAX_GAIN_DB` and
    turned down as far as needed; unchanged when its loudness cannot be measured."""
    x = np.asarray(wave, np.float32)
    return _scaled(x, target, loudness(x))


def remove_dc(wave: np.ndarray) -> np.ndarray:
    """``wave`` (float32) minus its mean: what every graph input of an audio model
    (:func:`emovox.audio_model.model_input`) and Sohn's VAD start from. A DC offset (cheap sound
    cards, some USB microphones) is inaudible, but it changes the lowest log-mel bands of every
    quiet frame: on the default model's validation speakers an offset of 0.01 changed 10 % of the
    answers (UA 85.5 -> 81.0) before graph inputs lost it. The corpora's own offsets are at least
    49 dB below their speech; taking them away changed 1.6 % of those answers (UA 85.7)."""
    x = np.asarray(wave, np.float32)
    return (x - np.float32(x.mean(dtype=np.float64))) if x.size else x


def within_range(wave: np.ndarray, floor: float, ceiling: float) -> np.ndarray:
    """``wave`` (float32) as :func:`normalise` scales it to ``floor`` LUFS when quieter than that or
    louder than ``ceiling`` (float data beyond full scale), else as it is."""
    x = np.asarray(wave, np.float32)
    level = loudness(x)
    return x if floor <= level <= ceiling else _scaled(x, floor, level)


def _scaled(x: np.ndarray, target: float, level: float) -> np.ndarray:
    """``x`` at ``level`` LUFS scaled to ``target``, raised by at most :data:`MAX_GAIN_DB`; as it is
    when its level is unmeasurable (-inf)."""
    if not math.isfinite(level):
        return x
    gain_db = min(target - level, MAX_GAIN_DB)
    return x if gain_db == 0.0 else (x * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


__all__ = ["MAX_GAIN_DB", "loudness", "normalise", "remove_dc", "within_range"]
