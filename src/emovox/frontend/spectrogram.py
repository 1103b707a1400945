"""μ-law compressed magnitude spectrogram (seed paper 003, §IV.A).

40 ms Hamming window (640 samples), 10 ms shift (160), 1600-point FFT (10 Hz bins), only
0–4000 Hz kept: bins 0..399, i.e. 0, 10, ..., 3990 Hz (the paper's 400 frequency rows).
Frames are centred at ``t·hop`` for every ``t`` with ``t·hop < N``, so
``T = ceil(N / hop)`` and a 2 s chunk (32000 samples) gives exactly 200 frames. The paper's
"400 × 200" input is frequency × time; emovox is time-major, so a 2 s chunk is (200, 400).

μ-law (the paper's "μ-law expansion", after Li et al., Interspeech 2018): magnitudes are
scaled to [0, 1] by a reference and compressed with ``ln(1 + μ·x) / ln(1 + μ)``, μ = 255.
The reference is, by default, each utterance's (each batch item's) largest magnitude
(``reference="max"``: gain-invariant); ``reference="full_scale"`` divides by the window sum
instead (the magnitude of a full-scale DC signal), which keeps absolute level.
"""

from __future__ import annotations

import math

import torch

from emovox.audio import SAMPLE_RATE
from emovox.frontend.stft import FramedSpectrum

REFERENCES = ("max", "full_scale")


def mu_law(x: torch.Tensor, mu: float = 255.0) -> torch.Tensor:
    """μ-law compression of values in [0, 1] (or [-1, 1], sign kept): ``sign(x)·ln(1+μ|x|)/ln(1+μ)``."""
    return torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)


class MuLawSpectrogram(FramedSpectrum):
    """Waveform (N,) / (B, N) -> μ-law magnitude spectrogram (T, 400) / (B, T, 400), T = ceil(N / 160)."""

    def __init__(
        self, win_length: int = 640, hop_length: int = 160, n_fft: int = 1600, f_max: float = 4000.0,
        mu: float = 255.0, reference: str = "max", sample_rate: int = SAMPLE_RATE,
    ) -> None:
        n_bins = int(round(f_max * n_fft / sample_rate))
        if not 0 < n_bins <= n_fft // 2 + 1:
            raise ValueError(f"f_max={f_max} Hz is outside 0..{sample_rate / 2} Hz")
        if reference not in REFERENCES:
            raise ValueError(f"unknown reference {reference!r}; choose one of {REFERENCES}")
        super().__init__(n_fft, win_length, hop_length, window="hamming", center=True, power=1.0,
                         n_bins=n_bins, sample_rate=sample_rate)
        self.mu, self.reference = float(mu), reference

    def num_frames(self, num_samples: int) -> int:
        return -(-num_samples // self.hop_length)

    def finish(self, feats: torch.Tensor) -> torch.Tensor:
        if self.reference == "max":
            ref = feats.amax(dim=(1, 2), keepdim=True)
        else:
            ref = self.window.sum()
        feats.div_(torch.clamp_min(ref, 1e-12)).clamp_(0.0, 1.0)
        return feats.mul_(self.mu).log1p_().div_(math.log1p(self.mu))
