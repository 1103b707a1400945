"""``emovox predict``: emotions of audio files, directories (recursive) and globs."""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from emovox.cli._model_args import add_model_args, positive_int

EPILOG = """examples:
  emovox predict clip.wav                         # a table: file, emotion, probability of each emotion
  emovox predict recordings/ "more/*.flac"        # directories are searched recursively; quote globs
  emovox predict calls/ --json -o results.json    # or --csv; -o writes a file instead of stdout
  emovox predict clip.wav --labels angry,happy,neutral,sad --backend onnx

A file that cannot be read gets an error line (stderr) and the others still get results.
Exit status: 0 all files predicted, 1 some failed, 2 nothing could be predicted (or bad options).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict", help="predict the emotion of audio files, folders and globs",
        description="Predict the emotion of each recording with the bundled model (or --model).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, directories (recursive) or glob patterns")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON output (a list with one object per file)")
    fmt.add_argument("--csv", action="store_true", help="CSV output (one row per file)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the output to FILE instead of stdout")
    p.add_argument("--batch-size", type=positive_int, default=16, help="clips per batch (default 16)")
    p.add_argument("--vad", choices=("silero", "sohn", "none"), default="silero",
                   help="VAD for the speech fraction and the no_speech abstention (default silero; none: every clip gets an emotion)")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show the progress bar (default: when stderr is a terminal)")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")
    add_model_args(p)
    p.set_defaults(func=run)


# ----------------------------------------------------------------------------------- inputs
def expand(paths: Sequence[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Files to predict (in order, without duplicates) and (input, problem) pairs for inputs
    that name nothing usable. Missing plain paths are kept: the loader reports them per file."""
    from emovox.audio import SUPPORTED_EXTENSIONS

    files: list[str] = []
    problems: list[tuple[str, str]] = []

    def audio_in(folder: Path) -> list[str]:
        found = [str(p) for p in folder.rglob("*") if p.suffix.lower() in SUPPORTED_EXTENSIONS and p.is_file()]
        return sorted(found)

    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = audio_in(p)
            if not found:
                problems.append((raw, f"no audio files ({', '.join(SUPPORTED_EXTENSIONS)}) in this folder"))
            files += found
        elif not p.exists() and glob.has_magic(raw):
            found = sorted(glob.glob(raw, recursive=True))
            expanded = []
            for f in found:
                expanded += audio_in(Path(f)) if Path(f).is_dir() else [f]
            if not expanded:
                problems.append((raw, "no files match this pattern"))
            files += expanded
        else:
            files.append(raw)
    return list(dict.fromkeys(files)), problems


# ---------------------------------------------------------------------------------- output
def table(predictions: Sequence[Any], labels: Sequence[str]) -> str:
    ok = [p for p in predictions if p.ok]
    if not ok:
        return ""
    width = max(len("file"), *(len(p.source) for p in ok))
    short = [lab[:7] for lab in labels]
    lines = [f"{'file':<{width}}  {'emotion':<9}{'secs':>7}{'speech':>7}" + "".join(f"{s:>8}" for s in short)]
    for p in ok:
        speech = "-" if p.speech_fraction is None else f"{100 * p.speech_fraction:.0f}%"
        if p.no_speech:
            lines.append(f"{p.source:<{width}}  {'no_speech':<9}{p.duration:>7.1f}{speech:>7}")
            continue
        mark = "?" if p.uncertain else ""
        lines.append(f"{p.source:<{width}}  {p.label + mark:<9}{p.duration:>7.1f}{speech:>7}"
                     + "".join(f"{p.probabilities[k]:>8.3f}" for k in labels))
    return "\n".join(lines) + "\n"


def as_csv(predictions: Sequence[Any], labels: Sequence[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["file", "label", "duration", "speech_fraction", *labels, "error"])
    for p in predictions:
        probs = [f"{p.probabilities[k]:.6f}" if p.ok and not p.no_speech else "" for k in labels]
        w.writerow([p.source, p.label or "", "" if p.duration is None else p.duration,
                    "" if p.speech_fraction is None else p.speech_fraction, *probs, p.error or ""])
    return buf.getvalue()


def as_json(predictions: Sequence[Any]) -> str:
    return json.dumps([p.to_dict() for p in predictions], indent=2, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    from emovox.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PARTIAL
    from emovox.cli._model_args import load_recognizer
    from emovox.inference import Prediction

    files, problems = expand(args.paths)
    for raw, problem in problems:
        print(f"emovox predict: {raw}: {problem}", file=sys.stderr)
    if not files:
        print("emovox predict: error: nothing to predict", file=sys.stderr)
        return EXIT_BAD_INPUT
    recognizer = load_recognizer(args, vad=None if args.vad == "none" else args.vad, batch_size=args.batch_size)
    show = args.progress if args.progress is not None else (len(files) > 1 and sys.stderr.isatty())
    predictions = recognizer.predict(files, progress=_progress(len(files)) if show else None)
    for p in predictions:
        if not p.ok:
            print(f"emovox predict: {p.error}", file=sys.stderr)
    failed = [Prediction(raw, None, {}, error=f"{raw}: {problem}") for raw, problem in problems]
    results = list(predictions) + failed
    text = as_json(results) if args.json else as_csv(results, recognizer.labels) if args.csv else \
        table(results, recognizer.labels)
    if args.output:
        from emovox.io import atomic_write_text

        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    n_ok = sum(p.ok for p in results)
    n_bad = len(results) - n_ok
    if n_bad:
        print(f"emovox predict: {n_ok} of {len(results)} inputs predicted, {n_bad} failed", file=sys.stderr)
    return EXIT_OK if not n_bad else EXIT_PARTIAL if n_ok else EXIT_BAD_INPUT


def _progress(total: int):
    from tqdm import tqdm

    def wrap(items: Iterable) -> Iterable:
        return tqdm(items, total=total, desc="predicting", unit="file", file=sys.stderr, leave=False)

    return wrap
