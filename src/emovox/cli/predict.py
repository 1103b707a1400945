"""``emovox predict``: emotions of audio files, folders (recursive), globs and manifests.

Without ``-o`` the results are printed when all are done (a table, ``--json`` or ``--csv``);
``--json -o FILE`` writes that JSON list to FILE (atomically) when all are done. Otherwise
``-o FILE`` writes one record per file as they come (:mod:`emovox.archive`): JSON Lines
(default), ``--csv`` or ``--parquet``; resumable, ``--jobs N`` processes, or the cluster route
(``--devices``/``--num-nodes``: Lightning DDP, :mod:`emovox.archive_cluster`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from typing import Any, Sequence

from emovox.cli._archive import add_archive_args, count_inputs, exit_status, finish, reporter, run_archive_cli
from emovox.cli._model_args import add_model_args, positive_int
from emovox.io import json_text, one_line

EPILOG = """examples:
  emovox predict clip.wav                         # a table: file, emotion, probability of each emotion
  emovox predict recordings/ "more/*.flac"        # directories are searched recursively; quote globs
  emovox predict calls/ --json -o results.json    # or --csv; one JSON list, written when all are done
  emovox predict clip.wav --labels angry,happy,neutral,sad --backend onnx

archives (-o FILE: one record per file, written as it comes, in input order):
  emovox predict /archive -o results.jsonl --jobs 2        # JSON Lines; re-run the same command to resume
  emovox predict --manifest calls.csv -o results.csv --csv # a CSV with a 'path' column, or one path a line
  emovox predict /archive -o results.parquet --parquet     # Parquet (needs pyarrow), written at the end
  torchrun --nnodes 2 --nproc-per-node 4 --no-python emovox predict /archive -o shards/results.jsonl \\
      --devices 4 --num-nodes 2                             # Lightning DDP: one shard file per rank

