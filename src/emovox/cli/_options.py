"""Shared parsing of repeatable ``KEY=VALUE`` command-line options (YAML values)."""

from __future__ import annotations

from typing import Any


def parse_key_values(items: list[str], flag: str) -> dict[str, Any]:
    """``["a.b=1", "c=[x, y]"]`` -> ``{"a.b": 1, "c": ["x", "y"]}``; errors name the flag."""
    from emovox.config import parse_override
    from emovox.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items:
        try:
            keys, value = parse_override(item)
        except ConfigError as exc:
            raise ConfigError(f"{flag}: {exc}") from None
        out[".".join(keys)] = value
    return out
