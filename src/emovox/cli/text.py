"""``emovox text-train`` (text emotion model through the folds) and ``emovox transcribe`` (offline ASR)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from emovox.cli._options import show_progress
from emovox.io import run_folder_lock

TRAIN_EPILOG = """examples:
  emovox text-train recipes/meld/text.yaml -o runs/meld-text
  emovox text-train recipes/padi2022/fusion_exp3_loso.yaml -o runs/exp3-text --override text.epochs=2

The recipe is a speech recipe (data: corpus, labels, protocol) plus a 'text' section (encoder,
max_length, lr, batch_size, epochs, early_stopping, monitor) and optionally 'asr' (source: corpus |
asr | asr_if_missing). Each fold writes scores.json (validation and test log posteriors, the input
of 'emovox fuse'), model/ and result.json; finished folds are skipped on a re-run.
The default encoder is the bundled all-MiniLM-L6-v2; 'text.encoder' may name any local Hugging
Face model folder. Nothing is downloaded.
"""

TRANSCRIBE_EPILOG = """examples:
  emovox transcribe clip1.wav clip2.flac
  emovox transcribe --corpus ravdess --root ../shared/corpora/ravdess -o ravdess_asr.csv
  emovox transcribe --manifest data.csv --only-missing -o data_with_text.csv

Whisper tiny.en runs offline on CPU (CTranslate2). Transcripts are cached per audio file
(--cache, default $EMOVOX_CACHE or ~/.cache/emovox). Files without recognisable speech get an
empty transcript and a warning; with -o a manifest with the 'text' column filled is written.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "text-train", help="fine-tune the text emotion classifier through a recipe's folds",
        description="Fine-tune a transformer text classifier ([CLS] -> FC -> softmax, Adam 2e-5, batch 32, "
                    "early stopping on validation; seed 001) on each fold and score validation and test.",
        epilog=TRAIN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("recipe", help="recipe YAML with data and text sections")
    p.add_argument("-o", "--out", required=True, help="output folder (folds, per-fold scores/models, report)")
    p.add_argument("--override", action="extend", nargs="+", default=[], metavar="KEY=VALUE",
                   help="any recipe key, e.g. text.max_length=64 or data.folds=[0] (repeatable)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: the recipe's)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars (shown only on a terminal anyway)")
    p.set_defaults(func=run_train)

    t = subparsers.add_parser(
        "transcribe", help="transcribe audio offline with Whisper tiny.en (cached)",
        description="Offline speech-to-text for the text half of multimodal emotion recognition.",
        epilog=TRANSCRIBE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("files", nargs="*", help="audio files (WAV/FLAC/OGG)")
    t.add_argument("--corpus", help="corpus loader name (with --root), e.g. ravdess")
    t.add_argument("--root", help="corpus folder")
    t.add_argument("--manifest", help="a manifest CSV/JSONL to fill")
    t.add_argument("--only-missing", action="store_true", help="keep existing transcripts; fill empty ones only")
    t.add_argument("-o", "--out", help="write a manifest (.csv/.jsonl) with the text column filled")
    t.add_argument("--beam-size", type=int, default=1, help="decoder beam size (default 1 = greedy)")
    t.add_argument("--cache", help="transcript cache folder")
    t.add_argument("--threads", type=int, default=1, help="CPU threads for Whisper (default 1)")
    t.add_argument("--no-progress", action="store_true", help="hide the progress bar (shown only on a terminal anyway)")
    t.set_defaults(func=run_transcribe)


def run_train(args: argparse.Namespace) -> int:
    from emovox.training.text import load_multimodal_recipe, run_text_experiment

    overrides = list(args.override) + ([f"text.threads={args.threads}"] if args.threads else [])
    mm = load_multimodal_recipe(args.recipe, overrides)
    with run_folder_lock(args.out):
        summary = run_text_experiment(mm, args.out, progress=show_progress(args.no_progress) and mm.text.progress,
                                      overrides=overrides)
    metrics = summary.get("metrics", {})
    parts = [f"{k} {100 * metrics[k]['mean']:.2f}%" for k in ("ua", "wa", "weighted_f1") if k in metrics]
    print(f"text-only {', '.join(parts)}; report in {args.out}/report.md")
    return 0


def _utterances(args: argparse.Namespace) -> list[Any]:
    from emovox.corpora import read_manifest
    from emovox.corpora.manifest import Utterance
    from emovox.corpora.registry import load_corpus
    from emovox.errors import ConfigError

    sources = sum(bool(x) for x in (args.files, args.corpus, args.manifest))
    if sources != 1:
        raise ConfigError("give exactly one of: audio files, --corpus with --root, or --manifest")
    if args.manifest:
        return read_manifest(args.manifest)
    if args.corpus:
        if not args.root:
            raise ConfigError("--corpus needs --root (the corpus folder)")
        return load_corpus(args.corpus, args.root)
    return [Utterance(id=str(f), path=str(f), speaker="unknown", label="") for f in args.files]


def run_transcribe(args: argparse.Namespace) -> int:
    import os

    from emovox.asr import Transcriber, fill_transcripts
    from emovox.corpora import write_manifest
    from emovox.errors import EmovoxError

    utts = _utterances(args)
    transcriber = Transcriber(beam_size=args.beam_size, threads=args.threads, cache_dir=args.cache)
    if args.files and not args.out:
        failed = 0
        for u in utts:
            try:
                tr = transcriber.transcribe(u.path)
            except EmovoxError as exc:  # one bad file does not stop the batch
                print(f"emovox transcribe: error: {exc}", file=sys.stderr)
                failed += 1
                continue
            print(f"{u.path}\t{tr.text if not tr.empty else '(no speech: ' + tr.empty_reason + ')'}")
        return 1 if failed else 0
    if not args.out:
        from emovox.errors import ConfigError

        raise ConfigError("with --corpus or --manifest give -o OUT.csv for the manifest with transcripts")
    filled, n_empty = fill_transcripts(utts, transcriber, overwrite=not args.only_missing,
                                       progress=show_progress(args.no_progress))
    write_manifest(args.out, filled)
    print(f"{len(filled)} utterances, {n_empty} with an empty transcript; manifest written to "
          f"{os.fspath(args.out)}")
    return 0
