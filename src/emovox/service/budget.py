"""What one timeline request may cost: window/hop minimums, a window count and an output bound.

Shared by the service (``POST /v1/timeline``) and the command line (``emovox timeline``), so the
two refuse the same settings. Imports nothing heavy (no FastAPI, no torch).

* ``window`` >= :data:`MIN_WINDOW` s (and <= :data:`MAX_WINDOW`), ``hop`` >= :data:`MIN_HOP` s
  (and <= ``window``): a 3 s clip with ``hop=0.0001`` used to ask for 24 000 windows;
* at most ``max_windows`` windows (service default :data:`MAX_WINDOWS`: 600 s at the minimum
  hop); the command line may pass ``max_windows=None`` for long recordings, where the output is
  streamed to a file rather than held as one response;
* an estimated JSON response of at most ``max_output_bytes`` (default :data:`MAX_OUTPUT_BYTES`).
"""

from __future__ import annotations

import math

from emovox.errors import ConfigError

MIN_WINDOW, MAX_WINDOW = 0.25, 60.0
MIN_HOP = 0.1
MAX_WINDOWS = 6_000
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
#: Work above these is "heavy" (at most workers - 1 such jobs at once): input samples x channels
#: to decode (30 s of 48 kHz stereo), seconds of audio to classify.
HEAVY_DECODE_SAMPLES = 30 * 48_000 * 2
HEAVY_AUDIO_SECONDS = 30.0
#: Timeline windows of ``/v1/timeline`` (defaults) and ``/v1/conversation`` (seconds).
TIMELINE_WINDOW, TIMELINE_HOP = 2.0, 1.0
#: JSON bytes per window: start/end/speech/label (~70) plus one "label": probability pair per label.
_WINDOW_BYTES, _LABEL_BYTES = 72, 24


class TimelineTooLarge(ConfigError):
    """Valid settings whose cost for this recording exceeds the request budget."""


def timeline_windows(duration: float, window: float, hop: float) -> int:
    """Number of windows a recording of ``duration`` s gives (the last one may be short)."""
    if duration <= window:
        return 1
    return int(math.ceil((duration - window) / hop - 1e-9)) + 1


def check_timeline_settings(window: float, hop: float) -> None:
    """ConfigError for a window or hop outside the documented bounds."""
    ok = isinstance(window, (int, float)) and not isinstance(window, bool) and math.isfinite(window)
    if not ok or not MIN_WINDOW <= window <= MAX_WINDOW:
        raise ConfigError(f"window must be between {MIN_WINDOW} and {MAX_WINDOW:g} seconds, got {window!r}")
    ok = isinstance(hop, (int, float)) and not isinstance(hop, bool) and math.isfinite(hop)
    if not ok or not MIN_HOP <= hop <= window:
        raise ConfigError(f"hop must be between {MIN_HOP} s and the window ({window:g} s), got {hop!r}")


def check_timeline_request(duration: float, window: float, hop: float, n_labels: int = 8, *,
                           max_windows: int | None = MAX_WINDOWS,
                           max_output_bytes: int | None = MAX_OUTPUT_BYTES) -> int:
    """Validate a timeline request before any work; returns its number of windows.

    ConfigError for bad settings, :class:`TimelineTooLarge` when this recording would need more
    windows or output than allowed (the message says which hop would fit).
    """
    check_timeline_settings(window, hop)
    n = timeline_windows(max(0.0, float(duration)), window, hop)
    if max_windows is not None and n > max_windows:
        fit = (duration - window) / max(1, max_windows - 1)
        raise TimelineTooLarge(f"{duration:.0f} s with hop {hop:g} s gives {n} windows, more than the limit of "
                               f"{max_windows} per request; use hop >= {max(MIN_HOP, fit):.2f} s (window >= hop) or a "
                               "shorter recording")
    size = n * (_WINDOW_BYTES + _LABEL_BYTES * max(1, n_labels))
    if max_output_bytes is not None and size > max_output_bytes:
        raise TimelineTooLarge(f"the timeline would be about {size / 1e6:.1f} MB of JSON ({n} windows x {n_labels} "
                               f"labels), more than the limit of {max_output_bytes / 1e6:.1f} MB; use a larger hop "
                               "or fewer labels")
    return n


__all__ = ["MAX_OUTPUT_BYTES", "MAX_WINDOWS", "MIN_HOP", "MIN_WINDOW", "TimelineTooLarge", "check_timeline_request",
           "check_timeline_settings", "timeline_windows"]
