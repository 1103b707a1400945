"""Mel filterbanks (Slaney/librosa and VGGish flavours) and a fast banded projection.

The filterbanks are computed here in numpy so librosa stays a test-only dependency.
:func:`slaney_mel_filterbank` reproduces ``librosa.filters.mel`` (``htk=False, norm="slaney"``
and ``htk=True`` variants); :func:`vggish_mel_matrix` reproduces the ``mel_features.py`` matrix of
the VGGish reference code (HTK mel scale, triangles computed in the mel domain, DC row zeroed).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

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


def vggish_mel_matrix(
    sample_rate: int = 16000, n_fft: int = 512, n_mels: int = 64,
    f_min: float = 125.0, f_max: float = 7500.0,
) -> np.ndarray:
    """VGGish's mel matrix (n_fft // 2 + 1, n_mels): HTK mel ``1127·ln(1 + f/700)``, peak-1 triangles
    interpolated in the mel domain, DC bin excluded (as ``mel_features.spectrogram_to_mel_matrix``)."""
    n_bins = n_fft // 2 + 1

    def to_mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    bins_mel = to_mel(np.linspace(0.0, sample_rate / 2, n_bins))
    edges = np.linspace(to_mel(f_min), to_mel(f_max), n_mels + 2)
    lower = (bins_mel[:, None] - edges[None, :-2]) / (edges[1:-1] - edges[:-2])
    upper = (edges[None, 2:] - bins_mel[:, None]) / (edges[2:] - edges[1:-1])
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights[0, :] = 0.0
    return weights.astype(np.float32)


class BandedProjection(nn.Module):
    """``x @ matrix`` for a banded non-negative matrix (a filterbank), done block by block.

    Mel filters touch only a narrow, moving range of FFT bins, so the matrix is cut into groups
    of ``group`` consecutive outputs, each multiplied only with the input bins it covers. This is
    ~4x faster than a dense matmul on CPU, exact, and uses only dense ops (ONNX/GPU friendly).
    """

    def __init__(self, matrix: np.ndarray | torch.Tensor, group: int = 16) -> None:
        super().__init__()
        w = torch.as_tensor(np.asarray(matrix, dtype=np.float32))
        if w.ndim != 2:
            raise ValueError(f"projection matrix must be 2-D, got shape {tuple(w.shape)}")
        self.n_in, self.n_out = w.shape
        self.ranges: list[tuple[int, int]] = []
        for i, start in enumerate(range(0, self.n_out, group)):
            block = w[:, start:start + group]
            rows = torch.nonzero(block.abs().sum(1)).flatten()
            lo, hi = (int(rows.min()), int(rows.max()) + 1) if rows.numel() else (0, 1)
            self.ranges.append((lo, hi))
            self.register_buffer(f"block{i}", block[lo:hi].contiguous(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., n_in) -> (..., n_out)."""
        flat = x.reshape(-1, self.n_in)
        parts = [flat[:, lo:hi] @ getattr(self, f"block{i}") for i, (lo, hi) in enumerate(self.ranges)]
        return torch.cat(parts, dim=1).reshape(*x.shape[:-1], self.n_out)
