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
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Mapping

from torch import nn

from emovox.errors import ConfigError, EmovoxError, ModelError
from emovox.io import normal_mode
from emovox.models.registry import build_model, model_spec

FORMAT = "emovox-model/1"
WEIGHTS = "model.safetensors"
CONFIG = "config.json"


def _check_config(config: Mapping[str, Any], where: str) -> None:
    """ModelError unless ``config`` follows the schema above."""
    fmt = config.get("format")
    if fmt != FORMAT:
        raise ModelError(f"{where}: model format {fmt!r} is not supported (this emovox reads {FORMAT!r}; "
                         "re-export the model with this version)")
    spec = config.get("model")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(spec.get("kwargs"), dict):
        raise ModelError(f"{where}: 'model' must be {{\"name\": str, \"kwargs\": {{...}}}}, got {spec!r}")
    front = config.get("frontend")
    if not isinstance(front, dict) or not isinstance(front.get("name"), str) or \
            not isinstance(front.get("kwargs", {}), dict):
        raise ModelError(f"{where}: 'frontend' must be {{\"name\": str, \"kwargs\": {{...}}}}, got {front!r}")
    labels = config.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise ModelError(f"{where}: 'labels' must be a non-empty list of class names, got {labels!r}")


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
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path}: unreadable or not JSON ({exc}); the package is corrupt, re-export it") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path}: expected a JSON object, got {type(config).__name__}")
    _check_config(config, str(path))
    return config


def load_model(folder: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model of a package (eval mode, CPU) and return it with its config."""
    from safetensors.torch import load

    folder = Path(folder)
    config = read_config(folder)
    wpath = folder / WEIGHTS
    if not wpath.is_file():
        raise ModelError(f"{folder}: incomplete model package ({WEIGHTS} is missing)")
    data = wpath.read_bytes()
    expected = config.get("weights_sha256")
    if expected is not None and _sha256(data) != expected:
        raise ModelError(f"{wpath}: checksum does not match {CONFIG} (corrupt or mixed-up files); re-export the model")
    try:
        state = load(data)
    except Exception as exc:  # noqa: BLE001 - any parse failure means a corrupt file
        raise ModelError(f"{wpath}: not a readable safetensors file ({exc})") from None
    spec = config["model"]
    try:
        model = build_model(spec["name"], **spec["kwargs"])
    except EmovoxError as exc:
        raise ModelError(f"{folder / CONFIG}: cannot build model {spec['name']!r}: {exc}") from None
    except TypeError as exc:  # e.g. num_classes missing from kwargs
        raise ModelError(f"{folder / CONFIG}: cannot build model {spec['name']!r}: {exc}") from None
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in state if k in own and own[k].shape != state[k].shape]
    if missing or unexpected or mismatched:
        raise ModelError(
            f"{wpath}: weights do not fit model {spec['name']!r} from {CONFIG} (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shape {mismatched[:3]}); the package is inconsistent")
    model.load_state_dict(state)
    if getattr(model, "num_classes", len(config["labels"])) != len(config["labels"]):
        raise ModelError(f"{folder / CONFIG}: {len(config['labels'])} labels for a model with "
                         f"{model.num_classes} outputs")
    return model.eval(), config


__all__ = ["CONFIG", "FORMAT", "WEIGHTS", "load_model", "read_config", "save_model"]
