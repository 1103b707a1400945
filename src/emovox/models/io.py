"""Model packages: a folder with ``model.safetensors`` (weights) + ``config.json`` (everything else).

``config.json`` schema (``format`` ``emovox-model/1``)::

    {
      "format": "emovox-model/1",
      "model": {"name": "resnet34", "kwargs": {"num_classes": 4, "n_mels": 128, ...}},
      "frontend": {"name": "logmel", "kwargs": {...}},
      "normalize": "segment",
      "labels": ["angry", "happy", "neutral", "sad"],
      "weights_sha256": "…",          # written by save_model, checked by load_model
      ...                              # free extra keys (training info, metrics, ...)
    }

``model`` is what :func:`emovox.models.build_model` takes (filled from ``model.spec`` when the
caller leaves it out); ``labels`` are the class names in output order. No pickle anywhere.

:func:`save_model` writes the whole package into a temporary sibling folder and renames it into
place, so a crash never leaves a half-written package under the final name; an existing package
at that path is replaced (a non-package folder is refused).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from emovox.errors import ConfigError, EmovoxError, ModelError
from emovox.io import normal_mode, sha256_file
from emovox.models.registry import build_model, model_spec

FORMAT = "emovox-model/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


#: Largest config.json read (a model config is a few kB; training info included, well under this).
MAX_CONFIG_BYTES = 1 << 20
#: Deepest JSON nesting accepted in config.json (the schema needs 4).
MAX_CONFIG_DEPTH = 16
#: Bounds on numbers in model/front-end kwargs: sizes of real networks are far below.
MAX_KWARG_INT, MAX_KWARG_FLOAT = 1 << 16, 1e6
MAX_CLASSES = 10_000
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on its JSON header
#: Front-end sizes that bound its filterbank/window allocations (n_mels x n_fft stays < 10 M floats).
_FRONTEND_MAX = {"n_mels": 1024, "n_fft": 16_384, "win_length": 16_384, "hop_length": 16_384,
                 "sample_rate": 384_000, "threads": 256, "f_min": 192_000.0, "f_max": 192_000.0}


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


def _check_kwargs(kwargs: Mapping[str, Any], where: str, nested: bool = False) -> None:
    """ModelError for a kwarg that is not a plain, bounded JSON value (checked before building)."""
    for key, value in kwargs.items():
        if nested and isinstance(value, Mapping):  # the upstream front-end's options; depth-bounded elsewhere
            _check_kwargs(value, f"{where}.{key}")
            continue
        items = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) > 4096:
            raise ModelError(f"{where}.{key}: a list of {len(value)} values is too long (at most 4096)")
        for v in items:
            if v is None or isinstance(v, (bool, str)):
                if isinstance(v, str) and len(v) > 200:
                    raise ModelError(f"{where}.{key}: string of {len(v)} characters is too long")
                continue
            if isinstance(v, int):
                bound = MAX_CLASSES if key == "num_classes" else MAX_KWARG_INT
                if not 0 <= v <= bound:
                    raise ModelError(f"{where}.{key} = {v} is out of range (0..{bound}); the config is corrupt")
            elif isinstance(v, float):
                if not math.isfinite(v) or abs(v) > MAX_KWARG_FLOAT:
                    raise ModelError(f"{where}.{key} = {v!r} is not a usable number; the config is corrupt")
            else:
                raise ModelError(f"{where}.{key} must be a number, string, boolean or list of them, "
                                 f"got {type(v).__name__}")


def _check_frontend_kwargs(name: str, kwargs: Mapping[str, Any], where: str) -> None:
    """Front-end kwargs against the annotations of its constructor: ints are positive ints,
    floats finite and >= 0, bools bools, strings strings (None only where the signature allows it)."""
    import inspect

    from emovox.frontend import FRONTENDS

    cls = FRONTENDS.get(name)
    if cls is None:
        return  # unknown names are reported by the front-end registry itself
    params = inspect.signature(cls.__init__).parameters
    for key, value in kwargs.items():
        if key not in params:
            continue
        note = str(params[key].annotation)
        if isinstance(value, Mapping) and re.search(r"\b(Mapping|dict)\b", note):
            continue  # nested options: plain bounded JSON, checked by _check_kwargs
        kinds = set(re.findall(r"\b(int|float|bool|str|None)\b", note))
        if value is None and "None" in kinds:
            continue
        if kinds & {"int", "float"} and not ({"str", "bool"} & kinds):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not number or ("float" not in kinds and not isinstance(value, int)):
                raise ModelError(f"{where}: frontend.kwargs.{key} must be {'a number' if 'float' in kinds else 'an integer'}"
                                 f", got {_short(value)}")
            top = _FRONTEND_MAX.get(key, MAX_KWARG_FLOAT)
            if not math.isfinite(value) or not 0 <= value <= top or ("float" not in kinds and value < 1):
                raise ModelError(f"{where}: frontend.kwargs.{key} = {_short(value)} is out of range (at most {top:g})")
        elif kinds == {"bool"} and not isinstance(value, bool):
            raise ModelError(f"{where}: frontend.kwargs.{key} must be true or false, got {_short(value)}")
        elif "str" in kinds and not isinstance(value, str) and not (value is None and "None" in kinds):
            raise ModelError(f"{where}: frontend.kwargs.{key} must be a string, got {_short(value)}")


def _check_config(config: Mapping[str, Any], where: str) -> None:
    """ModelError unless ``config`` follows the schema above with plain, bounded values."""
    fmt = config.get("format")
    if fmt != FORMAT:
        raise ModelError(f"{where}: model format {_short(fmt)} is not supported (this emovox reads {FORMAT!r}; "
                         "re-export the model with this version)")
    spec = config.get("model")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(spec.get("kwargs"), dict):
        raise ModelError(f"{where}: 'model' must be {{\"name\": str, \"kwargs\": {{...}}}}, got {_short(spec)}")
    front = config.get("frontend")
    if not isinstance(front, dict) or not isinstance(front.get("name"), str) or \
            not isinstance(front.get("kwargs", {}), dict):
        raise ModelError(f"{where}: 'frontend' must be {{\"name\": str, \"kwargs\": {{...}}}}, got {_short(front)}")
    labels = config.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelError(f"{where}: 'labels' must be a non-empty list of class names, got {_short(labels)}")
    if len(labels) > MAX_CLASSES or len(set(labels)) != len(labels):
        raise ModelError(f"{where}: 'labels' must be at most {MAX_CLASSES} distinct names ({len(labels)} given)")
    _check_kwargs(spec["kwargs"], f"{where}: model.kwargs")
    _check_kwargs(front.get("kwargs", {}), f"{where}: frontend.kwargs", nested=True)
    _check_frontend_kwargs(front["name"], front.get("kwargs", {}), where)
    classes = spec["kwargs"].get("num_classes")
    if classes is not None and classes != len(labels):
        raise ModelError(f"{where}: {len(labels)} labels for a model with {_short(classes)} outputs "
                         "(model.kwargs.num_classes)")
    sha = config.get("weights_sha256")
    if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise ModelError(f"{where}: 'weights_sha256' must be 64 hex digits, got {_short(sha)}")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def save_model(folder: str | os.PathLike, model: nn.Module, config: Mapping[str, Any]) -> Path:
    """Write ``model`` and ``config`` as a package at ``folder`` atomically; returns the folder.

    ``config`` needs ``frontend`` and ``labels``; ``format`` and ``model`` are filled in when absent.
    ModelError when the config is invalid or ``labels`` does not match the model's outputs.
    """
    from safetensors.torch import save

    final = Path(folder)
    config = dict(config)
    config.setdefault("format", FORMAT)
    if "model" not in config:
        try:
            config["model"] = model_spec(model)
        except ConfigError as exc:
            raise ModelError(f"{final}: {exc}") from None
    _check_config(config, str(final))
    outputs = getattr(model, "num_classes", None)
    if outputs is not None and outputs != len(config["labels"]):
        raise ModelError(f"{final}: {len(config['labels'])} labels for a model with {outputs} outputs")
    if final.exists() and not final.is_dir():
        raise ModelError(f"{final}: exists and is a file; a model package is a folder (choose another path)")
    if final.exists() and any(final.iterdir()) and not (final / CONFIG).is_file():
        raise ModelError(f"{final}: exists and is not an emovox model folder; refusing to replace it "
                         "(choose an empty or new path)")
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    weights = save(state, metadata={"format": FORMAT})
    config["weights_sha256"] = _sha256(weights)
    try:
        text = json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    except TypeError as exc:
        raise ModelError(f"{final}: config is not JSON-serialisable ({exc})") from None

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    os.chmod(tmp, normal_mode(directory=True))  # mkdtemp is 0700; a model folder is not private
    try:
        _fsync_write(tmp / WEIGHTS, weights)
        _fsync_write(tmp / CONFIG, text.encode("utf-8"))
        old = None
        if final.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.replace(final, old / final.name)
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def read_config(folder: str | os.PathLike) -> dict[str, Any]:
    """The validated ``config.json`` of a package (no weights read)."""
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
    _check_config(config, str(path))
    return config


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
            raise ModelError(f"{path}: tensor {_short(name)} has a malformed entry in the safetensors header; "
                             "the file is corrupt, re-export the model")
        out[name] = (entry["dtype"], tuple(entry["shape"]))
    return out


def _stream_sha256(path: Path) -> str:
    return sha256_file(path)


def _build(spec: Mapping[str, Any], where: str, device: str | None = None) -> nn.Module:
    """The network of ``spec``; any failure (bad kwarg types/values) is a ModelError."""
    import torch

    try:
        if device is None:
            return build_model(spec["name"], **spec["kwargs"])
        with torch.device(device):
            return build_model(spec["name"], **spec["kwargs"])
    except EmovoxError as exc:
        raise ModelError(f"{where}: cannot build model {spec['name']!r}: {exc}") from None
    except (MemoryError, RecursionError) as exc:
        raise ModelError(f"{where}: model {spec['name']!r} is too large to build ({type(exc).__name__})") from None
    except Exception as exc:  # TypeError/ValueError/RuntimeError from a constructor given a bad value  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
        raise ModelError(f"{where}: cannot build model {spec['name']!r} from its kwargs "
                         f"({type(exc).__name__}: {_short(str(exc))}); the config is corrupt") from None


def load_model(folder: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a package (eval mode, CPU) and return it with its config.

    Everything is checked before anything large is allocated: the config's types and ranges, the
    network built on the ``meta`` device (no memory) against the shapes in the safetensors header,
    and the checksum of the weights read in 1 MB chunks. Every failure is a ModelError.
    """
    from safetensors.torch import load_file

    folder = Path(folder)
    config = read_config(folder)
    wpath, where = folder / WEIGHTS, str(folder / CONFIG)
    if not wpath.is_file():
        raise ModelError(f"{folder}: incomplete model package ({WEIGHTS} is missing)")
    header = _safetensors_header(wpath)
    spec = config["model"]
    own = {k: tuple(v.shape) for k, v in _build(spec, where, "meta").state_dict().items()}
    missing = [k for k in own if k not in header]
    unexpected = [k for k in header if k not in own]
    mismatched = [k for k in header if k in own and own[k] != header[k][1]]
    if missing or unexpected or mismatched:
        raise ModelError(
            f"{wpath}: weights do not fit model {spec['name']!r} from {CONFIG} (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shape {mismatched[:3]}); the package is inconsistent")
    expected = config.get("weights_sha256")
    try:
        if expected is not None and _stream_sha256(wpath) != expected:
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
    if getattr(model, "num_classes", len(config["labels"])) != len(config["labels"]):
        raise ModelError(f"{where}: {len(config['labels'])} labels for a model with {model.num_classes} outputs")
    return model.eval(), config


__all__ = ["CONFIG", "FORMAT", "WEIGHTS", "load_model", "read_config", "save_model"]
