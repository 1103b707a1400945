"""A tiny random-weight Whisper encoder in CTranslate2's format, for fast tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emovox.whisper.ct2 import write_ct2


def write_tiny_whisper(folder: str | Path, d_model: int = 32, n_heads: int = 2, n_layers: int = 2,
                       n_mels: int = 80, n_ctx: int = 1500, seed: int = 0, dtype: str = "float16") -> Path:
    """Write ``folder/model.bin`` (encoder tensors only, ``dtype`` float16/float32/int8) and return ``folder``."""
    rng = np.random.default_rng(seed)
    d = d_model

    def w(*shape: int, scale: float = 0.2) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    v: dict[str, np.ndarray] = {
        "encoder/conv1/weight": w(d, n_mels, 3), "encoder/conv1/bias": w(d),
        "encoder/conv2/weight": w(d, d, 3, scale=0.05), "encoder/conv2/bias": w(d),
        "encoder/position_encodings/encodings": w(n_ctx, d, scale=0.1),
        "encoder/layer_norm/gamma": 1 + w(d, scale=0.05), "encoder/layer_norm/beta": w(d, scale=0.05),
    }
    for i in range(n_layers):
        p = f"encoder/layer_{i}"
        qkv_b = w(3 * d)
        qkv_b[d:2 * d] = 0.0  # Whisper's key projection has no bias
        v.update({f"{p}/self_attention/linear_0/weight": w(3 * d, d, scale=0.1),
                  f"{p}/self_attention/linear_0/bias": qkv_b,
                  f"{p}/self_attention/linear_1/weight": w(d, d, scale=0.1), f"{p}/self_attention/linear_1/bias": w(d),
                  f"{p}/self_attention/layer_norm/gamma": 1 + w(d, scale=0.05),
                  f"{p}/self_attention/layer_norm/beta": w(d, scale=0.05),
                  f"{p}/ffn/linear_0/weight": w(4 * d, d, scale=0.1), f"{p}/ffn/linear_0/bias": w(4 * d),
                  f"{p}/ffn/linear_1/weight": w(d, 4 * d, scale=0.05), f"{p}/ffn/linear_1/bias": w(d),
                  f"{p}/ffn/layer_norm/gamma": 1 + w(d, scale=0.05), f"{p}/ffn/layer_norm/beta": w(d, scale=0.05)})
    out: dict[str, np.ndarray] = {}
    for name, arr in v.items():
        if dtype == "int8" and arr.ndim == 2 and name.endswith("weight"):
            scale = (127.0 / np.maximum(np.abs(arr).max(axis=1), 1e-8)).astype(np.float32)
            out[name] = np.round(arr * scale[:, None]).astype(np.int8)
            out[f"{name}_scale"] = scale
        else:
            out[name] = arr.astype(np.float16 if dtype == "float16" else np.float32)
    out["encoder/num_heads"] = np.array(n_heads, dtype=np.int16)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_ct2(folder / "model.bin", out)
    return folder


def write_tiny_package(root: str | Path, labels: list[str], *, seed: int = 0, hidden: int = 0, members: int = 1,
                       std: float | None = 2.0, **config: Any) -> Path:
    """A tiny audio-in model package under ``root/pkg``: :func:`write_tiny_whisper` (2 layers, in
    ``root/whisper``) and a random :class:`emovox.whisper.model.PooledHead` on states 1-2 (weights
    N(0, 0.3) after ``torch.manual_seed(seed)``; its std scale set to ``std`` unless None). ``config``:
    more :class:`emovox.audio_model.AudioModelConfig` fields (name, temperature, ...)."""
    import torch

    from emovox.audio_model import AudioModelConfig
    from emovox.whisper.export import write_package
    from emovox.whisper.model import PooledHead

    root = Path(root)
    whisper = write_tiny_whisper(root / "whisper", n_layers=2)
    torch.manual_seed(seed)
    head = PooledHead(2, 64, len(labels), hidden=hidden, members=members)
    with torch.no_grad():
        for p in head.parameters():
            p.normal_(0, 0.3)
        if std is not None:
            head.std.fill_(std)
    cfg = AudioModelConfig(labels=labels, whisper_model=str(whisper), layers=[1, 2], hidden=hidden, members=members,
                           **config)
    return write_package(root / "pkg", cfg, head.state_dict())
