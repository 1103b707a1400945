"""GE2E speaker encoder (resemblyzer 0.1.4's bundled ``pretrained.pt``), frozen.

The network is resemblyzer's: a 3-layer LSTM (40 -> 256) and a 256 -> 256 linear layer with
ReLU, L2-normalised; trained with the GE2E loss on LibriSpeech + VoxCeleb 1/2. We rebuild it
here and load the weights file directly (``torch.load(weights_only=True)``) because importing
the ``resemblyzer`` package pulls ``webrtcvad`` (an sdist needing a compiler) for its VAD-based
silence trimming, which we deliberately skip: emotion corpora are already segmented and the
pauses carry information. Everything else follows resemblyzer's ``embed_utterance``:

* input: 40-band mel *power* spectrogram (not log), 25 ms window, 10 ms hop, librosa;
* volume normalised up (never down) to -30 dBFS;
* partials of 160 frames (1.6 s) at 1.3 per second, the last one kept when it covers >= 75 %;
* utterance embedding = L2-normalised mean of the partial embeddings.

``extract`` returns ``embedding`` (256,), ``partials`` (n, 256) and ``frames`` (T, 256): the last
LSTM layer's outputs over the whole utterance (100 frames/s), for frame-level heads.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from emovox.audio import SAMPLE_RATE
from emovox.errors import DependencyError, ModelError
from emovox.upstreams.base import Upstream, check_sample_rate

INSTALL = "pip install --no-deps resemblyzer==0.1.4  (it also needs: pip install librosa)"
N_MELS, WINDOW, HOP, HIDDEN, LAYERS = 40, 400, 160, 256, 3
PARTIAL_FRAMES, PARTIAL_RATE, MIN_COVERAGE = 160, 1.3, 0.75
TARGET_DBFS = -30.0


def weights_path() -> Path:
    """Path of resemblyzer's bundled weights, found without importing the package."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError("resemblyzer", "the GE2E speaker encoder", INSTALL)
    path = Path(list(spec.submodule_search_locations)[0]) / "pretrained.pt"
    if not path.is_file():
        raise ModelError(f"resemblyzer is installed but {path} is missing; reinstall it: {INSTALL}")
    return path


def _build_network():
    import torch
    from torch import nn

    class GE2ENetwork(nn.Module):
        """resemblyzer.VoiceEncoder's layers (same parameter names, so its state dict loads)."""

        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(N_MELS, HIDDEN, LAYERS, batch_first=True)
            self.linear = nn.Linear(HIDDEN, HIDDEN)
            self.relu = nn.ReLU()

        def frames(self, mels: torch.Tensor) -> torch.Tensor:
            """(B, T, 40) mel power -> (B, T, 256) last-layer LSTM outputs."""
            return self.lstm(mels)[0]

        def forward(self, mels: torch.Tensor) -> torch.Tensor:
            """(B, T, 40) -> (B, 256) L2-normalised embeddings of the final hidden state."""
            _, (hidden, _) = self.lstm(mels)
            raw = self.relu(self.linear(hidden[-1]))
            return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-12)

    return GE2ENetwork()


def load_network(path: str | Path | None = None):
    """The frozen GE2E network in eval mode."""
    import torch

    path = Path(path) if path is not None else weights_path()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
    except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise ModelError(f"cannot read GE2E weights {path} ({type(exc).__name__}: {exc})") from None
    net = _build_network()
    missing, _unexpected = net.load_state_dict(state, strict=False)  # GE2E similarity w/b unused
    if missing:
        raise ModelError(f"GE2E weights {path} lack {missing}")
    net.eval().requires_grad_(False)
    return net


