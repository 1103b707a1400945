"""``emovox predict``: INTERIM front-end/VAD summary per clip, until the default model exists.

For every input clip it prints duration, speech fraction (Sohn VAD, or Silero) and the
log-mel feature shape. Files, folders (searched recursively) and glob patterns are accepted;
a bad file prints a per-file error and the batch goes on; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path
from typing import Any

EPILOG = """examples:
  emovox predict clip.wav
  emovox predict examples/                 # every WAV/FLAC/OGG below the folder
  emovox predict "recordings/**/*.flac" --vad silero

Interim output (no emotion model yet): duration, speech fraction, log-mel shape per clip.
Exit code: 0 all clips read, 1 some clips failed (each failure is printed), 2 bad usage.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict", help="summarise audio clips (duration, speech fraction, features) [interim]",
        description="Read audio clips and print duration, VAD speech fraction and log-mel feature shape.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders (recursive) or glob patterns")
    p.add_argument("--vad", choices=("sohn", "silero"), default="sohn",
                   help="voice activity detector for the speech fraction (default: sohn)")
    p.set_defaults(func=run)


def expand_inputs(paths: list[str]) -> tuple[list[Path], list[str]]:
    """(audio files in order, without duplicates; error messages for inputs that matched nothing)."""
    from emovox.audio import SUPPORTED_EXTENSIONS

    files: list[Path] = []
    errors: list[str] = []

    def add_dir(folder: Path) -> None:
        found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_EXTENSIONS)
        if not found:
            errors.append(f"{folder}: no audio files ({', '.join(SUPPORTED_EXTENSIONS)}) in this folder")
        files.extend(found)

    for arg in paths:
        path = Path(arg)
        if path.is_dir():
            add_dir(path)
        elif path.exists() or not glob.has_magic(arg):
            files.append(path)  # a missing file is reported by the loader, like any bad file
        else:
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True))
            if not matches:
                errors.append(f"{arg}: no files match this pattern")
            for m in matches:
                add_dir(m) if m.is_dir() else files.append(m)
    return list(dict.fromkeys(files)), errors


def run(args: argparse.Namespace) -> int:
    import torch

    from emovox.audio import SAMPLE_RATE, load_audio
    from emovox.errors import EmovoxError
    from emovox.frontend import build_frontend
    from emovox.vad import build_vad

    files, errors = expand_inputs(args.paths)
    for message in errors:
        print(f"emovox predict: error: {message}", file=sys.stderr)
    frontend, vad = build_frontend("logmel"), build_vad(args.vad)
    width = max([len(str(f)) for f in files] + [4])
    print(f"{'file':<{width}}  {'duration_s':>10}  {'speech':>6}  features (T x F)")
    failed = len(errors)
    for path in files:
        try:
            wave = load_audio(path)
            speech = vad.speech_fraction(wave)
            with torch.no_grad():
                shape = tuple(frontend(torch.from_numpy(wave)).shape)
        except EmovoxError as exc:
            failed += 1
            print(f"emovox predict: error: {exc}", file=sys.stderr)
            print(f"{str(path):<{width}}  {'FAILED':>10}")
            continue
        print(f"{str(path):<{width}}  {wave.size / SAMPLE_RATE:>10.2f}  {speech:>6.0%}  {shape[0]} x {shape[1]}")
    ok = len(files) - (failed - len(errors))
    print(f"{ok} clip(s) read, {failed} failed (interim summary: the emotion model is not bundled yet)")
    return 1 if failed else 0
