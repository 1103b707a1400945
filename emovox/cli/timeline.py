"""``emovox timeline``: emotions over time in a long recording (CSV, JSON and a PNG plot)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from emovox.cli._model_args import add_model_args, load_recognizer, positive_float

FORMATS = ("csv", "json", "png")
EPILOG = """examples:
  emovox timeline meeting.flac                      # writes meeting_timeline/meeting.{windows.csv,regions.csv,json,png}
  emovox timeline call.wav --window 3 --hop 1.5 --vad silero -o out/
  emovox timeline call.wav --format json --labels angry,happy,neutral,sad

The recording is read in blocks (an hour-long file stays well under 1 GB of memory). A VAD marks
speech; each window (default 2 s every 1 s) with at least --min-speech speech is classified;
consecutive windows with the same top emotion are merged into regions.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "timeline", help="emotions over time in a long recording (windows, VAD, merged regions)",
        description="Sliding-window emotion recognition over a recording, with voice activity detection.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recording", help="audio file (WAV, FLAC, OGG...), any length")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default: ./<name>_timeline)")
    p.add_argument("--window", type=positive_float, default=2.0, help="window length in seconds (default 2)")
    p.add_argument("--hop", type=positive_float, default=1.0, help="hop between windows in seconds (default 1)")
    p.add_argument("--vad", choices=("sohn", "silero", "none"), default="sohn",
                   help="voice activity detector (default: sohn; silero needs the silero-vad package)")
    p.add_argument("--min-speech", type=float, default=0.3,
                   help="classify a window only if this fraction of it is speech (default 0.3)")
    p.add_argument("--format", default="csv,json,png", help="comma-separated outputs: csv, json, png (default: all)")
    add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emovox.errors import ConfigError

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"--format: unknown output(s) {bad or formats}; choose from {', '.join(FORMATS)}")
    recording = Path(args.recording)
    recognizer = load_recognizer(args, vad=None)
    tl = recognizer.timeline(recording, window=args.window, hop=args.hop,
                             vad=None if args.vad == "none" else args.vad, min_speech=args.min_speech)
    out = Path(args.out) if args.out else Path(f"{recording.stem}_timeline")
    stem = out / recording.stem
    written = []
    if "csv" in formats:
        tl.write_csv(f"{stem}.windows.csv")
        tl.write_csv(f"{stem}.regions.csv", "regions")
        written += [f"{stem}.windows.csv", f"{stem}.regions.csv"]
    if "json" in formats:
        tl.write_json(f"{stem}.json")
        written.append(f"{stem}.json")
    if "png" in formats:
        tl.plot(f"{stem}.png")
        written.append(f"{stem}.png")
    print(f"{recording}: {tl.duration:.1f} s, speech {100 * tl.speech_fraction:.0f}%, "
          f"{sum(w.is_speech for w in tl.windows)}/{len(tl.windows)} windows classified, {len(tl.regions)} regions")
    if tl.regions:
        print(f"{'start':>9} {'end':>9}  {'emotion':<10} {'p':>5}")
        for r in tl.regions:
            print(f"{r.start:9.2f} {r.end:9.2f}  {r.label:<10} {r.probabilities[r.label]:5.2f}")
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0