def normalize_volume(wav: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Raise (never lower) the level to ``target_dbfs``; silence is returned unchanged."""
    rms = float(np.sqrt(np.mean(np.square(wav, dtype=np.float64))))
    if rms <= 1e-10:
        return wav
    change = target_dbfs - 20 * np.log10(rms)
    return wav if change < 0 else (wav * 10 ** (change / 20)).astype(np.float32)


def mel_power(wav: np.ndarray) -> np.ndarray:
    """resemblyzer's encoder input: (T, 40) float32 mel power spectrogram."""
    try:
        import librosa
    except ImportError:
        raise DependencyError("librosa", "the GE2E speaker encoder's mel front-end", "pip install librosa") from None
    mel = librosa.feature.melspectrogram(y=wav, sr=SAMPLE_RATE, n_fft=WINDOW, hop_length=HOP, n_mels=N_MELS)
    return mel.astype(np.float32).T


def partial_slices(n_samples: int) -> list[slice]:
    """Mel-frame slices of the 1.6 s partials (resemblyzer's ``compute_partial_slices``)."""
    n_frames = int(np.ceil((n_samples + 1) / HOP))
    step = int(np.round(SAMPLE_RATE / PARTIAL_RATE / HOP))
    starts = range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step)
    slices = [slice(i, i + PARTIAL_FRAMES) for i in starts]
    last = slices[-1]
    coverage = (n_samples - last.start * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(slices) > 1:
        slices = slices[:-1]
    return slices


class GE2EEncoder(Upstream):
    """Frozen GE2E speaker encoder; :meth:`pooled` is the 256-d utterance embedding."""

    name = "ge2e"
    dim = HIDDEN
    frame_rate = SAMPLE_RATE / HOP
    frame_dim = HIDDEN

    @staticmethod
    def num_frames(num_samples: int) -> int:
        """Rows of ``frames`` for ``num_samples`` samples (centred 10 ms STFT frames)."""
        return int(num_samples) // HOP + 1

    def __init__(self, pooling: str = "embedding") -> None:
        if pooling not in ("embedding", "partials_mean_std", "frames_mean_std"):
            from emovox.errors import ConfigError

            raise ConfigError(f"GE2E pooling must be embedding | partials_mean_std | frames_mean_std, got {pooling!r}")
        self.pooling = pooling
        self.dim = HIDDEN if pooling == "embedding" else 2 * HIDDEN
        self.net = load_network()

    def params(self) -> dict[str, Any]:
        # pooling is applied after the cache, so it is not part of the key.
        return {"weights": "resemblyzer-0.1.4", "vad": False, "dbfs": TARGET_DBFS, "frames": "lstm3"}

    def extract(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
        import torch

        check_sample_rate(sample_rate, self.name)
        wav = normalize_volume(np.asarray(samples, dtype=np.float32))
        slices = partial_slices(len(wav))
        padded = np.pad(wav, (0, max(0, slices[-1].stop * HOP - len(wav))))
        mel = mel_power(padded)
        with torch.inference_mode():
            partials = self.net(torch.from_numpy(np.stack([mel[s] for s in slices]))).numpy()
            frames = self.net.frames(torch.from_numpy(mel_power(wav))[None])[0].numpy()
        mean = partials.mean(axis=0)
        embedding = mean / max(float(np.linalg.norm(mean)), 1e-12)
        return {"embedding": embedding.astype(np.float32), "partials": partials.astype(np.float32),
                "frames": frames.astype(np.float32)}

    def pooled(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        from emovox.upstreams.pooling import mean_std

        if self.pooling == "embedding":
            return np.asarray(arrays["embedding"], dtype=np.float32)
        return mean_std(arrays["partials" if self.pooling == "partials_mean_std" else "frames"])


# ------------------------------------------------------------------ diarisation segments
class GE2EEmbedder:
    """Segments -> GE2E speaker embeddings (loads resemblyzer's weights once).

    The 40-band mel power input is computed in numpy (:func:`numpy_mel_power`, equal to
    :func:`mel_power`, librosa's, within float32 rounding; tested), so diarisation does not import
    librosa (about 2 s and 250 MB).
    """

    def __init__(self) -> None:
        self.net = load_network()

    def __call__(self, segments: np.ndarray) -> np.ndarray:
        import torch

        mels = np.stack([numpy_mel_power(normalize_volume(np.asarray(s, dtype=np.float32)))[:PARTIAL_FRAMES]
                         for s in segments])
        with torch.inference_mode():
            return self.net(torch.from_numpy(mels)).numpy().astype(np.float32)


def _hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """Slaney mel scale (librosa's default, htk=False)."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (m - 15.0)), m * (200.0 / 3))


def mel_filters(sr: int = SAMPLE_RATE, n_fft: int = 400, n_mels: int = 40) -> np.ndarray:
    """(n_mels, 1 + n_fft // 2) Slaney-normalised triangular filters (as ``librosa.filters.mel``)."""
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sr / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    return (weights * (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]).astype(np.float32)


_FILTERS = mel_filters()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(400) / 400)).astype(np.float32)  # periodic Hann


def numpy_mel_power(wav: np.ndarray, n_fft: int = 400, hop: int = 160) -> np.ndarray:
    """(1 + N // hop, 40) mel power spectrogram: centred frames, zero padding (librosa >= 0.10)."""
    x = np.pad(np.asarray(wav, dtype=np.float32), n_fft // 2)
    n = 1 + (x.size - n_fft) // hop
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:n]
    spec = np.abs(np.fft.rfft(frames * _WINDOW, axis=1)) ** 2
    return (spec.astype(np.float32) @ _FILTERS.T).astype(np.float32)
