"""A readable PNG of a :class:`emovox.timeline.Timeline` (matplotlib, Agg).

Layout, top to bottom, all on one mm:ss time axis:

* **lanes** — one per speaker (one "speech" lane without diarisation). The speaker's turns are a
  light grey bar; each classified window paints its central ``hop`` slice in the colour of its top
  emotion with opacity = confidence (top probability; ``uncertain`` windows are hatched). A black
  strip under the lanes marks VAD speech (gaps = no speech).
* **probabilities** — one panel per speaker: each emotion's probability over that speaker's
  windows, smoothed by a centred moving average of :data:`SMOOTH` windows; emotions that never
  reach :data:`SHOW_ABOVE` are left out of the panel so it stays legible.
* **summary** — a table: per speaker, speech time and share of speech per emotion (%).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from emovox.io import atomic_path, display_text

if TYPE_CHECKING:
    from emovox.timeline import Timeline

#: Fixed colours for the usual emotion names (so "angry" is red in every plot); others use tab10.
EMOTION_COLORS = {
    "angry": "#d62728", "anger": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "fearful": "#9467bd",
    "happy": "#ff9f1c", "happiness": "#ff9f1c", "neutral": "#7f7f7f", "calm": "#2ca02c", "sad": "#1f77b4",
    "sadness": "#1f77b4", "surprise": "#17becf", "surprised": "#17becf", "ps": "#17becf", "boredom": "#bcbd22",
}
SMOOTH = 5
SHOW_ABOVE = 0.2


def emotion_colors(labels: Sequence[str]) -> dict[str, str]:
    """Label -> colour (fixed for known emotion names, tab10 otherwise)."""
    return {k: EMOTION_COLORS.get(k.lower(), f"C{i % 10}") for i, k in enumerate(labels)}


def mmss(seconds: float, _pos: object = None) -> str:
    """``75.0`` -> ``"01:15"`` (``h:mm:ss`` from one hour)."""
    s = int(round(max(0.0, seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60:02d}:{s % 60:02d}"


def smooth(values: np.ndarray, n: int = SMOOTH) -> np.ndarray:
    """Centred moving average that ignores NaN (NaN stays NaN)."""
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    kernel = np.ones(n)
    # "full" then the centred slice: mode="same" returns max(len, n) values, too many for a short series
    lo = (n - 1) // 2
    num = np.convolve(np.where(ok, values, 0.0), kernel, mode="full")[lo:lo + values.size]
    den = np.convolve(ok.astype(np.float64), kernel, mode="full")[lo:lo + values.size]
    out = num / np.clip(den, 1e-12, None)
    out[~ok] = np.nan
    return out


def plot_timeline(tl: Timeline, path: str | os.PathLike, title: str | None = None) -> None:
    """Write the PNG described in the module docstring to ``path`` (atomically)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    lanes = tl.speakers or ["speech"]
    summary = tl.summary()
    n = len(lanes)
    colors = emotion_colors(tl.labels)
    heights = [0.5 * n + 0.5] + [1.3] * n + [0.3 * (len(summary) + 1) + 0.9]
    width = max(9.0, min(24.0, 6 + tl.duration / 15))
    fig = Figure(figsize=(width, sum(heights) + 1.0), dpi=100)
    grid = fig.add_gridspec(len(heights), 1, height_ratios=heights, hspace=0.35)
    dur = max(tl.duration, 1e-3)

    # ------------------------------------------------------------------ lanes
    ax = fig.add_subplot(grid[0])
    for i, name in enumerate(lanes):
        y = n - 1 - i
        turns = [(t.start, t.end) for t in tl.turns if t.speaker == name] if tl.speakers else tl.speech
        ax.broken_barh([(s, e - s) for s, e in turns], (y - 0.4, 0.8), color="0.92", lw=0)
        for w in tl.windows:
            if not w.is_speech or (tl.speakers and w.speaker != name):
                continue
            centre = (w.start + w.end) / 2
            assert w.label is not None and w.probabilities is not None  # speech windows are labelled
            p = w.probabilities[w.label]
            ax.broken_barh([(max(w.start, centre - tl.hop / 2), min(tl.hop, w.end - w.start))], (y - 0.35, 0.7),
                           color=colors[w.label], alpha=float(np.clip(p, 0.15, 1.0)), lw=0,
                           hatch="//" if w.uncertain else None)
    ax.broken_barh([(s, e - s) for s, e in tl.speech], (-0.75, 0.15), color="black", lw=0)
    ax.set_yticks([n - 1 - i for i in range(n)] + [-0.675], [*lanes, "VAD"])
    ax.set_ylim(-0.9, n - 0.5)
    ax.set_xlim(0, dur)
    ax.xaxis.set_major_formatter(FuncFormatter(mmss))
    ax.tick_params(labelbottom=False)
    ax.set_title(display_text(title or f"{os.path.basename(tl.source)}: dominant emotion per window "
                              "(colour; opacity = confidence; hatched = uncertain)"), fontsize="medium")
    present = [k for k in tl.labels if any(w.label == k for w in tl.windows)]
    handles = [Patch(color=colors[k], label=k) for k in present or tl.labels]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)

    # ------------------------------------------------------------------ probabilities per speaker
    for i, name in enumerate(lanes):
        pax = fig.add_subplot(grid[1 + i], sharex=ax)
        # split channels: each lane has its own sequence of windows (the others are at the same times)
        seq = [w for w in tl.windows if w.speaker == name] if tl.split_channels else tl.windows
        centres = np.array([(w.start + w.end) / 2 for w in seq])
        mine = [w.is_speech and (not tl.speakers or w.speaker == name) for w in seq]
        for k in tl.labels:
            ys = np.array([w.probabilities[k] if m else np.nan for w, m in zip(seq, mine)])  # type: ignore[index]
            if not np.any(ys[~np.isnan(ys)] >= SHOW_ABOVE):
                continue
            pax.plot(centres, smooth(ys), color=colors[k], lw=1.4, label=k)
        for s, e in ([(t.start, t.end) for t in tl.turns if t.speaker == name] if tl.split_channels else tl.speech):
            pax.axvspan(s, e, color="0.96", zorder=0, lw=0)
        pax.tick_params(labelbottom=i == n - 1)
        pax.set_ylim(0, 1.02)
        pax.set_ylabel(f"{name}\np (smoothed)", fontsize="small")
        pax.xaxis.set_major_formatter(FuncFormatter(mmss))
        if pax.get_legend_handles_labels()[0]:
            pax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="x-small", frameon=False)
    pax.set_xlabel("time (mm:ss)")

    # ------------------------------------------------------------------ summary table
    tax = fig.add_subplot(grid[-1])
    tax.axis("off")
    if summary:
        cols = ["speaker", "speech", *tl.labels]
        rows = [[name, mmss(entry["speech_seconds"]),
                 *(f"{100 * entry['shares'][k]:.0f}%" for k in tl.labels)] for name, entry in summary.items()]
        table = tax.table(cellText=rows, colLabels=cols, loc="lower center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        for r, (_name, entry) in enumerate(summary.items(), start=1):
            j = 2 + tl.labels.index(entry["dominant"])
            table[r, j].set_facecolor(colors[entry["dominant"]])
            table[r, j].set_alpha(0.5)
        tax.text(0.5, 0.62, "share of speech time per emotion (dominant shaded)", ha="center", fontsize="small",
                 transform=tax.transAxes)
    else:
        tax.text(0.5, 0.5, "no speech classified", ha="center", va="center", color="0.4")
    fig.subplots_adjust(left=0.08, right=0.86, top=0.95, bottom=0.03)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
