"""The Whisper encoder in torch (``transformers``' ``WhisperEncoder`` modules), every hidden state.

:func:`load_encoder` builds ``transformers.WhisperEncoder`` from a :class:`WhisperDims` and
loads the packaged CTranslate2 weights through :func:`ct2_to_hf` (a name map; the fused q/k/v
projection is split, and Whisper's key projection has no bias). :class:`WhisperLayers` runs the
convolutional stem and only the first ``top`` transformer blocks (the encoder is cut after the
highest layer used) on unpadded input of any length up to 30 s (1500 positions), and returns
the hidden states asked for: index 0 is the stem output (+ positions), ``i`` the output of
block ``i``; the last block's output has the final layer norm applied (``transformers``'
``hidden_states`` convention, so index ``n_layers`` equals CTranslate2's ``encode``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, Sequence

import numpy as np
import torch
from torch import nn

from emovox.errors import ConfigError, ModelError
from emovox.whisper.ct2 import read_ct2_files
from emovox.whisper.packaged import PACKAGED, WhisperDims, dims_from_arrays, encoder_arrays

if TYPE_CHECKING:  # transformers is imported lazily, where an encoder is built
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

MAX_MEL_FRAMES = 3000


def ct2_to_hf(arrays: dict[str, np.ndarray], n_layers: int) -> dict[str, torch.Tensor]:
    """CTranslate2 encoder tensor names -> ``transformers.WhisperEncoder`` state-dict names."""
    def t(name: str) -> torch.Tensor:
        if name not in arrays:
            raise ModelError(f"Whisper weights lack tensor {name!r}; the model file is incomplete")
        return torch.from_numpy(np.asarray(arrays[name], dtype=np.float32).copy())

    sd = {"conv1.weight": t("encoder/conv1/weight"), "conv1.bias": t("encoder/conv1/bias"),
          "conv2.weight": t("encoder/conv2/weight"), "conv2.bias": t("encoder/conv2/bias"),
          "embed_positions.weight": t("encoder/position_encodings/encodings"),
          "layer_norm.weight": t("encoder/layer_norm/gamma"), "layer_norm.bias": t("encoder/layer_norm/beta")}
    for i in range(n_layers):
        src, dst = f"encoder/layer_{i}", f"layers.{i}"
        qkv_w, qkv_b = t(f"{src}/self_attention/linear_0/weight"), t(f"{src}/self_attention/linear_0/bias")
        d = qkv_w.shape[1]
        sd.update({
            f"{dst}.self_attn.q_proj.weight": qkv_w[:d], f"{dst}.self_attn.q_proj.bias": qkv_b[:d],
            f"{dst}.self_attn.k_proj.weight": qkv_w[d:2 * d],
            f"{dst}.self_attn.v_proj.weight": qkv_w[2 * d:], f"{dst}.self_attn.v_proj.bias": qkv_b[2 * d:],
            f"{dst}.self_attn.out_proj.weight": t(f"{src}/self_attention/linear_1/weight"),
            f"{dst}.self_attn.out_proj.bias": t(f"{src}/self_attention/linear_1/bias"),
            f"{dst}.self_attn_layer_norm.weight": t(f"{src}/self_attention/layer_norm/gamma"),
            f"{dst}.self_attn_layer_norm.bias": t(f"{src}/self_attention/layer_norm/beta"),
            f"{dst}.fc1.weight": t(f"{src}/ffn/linear_0/weight"), f"{dst}.fc1.bias": t(f"{src}/ffn/linear_0/bias"),
            f"{dst}.fc2.weight": t(f"{src}/ffn/linear_1/weight"), f"{dst}.fc2.bias": t(f"{src}/ffn/linear_1/bias"),
            f"{dst}.final_layer_norm.weight": t(f"{src}/ffn/layer_norm/gamma"),
            f"{dst}.final_layer_norm.bias": t(f"{src}/ffn/layer_norm/beta"),
        })
    return sd


def build_hf_encoder(dims: WhisperDims, attn: str = "eager") -> WhisperEncoder:
    """An uninitialised ``transformers.WhisperEncoder`` of shape ``dims`` (``attn``: eager | sdpa)."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    config = WhisperConfig(num_mel_bins=dims.n_mels, d_model=dims.d_model, encoder_layers=dims.n_layers,
                           encoder_attention_heads=dims.n_heads, encoder_ffn_dim=4 * dims.d_model,
                           max_source_positions=dims.n_ctx, dropout=0.0, attention_dropout=0.0,
                           activation_dropout=0.0)
    config._attn_implementation = attn
    return WhisperEncoder(config).eval()


