"""Mel scales and the Slaney/librosa mel filterbank in numpy (torch-free).

:func:`slaney_mel_filterbank` reproduces ``librosa.filters.mel`` (``htk=False, norm="slaney"``
and ``htk=True`` variants), so librosa stays a test-only dependency; Whisper's 80-band filters are
``slaney_mel_filterbank(16000, 400, 80).T``.
"""

from __future__ import annotations

import numpy as np

# Slaney's auditory-toolbox mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float, htk: bool = False) -> np.ndarray:
    """Hertz to mel (Slaney scale by default, ``2595·log10(1 + f/700)`` with ``htk=True``)."""
    f = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + f / 700.0)
    mel = f / _F_SP
    return np.where(f >= _MIN_LOG_HZ, _MIN_LOG_MEL + np.log(np.maximum(f, 1e-12) / _MIN_LOG_HZ) / _LOGSTEP, mel)


def mel_to_hz(mel: np.ndarray | float, htk: bool = False) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    m = np.asarray(mel, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


def slaney_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float = 0.0, f_max: float | None = None,
    htk: bool = False, norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular mel filters of shape (n_fft // 2 + 1, n_mels), as ``librosa.filters.mel(...).T``.

    ``norm="slaney"`` scales each triangle by 2 / bandwidth (constant energy per band);
    ``norm=None`` leaves peaks at 1.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    fft_freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(f_min, htk), hz_to_mel(f_max, htk), n_mels + 2), htk)
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    if norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    elif norm is not None:
        raise ValueError(f"unsupported mel norm {norm!r}; use 'slaney' or None")
    return weights.T.astype(np.float32)
