"""ONNX export of a feature-model package (the graph :class:`emovox.engines.OnnxEngine` runs).

The exported graph maps raw front-end features ``features`` (B, T, F) float32 to
``probabilities`` (B, C): the normalisation of the package's feature pipeline
(:meth:`emovox.frontend.pipeline.FeaturePipeline.normalise`, segment MVN), the network and a
softmax. Batch and time axes are dynamic, so clips of any length run without re-export. The
front-end (and VAD) stay the torch modules of the same :class:`FeaturePipeline` in both
backends, so features are identical and parity is a property of the network alone
(``tests/test_export.py`` checks the max absolute difference of posteriors against torch).
Models on an ``upstream`` front-end (a CTranslate2/GE2E encoder, not a torch graph) cannot be
exported.

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

from emovox.errors import ConfigError, DependencyError, ModelError
from emovox.io import atomic_path

log = logging.getLogger(__name__)

ONNX_NAME = "model.onnx"
OPSET = 18
INPUT, OUTPUT = "features", "probabilities"


def _torch_graph(model_folder: str | os.PathLike) -> tuple[Any, Any, int]:
    """The package's network wrapped as features -> probabilities (torch module), its typed
    config and its input feature size."""
    import torch

    from emovox.frontend.pipeline import FeaturePipeline
    from emovox.models.io import load_package

    model, package = load_package(model_folder)
    if package.pipeline.torch_only:
        raise ConfigError(f"{model_folder}: cannot export to ONNX: its front-end {package.pipeline.frontend!r} runs "
                          f"the {package.pipeline.upstream!r} encoder (not a torch graph), so a graph of the head "
                          "alone could not run; use the torch backend")
    pipeline = FeaturePipeline(package.pipeline)

    class Posteriors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = model

        def forward(self, features: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.net(pipeline.normalise(features)), dim=-1)

    return Posteriors().eval(), package, pipeline.n_features


def dynamo_onnx(module: Any, args: tuple, inputs: list[str], outputs: list[str], dims: Any,
                what: str = "") -> Any:
    """``module`` as an ONNX ``ModelProto`` (torch's dynamo exporter, opset :data:`OPSET`,
    optimised), without the per-node Python stack traces the exporter records: they hold the
    file paths of the checkout that exported it, so the same weights would give other bytes from
    another folder (and a shipped graph would carry its builder's paths)."""
    import torch

    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxscript  # noqa: F401
    except ImportError:
        raise DependencyError("onnx", "ONNX export", "pip install 'emovox[onnx]'") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(module.eval(), args, dynamo=True, input_names=inputs, output_names=outputs,
                                        dynamic_shapes=dims, opset_version=OPSET, optimize=True, verbose=False)
        except Exception as exc:  # noqa: BLE001 - exporter failures are many and varied
            raise ModelError(f"{what + ': ' if what else ''}ONNX export failed ({type(exc).__name__}: {exc})") from None
    assert program is not None  # dynamo=True always returns an ONNXProgram
    proto = program.model_proto
    _drop_stack_traces(proto)
    return proto


def _drop_stack_traces(proto: Any) -> None:
    """Remove the ``…stack_trace`` metadata of every node of ``proto`` (graph, subgraphs, functions)."""
    graphs = [proto.graph, *proto.functions]
    while graphs:
        for node in graphs.pop().node:
            keep = [p for p in node.metadata_props if not p.key.endswith("stack_trace")]
            del node.metadata_props[:]
            node.metadata_props.extend(keep)
            for attr in node.attribute:
                graphs.extend([attr.g] if attr.HasField("g") else [])
                graphs.extend(attr.graphs)


def export_bytes(model_folder: str | os.PathLike) -> bytes:
    """The serialised ONNX graph of a package (see the module docstring)."""
    import torch

    graph, package, n_feats = _torch_graph(model_folder)
    example = torch.zeros(2, 200, n_feats)
    dims = {"features": {0: torch.export.Dim("batch", max=4096), 1: torch.export.Dim("frames", min=8, max=10**7)}}
    proto = dynamo_onnx(graph, (example,), [INPUT], [OUTPUT], dims, what=str(model_folder))
    meta = {"emovox_labels": ",".join(package.labels),
            "emovox_weights_sha256": str(package.weights_sha256 or ""),
            "emovox_normalize": package.pipeline.normalize}
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def export_onnx(model_folder: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Export a model package to ONNX (default: ``<model_folder>/model.onnx``); written atomically."""
    data = export_bytes(model_folder)
    target = Path(out) if out is not None else Path(model_folder) / ONNX_NAME
    if target.is_dir():
        target = target / ONNX_NAME
    with atomic_path(target, suffix=".onnx") as tmp:
        tmp.write_bytes(data)
    log.info("wrote %s (%.1f MB)", target, len(data) / 1e6)
    return target


__all__ = ["INPUT", "ONNX_NAME", "OUTPUT", "dynamo_onnx", "export_bytes", "export_onnx"]
