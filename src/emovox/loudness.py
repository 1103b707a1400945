"""Input loudness: what a model's graph input is scaled to before its features.

A recording's absolute level says little about emotion: it depends on the microphone, its gain
and the distance to it. The acted corpora were recorded at very different levels (integrated
loudness of their clips, medians: EmoDB -17.5 LUFS, nEMO -23.9, ASED -22.0, TESS -29.6, RAVDESS
-39.0), so a head trained on them can learn "quiet" for "a RAVDESS-like recording". Measured on
the default model's validation speakers, turning a clip down by 30 dB moved most answers to
``sad``. Models whose config sets ``input_loudness`` therefore scale every graph input (a clip,
or a timeline piece) to that integrated loudness first, in training, inference and export alike.

Loudness is ITU-R BS.1770-4 integrated loudness (K-weighted, gated; ``pyloudnorm``, the field
implementation), in LUFS. Inputs shorter than one 0.4 s gating block, and inputs without a block
above the absolute gate (-70 LUFS: digital silence), are left as they are. The gain is limited to
``MAX_GAIN_DB`` either way so that near-silent noise is not blown up into full-scale noise.
"""

from __future__ import annotations

import math

import numpy as np

from emovox.audio_budget import SAMPLE_RATE
from emovox.errors import DependencyError

#: The largest gain (dB, up or down) :func:`normalise` applies.
MAX_GAIN_DB = 30.0
_METER = None


def _meter():
    global _METER
    if _METER is None:
        try:
            import pyloudnorm
        except ImportError:
            raise DependencyError("pyloudnorm", "input loudness normalisation", "pip install pyloudnorm") from None
        _METER = pyloudnorm.Meter(SAMPLE_RATE)  # BS.1770-4, 0.4 s blocks
    return _METER


def loudness(wave: np.ndarray) -> float:
    """Integrated loudness (LUFS) of 16 kHz mono ``wave``; ``-inf`` when it cannot be measured
    (shorter than 0.4 s, or silent)."""
    x = np.asarray(wave, np.float64).reshape(-1)
    if x.size <= int(0.4 * SAMPLE_RATE) or not np.any(x):
        return -math.inf
    return float(_meter().integrated_loudness(x))


def normalise(wave: np.ndarray, target: float) -> np.ndarray:
    """``wave`` (float32) scaled to ``target`` LUFS, the gain limited to +-:data:`MAX_GAIN_DB`;
    unchanged when its loudness cannot be measured."""
    x = np.asarray(wave, np.float32)
    level = loudness(x)
    if not math.isfinite(level):
        return x
    gain_db = float(np.clip(target - level, -MAX_GAIN_DB, MAX_GAIN_DB))
    return (x * np.float32(10.0 ** (gain_db / 20.0))).astype(np.float32)


__all__ = ["MAX_GAIN_DB", "loudness", "normalise"]
