"""``whisper_encoder`` front-end: 16 kHz waves -> frozen Whisper tiny.en encoder frames (T, 384).

The :class:`emovox.frontend.upstream_frames.UpstreamFrames` front-end fixed to the ``whisper``
upstream (CTranslate2, int8, CPU, no gradients), under the name the bundled ``whisper`` model's
``config.json`` uses. Clips are encoded at their own length (no padding to 30 s), exactly as the
cached features the bundled Whisper model was trained on (``recipes/whisper_head``), with
CTranslate2 using torch's current thread count (``Recognizer.load(threads=...)`` sets it). The
encoder is not a torch graph, so a model using this front-end cannot be exported to ONNX.
"""

from __future__ import annotations

import torch

from emovox.frontend.upstream_frames import UpstreamFrames


class WhisperEncoderFrontend(UpstreamFrames):
    """(N,) or (B, N) 16 kHz waves (tensor or numpy) -> (T, 384) or (B, T, 384) encoder frames."""

    def __init__(self, compute_type: str = "int8", threads: int | None = None) -> None:
        super().__init__("whisper", {"pad_to_30s": False, "compute_type": compute_type,
                                     "threads": threads or torch.get_num_threads()})
        self.compute_type = compute_type


__all__ = ["WhisperEncoderFrontend"]
