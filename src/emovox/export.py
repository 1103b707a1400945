"""ONNX export of a model package and the onnxruntime engine :class:`emovox.Recognizer` uses.

The exported graph maps raw front-end features ``features`` (B, T, F) float32 to
``probabilities`` (B, C): the package's normaliser (segment MVN), the network and a softmax.
Batch and time axes are dynamic, so clips of any length run without re-export. The front-end
(log-mel) stays the torch module of :mod:`emovox.frontend` in both backends, so features are
identical and parity is a property of the network alone (``tests/test_export.py`` checks the
max absolute difference of posteriors against torch).

The graph's metadata records the package's ``weights_sha256`` and labels; a ``model.onnx`` next
to ``model.safetensors`` is used by ``Recognizer.load(..., backend="onnx")`` only when that
checksum matches, otherwise the graph is exported in memory at load time.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from emovox.errors import ConfigError, DependencyError, ModelError
from emovox.io import atomic_path

log = logging.getLogger(__name__)

ONNX_NAME = "model.onnx"
OPSET = 18
INPUT, OUTPUT = "features", "probabilities"


def _torch_graph(model_folder: str | os.PathLike) -> tuple[Any, dict[str, Any]]:
    """The package's network wrapped as features -> probabilities (torch module), and its config."""
    import torch

    from emovox.frontend.normalize import mvn
    from emovox.models.io import load_model

    model, config = load_model(model_folder)
    segment = config.get("normalize", "segment") == "segment"

    class Posteriors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            x = mvn(features) if segment else features
            return torch.softmax(self.net(x), dim=-1)

    return Posteriors().eval(), config


def _export_bytes(model_folder: str | os.PathLike) -> tuple[bytes, dict[str, Any]]:
    import torch

    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxscript  # noqa: F401
    except ImportError:
        raise DependencyError("onnx", "ONNX export", "pip install 'emovox[onnx]'") from None
    graph, config = _torch_graph(model_folder)
    from emovox.frontend import build_frontend
    from emovox.inference import TORCH_ONLY_FRONTENDS

    front = config["frontend"]
    if front["name"] in TORCH_ONLY_FRONTENDS:
        raise ConfigError(f"{model_folder}: cannot export to ONNX: its front-end {front['name']!r} is a "
                          "CTranslate2 encoder, so a graph of the head alone could not run; use the torch backend")
    frontend: Any = build_frontend(front["name"], **front.get("kwargs", {}))  # duck-typed: every front-end has n_features
    n_feats = int(frontend.n_features)
    example = torch.zeros(2, 200, n_feats)
    dims = {"features": {0: torch.export.Dim("batch", max=4096), 1: torch.export.Dim("frames", min=8, max=10**7)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(graph, (example,), dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                                        dynamic_shapes=dims, opset_version=OPSET, optimize=True, verbose=False)
        except Exception as exc:  # noqa: BLE001 - exporter failures are many and varied
            raise ModelError(f"{model_folder}: ONNX export failed ({type(exc).__name__}: {exc})") from None
    assert program is not None  # dynamo=True always returns an ONNXProgram
    proto = program.model_proto
    meta = {"emovox_labels": ",".join(config["labels"]),
            "emovox_weights_sha256": str(config.get("weights_sha256", "")),
            "emovox_normalize": str(config.get("normalize", "segment"))}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString(), config


def export_onnx(model_folder: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Export a model package to ONNX (default: ``<model_folder>/model.onnx``); written atomically."""
    data, _ = _export_bytes(model_folder)
    target = Path(out) if out is not None else Path(model_folder) / ONNX_NAME
    if target.is_dir():
        target = target / ONNX_NAME
    with atomic_path(target, suffix=".onnx") as tmp:
        tmp.write_bytes(data)
    log.info("wrote %s (%.1f MB)", target, len(data) / 1e6)
    return target


def _session(data: bytes | str, threads: int | None) -> Any:
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
        from emovox.models.io import read_config

        folder = Path(model_folder)
        config = read_config(folder)
        path = folder / ONNX_NAME
        if path.is_file():
            session = _session(str(path), threads)
            meta = session.get_modelmeta().custom_metadata_map
            if meta.get("emovox_weights_sha256") == str(config.get("weights_sha256", "")):
                return cls(session)
            log.warning("%s does not match the package weights; exporting a fresh graph in memory", path)
        data, _ = _export_bytes(folder)
        return cls(_session(data, threads))

    def __call__(self, feats: Any) -> np.ndarray:
        x = feats.numpy() if hasattr(feats, "numpy") else np.asarray(feats)
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(x, dtype=np.float32)})[0]


__all__ = ["ONNX_NAME", "OnnxEngine", "export_onnx"]
