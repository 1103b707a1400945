"""Shared command-line options: repeatable ``KEY=VALUE`` options (YAML values), progress bars."""

from __future__ import annotations

import sys
from typing import Any


def show_progress(no_progress: bool) -> bool:
    """Progress bars on a terminal only, as ``emovox predict`` does: in a log file or a batch job's
    output every redraw of a bar is one more line."""
    return not no_progress and sys.stderr.isatty()


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
