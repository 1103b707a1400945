"""VGGish input features (seed paper 002, §3.2; Hershey et al. 2017 reference code).

64 mel bands over 125–7500 Hz, 25 ms periodic Hann window (400 samples) in a 512-point FFT,
10 ms hop, *magnitude* spectrum (not power), VGGish's own mel matrix (HTK scale, triangles in
the mel domain), ``log(mel + 0.01)``. Frames are not centred, as in ``vggish_input.py``:
``T = 1 + (N - 400) // 160``, so 1 s gives 98 frames and one 96-frame (0.96 s) patch.
"""

from __future__ import annotations

import torch

from emovox.audio import SAMPLE_RATE
from emovox.frontend.filters import BandedProjection, vggish_mel_matrix
from emovox.frontend.stft import MelSpectrum

PATCH_FRAMES = 96
LOG_OFFSET = 0.01


class VGGishLogMel(MelSpectrum):
    """Waveform (N,) / (B, N) -> VGGish log-mel (T, 64) / (B, T, 64)."""

    def __init__(
        self, n_mels: int = 64, f_min: float = 125.0, f_max: float = 7500.0, win_length: int = 400,
        hop_length: int = 160, n_fft: int = 512, log_offset: float = LOG_OFFSET,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__(n_fft, win_length, hop_length, window="hann", center=False, power=1.0,
                         sample_rate=sample_rate)
        self.n_mels, self.log_offset = n_mels, float(log_offset)
        self.mel = BandedProjection(vggish_mel_matrix(sample_rate, n_fft, n_mels, f_min, f_max))

    def finish(self, feats: torch.Tensor) -> torch.Tensor:
        return feats.add_(self.log_offset).log_()


def to_patches(feats: torch.Tensor, patch_frames: int = PATCH_FRAMES, hop_frames: int | None = None) -> torch.Tensor:
    """Cut (T, F) features into (P, patch_frames, F) patches, hop ``hop_frames`` (default: no overlap).

    A trailing remainder shorter than a patch is dropped, as VGGish does; T < patch_frames
    gives P = 0.
    """
    if feats.ndim != 2:
        raise ValueError(f"expected (T, F) features, got shape {tuple(feats.shape)}")
    hop = patch_frames if hop_frames is None else hop_frames
    if patch_frames <= 0 or hop <= 0:
        raise ValueError(f"patch_frames and hop_frames must be positive, got {patch_frames}, {hop}")
    if feats.shape[0] < patch_frames:
        return feats.new_zeros((0, patch_frames, feats.shape[1]))
    return feats.unfold(0, patch_frames, hop).transpose(1, 2).contiguous()
