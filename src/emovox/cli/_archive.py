"""Archive mode of ``emovox predict`` and ``emovox timeline``: options, the run, messages, exit status.

Both commands run :func:`emovox.archive.run_archive` with their task (predict: one prediction
per file; timeline: :class:`emovox.archive_timeline.TimelineTask`); this module holds what their
command lines share, and the timeline command's archive mode (the single-recording command is
in ``cli/timeline.py``, which dispatches here).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from emovox.cli._model_args import positive_int

#: ``-o`` extensions that make ``emovox timeline`` write one archive file (format from the extension).
ARCHIVE_SUFFIXES = (".jsonl", ".ndjson", ".csv", ".parquet", ".pq")

TIMELINE_EPILOG = """
archives (one record per recording, written as it comes, in input order, resumable):
  emovox timeline calls/ -o timelines.jsonl --jobs 2      # folders are searched recursively
  emovox timeline "calls/*.flac" -o windows.csv --speakers none   # CSV: one row per window
  emovox timeline --manifest calls.csv -o timelines.parquet       # Parquet (needs pyarrow)

Archive mode is chosen when the input is a folder, a glob, several paths or --manifest, or when
-o names a .jsonl/.ndjson/.csv/.parquet file; otherwise the recording's CSV/JSON/PNG go into a
folder as above. In archive mode the format follows -o's extension (JSON Lines records hold the
windows, regions, speakers and summary; CSV/Parquet one row per window), --threads defaults to
1 per process, bad files get an error record, and a re-run with the same -o resumes (also after
kill -9). See docs/archive.md. Exit status: 0 all done, 1 some failed, 2 none (or bad options).
"""


def add_archive_args(p: argparse.ArgumentParser, jobs_default: int | None = 1) -> None:
    """--manifest, --jobs, --progress/--no-progress."""
    p.add_argument("--manifest", action="append", default=[], metavar="FILE",
                   help="a list of files: CSV with a 'path' column, or one path a line (repeatable)")
    p.add_argument("--jobs", type=positive_int, default=jobs_default, metavar="N",
                   help="worker processes, one model and one thread each (default 1: in this process)")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show the progress bar (default: when stderr is a terminal; else log lines)")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")


def count_inputs(command: str, paths: list[str], manifests: list[str]) -> int | None:
    """The number of distinct inputs (a first pass that keeps no list), or None with messages on
    stderr when there is no file to work on."""
    from emovox.archive import Problem, iter_inputs, unique

    n_files = n_problems = 0
    for item in unique(iter_inputs(paths, manifests)):
        n_problems += isinstance(item, Problem)
        n_files += not isinstance(item, Problem)
    if n_files:
        return n_files + n_problems
    for item in unique(iter_inputs(paths, manifests)):
        assert isinstance(item, Problem)  # no files: every input is a problem
        print(f"emovox {command}: {item.source}: {item.problem}", file=sys.stderr)
    print(f"emovox {command}: error: nothing to {'predict' if command == 'predict' else 'analyse'}",
          file=sys.stderr)
    return None


def reporter(command: str) -> Callable[[dict[str, Any]], None]:
    """Prints an error record's message on stderr."""
    return lambda record: print(f"emovox {command}: {record['error']}", file=sys.stderr)


def exit_status(command: str, n_ok: int, n_bad: int) -> int:
    from emovox.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PARTIAL

    if n_bad:
        done = "predicted" if command == "predict" else "done"
        print(f"emovox {command}: {n_ok} of {n_ok + n_bad} inputs {done}, {n_bad} failed", file=sys.stderr)
    return EXIT_OK if not n_bad else EXIT_PARTIAL if n_ok else EXIT_BAD_INPUT


def run_archive_cli(command: str, args: argparse.Namespace, task: Any, output: str, total: int,
                    fmt: str | None = None) -> int:
    """One archive run on one machine (``--jobs``): messages and the exit status."""
    from emovox.archive import iter_inputs, run_archive, unique

    try:
        summary = run_archive(unique(iter_inputs(args.paths, args.manifest)), output, task, jobs=args.jobs or 1,
                              fmt=fmt, total=total, progress=args.progress, on_error=reporter(command))
    except KeyboardInterrupt:
        print(f"emovox {command}: {output} keeps every result written so far; run the same command again to "
              "resume", file=sys.stderr)
        raise
    return finish(command, output, summary)


def finish(command: str, output: str, summary: Any) -> int:
    if summary.skipped:
        print(f"emovox {command}: {output}: resumed: {summary.skipped} files were already done, "
              f"{summary.predicted} {'predicted' if command == 'predict' else 'analysed'} now", file=sys.stderr)
    return exit_status(command, summary.ok, summary.failed)


# ---------------------------------------------------------------------------------- timeline
def timeline_archive_mode(args: argparse.Namespace) -> bool:
    """Whether ``emovox timeline`` runs over an archive (see :data:`TIMELINE_EPILOG`)."""
    import glob

    paths = args.recording
    if args.manifest or len(paths) != 1:
        return True
    if args.out and Path(args.out).suffix.lower() in ARCHIVE_SUFFIXES:
        return True
    single = Path(paths[0])
    return single.is_dir() or (not single.exists() and glob.has_magic(paths[0]))


def run_timeline_archive(args: argparse.Namespace) -> int:
    """``emovox timeline`` over a folder, glob or manifest into one file (:class:`TimelineTask`)."""
    from emovox.archive import ModelSpec
    from emovox.archive_timeline import TimelineTask
    from emovox.cli import EXIT_BAD_INPUT

    def usage(message: str) -> int:
        print(f"emovox timeline: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT

    if not args.recording and not args.manifest:
        return usage("give a recording, a folder, a glob or --manifest FILE")
    if not args.out or Path(args.out).suffix.lower() not in ARCHIVE_SUFFIXES:
        return usage(f"{' '.join(args.recording) or 'a manifest'}: an archive run writes one file: add "
                     "-o FILE.jsonl (or .csv, .parquet)")
    if args.format != "csv,json,png":
        return usage("--format is for one recording's folder; in archive mode the format follows -o's extension")
    labels = tuple(s.strip() for s in args.labels.split(",") if s.strip()) if args.labels else None
    model = ModelSpec(model=args.model, backend=args.backend, labels=labels, vad="none", threads=args.threads or 1)
    task = TimelineTask(model, window=args.window, hop=args.hop, vad=args.vad, min_speech=args.min_speech,
                        speakers=args.speakers, min_turn=args.min_turn, diarizer=args.diarizer, adapt=args.adapt,
                        scoring=args.scoring, channels=args.channels)
    args.paths = args.recording
    total = count_inputs("timeline", args.paths, args.manifest)
    if total is None:
        return EXIT_BAD_INPUT
    return run_archive_cli("timeline", args, task, args.out, total)


def timeline_dispatch(args: argparse.Namespace) -> int | None:
    """``emovox timeline``'s archive mode: its exit status, or None for one recording (then
    ``args.recording[0]`` is the recording)."""
    from emovox.cli import EXIT_BAD_INPUT

    if timeline_archive_mode(args):
        return run_timeline_archive(args)
    if args.jobs not in (None, 1):
        print("emovox timeline: error: --jobs is for archives (a folder, a glob, --manifest, or -o FILE.jsonl, "
              ".csv, .parquet)", file=sys.stderr)
        return EXIT_BAD_INPUT
    return None


__all__ = ["TIMELINE_EPILOG", "add_archive_args", "count_inputs", "exit_status", "run_archive_cli",
           "run_timeline_archive", "timeline_archive_mode", "timeline_dispatch"]
