"""Export an audio-in emotion model (:mod:`emovox.whisper.model`) to ONNX: waves in, logits out.

The package graph (:class:`PackageGraph`) goes from 16 kHz samples ``(1, N)`` (dynamic ``N``,
0.04–30 s) to logits ``(1, C)`` — the log-mel (strided-convolution STFT), the truncated Whisper
encoder, pooling and head — and also outputs ``hidden`` ``(top + 1, 1, T, d)``, every hidden
state from the stem (0) to the highest layer used, one frame per 20 ms. The head alone is a
second small graph (``head.onnx``: pooled statistics ``(L, 1, 2d)`` -> logits), so a long
recording can be encoded once and its windows pooled from the frames
(:mod:`emovox.frame_scoring`). Opset 18, written with the dynamo exporter. :func:`quantize_int8`
writes onnxruntime's dynamic int8 quantisation (weights int8, activations quantised per call),
the graphs used for prediction.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from emovox.audio_model import AudioModelConfig
from emovox.errors import DependencyError, ModelError
from emovox.export import dynamo_onnx
from emovox.io import atomic_folder, atomic_path, atomic_write_json
from emovox.whisper.encoder import WhisperLayers, load_encoder
from emovox.whisper.mel import torch_log_mel_module
from emovox.whisper.model import PooledHead, config_head, mean_std

MIN_SAMPLES, MAX_SAMPLES = 640, 30 * 16000
HEAD_GRAPH = "head.onnx"


class PackageGraph(nn.Module):
    """``(1, N)`` waves -> ``(logits (1, C), hidden (top + 1, 1, T, d))``.

    The logits are :class:`emovox.whisper.model.WhisperEmotionNet`'s (same modules, same
    operations); ``hidden`` holds hidden states ``0..top`` (0 = stem), of which the head pools
    ``layers``."""

    def __init__(self, config: AudioModelConfig, head_state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        encoder, dims = load_encoder(config.whisper_model)
        top = max(config.layers)
        self.log_mel = torch_log_mel_module(dims.n_mels)
        self.layers = WhisperLayers(encoder, dims, range(top + 1))
        self.pick = [int(i) for i in config.layers]
        self.head = config_head(config, dims.d_model)
        self.head.load_state_dict(head_state)
        self.eval()

    def forward(self, waves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.layers(self.log_mel(waves))
        return self.head(mean_std(hidden[self.pick])), hidden


def _export(module: nn.Module, example: torch.Tensor, inputs: list[str], outputs: list[str],
            dims: dict[str, dict[int, torch.export.Dim] | None], target: Path) -> Path:
    """Write ``module`` as ONNX to ``target`` atomically (:func:`emovox.export.dynamo_onnx`)."""
    proto = dynamo_onnx(module, (example,), inputs, outputs, dims)
    with atomic_path(target, suffix=".onnx") as tmp:
        tmp.write_bytes(proto.SerializeToString())
    return target


def export_audio_onnx(net: nn.Module, target: Path) -> Path:
    """Write ``net`` (waves -> logits, or a :class:`PackageGraph`: logits and hidden) as ONNX."""
    outputs = ["logits", "hidden"] if isinstance(net, PackageGraph) else ["logits"]
    dims: dict[str, dict[int, torch.export.Dim] | None] = {
        "waves": {1: torch.export.Dim("samples", min=MIN_SAMPLES, max=MAX_SAMPLES)}}
    return _export(net, torch.zeros(1, 3 * 16000), ["waves"], outputs, dims, target)


def export_head_onnx(head: PooledHead, target: Path) -> Path:
    """Write the head alone: ``pooled`` ``(L, 1, 2d)`` mean ‖ std statistics -> ``logits`` ``(1, C)``."""
    n_layers, _, width = head.mean.shape
    return _export(head, torch.zeros(n_layers, 1, width), ["pooled"], ["logits"], {"pooled": None}, target)


def quantize_int8(source: Path, target: Path) -> Path:
    """onnxruntime dynamic int8 quantisation of ``source`` (MatMul/Gemm weights, per channel, in
    7 bits: ``reduce_range``).

    Why 7 bits: on x86 CPUs without VNNI (AVX2 only: AMD before Zen 4, Intel before Ice Lake),
    onnxruntime multiplies uint8 activations by int8 weights with ``vpmaddubsw``, whose pairwise
    int16 sums saturate when full 8-bit weights meet large activations (onnxruntime's
    quantisation docs). The same package then gives other answers on those CPUs: measured on an
    AVX2-only AMD EPYC, 8-bit weights moved probabilities by up to 0.39 against the fp32 graph
    and broke the Whisper-frame speaker count; 7-bit weights cannot saturate (255 x 63 x 2 <
    32767), moved them by at most 0.12 and cost no speed (docs/conversations.md).

    The float weights left (convolutions, positional embedding) are then stored as fp16 where
    that is lossless (:func:`store_fp16_where_exact`): Whisper's weights come as fp16."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with atomic_path(target, suffix=".onnx") as tmp:
        quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True,
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