class WhisperLayers(nn.Module):
    """``(B, n_mels, T)`` log-mels (T <= 3000) -> stacked hidden states ``(L, B, ceil(T/2), d)``."""

    def __init__(self, encoder: WhisperEncoder, dims: WhisperDims, layers: Sequence[int]) -> None:
        super().__init__()
        wanted = sorted({int(i) for i in layers})
        if not wanted or wanted[0] < 0 or wanted[-1] > dims.n_layers:
            raise ConfigError(f"Whisper layers must be in 0..{dims.n_layers}, got {list(layers)}")
        self.dims, self.layers = dims, wanted
        self.top = wanted[-1]
        self.conv1, self.conv2 = encoder.conv1, encoder.conv2
        self.embed_positions = encoder.embed_positions
        self.blocks = nn.ModuleList(list(encoder.layers)[: self.top])
        self.final_norm = encoder.layer_norm if self.top == dims.n_layers else None

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = nn.functional.gelu(self.conv1(mel))
        x = nn.functional.gelu(self.conv2(x)).transpose(1, 2)
        x = x + self.embed_positions.weight[: x.shape[1]]
        out = [x] if 0 in self.layers else []
        for i, block in enumerate(self.blocks, start=1):
            x = block(x, attention_mask=None)
            if isinstance(x, tuple):
                x = x[0]
            if i == self.top and self.final_norm is not None:
                x = self.final_norm(x)
            if i in self.layers:
                out.append(x)
        return torch.stack(out)


def load_encoder(model: str = "base", attn: str = "eager") -> tuple[WhisperEncoder, WhisperDims]:
    """The full encoder (frozen, eval mode) and its dimensions.

    ``model`` is a packaged name (:data:`emovox.whisper.packaged.PACKAGED`) or a folder holding a
    CTranslate2 Whisper ``model.bin`` (any size; e.g. your own ``ct2-transformers-converter`` output)."""
    if model in PACKAGED:
        dims = PACKAGED[model].dims
        return load_encoder_from_arrays(encoder_arrays(model), dims, attn), dims
    path = Path(model) / "model.bin"
    if not path.is_file():
        raise ConfigError(f"unknown Whisper model {model!r}; choose one of {list(PACKAGED)} or a folder with a "
                          "CTranslate2 model.bin")
    arrays = read_ct2_files([path], keep=lambda n: n.startswith("encoder/"))
    heads = arrays.get("encoder/num_heads")
    if heads is None:
        raise ModelError(f"{path}: no encoder/num_heads; not a CTranslate2 Whisper model")
    dims = dims_from_arrays(arrays, int(heads))
    return load_encoder_from_arrays(arrays, dims, attn), dims


def load_encoder_from_arrays(arrays: dict[str, np.ndarray], dims: WhisperDims, attn: str = "eager") -> WhisperEncoder:
    encoder = build_hf_encoder(dims, attn)
    state = ct2_to_hf(arrays, dims.n_layers)
    expected = encoder.state_dict()
    for name, tensor in state.items():
        if name not in expected or tuple(expected[name].shape) != tuple(tensor.shape):
            raise ModelError(f"Whisper weight {name!r} has shape {tuple(tensor.shape)}, the encoder expects "
                             f"{tuple(expected[name].shape) if name in expected else 'no such tensor'}")
    missing = sorted(set(expected) - set(state))
    if missing:
        raise ModelError(f"Whisper weights lack {missing[:3]}")
    encoder.load_state_dict(state)
    for p in encoder.parameters():
        p.requires_grad_(False)
    return encoder


def whisper_layers(model: str = "base", layers: Sequence[int] | Literal["all"] = "all", attn: str = "eager") -> WhisperLayers:
    """:class:`WhisperLayers` for a packaged model; ``layers="all"`` is 0..n_layers."""
    encoder, dims = load_encoder(model, attn)
    chosen = range(dims.n_layers + 1) if layers == "all" else layers
    return WhisperLayers(encoder, dims, list(chosen))
