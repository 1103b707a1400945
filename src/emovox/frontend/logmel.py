"""High-resolution log-mel spectrogram (seed paper 000, §4.2): 128 bands, 25 ms / 10 ms.

``log(max(mel_power, log_floor))`` with natural log and ``log_floor = 1e-10`` (librosa's
``power_to_db`` default ``amin``; roughly the mel-band level of 16-bit quantisation noise, so
only digital silence and padding reach the floor). Mel filters are librosa's default
(Slaney scale, Slaney area normalisation); the power spectrum uses a periodic Hann window of
``win_length`` zero-padded to ``n_fft`` and centred frames, so
``LogMel()(x)`` equals ``log(max(librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512,
hop_length=160, win_length=400, n_mels=128).T, 1e-10))`` up to float32 rounding
(tested in tests/test_frontend.py).
"""

from __future__ import annotations

import torch

from emovox.audio import SAMPLE_RATE
from emovox.frontend.filters import BandedProjection, slaney_mel_filterbank
from emovox.frontend.stft import MelSpectrum


class LogMel(MelSpectrum):
    """Waveform (N,) / (B, N) at 16 kHz -> log-mel (T, n_mels) / (B, T, n_mels), T = 1 + N // hop."""

    def __init__(
        self, n_mels: int = 128, win_length: int = 400, hop_length: int = 160, n_fft: int = 512,
        f_min: float = 0.0, f_max: float | None = None, log_floor: float = 1e-10,
        htk: bool = False, norm: str | None = "slaney", sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__(n_fft, win_length, hop_length, window="hann", center=True, power=2.0,
                         sample_rate=sample_rate)
        if log_floor <= 0:
            raise ValueError(f"log_floor must be > 0, got {log_floor}")
        self.n_mels, self.log_floor = n_mels, float(log_floor)
        self.mel = BandedProjection(
            slaney_mel_filterbank(sample_rate, n_fft, n_mels, f_min, f_max, htk=htk, norm=norm))

    def finish(self, feats: torch.Tensor) -> torch.Tensor:
        return feats.clamp_min_(self.log_floor).log_()
