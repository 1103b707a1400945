"""Voice activity detection at the front-end's 10 ms frame rate.

* :class:`SohnVAD` — the statistical-model VAD of Sohn, Kim & Sung (IEEE SPL 1999) that seed
  paper 000 (§4.2) uses: complex Gaussian speech and noise DFT coefficients, a-priori SNR by
  the decision-directed rule (α = 0.98), frame decision by the geometric mean of the per-bin
  likelihood ratios against a threshold, then hang-over smoothing that keeps pauses shorter
  than 500 ms inside speech (:func:`smooth_mask`).
* :class:`SileroVAD` — the neural Silero VAD bundled in the ``silero-vad`` package (offline).
* :class:`GatedVAD` — Sohn's regions, kept where Silero confirms speech (the timeline's default).

Both return one decision per frame, with exactly the frames of
:class:`emovox.frontend.LogMel` (frame ``t`` centred at ``t·10 ms``, ``1 + N // 160`` frames),
so ``drop_nonspeech(logmel(x), vad.frame_mask(x))`` lines up. For regions, frame ``t`` stands
for the interval ``[t·10 ms, (t+1)·10 ms)`` clipped to the clip duration.

Choices where the paper is silent (documented defaults, tuned on generated signals and
checked against Silero on RAVDESS/EmoDB/LibriSpeech clips; see tests/test_vad.py):

* analysis: 25 ms Hann window, 512-point FFT, 10 ms hop (the log-mel front-end's frames);
* initial noise spectrum: per frequency bin, the mean of the lowest 20 % of that bin's values
  over the clip, divided by the expected value of that mean for exponentially distributed
  noise power (≈ 0.107 for 20 %) — Sohn assumes leading noise frames, but cut clips may
  start with speech;
* noise tracking: ``λ ← 0.995·λ + 0.005·|X|²`` in frames judged non-speech;
* noise floor: the noise spectrum never drops below the clip's loud level (95th-percentile
  frame energy, spread over the bins) minus 40 dB. Sohn's test is scale-free, so without it
  faint room tone after digital silence (RAVDESS) would count as speech;
* threshold η = 0.15 on the mean per-bin log-likelihood ratio; hang-over: pauses < 500 ms
  bridged, speech runs < 100 ms dropped.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np
import torch

from emovox.audio import SAMPLE_RATE
from emovox.errors import AudioError, ConfigError, DependencyError
from emovox.frontend.stft import as_waveform, power_spectrogram
from emovox.loudness import remove_dc, within_range
from emovox.speech import VAD_CEILING, VAD_LOUDNESS
from emovox.timeline import region_overlap

log = logging.getLogger(__name__)

HOP_LENGTH = 160  #: 10 ms at 16 kHz, the front-ends' hop
FRAME_SECONDS = HOP_LENGTH / SAMPLE_RATE


def num_vad_frames(num_samples: int) -> int:
    """Frames of a VAD mask for ``num_samples`` samples (the log-mel front-end's count)."""
    return 1 + num_samples // HOP_LENGTH


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) frame index pairs of the True runs of a 1-D boolean mask."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def smooth_mask(mask: np.ndarray, max_pause_s: float = 0.5, min_speech_s: float = 0.1,
                frame_s: float = FRAME_SECONDS) -> np.ndarray:
    """Hang-over smoothing: pauses shorter than ``max_pause_s`` between speech frames become
    speech, then speech runs shorter than ``min_speech_s`` (isolated clicks) are dropped."""
    out = np.asarray(mask, dtype=bool).copy()
    runs = _runs(out)
    max_gap = int(round(max_pause_s / frame_s))
    for (_, stop), (start, _) in zip(runs[:-1], runs[1:]):
        if start - stop < max_gap:
            out[stop:start] = True
    min_len = int(round(min_speech_s / frame_s))
    for start, stop in _runs(out):
        if stop - start < min_len:
            out[start:stop] = False
    return out


def mask_to_regions(mask: np.ndarray, duration: float | None = None,
                    frame_s: float = FRAME_SECONDS) -> list[tuple[float, float]]:
    """Speech regions ``[(start_s, end_s), ...]`` of a frame mask; ends clipped to ``duration``."""
    regions = []
    for start, stop in _runs(np.asarray(mask, dtype=bool)):
        end = stop * frame_s if duration is None else min(stop * frame_s, duration)
        regions.append((round(start * frame_s, 6), round(end, 6)))
    return regions


