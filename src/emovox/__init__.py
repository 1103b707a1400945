"""emovox: speech emotion recognition toolkit.

Public API::

    from emovox import Recognizer
    r = Recognizer.load()          # the bundled default model
    r.predict("clip.wav")
"""

from __future__ import annotations

__version__ = "0.1.0"

from emovox.errors import (  # noqa: E402
    AudioError,
    ConfigError,
    DependencyError,
    EmovoxError,
    ManifestError,
    ModelError,
    ProtocolError,
)

__all__ = [
    "__version__",
    "AudioError",
    "ConfigError",
    "DependencyError",
    "EmovoxError",
    "ManifestError",
    "ModelError",
    "ProtocolError",
    "Recognizer",
]


def __getattr__(name: str):
    # Lazy: importing emovox must not import torch.
    if name == "Recognizer":
        from emovox.inference import Recognizer

        return Recognizer
    raise AttributeError(f"module 'emovox' has no attribute {name!r}")
