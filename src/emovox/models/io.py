"""Model packages: a folder with ``model.safetensors`` (weights) + ``config.json`` (everything else).

``config.json`` is a :class:`emovox.models.package.PackageConfig` (format ``emovox-model/1``:
model spec, feature pipeline, labels, weights checksum, free extra keys); :func:`read_package`
gives it typed, :func:`read_config` as its canonical mapping. ``model`` is filled from
``model.spec`` when the caller of :func:`save_model` leaves it out. No pickle anywhere.

:func:`save_model` writes the whole package into a temporary sibling folder and renames it into
place, so a crash never leaves a half-written package under the final name; an existing package
at that path is replaced (a non-package folder is refused).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from emovox.errors import ConfigError, EmovoxError, ModelError, short_repr
from emovox.io import atomic_folder, sha256_file
from emovox.models.package import FORMAT, ModelSpec, PackageConfig
from emovox.models.registry import build_model, model_spec

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


#: Largest config.json read (a model config is a few kB; training info included, well under this).
MAX_CONFIG_BYTES = 1 << 20
#: Deepest JSON nesting accepted in config.json (the schema needs 4).
MAX_CONFIG_DEPTH = 16
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on its JSON header


def _depth(value: Any, limit: int = MAX_CONFIG_DEPTH) -> int:
    """Nesting depth of a JSON value, stopping (returning limit + 1) past ``limit``."""
    stack, deepest = [(value, 1)], 0
    while stack:
        item, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, d + 1) for v in item)
    return deepest


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_model(folder: str | os.PathLike, model: nn.Module, config: Mapping[str, Any] | PackageConfig) -> Path:
    """Write ``model`` and ``config`` as a package at ``folder`` atomically; returns the folder.

    ``config`` (a :class:`PackageConfig` or its mapping) needs the pipeline keys and ``labels``;
    ``format`` and ``model`` are filled in when absent, old spellings written canonically.
    ModelError when the config is invalid or ``labels`` does not match the model's outputs.
    """
    from safetensors.torch import save

    final = Path(folder)
    raw = dict(config.to_dict() if isinstance(config, PackageConfig) else config)
    raw.setdefault("format", FORMAT)
    if "model" not in raw:
        try:
            raw["model"] = model_spec(model)
        except ConfigError as exc:
            raise ModelError(f"{final}: {exc}") from None
    package = PackageConfig.from_dict(raw, str(final))
    outputs = getattr(model, "num_classes", None)
    if outputs is not None and outputs != len(package.labels):
        raise ModelError(f"{final}: {len(package.labels)} labels for a model with {outputs} outputs")
    if final.exists() and not final.is_dir():
        raise ModelError(f"{final}: exists and is a file; a model package is a folder (choose another path)")
    if final.exists() and any(final.iterdir()) and not (final / CONFIG).is_file():
        raise ModelError(f"{final}: exists and is not an emovox model folder; refusing to replace it "
                         "(choose an empty or new path)")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    weights = save(state, metadata={"format": FORMAT})
    try:
        text = json.dumps({**package.to_dict(), "weights_sha256": _sha256(weights)}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    except TypeError as exc:
        raise ModelError(f"{final}: config is not JSON-serialisable ({exc})") from None

    with atomic_folder(final) as tmp:
        (tmp / WEIGHTS).write_bytes(weights)
        (tmp / CONFIG).write_bytes(text.encode("utf-8"))
    return final


def read_package(folder: str | os.PathLike) -> PackageConfig:
    """The validated, typed ``config.json`` of a package (no weights read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: no model folder here (a model package is a folder with {WEIGHTS} + {CONFIG})")
    path = folder / CONFIG
    if not path.is_file():
        raise ModelError(f"{folder}: not an emovox model folder ({CONFIG} is missing; "
                         "packages are written by emovox.models.save_model)")
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ModelError(f"{path}: {size} bytes is far too large for a model config (at most "
                             f"{MAX_CONFIG_BYTES}); the package is corrupt, re-export it")
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable or not JSON ({exc}); the package is corrupt, re-export it") from None
    except RecursionError:
        raise ModelError(f"{path}: JSON nested too deeply; the package is corrupt, re-export it") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path}: expected a JSON object, got {type(config).__name__}")
    if _depth(config) > MAX_CONFIG_DEPTH:
        raise ModelError(f"{path}: JSON nested deeper than {MAX_CONFIG_DEPTH} levels; the package is corrupt")
    return PackageConfig.from_dict(config, str(path))


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The validated ``config.json`` of a package as a mapping (canonical spellings)."""
    return read_package(folder).to_dict()


def _safetensors_header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{name: (dtype, shape)}`` from a safetensors file's header, without reading any tensor.

    ModelError when the header is malformed or its tensors do not fit in the file.
    """
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 2 <= n <= min(_MAX_HEADER, size - 8):
                raise ModelError(f"{path}: not a safetensors file (header length {n} for a {size}-byte file); "
                                 "the package is corrupt, re-export it")
            header = json.loads(fh.read(n))
    except ModelError:
        raise
    except (OSError, ValueError, RecursionError, struct.error) as exc:
        raise ModelError(f"{path}: unreadable safetensors header ({type(exc).__name__}); re-export the model") from None
    if not isinstance(header, dict):
        raise ModelError(f"{path}: safetensors header is not a JSON object; re-export the model")
    out, data = {}, size - 8 - n
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        ok = isinstance(entry, dict) and isinstance(entry.get("dtype"), str) and isinstance(entry.get("shape"), list) \
            and all(isinstance(d, int) and d >= 0 for d in entry["shape"]) \
            and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2 \
            and all(isinstance(o, int) for o in entry["data_offsets"])
        if not ok or not 0 <= entry["data_offsets"][0] <= entry["data_offsets"][1] <= data:
            raise ModelError(f"{path}: tensor {short_repr(name)} has a malformed entry in the safetensors header; "
                             "the file is corrupt, re-export the model")
        out[name] = (entry["dtype"], tuple(entry["shape"]))
    return out


