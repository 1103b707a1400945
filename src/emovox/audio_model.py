"""Audio-in emotion models: the typed package config and the torch-free onnxruntime runner.

A package folder holds ``config.json`` (:class:`AudioModelConfig`, ``format``
``emovox-audio-model/1``) and ONNX graphs whose input is ``waves`` — 16 kHz mono float32
samples, shape ``(1, N)`` with ``N`` up to 30 s — and whose output is ``logits`` ``(1, C)``.
The feature pipeline (Whisper log-mel, truncated Whisper encoder, pooling, standardisation,
head) is inside the graph, so onnxruntime and numpy alone run it (no torch, no emovox needed:
``examples/onnx_standalone.py``). ``model.onnx`` is the int8 graph used for prediction,
``model.fp32.onnx`` (when present) its float reference. Probabilities are
``softmax(logits / temperature)`` (temperature fitted on validation speakers).

Abstention: :mod:`emovox.speech` gives each clip's speech fraction; a clip with too little speech
is ``no_speech`` (no emotion). A calibrated top probability below ``uncertain_below`` marks the
result ``uncertain``.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from emovox.errors import DependencyError, ModelError

FORMAT = "emovox-audio-model/1"
SAMPLE_RATE = 16000
MAX_SECONDS = 30.0
MIN_SAMPLES = 640  # the graph's shortest input (4 encoder frames)


@dataclass(frozen=True)
class AudioModelConfig:
    """Everything needed to run (and rebuild) an audio-in model; saved as ``config.json``."""

    labels: list[str]
    whisper_model: str = "base"
    layers: list[int] = field(default_factory=lambda: [2, 3, 4])
    combine: str = "concat"          # concat | weighted
    hidden: int = 0                  # 0: linear head
    temperature: float = 1.0
    uncertain_below: float = 0.5
    name: str = "model"
    version: str = "1"
    graph: str = "model.onnx"
    format: str = FORMAT
    card: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Any, where: str = "config.json") -> "AudioModelConfig":
        if not isinstance(d, dict):
            raise ModelError(f"{where}: expected a JSON object, got {type(d).__name__}")
        if d.get("format") != FORMAT:
            raise ModelError(f"{where}: format {d.get('format')!r} is not {FORMAT!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ModelError(f"{where}: unknown key(s) {unknown}")
        labels = d.get("labels")
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels) \
                or len(set(labels)) != len(labels):
            raise ModelError(f"{where}: 'labels' must be a non-empty list of distinct names, got {labels!r}")
        checks = {"temperature": (float, 1e-3, 1e3), "uncertain_below": (float, 0.0, 1.0), "hidden": (int, 0, 8192)}
        for key, (typ, lo, hi) in checks.items():
            value = d.get(key, getattr(cls, key, None))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi \
                    or (typ is int and int(value) != value):
                raise ModelError(f"{where}: {key!r} must be a number in [{lo}, {hi}], got {value!r}")
        layers = d.get("layers", [2, 3, 4])
        if not isinstance(layers, list) or not layers or not all(isinstance(i, int) and 0 <= i <= 32 for i in layers):
            raise ModelError(f"{where}: 'layers' must be a list of layer indices, got {layers!r}")
        if d.get("combine", "concat") not in ("concat", "weighted"):
            raise ModelError(f"{where}: 'combine' must be 'concat' or 'weighted', got {d.get('combine')!r}")
        graph = d.get("graph", "model.onnx")
        if not isinstance(graph, str) or os.path.basename(graph) != graph or not graph.endswith(".onnx"):
            raise ModelError(f"{where}: 'graph' must be a file name ending in .onnx, got {graph!r}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def graph_pieces(wave: np.ndarray) -> list[np.ndarray]:
    """One clip as the graphs take it: equal pieces of at most 30 s, each at least 640 samples
    (zero-padded), float32 and contiguous."""
    x = np.ascontiguousarray(np.asarray(wave, np.float32).reshape(-1))
    count = max(1, -(-x.size // int(MAX_SECONDS * SAMPLE_RATE)))
    size = -(-x.size // count)
    pieces = [x[i * size:(i + 1) * size] for i in range(count)]
    return [np.pad(p, (0, max(0, MIN_SAMPLES - p.size))) for p in pieces]


def is_audio_model(folder: str | os.PathLike) -> bool:
    """True when ``folder/config.json`` declares the audio-model format."""
    path = Path(folder) / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("format") == FORMAT
    except (OSError, ValueError, AttributeError, RecursionError):
        return False  # not readable as an audio-model config: the feature-model reader says why


def read_audio_config(folder: str | os.PathLike) -> AudioModelConfig:
    path = Path(folder) / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror})") from None
    except (ValueError, RecursionError):
        raise ModelError(f"{path}: not valid JSON") from None
    return AudioModelConfig.from_dict(data, where=str(path))


class OnnxAudioModel:
    """``(N,)`` 16 kHz waves -> ``(C,)`` calibrated probabilities, with onnxruntime only."""

    def __init__(self, folder: str | os.PathLike, threads: int = 1, graph: str | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise DependencyError("onnxruntime", "the default model", "pip install onnxruntime") from None
        self.folder = Path(folder)
        self.config = read_audio_config(self.folder)
        path = self.folder / (graph or self.config.graph)
        if not path.is_file():
            raise ModelError(f"{self.folder}: model graph {path.name} is missing; reinstall emovox or re-export the model")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = int(threads), 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for damaged graphs  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            raise ModelError(f"{path}: onnxruntime cannot load this graph ({type(exc).__name__})") from None
        self._lock = threading.Lock()

    @property
    def labels(self) -> list[str]:
        return list(self.config.labels)

    def logits(self, wave: np.ndarray) -> np.ndarray:
        """Mean logits over 30 s pieces of one clip."""
        return np.mean([self.session.run(None, {"waves": piece[None]})[0][0] for piece in graph_pieces(wave)], axis=0)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        z = self.logits(wave).astype(np.float64) / self.config.temperature
        z -= z.max()
        p = np.exp(z)
        return p / p.sum()
