"""Export a :class:`emovox.whisper.model.WhisperEmotionNet` to ONNX: waves in, logits out.

One graph from 16 kHz samples ``(1, N)`` (dynamic ``N``, 0.04–30 s) to logits ``(1, C)``:
the log-mel (strided-convolution STFT), the truncated Whisper encoder, pooling and head, opset
17, written with the dynamo exporter. :func:`quantize_int8` writes onnxruntime's dynamic int8
quantisation of it (weights int8, activations quantised per call), the graph used for prediction.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch

from emovox.errors import DependencyError, ModelError
from emovox.io import atomic_path

OPSET = 18
MIN_SAMPLES, MAX_SAMPLES = 640, 30 * 16000


def export_audio_onnx(net: torch.nn.Module, target: Path) -> Path:
    """Write ``net`` (waves -> logits) as ONNX to ``target`` atomically."""
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import onnxscript  # noqa: F401
    except ImportError:
        raise DependencyError("onnx", "ONNX export", "pip install 'emovox[onnx]'") from None
    example = torch.zeros(1, 3 * 16000)
    dims = {"waves": {1: torch.export.Dim("samples", min=MIN_SAMPLES, max=MAX_SAMPLES)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        try:
            program = torch.onnx.export(net.eval(), (example,), dynamo=True, input_names=["waves"],
                                        output_names=["logits"], dynamic_shapes=dims, opset_version=OPSET,
                                        optimize=True, verbose=False)
        except Exception as exc:  # noqa: BLE001 - exporter failures are many and varied
            raise ModelError(f"ONNX export failed ({type(exc).__name__}: {exc})") from None
    assert program is not None  # dynamo=True always returns an ONNXProgram
    with atomic_path(target, suffix=".onnx") as tmp:
        tmp.write_bytes(program.model_proto.SerializeToString())
    return target


def quantize_int8(source: Path, target: Path) -> Path:
    """onnxruntime dynamic int8 quantisation of ``source`` (MatMul/Gemm weights, per channel).

    The float weights left (convolutions, positional embedding) are then stored as fp16 where
    that is lossless (:func:`store_fp16_where_exact`): Whisper's weights come as fp16."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_path(target, suffix=".onnx") as tmp:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm"])
        store_fp16_where_exact(tmp)
    return target


def store_fp16_where_exact(path: Path, min_size: int = 65536) -> int:
    """Store each float32 initializer of at least ``min_size`` values as fp16 + a Cast node when
    every value survives the round trip exactly; returns how many were converted. Outputs are
    unchanged bit for bit (onnxruntime folds the Cast when it loads the graph)."""
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    casts, converted = [], 0
    for init in list(graph.initializer):
        if init.data_type != onnx.TensorProto.FLOAT:
            continue
        value = numpy_helper.to_array(init)
        if value.size < min_size or not np.array_equal(value.astype(np.float16).astype(np.float32), value):
            continue
        half = numpy_helper.from_array(value.astype(np.float16), f"{init.name}__fp16")
        graph.initializer.remove(init)
        graph.initializer.append(half)
        casts.append(helper.make_node("Cast", [half.name], [init.name], to=onnx.TensorProto.FLOAT))
        converted += 1
    for node in reversed(casts):
        graph.node.insert(0, node)
    onnx.save(model, str(path))
    return converted


def write_package(folder: str | Path, config, head_state: dict[str, torch.Tensor], int8: bool = True) -> Path:
    """Write an audio-in model package (:mod:`emovox.audio_model`) atomically.

    ``config.json``, ``head.safetensors`` (the torch reference's head), ``model.fp32.onnx`` and,
    with ``int8``, ``model.onnx`` = its dynamic int8 quantisation (else ``model.onnx`` is fp32).
    The package is built in a temporary sibling folder and renamed into place."""
    import shutil
    import tempfile

    from safetensors.torch import save_file

    from emovox.io import atomic_write_json
    from emovox.whisper.model import build_net

    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        net = build_net(config, head_state)
        save_file({k: v.contiguous() for k, v in head_state.items()}, str(tmp / "head.safetensors"))
        export_audio_onnx(net, tmp / "model.fp32.onnx")
        if int8:
            quantize_int8(tmp / "model.fp32.onnx", tmp / "model.onnx")
        else:
            shutil.copyfile(tmp / "model.fp32.onnx", tmp / "model.onnx")
        atomic_write_json(tmp / "config.json", config.to_dict())
        if target.exists():
            if not (target / "config.json").is_file():
                raise ModelError(f"{target} exists and is not a model package; choose another folder")
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def export_posteriors_graph(folder: str | Path, out: str | Path) -> Path:
    """A self-contained graph of an audio-in package for people without emovox.

    Input ``waves`` (1, N) float32 16 kHz mono; output ``posteriors`` (1, C) = softmax(logits / T)
    with the package's calibrated temperature; the labels (comma-separated), the temperature and
    the input contract are stored in the graph's metadata (``emovox_labels`` ...)."""
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise DependencyError("onnx", "ONNX export", "pip install 'emovox[onnx]'") from None
    import numpy as np

    from emovox.audio_model import read_audio_config

    config = read_audio_config(folder)
    model = onnx.load(str(Path(folder) / config.graph))
    graph = model.graph
    logits = graph.output[0].name
    graph.initializer.append(numpy_helper.from_array(np.array(config.temperature, np.float32), "emovox_temperature"))
    graph.node.extend([helper.make_node("Div", [logits, "emovox_temperature"], ["emovox_scaled"]),
                       helper.make_node("Softmax", ["emovox_scaled"], ["posteriors"], axis=-1)])
    out_info = helper.make_tensor_value_info("posteriors", onnx.TensorProto.FLOAT, [1, len(config.labels)])
    del graph.output[:]
    graph.output.append(out_info)
    meta = {"emovox_labels": ",".join(config.labels), "emovox_temperature": str(config.temperature),
            "emovox_input": "waves: float32 (1, N), 16 kHz mono, N from 640 to 480000 samples (score longer audio "
                            "in 30 s pieces and average the log posteriors)",
            "emovox_model": f"{config.name} {config.version}"}
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    target = Path(out)
    with atomic_path(target, suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))
    return target