def _stream_sha256(path: Path) -> str:
    return sha256_file(path)


def _build(spec: ModelSpec, where: str, device: str | None = None) -> nn.Module:
    """The network of ``spec``; any failure (bad kwarg types/values) is a ModelError."""
    import torch

    try:
        if device is None:
            return build_model(spec.name, **spec.kwargs)
        with torch.device(device):
            return build_model(spec.name, **spec.kwargs)
    except EmovoxError as exc:
        raise ModelError(f"{where}: cannot build model {spec.name!r}: {exc}") from None
    except (MemoryError, RecursionError) as exc:
        raise ModelError(f"{where}: model {spec.name!r} is too large to build ({type(exc).__name__})") from None
    except Exception as exc:  # TypeError/ValueError/RuntimeError from a constructor given a bad value  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise ModelError(f"{where}: cannot build model {spec.name!r} from its kwargs "
                         f"({type(exc).__name__}: {short_repr(str(exc))}); the config is corrupt") from None


def load_package(folder: str | os.PathLike) -> tuple[nn.Module, PackageConfig]:
    """Rebuild the model of a package (eval mode, CPU) and return it with its typed config.

    Everything is checked before anything large is allocated: the config's types and ranges, the
    network built on the ``meta`` device (no memory) against the shapes in the safetensors header,
    and the checksum of the weights read in 1 MB chunks. Every failure is a ModelError.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    package = read_package(folder)
    wpath, where = folder / WEIGHTS, str(folder / CONFIG)
    if not wpath.is_file():
        raise ModelError(f"{folder}: incomplete model package ({WEIGHTS} is missing)")
    header = _safetensors_header(wpath)
    spec = package.model
    own = {k: tuple(v.shape) for k, v in _build(spec, where, "meta").state_dict().items()}
    missing = [k for k in own if k not in header]
    unexpected = [k for k in header if k not in own]
    mismatched = [k for k in header if k in own and own[k] != header[k][1]]
    if missing or unexpected or mismatched:
        raise ModelError(
            f"{wpath}: weights do not fit model {spec.name!r} from {CONFIG} (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shape {mismatched[:3]}); the package is inconsistent")
    try:
        if package.weights_sha256 is not None and _stream_sha256(wpath) != package.weights_sha256:
            raise ModelError(f"{wpath}: checksum does not match {CONFIG} (corrupt or mixed-up files); "
                             "re-export the model")
        state = load_file(str(wpath))
    except ModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - any read/parse failure means a corrupt file
        raise ModelError(f"{wpath}: not a readable safetensors file ({type(exc).__name__}); re-export the model") from None
    model = _build(spec, where)  # its shapes are now known to match the weights on disk
    try:
        model.load_state_dict(state)
    except Exception as exc:  # dtype trouble the header check cannot see  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise ModelError(f"{wpath}: weights cannot be loaded ({type(exc).__name__}); re-export the model") from None
    n = len(package.labels)
    if getattr(model, "num_classes", n) != n:
        raise ModelError(f"{where}: {n} labels for a model with {model.num_classes} outputs")
    return model.eval(), package


def load_model(folder: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`load_package` with the config as a mapping (canonical spellings)."""
    model, package = load_package(folder)
    return model, package.to_dict()


__all__ = ["CONFIG", "FORMAT", "WEIGHTS", "load_model", "load_package", "read_config", "read_package", "save_model"]
