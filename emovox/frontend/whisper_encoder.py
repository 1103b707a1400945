"""``whisper_encoder`` front-end: 16 kHz waves -> frozen Whisper tiny.en encoder frames (T, 384).

A thin wrapper over :class:`emovox.upstreams.whisper.WhisperEncoder` (CTranslate2, int8, CPU, no
gradients) so a model package can name it in ``config.json`` like any other front-end. Clips are
encoded at their own length (no padding to 30 s), exactly as the cached features the bundled
Whisper model was trained on (``recipes/whisper_head``). The encoder is not a torch graph, so a
model using this front-end cannot be exported to ONNX as a whole.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from emovox.upstreams.whisper import HOP, WIDTH, WhisperEncoder, encoder_frames


class WhisperEncoderFrontend(nn.Module):
    """(N,) or (B, N) 16 kHz waves (tensor or numpy) -> (T, 384) or (B, T, 384) encoder frames.

    ``threads`` are CTranslate2's intra-op threads (default: torch's current thread count, which
    ``Recognizer.load(threads=...)`` sets before building the front-end).
    """

    hop_length = 2 * HOP
    n_features = WIDTH

    def __init__(self, compute_type: str = "int8", threads: int | None = None) -> None:
        super().__init__()
        self.compute_type = compute_type
        self.encoder = WhisperEncoder(pad_to_30s=False, compute_type=compute_type,
                                      threads=threads or torch.get_num_threads())

    def num_frames(self, num_samples: int) -> int:
        return encoder_frames(int(num_samples) // HOP)

    def forward(self, waves: torch.Tensor | np.ndarray) -> torch.Tensor:
        if isinstance(waves, torch.Tensor):
            waves = waves.detach().cpu().numpy()
        x = np.asarray(waves, dtype=np.float32)
        if x.ndim == 1:
            return torch.from_numpy(self.encoder.extract(x)["frames"])
        return torch.from_numpy(np.stack([self.encoder.extract(row)["frames"] for row in x]))


__all__ = ["WhisperEncoderFrontend"]