def write_package(folder: str | Path, config: AudioModelConfig, head_state: dict[str, torch.Tensor], int8: bool = True) -> Path:
    """Write an audio-in model package (:mod:`emovox.audio_model`) atomically.

    ``config.json``, ``head.safetensors`` (the torch reference's head), ``model.fp32.onnx`` and,
    with ``int8``, ``model.onnx`` = its dynamic int8 quantisation (else ``model.onnx`` is fp32),
    and the head alone as ``head.onnx`` (int8 likewise; ``config.head_graph``).
    The package is built in a temporary sibling folder and renamed into place."""
    import shutil

    from safetensors.torch import save_file


    target = Path(folder)
    if target.exists() and not (target / "config.json").is_file():
        raise ModelError(f"{target} exists and is not a model package; choose another folder")
    config = replace(config, head_graph=HEAD_GRAPH)
    with atomic_folder(target) as tmp:
        net = PackageGraph(config, head_state)
        save_file({k: v.contiguous() for k, v in head_state.items()}, str(tmp / "head.safetensors"))
        export_audio_onnx(net, tmp / "model.fp32.onnx")
        export_head_onnx(net.head, tmp / "head.fp32.onnx")
        for name in ("model", "head"):
            if int8:
                quantize_int8(tmp / f"{name}.fp32.onnx", tmp / f"{name}.onnx")
            else:
                shutil.copyfile(tmp / f"{name}.fp32.onnx", tmp / f"{name}.onnx")
        (tmp / "head.fp32.onnx").unlink()
        atomic_write_json(tmp / "config.json", config.to_dict())
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
                            "in 30 s pieces and average the log posteriors); take each piece's mean away first",
            "emovox_model": f"{config.name} {config.version}"}
    if config.input_loudness is not None:  # the graph does not scale its input: its users must
        meta["emovox_input_loudness"] = str(config.input_loudness)
        from emovox.loudness import MAX_GAIN_DB

        meta["emovox_input"] += (f"; scale each piece to {config.input_loudness:g} LUFS integrated loudness first "
                                 f"(ITU-R BS.1770-4, e.g. pyloudnorm; gain up at most {MAX_GAIN_DB:g} dB, down as "
                                 "far as needed)")
    if config.speech_crop is not None:  # the graph does not look for speech either
        meta["emovox_speech_crop"] = str(config.speech_crop)
        meta["emovox_input"] = (f"cut each clip to its speech first (first to last speech, {config.speech_crop:g} s "
                                "kept on each side; emovox.long_inputs.crop_to_speech); " + meta["emovox_input"])
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    target = Path(out)
    with atomic_path(target, suffix=".onnx") as tmp:
        onnx.save(model, str(tmp))
    return target
