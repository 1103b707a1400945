"""Scoring engines of :class:`emovox.Recognizer`: a model's input -> probabilities, and
:func:`load_engine`, which reads a package and gives its pipeline and engine.

* :class:`TorchEngine` — the package's torch network (eager, inference mode), after the
  normalisation of its :class:`emovox.frontend.pipeline.FeaturePipeline`.
* :class:`OnnxEngine` — onnxruntime running the graph :func:`emovox.export.export_onnx` writes
  (the same normalisation, the network and a softmax): ``model.onnx`` of the package when its
  recorded ``weights_sha256`` matches the weights, otherwise a graph exported in memory.

Audio-in models have their own engines (waves in): :class:`emovox.audio_model.OnnxAudioModel`
and ``emovox.whisper.model.TorchAudioModel``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from emovox.audio_model import OnnxAudioModel, is_audio_model, read_audio_config
from emovox.errors import ConfigError, DependencyError, ModelError
from emovox.export import INPUT, ONNX_NAME, OUTPUT, export_bytes
from emovox.models.package import PackageConfig

if TYPE_CHECKING:
    from emovox.frontend.pipeline import FeaturePipeline

log = logging.getLogger(__name__)

#: model input (features, or waves for audio-in models) -> probabilities
Engine = Callable[[Any], np.ndarray]


class TorchEngine:
    """features (B, T, F) -> probabilities (B, C) with the package's torch model."""

    name = "torch"

    def __init__(self, model: Any, normalise: Callable[[Any], Any]) -> None:
        self.model, self.normalise = model, normalise

    @classmethod
    def for_model(cls, model_folder: str | os.PathLike, normalise: Callable[[Any], Any]) -> "TorchEngine":
        from emovox.models.io import load_package

        return cls(load_package(model_folder)[0], normalise)

    def __call__(self, feats: Any) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return torch.softmax(self.model(self.normalise(feats)).float(), dim=-1).numpy()


def onnx_session(data: bytes | str, threads: int | None) -> Any:
    """An onnxruntime CPU session of a graph (bytes or path); DependencyError/ModelError."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise DependencyError("onnxruntime", "the ONNX backend", "pip install 'emovox[onnx]'") from None
    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"onnxruntime cannot load the model graph ({exc}); "
                         "re-export it with emovox export --onnx") from None


class OnnxEngine:
    """features (B, T, F) torch/numpy -> probabilities (B, C) numpy, with onnxruntime."""

    name = "onnx"

    def __init__(self, session: Any) -> None:
        self.session = session

    @classmethod
    def for_model(cls, model_folder: str | os.PathLike, threads: int | None = None) -> "OnnxEngine":
        """Use ``model.onnx`` of the package when it matches its weights, else export in memory."""
        from emovox.models.io import read_package

        folder = Path(model_folder)
        expected = str(read_package(folder).weights_sha256 or "")
        path = folder / ONNX_NAME
        if path.is_file():
            session = onnx_session(str(path), threads)
            if session.get_modelmeta().custom_metadata_map.get("emovox_weights_sha256") == expected:
                return cls(session)
            log.warning("%s does not match the package weights; exporting a fresh graph in memory", path)
        return cls(onnx_session(export_bytes(folder), threads))

    def __call__(self, feats: Any) -> np.ndarray:
        x = feats.numpy() if hasattr(feats, "numpy") else np.asarray(feats)
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x, dtype=np.float32)})[0]


def load_engine(folder: Path, backend: str, threads: int) -> tuple["FeaturePipeline | None", Engine, PackageConfig, str]:
    """``(feature pipeline, engine, typed config, backend)`` of the package at ``folder``.

    ``backend`` ``auto`` is onnxruntime for audio-in models (pipeline None: the engine takes the
    waves) and torch for feature models, whose saved pipeline is built as it is."""
    if is_audio_model(folder):
        cfg = read_audio_config(folder)
        if backend == "torch":
            from emovox.whisper.model import TorchAudioModel  # torch: the reference runner only

            return None, TorchAudioModel(folder, cfg, threads), PackageConfig.of_audio_model(cfg), "torch"
        return None, OnnxAudioModel(folder, threads=threads), PackageConfig.of_audio_model(cfg), "onnx"
    return _feature_engine(folder, "torch" if backend == "auto" else backend, threads)


def _feature_engine(folder: Path, backend: str, threads: int) -> tuple["FeaturePipeline", Engine, PackageConfig, str]:
    import torch

    from emovox.frontend.pipeline import FeaturePipeline
    from emovox.models.io import CONFIG, read_package

    torch.set_num_threads(threads)
    package, where = read_package(folder), f"{folder}/{CONFIG}"
    pipeline = package.pipeline
    pipeline.check_predictable(where)
    if backend == "onnx" and pipeline.torch_only:
        raise ConfigError(f"{folder}: the onnx backend cannot run this model: its front-end {pipeline.frontend!r} "
                          f"runs the frozen {pipeline.upstream!r} encoder (CTranslate2 or GE2E), not an ONNX graph; "
                          "use backend='torch' (--backend torch)")
    try:
        features = FeaturePipeline(pipeline, threads)
    except ConfigError as exc:
        raise ModelError(f"{where}: {exc}") from None
    engine: Engine = (TorchEngine.for_model(folder, features.normalise) if backend == "torch"
                      else OnnxEngine.for_model(folder, threads=threads))
    return features, engine, package, backend


__all__ = ["Engine", "OnnxEngine", "TorchEngine", "load_engine", "onnx_session"]
