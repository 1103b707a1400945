"""Shared short-time Fourier machinery for every front-end (and the statistical VAD).

:class:`FramedSpectrum` turns a (N,) or (B, N) float32 waveform into per-frame spectra in
chunks of frames, so memory stays bounded and the working set fits in cache (this is what
makes the log-mel front-end several times faster than librosa on one core). Subclasses say
what to do with each chunk (:meth:`FramedSpectrum.reduce`) and with the whole output
(:meth:`FramedSpectrum.finish`).

Framing: frame ``t`` is centred at sample ``t·hop`` when ``center=True`` (zero padding, as
``librosa``/``torch.stft`` with ``pad_mode="constant"``; ``1 + N // hop`` frames) and starts at
sample ``t·hop`` when ``center=False`` (``1 + (N - win) // hop`` frames). A window shorter than
``n_fft`` is zero-padded to ``n_fft`` (centred in the frame when ``center=True``, as
``torch.stft`` does; at the frame start when ``center=False``, as VGGish's ``rfft(frame, n_fft)``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from emovox.audio import SAMPLE_RATE
from emovox.errors import AudioError

_WINDOWS = {"hann": torch.hann_window, "hamming": torch.hamming_window}


def as_waveform(wave: torch.Tensor | np.ndarray, source: object = "<waveform>") -> tuple[torch.Tensor, bool]:
    """Validate a waveform and return it as float32 (B, N) plus whether the input was 1-D."""
    x = torch.as_tensor(wave)
    if x.ndim not in (1, 2):
        raise AudioError(source, f"expected a waveform of shape (N,) or (B, N), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise AudioError(source, f"waveform must be float32 samples in [-1, 1], got dtype {x.dtype}")
    if x.shape[-1] == 0:
        raise AudioError(source, "waveform has zero samples")
    single = x.ndim == 1
    return x.to(torch.float32).reshape(-1, x.shape[-1]), single


class FramedSpectrum(nn.Module):
    """Base class: windowed frames -> one-sided spectrum (power or magnitude), chunk by chunk."""

    #: Frames processed per chunk; ~1000 keeps a 512-point chunk within L2 cache.
    chunk_frames = 1000
    window: torch.Tensor  # buffer, registered in __init__

    def __init__(
        self, n_fft: int, win_length: int, hop_length: int, window: str = "hann",
        center: bool = True, power: float = 2.0, n_bins: int | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        super().__init__()
        if not 0 < win_length <= n_fft:
            raise ValueError(f"need 0 < win_length <= n_fft, got win_length={win_length}, n_fft={n_fft}")
        if window not in _WINDOWS:
            raise ValueError(f"unknown window {window!r}; choose one of {sorted(_WINDOWS)}")
        if power not in (1.0, 2.0):
            raise ValueError(f"power must be 1 (magnitude) or 2 (power), got {power}")
        self.sample_rate = sample_rate
        self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
        self.center, self.power = center, float(power)
        self.n_bins = n_fft // 2 + 1 if n_bins is None else n_bins
        # Periodic window (as torch.stft / librosa.stft / VGGish), zero-padded to n_fft: framing
        # whole n_fft frames is cheaper than letting the FFT pad every frame.
        offset = (n_fft - win_length) // 2 if center else 0
        padded = torch.nn.functional.pad(_WINDOWS[window](win_length, periodic=True),
                                         (offset, n_fft - win_length - offset))
        self.register_buffer("window", padded, persistent=False)

    # -- geometry -----------------------------------------------------------------------------
    def num_frames(self, num_samples: int) -> int:
        """Number of output frames for a waveform of ``num_samples`` samples."""
        if self.center:
            return 1 + num_samples // self.hop_length
        return max(0, 1 + (num_samples - self.win_length) // self.hop_length)

    def _frames(self, x: torch.Tensor, n_frames: int) -> torch.Tensor:
        """(B, N) -> (B, n_frames, n_fft) strided view of the zero-padded signal."""
        left = self.n_fft // 2 if self.center else 0
        need = (n_frames - 1) * self.hop_length + self.n_fft
        right = max(0, need - left - x.shape[-1])
        x = torch.nn.functional.pad(x, (left, right))
        return x.unfold(-1, self.n_fft, self.hop_length)[:, :n_frames]

    def spectrum(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, C, n_fft) frames -> (B, C, n_bins) power (power=2) or magnitude (power=1)."""
        spec = torch.fft.rfft(frames * self.window)[..., : self.n_bins]
        if self.power == 1.0:
            return spec.abs()
        parts = torch.view_as_real(spec).square()
        return parts[..., 0] + parts[..., 1]

    # -- hooks --------------------------------------------------------------------------------
    @property
    def n_features(self) -> int:
        return self.n_bins

    def reduce(self, spec: torch.Tensor) -> torch.Tensor:
        """Per-chunk map (B, C, n_bins) -> (B, C, n_features); identity by default."""
        return spec

    def finish(self, feats: torch.Tensor) -> torch.Tensor:
        """In-place map on the whole (B, T, F) output (log, compression...); identity by default."""
        return feats

    # -- forward ------------------------------------------------------------------------------
    @torch.no_grad()
    def forward(self, wave: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(N,) -> (T, F) or (B, N) -> (B, T, F) float32 features, T = ``num_frames(N)``."""
        x, single = as_waveform(wave)
        x = x.to(self.window.device)
        n_frames = self.num_frames(x.shape[-1])
        out = torch.empty(x.shape[0], n_frames, self.n_features, device=x.device)
        if n_frames:
            frames = self._frames(x, n_frames)
            for start in range(0, n_frames, self.chunk_frames):
                stop = min(n_frames, start + self.chunk_frames)
                out[:, start:stop] = self.reduce(self.spectrum(frames[:, start:stop]))
            out = self.finish(out)
        return out[0] if single else out

    def extra_repr(self) -> str:
        return (f"sample_rate={self.sample_rate}, n_fft={self.n_fft}, win_length={self.win_length}, "
                f"hop_length={self.hop_length}, center={self.center}, n_features={self.n_features}")


def power_spectrogram(
    wave: torch.Tensor | np.ndarray, n_fft: int = 512, win_length: int = 400, hop_length: int = 160,
    window: str = "hann", center: bool = True,
) -> torch.Tensor:
    """One-sided power spectrogram (T, n_fft // 2 + 1) of a (N,) waveform (or (B, T, bins))."""
    return FramedSpectrum(n_fft, win_length, hop_length, window=window, center=center, power=2.0)(wave)


class MelSpectrum(FramedSpectrum):
    """A :class:`FramedSpectrum` reduced chunk by chunk to ``n_mels`` bands by ``mel`` (a mel
    matrix as a module, set by the subclass: :class:`emovox.frontend.logmel.LogMel`,
    :class:`emovox.frontend.vggish_input.VGGishLogMel`)."""

    n_mels: int
    mel: nn.Module

    @property
    def n_features(self) -> int:
        return self.n_mels

    def reduce(self, spec: torch.Tensor) -> torch.Tensor:
        return self.mel(spec)