def drop_nonspeech(feats: torch.Tensor, mask: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Keep only the speech frames of (T, F) features (do this *before* normalisation).

    ``mask`` must have T entries. If no frame is speech the features are returned unchanged
    (logged), so a quiet clip still yields features instead of an empty tensor.
    """
    keep = torch.as_tensor(np.asarray(mask, dtype=bool), device=feats.device)
    if keep.ndim != 1 or keep.numel() != feats.shape[0]:
        raise ValueError(f"VAD mask has {keep.numel()} frames but the features have {feats.shape[0]}; "
                         "compute both with 10 ms hops over the same waveform")
    if not bool(keep.any()):
        log.info("no speech frames detected; keeping all %d frames", feats.shape[0])
        return feats
    return feats[keep]


class BaseVAD:
    """A VAD gives a boolean speech mask per 10 ms frame; regions and fractions follow from it."""

    name = "base"

    def frame_mask(self, wave: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def regions(self, wave: np.ndarray) -> list[tuple[float, float]]:
        """Speech regions in seconds."""
        x = _mono(wave)
        return mask_to_regions(self.frame_mask(x), duration=x.size / SAMPLE_RATE)

    def speech_fraction(self, wave: np.ndarray) -> float:
        """Fraction of frames that are speech."""
        mask = self.frame_mask(wave)
        return float(mask.mean()) if mask.size else 0.0


def _mono(wave: np.ndarray | torch.Tensor) -> np.ndarray:
    x, single = as_waveform(wave)
    if not single:
        raise AudioError("<waveform>", f"a VAD takes one mono waveform (N,), got {tuple(x.shape)}")
    return x[0].cpu().numpy()


class SohnVAD(BaseVAD):
    """Sohn et al. (1999) statistical-model VAD with hang-over smoothing."""

    name = "sohn"

    def __init__(
        self, threshold: float = 0.15, alpha: float = 0.98, noise_beta: float = 0.995,
        noise_quantile: float = 0.2, dynamic_range_db: float = 40.0, xi_min_db: float = -25.0,
        max_pause_s: float = 0.5, min_speech_s: float = 0.1, n_fft: int = 512, win_length: int = 400,
    ) -> None:
        if not (0 < alpha < 1 and 0 < noise_beta < 1 and 0 < noise_quantile < 1):
            raise ConfigError("SohnVAD: alpha, noise_beta and noise_quantile must lie in (0, 1)")
        self.threshold, self.alpha, self.noise_beta = threshold, alpha, noise_beta
        self.noise_quantile, self.dynamic_range_db = noise_quantile, dynamic_range_db
        self.xi_min = 10.0 ** (xi_min_db / 10.0)
        self.max_pause_s, self.min_speech_s = max_pause_s, min_speech_s
        self.n_fft, self.win_length = n_fft, win_length

    def initial_noise(self, power: np.ndarray) -> tuple[np.ndarray, float]:
        """(initial noise power per bin, noise floor) from a (T, bins) power spectrogram."""
        q = self.noise_quantile
        k = max(1, int(np.ceil(q * len(power))))
        lowest = np.partition(power, k - 1, axis=0)[:k].mean(axis=0)
        # E[X | X below its q-quantile] / E[X] for exponentially distributed X.
        bias = (1.0 - (1.0 - q) * (1.0 - np.log1p(-q))) / q
        loud = float(np.percentile(power.sum(axis=1), 95)) / power.shape[1]
        floor = loud * 10.0 ** (-self.dynamic_range_db / 10.0) + 1e-30
        return np.maximum(lowest / bias, floor), floor

    def likelihood_ratios(self, wave: np.ndarray) -> np.ndarray:
        """Mean per-bin log-likelihood ratio log Λ of every frame (before thresholding), the
        wave's DC offset removed first (it would count as a steady low-frequency tone)."""
        x = remove_dc(_mono(wave))
        power = power_spectrogram(x, self.n_fft, self.win_length, HOP_LENGTH).double().numpy()
        noise, floor = self.initial_noise(power)
        llr = np.empty(len(power))
        clean_prev = np.zeros(power.shape[1])  # previous frame's estimated clean speech power
        for t, frame in enumerate(power):
            gamma = frame / noise  # a-posteriori SNR
            xi = self.alpha * clean_prev / noise + (1 - self.alpha) * np.maximum(gamma - 1.0, 0.0)
            xi = np.maximum(xi, self.xi_min)  # decision-directed a-priori SNR
            llr[t] = float(np.mean(gamma * xi / (1.0 + xi) - np.log1p(xi)))
            clean_prev = (xi / (1.0 + xi)) ** 2 * frame  # Wiener estimate of |S|^2
            if llr[t] <= self.threshold:
                noise = np.maximum(self.noise_beta * noise + (1 - self.noise_beta) * frame, floor)
        return llr

    def raw_mask(self, wave: np.ndarray) -> np.ndarray:
        """Per-frame likelihood-ratio decisions without hang-over smoothing."""
        return self.likelihood_ratios(wave) > self.threshold

    def frame_mask(self, wave: np.ndarray) -> np.ndarray:
        """Boolean speech mask, one entry per 10 ms frame (``1 + N // 160``)."""
        return smooth_mask(self.raw_mask(wave), self.max_pause_s, self.min_speech_s)


class SileroVAD(BaseVAD):
    """Silero VAD (bundled weights in the ``silero-vad`` package; no download), same mask format."""

    name = "silero"
    _model = None

    def __init__(self, threshold: float = 0.5, max_pause_s: float = 0.5, min_speech_s: float = 0.1,
                 speech_pad_s: float = 0.03) -> None:
        self.threshold, self.max_pause_s = threshold, max_pause_s
        self.min_speech_s, self.speech_pad_s = min_speech_s, speech_pad_s

    @classmethod
    def model(cls):
        if cls._model is None:
            try:
                from silero_vad import load_silero_vad
            except ImportError:
                raise DependencyError("silero-vad", "the Silero VAD", "pip install silero-vad") from None
            with warnings.catch_warnings():  # the package's own importlib/jit deprecation notices
                warnings.simplefilter("ignore", DeprecationWarning)
                cls._model = load_silero_vad()
        return cls._model

    def frame_mask(self, wave: np.ndarray) -> np.ndarray:
        """Boolean speech mask, one entry per 10 ms frame (``1 + N // 160``)."""
        from silero_vad import get_speech_timestamps

        x = within_range(_mono(wave), VAD_LOUDNESS, VAD_CEILING)  # it misses quiet speech (emovox.speech)
        stamps = get_speech_timestamps(
            torch.from_numpy(x), self.model(), threshold=self.threshold, sampling_rate=SAMPLE_RATE,
            min_speech_duration_ms=int(1000 * self.min_speech_s),
            min_silence_duration_ms=int(1000 * self.max_pause_s),
            speech_pad_ms=int(1000 * self.speech_pad_s))
        centres = np.arange(num_vad_frames(x.size)) * HOP_LENGTH
        mask = np.zeros(centres.size, dtype=bool)
        for stamp in stamps:
            mask |= (centres >= stamp["start"]) & (centres < stamp["end"])
        return mask


class GatedVAD(SohnVAD):
    """Sohn's regions, each kept only where the Silero speech check (:mod:`emovox.speech`, the
    abstention of ``predict``) finds at least ``min_confirmed`` seconds of speech inside it:
    Sohn's test fires on anything louder than the noise it tracks (music, tones, fans; 48 of 59
    windows of a minute of generated chords got an emotion), Silero's boundaries are tighter than
    the speech turns (on the held-out conversations it missed 14 % of the speech), so Sohn draws
    the boundaries and Silero vetoes. 0.2 s: the smallest of 0.1 / 0.2 / 0.3 s that left the
    fewest timeline windows of the generated non-speech set (seeds 0-3) with an emotion
    (``benchmarks/speech_runs.py --timeline``; docs/conversations.md)."""

    name = "gated"

    def __init__(self, min_confirmed: float = 0.2, **sohn: Any) -> None:
        super().__init__(**sohn)
        self.min_confirmed = min_confirmed  #: s of Silero speech a region must hold

    def frame_mask(self, wave: np.ndarray) -> np.ndarray:
        from emovox.speech import speech_regions as silero_regions

        x = _mono(wave)
        mask = super().frame_mask(x)
        confirmed = silero_regions(x)
        for start, stop in _runs(mask):
            if region_overlap(confirmed, start * FRAME_SECONDS, stop * FRAME_SECONDS) < self.min_confirmed:
                mask[start:stop] = False
        return mask


VADS: dict[str, type[BaseVAD]] = {"sohn": SohnVAD, "silero": SileroVAD, "gated": GatedVAD}


def build_vad(name: str = "sohn", **kwargs) -> BaseVAD:
    """A VAD by name ("sohn" or "silero"); unknown names raise ConfigError."""
    if name not in VADS:
        raise ConfigError(f"unknown VAD {name!r}; choose one of {', '.join(VADS)}")
    try:
        return VADS[name](**kwargs)
    except TypeError as exc:
        raise ConfigError(f"VAD {name!r}: {exc}") from None


def speech_regions(wave: np.ndarray, vad: str | BaseVAD = "sohn") -> list[tuple[float, float]]:
    """Speech regions ``[(start_s, end_s), ...]`` of a 16 kHz mono waveform."""
    return (build_vad(vad) if isinstance(vad, str) else vad).regions(wave)
