"""Reader for CTranslate2's ``model.bin`` (binary version 6), torch-free.

Layout (``ctranslate2/specs/model_spec.py::_serialize``): ``u32 version``, ``str name``,
``u32 revision``, ``u32 n``, then ``n`` variables, each ``str name``, ``u8 ndim``, ``ndim × u32``
shape, ``u8 dtype`` (0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16), ``u32 nbytes``
and the raw little-endian data; then ``u32`` aliases (``str alias``, ``str target``). Strings are
``u16 length`` (including a trailing NUL) + UTF-8 bytes. int8 weights come with a float32
``<name>_scale`` per output row (``w = q / scale``), which :func:`read_ct2` dequantises.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Callable

import numpy as np

from emovox.errors import ModelError
from emovox.io import atomic_write_bytes

SUPPORTED_VERSIONS = (5, 6)
_DTYPES: dict[int, np.dtype] = {0: np.dtype("<f4"), 1: np.dtype("i1"), 2: np.dtype("<i2"), 3: np.dtype("<i4"),
                                4: np.dtype("<f2"), 5: np.dtype("<u2")}


class _Cursor:
    def __init__(self, buf: memoryview, source: str) -> None:
        self.buf, self.off, self.source = buf, 0, source

    def take(self, fmt: str) -> int:
        size = struct.calcsize(fmt)
        if self.off + size > len(self.buf):
            raise ModelError(f"{self.source}: truncated CTranslate2 model.bin (header ends early); reinstall the package")
        value = struct.unpack_from(fmt, self.buf, self.off)[0]
        self.off += size
        return int(value)

    def string(self) -> str:
        n = self.take("<H")
        raw = bytes(self.buf[self.off:self.off + n])
        self.off += n
        if len(raw) != n or not raw.endswith(b"\0"):
            raise ModelError(f"{self.source}: corrupt string in CTranslate2 model.bin")
        return raw[:-1].decode("utf-8", errors="replace")


def _bf16_to_f32(raw: np.ndarray) -> np.ndarray:
    return (raw.astype(np.uint32) << 16).view(np.float32)


def read_ct2(data: bytes | memoryview, source: str = "model.bin",
             keep: Callable[[str], bool] | None = None) -> dict[str, np.ndarray]:
    """Named float32 arrays (int8 dequantised, scalars as 0-d) of the variables ``keep`` accepts."""
    cur = _Cursor(memoryview(data), source)
    version = cur.take("<I")
    if version not in SUPPORTED_VERSIONS:
        raise ModelError(f"{source}: CTranslate2 binary version {version} is not supported "
                         f"(supported: {SUPPORTED_VERSIONS})")
    cur.string()  # spec name, e.g. WhisperSpec
    cur.take("<I")  # revision
    raw: dict[str, np.ndarray] = {}
    for _ in range(cur.take("<I")):
        name = cur.string()
        shape = tuple(cur.take("<I") for _ in range(cur.take("<B")))
        dtype_id, nbytes = cur.take("<B"), cur.take("<I")
        if dtype_id not in _DTYPES:
            raise ModelError(f"{source}: variable {name!r} has unknown dtype id {dtype_id}")
        start = cur.off
        cur.off += nbytes
        if cur.off > len(cur.buf):
            raise ModelError(f"{source}: truncated CTranslate2 model.bin (variable {name!r}); reinstall the package")
        if keep is not None and not keep(name) and not (name.endswith("_scale") and keep(name[:-6])):
            continue
        dtype = _DTYPES[dtype_id]
        array = np.frombuffer(cur.buf[start:start + nbytes], dtype=dtype)
        if array.size != int(np.prod(shape, dtype=np.int64)):
            raise ModelError(f"{source}: variable {name!r} holds {array.size} values for shape {shape}")
        raw[name] = array.reshape(shape)
    out: dict[str, np.ndarray] = {}
    for name, array in raw.items():
        if name.endswith("_scale") and name[:-6] in raw:
            continue
        if array.dtype == np.int8 and f"{name}_scale" in raw:
            scale = raw[f"{name}_scale"].astype(np.float32)
            out[name] = array.astype(np.float32) / scale.reshape(-1, *([1] * (array.ndim - 1)))
        elif array.dtype == np.uint16:
            out[name] = _bf16_to_f32(array)
        else:
            out[name] = array.astype(np.float32) if array.dtype.kind == "f" else array.copy()
    return out


def read_ct2_files(paths: list[Path], keep: Callable[[str], bool] | None = None) -> dict[str, np.ndarray]:
    """:func:`read_ct2` over the concatenation of ``paths`` (a model.bin split into parts)."""
    data = b"".join(Path(p).read_bytes() for p in paths)
    return read_ct2(data, source=str(paths[0]), keep=keep)


def write_ct2(path: Path, variables: dict[str, np.ndarray], name: str = "WhisperSpec", revision: int = 3) -> None:
    """Write a CTranslate2 binary (version 6): used to build small random-weight test fixtures."""
    codes = {np.dtype("<f4"): 0, np.dtype("i1"): 1, np.dtype("<i2"): 2, np.dtype("<i4"): 3, np.dtype("<f2"): 4}

    def string(s: str) -> bytes:
        b = s.encode() + b"\0"
        return struct.pack("<H", len(b)) + b

    parts = [struct.pack("<I", 6), string(name), struct.pack("<I", revision), struct.pack("<I", len(variables))]
    for key, value in variables.items():
        arr = np.asarray(value)
        arr = arr if arr.flags.c_contiguous else arr.copy(order="C")  # keeps 0-d scalars 0-d
        parts += [string(key), struct.pack("<B", arr.ndim), *(struct.pack("<I", d) for d in arr.shape),
                  struct.pack("<B", codes[arr.dtype.newbyteorder("<") if arr.dtype.byteorder == "=" else arr.dtype]),
                  struct.pack("<I", arr.nbytes), arr.tobytes()]
    parts.append(struct.pack("<I", 0))
    atomic_write_bytes(path, b"".join(parts))
