"""Audio-in emotion models: the typed package config and the torch-free onnxruntime runner.

A package folder holds ``config.json`` (:class:`AudioModelConfig`, ``format``
``emovox-audio-model/1``) and ONNX graphs whose input is ``waves`` — 16 kHz mono float32
samples, shape ``(1, N)`` with ``N`` up to 30 s — and whose output is ``logits`` ``(1, C)``.
The feature pipeline (Whisper log-mel, truncated Whisper encoder, pooling, standardisation,
head) is inside the graph, so onnxruntime and numpy alone run it (no torch, no emovox needed:
``examples/onnx_standalone.py``). ``model.onnx`` is the int8 graph used for prediction,
``model.fp32.onnx`` (when present) its float reference. Probabilities are
``softmax(logits / temperature)`` (temperature fitted on validation speakers).

Frames (packages with ``head_graph``, written by :func:`emovox.whisper.export.write_package`):
the graph also outputs ``hidden`` ``(top + 1, 1, T, d)`` — Whisper hidden states 0 (stem) to
the highest layer used, one frame per 20 ms (:meth:`OnnxAudioModel.hidden`) — and ``head.onnx``
maps pooled statistics ``(L, 1, 2d)`` (mean ‖ population std over frames of each of ``layers``)
to logits (:meth:`OnnxAudioModel.head_logits`). Pooling frames of the graph's own input gives
its logits; :mod:`emovox.frame_scoring` pools windows of a long recording encoded once.

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
    members: int = 1                 # heads whose logits are averaged (an ensemble); 1: one head
    temperature: float = 1.0
    uncertain_below: float = 0.5
    name: str = "model"
    version: str = "1"
    graph: str = "model.onnx"
    head_graph: str = ""             # "head.onnx": the head alone (frame-level scoring); "" = none
    input_loudness: float | None = None  # LUFS every graph input is scaled to first (emovox.loudness); None = as is
    speech_crop: float | None = None  # a clip scored whole is cut to its speech, this many s on each side
    #                                   (emovox.long_inputs.crop_to_speech), as in training; None = as is
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
        checks = {"temperature": (float, 1e-3, 1e3), "uncertain_below": (float, 0.0, 1.0), "hidden": (int, 0, 8192),
                  "members": (int, 1, 64)}
        for key, (typ, lo, hi) in checks.items():
            value = d.get(key, getattr(cls, key, None))
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= float(value) <= hi \
                    or (typ is int and int(value) != value):
                raise ModelError(f"{where}: {key!r} must be a number in [{lo}, {hi}], got {value!r}")
        level = d.get("input_loudness")
        if level is not None and (isinstance(level, bool) or not isinstance(level, (int, float)) or not -70 <= level <= 0):
            raise ModelError(f"{where}: 'input_loudness' must be null or a loudness in LUFS between -70 and 0, got {level!r}")
        crop = d.get("speech_crop")
        if crop is not None and (isinstance(crop, bool) or not isinstance(crop, (int, float)) or not 0 <= crop <= 5):
            raise ModelError(f"{where}: 'speech_crop' must be null or a margin in seconds between 0 and 5, got {crop!r}")
        layers = d.get("layers", [2, 3, 4])
        if not isinstance(layers, list) or not layers or not all(isinstance(i, int) and 0 <= i <= 32 for i in layers):
            raise ModelError(f"{where}: 'layers' must be a list of layer indices, got {layers!r}")
        if d.get("combine", "concat") not in ("concat", "weighted"):
            raise ModelError(f"{where}: 'combine' must be 'concat' or 'weighted', got {d.get('combine')!r}")
        for key, default in (("graph", "model.onnx"), ("head_graph", "")):
            graph = d.get(key, default)
            if not isinstance(graph, str) or os.path.basename(graph) != graph \
                    or not (graph.endswith(".onnx") or (key == "head_graph" and graph == "")):
                raise ModelError(f"{where}: {key!r} must be a file name ending in .onnx, got {graph!r}")
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


def clip_pieces(wave: np.ndarray, config: AudioModelConfig) -> list[np.ndarray]:
    """One clip scored whole, as the model is fed it: cut to its speech first when the config sets
    ``speech_crop`` (:func:`emovox.long_inputs.crop_to_speech`, as in training), then
    :func:`graph_pieces` (each piece goes through :func:`model_input`)."""
    if config.speech_crop is not None:
        from emovox.long_inputs import crop_to_speech

        wave = crop_to_speech(wave, config.speech_crop)
    return graph_pieces(wave)


def model_input(piece: np.ndarray, config: AudioModelConfig) -> np.ndarray:
    """One graph input as the model is fed it: float32, contiguous, its DC offset removed
    (:func:`emovox.loudness.remove_dc`), then scaled to the config's ``input_loudness`` when it has
    one (:func:`emovox.loudness.normalise`)."""
    from emovox.loudness import normalise, remove_dc

    x = remove_dc(np.asarray(piece, np.float32).reshape(-1))
    if config.input_loudness is None:
        return np.ascontiguousarray(x)
    return np.ascontiguousarray(normalise(x, config.input_loudness))


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
        self.head_session = None
        outputs = {o.name for o in self.session.get_outputs()}
        if self.config.head_graph and "hidden" in outputs:
            head = self.folder / self.config.head_graph
            if not head.is_file():
                raise ModelError(f"{self.folder}: head graph {head.name} is missing; reinstall emovox or re-export the model")
            try:
                self.head_session = ort.InferenceSession(str(head), opts, providers=["CPUExecutionProvider"])
            except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
                raise ModelError(f"{head}: onnxruntime cannot load this graph ({type(exc).__name__})") from None

    @property
    def labels(self) -> list[str]:
        return list(self.config.labels)

    @property
    def layers(self) -> list[int]:
        """The hidden states the head pools (indices into :meth:`hidden`'s first axis)."""
        return list(self.config.layers)

    @property
    def has_frames(self) -> bool:
        """True when the graph outputs hidden states and the package has the head alone."""
        return self.head_session is not None

    def logits(self, wave: np.ndarray) -> np.ndarray:
        """Mean logits over 30 s pieces of one clip."""
        return np.mean([self.session.run(["logits"], {"waves": model_input(piece, self.config)[None]})[0][0]
                        for piece in clip_pieces(wave, self.config)], axis=0)

    def hidden(self, piece: np.ndarray) -> np.ndarray:
        """``(top + 1, T, d)`` hidden states of one piece of at most 30 s (``T = ceil((N // 160) / 2)``)."""
        x = np.ascontiguousarray(np.asarray(piece, np.float32).reshape(-1))
        if not self.has_frames:
            raise ModelError(f"{self.folder}: this package has no frame outputs (re-export it with emovox >= this "
                             "version); use the window-by-window path")
        if not MIN_SAMPLES <= x.size <= MAX_SECONDS * SAMPLE_RATE:
            raise ModelError(f"hidden states need 640 to {int(MAX_SECONDS * SAMPLE_RATE)} samples, got {x.size}")
        return self.session.run(["hidden"], {"waves": model_input(x, self.config)[None]})[0][:, 0]

    def head_logits(self, pooled: np.ndarray) -> np.ndarray:
        """``(B, L, 2d)`` pooled statistics (the head's layers) -> ``(B, C)`` logits, one window per call
        (the int8 head quantises its activations per call, so a window's logits never depend on others)."""
        if self.head_session is None:
            raise ModelError(f"{self.folder}: this package has no head graph")
        x = np.asarray(pooled, np.float32)
        return np.stack([self.head_session.run(None, {"pooled": np.ascontiguousarray(p[:, None])})[0][0] for p in x])

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated probabilities ``softmax(logits / temperature)`` over the last axis."""
        z = np.asarray(logits, np.float64) / self.config.temperature
        z = z - z.max(axis=-1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=-1, keepdims=True)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        return self.probabilities(self.logits(wave))