recordings of one source (a corpus, an archive of calls, one person's notes; opt-in, off by default):
  emovox predict calls/ --adapt                   # shift onto the training statistics (see docs/adapt.md)
  emovox predict calls/ --adapt -o results.jsonl  # the shift is kept in results.jsonl.adapt.safetensors

A file that cannot be read gets an error record (and a line on stderr); the others still get results.
A re-run with the same -o skips the files it already holds, also after a crash or kill -9.
Threads: one per process by default (clips are small: parallelise across files with --jobs).
Exit status: 0 all files predicted, 1 some failed, 2 nothing could be predicted (or bad options).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "predict", help="predict the emotion of audio files, folders, globs and manifests",
        description="Predict the emotion of each recording with the bundled model (or --model).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("paths", nargs="*", metavar="PATH", help="audio files, directories (recursive) or glob patterns")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true",
                     help="JSON output: one list, printed or written to -o FILE when all are done")
    fmt.add_argument("--csv", action="store_true", help="CSV output (one row per file)")
    fmt.add_argument("--parquet", action="store_true", help="Parquet output (with -o; needs pyarrow)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write one record per file to FILE as they come, resumable: JSON Lines, or --csv, "
                        "--parquet (with --json: the JSON list instead, when all are done)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="clips per batch (default 16)")
    p.add_argument("--vad", choices=("silero", "sohn", "none"), default="silero",
                   help="VAD for the speech fraction and the no_speech abstention (default silero; none: every clip gets an emotion)")
    p.add_argument("--adapt", action="store_true",
                   help="the inputs come from one source with mixed emotions: estimate its statistics from "
                        "the speech clips among 200 sampled inputs and shift every clip 0.75 of the way "
                        "onto the training statistics (default model; opt-in, see docs/adapt.md)")
    add_archive_args(p)
    p.add_argument("--devices", type=positive_int, metavar="N",
                   help="cluster route: Lightning DDP with N processes per node, one shard file per rank (with -o)")
    p.add_argument("--num-nodes", type=positive_int, default=1, metavar="M",
                   help="cluster route: nodes (torchrun/SLURM set the ranks; default 1)")
    add_model_args(p, threads_default=1,
                   threads_help="default 1: clip-level prediction is fastest with one thread per process")
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------------- output
def table(records: Sequence[dict[str, Any]], labels: Sequence[str]) -> str:
    ok = [r for r in records if r.get("error") is None]
    if not ok:
        return ""
    ok = [{**r, "source": one_line(r["source"])} for r in ok]  # not UTF-8: \udcXX; a line break: \n; aligned
    width = max(len("file"), *(len(r["source"]) for r in ok))
    short = [lab[:8] for lab in labels]  # "surprise" whole; a column is 9 wide
    lines = [f"{'file':<{width}}  {'emotion':<9}{'secs':>7}{'speech':>7}" + "".join(f"{s:>9}" for s in short)]
    for r in ok:
        speech = "-" if r.get("speech_fraction") is None else f"{100 * r['speech_fraction']:.0f}%"
        if r.get("no_speech"):
            lines.append(f"{r['source']:<{width}}  {'no_speech':<9}{r['duration']:>7.1f}{speech:>7}")
            continue
        label = r["label"] + ("?" if r.get("uncertain") else "")
        lines.append(f"{r['source']:<{width}}  {label:<9}{r['duration']:>7.1f}{speech:>7}"
                     + "".join(f"{r['probabilities'][k]:>9.3f}" for k in labels))
    return "\n".join(lines) + "\n"


def as_csv(records: Sequence[dict[str, Any]], labels: Sequence[str], fields: Sequence[str]) -> str:
    """The rows an archive's CSV output holds (:func:`emovox.archive_output.csv_line`), all at once."""
    from emovox.archive_output import columns, csv_line, flat_row

    header = columns(labels, fields)
    return csv_line(header) + "".join(csv_line(list(flat_row(r, header).values())) for r in records)


def as_json(records: Sequence[dict[str, Any]]) -> str:
    return json_text(list(records), indent=2) + "\n"


# ------------------------------------------------------------------------------------- run
def run(args: argparse.Namespace) -> int:
    from emovox.cli import EXIT_BAD_INPUT

    if not args.paths and not args.manifest:
        print("emovox predict: error: give audio files, folders, globs or --manifest FILE", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.output and os.path.isdir(args.output):  # before any work (the JSON list is written at the end)
        print(f"emovox predict: error: -o {args.output} is a folder; give a file name, e.g. "
              f"{os.path.join(args.output, 'results.jsonl')}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if (args.parquet or args.devices) and (not args.output or args.json):
        print("emovox predict: error: --parquet and --devices need -o FILE (and no --json)", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.adapt and args.devices:
        print("emovox predict: error: --adapt does not combine with --devices; run --adapt -o FILE on one machine "
              "first (it writes FILE.adapt.safetensors), or predict without --adapt", file=sys.stderr)
        return EXIT_BAD_INPUT
    total = count_inputs("predict", args.paths, args.manifest)  # a first pass: counts, keeps no list
    if total is None:
        return EXIT_BAD_INPUT
    archive = bool(args.output and not args.json)
    args.adapt_file = None
    with contextlib.ExitStack() as stack:
        if args.adapt:  # an archive keeps its shift beside the output; a printed run, in a temporary folder
            path = f"{args.output}.adapt.safetensors" if archive else os.path.join(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="emovox-adapt-")), "shift.safetensors")
            args.adapt_file = prepare_shift(args, path, total, keep=archive)
            if args.adapt_file is None:
                return EXIT_BAD_INPUT
        if archive:
            return _run_archive(args, total)
        return _run_print(args, total)


def _spec(args: argparse.Namespace, adapt: bool = True) -> Any:
    from emovox.archive import ModelSpec

    labels = tuple(s.strip() for s in args.labels.split(",") if s.strip()) if args.labels else None
    return ModelSpec(model=args.model, backend=args.backend, labels=labels, vad=args.vad,
                     batch_size=args.batch_size, threads=args.threads or 1,
                     adapt=getattr(args, "adapt_file", None) if adapt else None)


def prepare_shift(args: argparse.Namespace, path: str, total: int, keep: bool) -> str | None:
    """--adapt: the shift file at ``path`` (``keep``: an archive run's, reused when it exists so that a
    resumed run shifts as the first did), else estimated now from a sample of the inputs; None after a message."""
    from emovox.archive import Problem, iter_inputs, unique
    from emovox.errors import EmovoxError
    from emovox.source_adapt import SAMPLE, SourceShift, estimate_shift, sample_paths

    try:
        if keep and os.path.exists(path):
            shift = SourceShift.load(path)
            print(f"emovox predict: --adapt: using the shift in {path} ({shift.clips} speech clips; delete it to "
                  "estimate again)", file=sys.stderr)
            return path
        paths = sample_paths((i for i in unique(iter_inputs(args.paths, args.manifest))
                              if not isinstance(i, Problem)), SAMPLE)
        shift = estimate_shift(_spec(args, adapt=False).load(), paths)
        shift.save(path)
    except EmovoxError as exc:
        print(f"emovox predict: error: {exc}", file=sys.stderr)
        return None
    print(f"emovox predict: --adapt: {shift.clips} speech clips (of {len(paths)} sampled from {total} inputs) "
          "shifted onto the training statistics" + (f"; shift saved in {path}" if keep else ""), file=sys.stderr)
    return path


#: A printed run (no -o) of this many inputs or more is told about -o, which writes as it goes.
LONG_PRINTED_RUN = 500


def _run_print(args: argparse.Namespace, total: int) -> int:
    from emovox.archive import Engine, Progress, iter_inputs, unique

    show = args.progress if args.progress is not None else (total > 1 and sys.stderr.isatty())
    report = reporter("predict")
    records: list[dict[str, Any]] = []
    if total >= LONG_PRINTED_RUN:
        print(f"emovox predict: {total} inputs; the results are shown when all are done. For a run this long, "
              "-o results.jsonl (or --csv -o results.csv) writes each as it comes and resumes after an "
              "interruption", file=sys.stderr)
    stopped: KeyboardInterrupt | None = None
    with Engine(_spec(args), jobs=args.jobs) as engine:
        bar = Progress(total, bar=True) if show else None
        try:
            for record in engine.run(unique(iter_inputs(args.paths, args.manifest))):
                records.append(record)
                if record.get("error") is not None:
                    report(record)
                if bar is not None:
                    bar.update()
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM: what is done is still shown (not written to -o)
            stopped = exc
        if bar is not None:
            bar.close(stopped is None)
        info = engine.info
    if stopped is not None:
        if args.output or not records:
            raise stopped
        print(f"emovox predict: stopped after {len(records)} of {total} inputs; their results follow",
              file=sys.stderr)
    stamp = {"model": info["model"], "model_version": info["model_version"]}
    records = [{**r, **stamp} for r in records]
    text = as_json(records) if args.json else as_csv(records, info["labels"], info["fields"]) if args.csv else \
        table(records, info["labels"])
    if args.output:
        from emovox.io import atomic_write_text

        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    if stopped is not None:
        raise stopped
    n_ok = sum(r.get("error") is None for r in records)
    return exit_status("predict", n_ok, len(records) - n_ok)


def _run_archive(args: argparse.Namespace, total: int) -> int:
    from emovox.archive import PredictTask

    fmt = "csv" if args.csv else "parquet" if args.parquet else None
    if not args.devices:
        return run_archive_cli("predict", args, PredictTask(_spec(args)), args.output, total, fmt)
    from emovox.archive_cluster import predict_cluster

    summary = predict_cluster(args.paths, args.manifest, args.output, _spec(args), devices=args.devices,
                              num_nodes=args.num_nodes, fmt=fmt, on_error=reporter("predict"))
    return finish("predict", args.output, summary)
