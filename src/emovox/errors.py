"""The one exception family emovox raises for bad input.

Every message says *what* is wrong, *where* (file, field, line) and *what to do*.
Callers catch :class:`EmovoxError`; the CLI turns it into exit code 2 without a traceback.
"""

from __future__ import annotations


class EmovoxError(Exception):
    """Base class of every error emovox raises on purpose."""


class AudioError(EmovoxError):
    """An audio file or array that cannot be used (missing, not audio, corrupt, empty, NaN...)."""

    def __init__(self, source: object, problem: str, hint: str = "") -> None:
        self.source = str(source)
        self.problem = problem
        self.hint = hint
        msg = f"{self.source}: {problem}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class AudioTooLong(AudioError):
    """Audio that is valid but costs more than the caller's budget (too long, too many samples)."""


class Cancelled(EmovoxError):
    """Work stopped on purpose: its deadline passed or its client went away."""

    def __init__(self, reason: str = "cancelled") -> None:
        self.reason = reason
        super().__init__(f"work stopped: {reason}")


class ManifestError(EmovoxError):
    """A manifest row or corpus tree that is malformed (missing files, duplicate ids...)."""


class ConfigError(EmovoxError):
    """A recipe/config value that is missing, of the wrong type or out of range."""


class ProtocolError(EmovoxError):
    """An evaluation protocol that would leak (speaker in train and test) or is impossible."""


class ModelError(EmovoxError):
    """A model file/folder that is missing, incomplete or incompatible."""


class FileFormatError(EmovoxError, ValueError):
    """A state or result file (JSON written by emovox) that is unreadable or corrupt.

    Also a :class:`ValueError`, so callers that caught the JSON decoder's error keep working.
    """


class FusionError(EmovoxError):
    """Scores that cannot be fused or read (shape mismatch, inf values, no modality, bad score file)."""


class DependencyError(EmovoxError):
    """An optional dependency needed for a feature is not installed."""

    def __init__(self, package: str, feature: str, install: str | None = None) -> None:
        install = install or f"pip install {package}"
        super().__init__(f"{feature} needs the optional package '{package}': {install}")


def short_repr(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting a bad value in a message."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


__all__ = [
    "short_repr",
    "EmovoxError",
    "AudioError",
    "AudioTooLong",
    "Cancelled",
    "ManifestError",
    "ConfigError",
    "ProtocolError",
    "ModelError",
    "DependencyError",
    "FileFormatError",
    "FusionError",
]
