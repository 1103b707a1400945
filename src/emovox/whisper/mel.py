"""Whisper's log-mel input (80 bands), in numpy (torch-free inference) and as a torch module.

Definition (openai/whisper ``audio.log_mel_spectrogram``): |STFT|² of a 400-point periodic Hann
window, hop 160 (10 ms), centred with reflect padding, last frame dropped; 80 Slaney mel bands
(:func:`emovox.melscale.slaney_mel_filterbank`, equal to librosa's within 2e-9);
``log10(max(mel, 1e-10))``, floored at ``max - 8`` over the clip, then ``(x + 4) / 4``.
Both implementations give ``(80, len(samples) // 160)``. :class:`WhisperLogMel` computes the STFT
as a strided convolution with a fixed DFT basis, so it exports to any ONNX opset and runs in
onnxruntime exactly as in torch; it agrees with the numpy version within 1e-4 (tested).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from emovox.melscale import slaney_mel_filterbank

SAMPLE_RATE, N_FFT, HOP, N_MELS = 16000, 400, 160, 80
N_BINS = N_FFT // 2 + 1


@lru_cache(maxsize=4)
def mel_filters(n_mels: int = N_MELS) -> np.ndarray:
    """``(n_mels, 201)`` float32 Slaney filterbank."""
    return np.ascontiguousarray(slaney_mel_filterbank(SAMPLE_RATE, N_FFT, n_mels).T)


@lru_cache(maxsize=1)
def hann() -> np.ndarray:
    n = np.arange(N_FFT)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / N_FFT)).astype(np.float32)


def num_frames(num_samples: int) -> int:
    """Mel frames for ``num_samples`` samples."""
    return int(num_samples) // HOP


def log_mel(samples: np.ndarray, n_mels: int = N_MELS, pad_samples: int = 0) -> np.ndarray:
    """``(n_mels, (len + pad) // 160)`` float32 log-mel of 16 kHz mono ``samples`` (numpy only)."""
    x = np.asarray(samples, dtype=np.float32).reshape(-1)
    if pad_samples:
        x = np.concatenate([x, np.zeros(int(pad_samples), np.float32)])
    n = num_frames(len(x))
    if n == 0:
        return np.zeros((n_mels, 0), np.float32)
    padded = np.pad(x, N_FFT // 2, mode="reflect") if len(x) > N_FFT // 2 else np.pad(x, N_FFT // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n]
    spec = np.fft.rfft(frames * hann(), axis=-1)
    power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
    mel = mel_filters(n_mels) @ power.T
    log_spec = np.log10(np.maximum(mel, 1e-10))
    log_spec = np.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).astype(np.float32)


def dft_basis() -> np.ndarray:
    """``(2 * 201, 1, 400)`` windowed cos/−sin kernels: a conv1d with stride 160 is the STFT."""
    k = np.arange(N_BINS)[:, None]
    n = np.arange(N_FFT)[None, :]
    angle = 2 * np.pi * k * n / N_FFT
    basis = np.concatenate([np.cos(angle), -np.sin(angle)]) * hann()[None, :]
    return basis[:, None, :].astype(np.float32)


def torch_log_mel_module(n_mels: int = N_MELS):  # -> torch.nn.Module (torch imported lazily)
    """A :class:`torch.nn.Module` ``(B, N) waves -> (B, n_mels, N // 160)`` log-mels."""
    import torch
    from torch import nn

    class WhisperLogMel(nn.Module):
        basis: torch.Tensor  # buffers, registered in __init__
        filters: torch.Tensor

        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("basis", torch.from_numpy(dft_basis()), persistent=False)
            self.register_buffer("filters", torch.from_numpy(mel_filters(n_mels)), persistent=False)

        def forward(self, waves: torch.Tensor) -> torch.Tensor:
            n = waves.shape[-1] // HOP
            x = nn.functional.pad(waves[:, None, :], (N_FFT // 2, N_FFT // 2), mode="reflect")
            spec = nn.functional.conv1d(x, self.basis, stride=HOP)[..., :n]
            power = spec[:, :N_BINS] ** 2 + spec[:, N_BINS:] ** 2
            mel = torch.matmul(self.filters, power)
            log_spec = torch.log10(torch.clamp(mel, min=1e-10))
            peak = log_spec.amax(dim=(1, 2), keepdim=True)
            log_spec = torch.maximum(log_spec, peak - 8.0)
            return (log_spec + 4.0) / 4.0

    return WhisperLogMel()
