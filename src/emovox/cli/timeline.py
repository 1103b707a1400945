"""``emovox timeline``: emotions over time in a long recording (CSV, JSON and a PNG plot)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from emovox.cli._archive import TIMELINE_EPILOG, add_archive_args
from emovox.cli._model_args import add_model_args, load_recognizer, positive_float
from emovox.inference import TIMELINE_VAD, VADS

FORMATS = ("csv", "json", "png")
#: Regions printed on the terminal (the CSV/JSON files hold every one).
MAX_PRINTED = 40
EPILOG = """examples:
  emovox timeline meeting.flac                      # writes meeting_timeline/meeting.{windows.csv,regions.csv,json,png}
  emovox timeline call.wav --window 3 --hop 1.5 --vad silero -o out/
  emovox timeline call.wav -o call.png                    # just the picture (or -o call.json)
  emovox timeline call.wav --format json --labels angry,happy,neutral,sad
  emovox timeline interview.flac --speakers 2             # two speakers (default: counted automatically)
  emovox timeline memo.wav --speakers none                # no diarisation
  emovox timeline call.wav --diarizer ge2e                # GE2E speaker embeddings (needs resemblyzer)

The recording is read in blocks (an hour-long file stays well under 1 GB of memory). A VAD marks
speech; each window (default 2 s every 1 s) with at least --min-speech speech is classified;
consecutive windows with the same top emotion (and speaker) are merged into regions. With the
default model the recording is encoded once (4 s pieces) and windows are pooled from its
frames; --scoring window runs the model on every window instead. Speakers (see
docs/conversations.md) come from the same Whisper frames (--diarizer whisper, the default with
the default model) or from the GE2E speaker encoder (--diarizer ge2e, needs
pip install --no-deps resemblyzer==0.1.4; without it the timeline has no speakers and says so).
--adapt normalises each speaker's windows with that speaker's own statistics (off by default:
it loses accuracy when a speaker is mostly neutral). The PNG has one lane per speaker
(colour = emotion, opacity = confidence), smoothed probabilities per speaker and a summary table.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "timeline", help="emotions over time in a long recording (windows, VAD, merged regions)",
        description="Sliding-window emotion recognition over a recording, with voice activity detection.",
        epilog=EPILOG + TIMELINE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recording", nargs="*",
                   help="audio file (WAV, FLAC, OGG...), any length; archive mode: files, folders, globs")
    p.add_argument("-o", "--out", metavar="DIR|FILE",
                   help="output folder (default: ./<name>_timeline), or FILE.png / FILE.json for that one output; "
                        "archive mode: FILE.jsonl, .csv or .parquet")
    p.add_argument("--window", type=positive_float, default=2.0, help="window length in seconds (default 2)")
    p.add_argument("--hop", type=positive_float, default=1.0, help="hop between windows in seconds (default 1)")
    p.add_argument("--vad", choices=(*VADS, "none"), default=TIMELINE_VAD,
                   help="voice activity detector (default: gated: Sohn's regions where the Silero speech check "
                        "finds speech; sohn alone also marks music and noise as speech)")
    p.add_argument("--min-speech", type=float, default=0.3,
                   help="classify a window only if this fraction of it is speech (default 0.3)")
    p.add_argument("--speakers", default="auto", type=_speakers, metavar="auto|N|none",
                   help="speaker diarisation: auto (count speakers, default), a fixed number N, or none")
    p.add_argument("--channels", choices=("auto", "mix", "split"), default="auto",
                   help="a call recorded one side per channel: auto (one speaker per channel when the channels' "
                        "levels say so, default), split (always), mix (diarise the down-mix)")
    p.add_argument("--min-turn", type=float, default=1.0,
                   help="speaker turns shorter than this (seconds) join a neighbour (default 1.0)")
    p.add_argument("--diarizer", choices=("auto", "whisper", "ge2e"), default="auto",
                   help="speaker embeddings: whisper (the model's own frames), ge2e, or auto (whisper when the "
                        "model has frames, default)")
    p.add_argument("--scoring", choices=("auto", "window"), default="auto",
                   help="auto: encode once and pool windows from frames when the model can (default); "
                        "window: run the model on every window")
    p.add_argument("--adapt", action="store_true",
                   help="per-speaker test-time normalisation of the windows (needs speakers and the default model)")
    p.add_argument("--format", default="csv,json,png", help="comma-separated outputs: csv, json, png (default: all)")
    add_model_args(p)
    add_archive_args(p, jobs_default=None)  # archive mode: cli/_archive.py
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emovox.cli._archive import timeline_dispatch
    from emovox.errors import ConfigError

    if (code := timeline_dispatch(args)) is not None:  # a folder, glob, manifest or -o FILE.jsonl/.csv/.parquet
        return code

    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"--format: unknown output(s) {bad or formats}; choose from {', '.join(FORMATS)}")
    recording = Path(args.recording[0])
    from emovox.audio import audio_duration
    from emovox.service.budget import check_timeline_request

    # the service's window/hop bounds before any work; no window count: the output goes to files,
    # so a meeting of several hours is fine (the service caps windows per response instead)
    check_timeline_request(audio_duration(recording), args.window, args.hop, max_windows=None, max_output_bytes=None)
    single = _single_file(args.out)
    out = Path(args.out) if args.out else Path(f"{recording.stem}_timeline")
    if single is None and out.exists() and not out.is_dir():  # before any work: the outputs go into a folder
        raise ConfigError(f"-o {out}: a file of that name exists; give a folder for the outputs "
                          "(or FILE.png / FILE.json for that one output)")
    recognizer = load_recognizer(args, vad=None)
    tl = _timeline(recognizer, recording, args)
    stem = out / recording.stem
    written = []
    if single is not None:  # -o talk.png / talk.json: that one file
        if single.suffix.lower() == ".png":
            tl.plot(single)
        else:
            tl.write_json(single)
        written, formats = [str(single)], []
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
    if not any(w.is_speech for w in tl.windows):
        print("no_speech: no window has enough speech to be given an emotion (--min-speech "
              f"{tl.min_speech:g} of a window; --vad {tl.vad})")
    if tl.speakers:
        print(f"{len(tl.speakers)} speaker(s): " + "; ".join(
            f"{name} {e['speech_seconds']:.0f} s mostly {e['dominant']} ({100 * e['shares'][e['dominant']]:.0f}%)"
            for name, e in tl.summary().items()))
        if tl.split_channels:
            print(f"one speaker per channel ({tl.split_channels} channels, one side of the call each); "
                  "--channels mix diarises the down-mix instead", file=sys.stderr)
        elif args.speakers == "auto":
            print("speakers were counted automatically; if you know how many people speak, "
                  "--speakers N separates them more accurately (docs/conversations.md)", file=sys.stderr)
    if isinstance(args.speakers, int) and len(tl.speakers) < args.speakers:
        print(f"--speakers {args.speakers}: {len(tl.speakers)} found; each needs a few seconds of speech of its "
              f"own (this recording has {sum(b - a for a, b in tl.speech):.0f} s in all)", file=sys.stderr)
    if tl.regions:
        print(f"{'start':>9} {'end':>9}  {'speaker':<7} {'emotion':<10} {'p':>5}")
        for r in tl.regions[:MAX_PRINTED]:
            print(f"{r.start:9.2f} {r.end:9.2f}  {r.speaker or '-':<7} {r.label:<10} {r.probabilities[r.label]:5.2f}")
        if len(tl.regions) > MAX_PRINTED:  # an hour has about a thousand: the files hold them all
            where = next((w for w in written if w.endswith((".regions.csv", ".json"))), None)
            print(f"... {len(tl.regions) - MAX_PRINTED} more regions: "
                  + (f"all of them are in {where}" if where else "--format csv or json writes them all"))
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _single_file(out: str | None) -> Path | None:
    """``-o talk.png`` or ``-o talk.json`` for one recording: write that one file, not a folder of that name."""
    path = Path(out) if out else None
    return path if path is not None and path.suffix.lower() in (".png", ".json") and not path.is_dir() else None


def _speakers(value: str) -> str | int:
    if value in ("auto", "none"):
        return value
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected auto, none or a number of speakers, got {value!r}") from None
    if not 1 <= n <= 20:
        raise argparse.ArgumentTypeError(f"the number of speakers must be between 1 and 20, got {n}")
    return n


def _timeline(recognizer: Any, recording: Path, args: argparse.Namespace) -> Any:
    """The speaker-aware timeline; when GE2E is needed but missing with --speakers auto, say so
    and keep the timeline without speakers."""
    from emovox.conversation import speaker_timeline

    def note(reason: str) -> None:
        print(f"note: no speakers ({reason}); use --speakers none to silence this", file=sys.stderr)

    return speaker_timeline(recognizer, recording, speakers=None if args.speakers == "none" else args.speakers,
                            diarizer=args.diarizer, min_turn=args.min_turn, adapt=args.adapt, on_no_speakers=note,
                            window=args.window, hop=args.hop, vad=None if args.vad == "none" else args.vad,
                            min_speech=args.min_speech, scoring=args.scoring, channels=args.channels)
