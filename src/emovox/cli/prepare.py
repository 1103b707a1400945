"""``emovox prepare CORPUS ROOT -o manifest.csv``: scan a corpus into a validated manifest."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from emovox.cli._options import parse_key_values, show_progress

EPILOG = """corpora (ROOT layout):
  iemocap      IEMOCAP_full_release: Session{1..5}/dialog/EmoEvaluation/*.txt, sentences/wav/...
  ravdess      Actor_NN/03-01-EE-II-SS-RR-AA.wav
  tess         <SPK>_<emotion>/<SPK>_<word>_<emotion>.wav
  emodb        wav/SSTTTEv.wav
  nemo         samples/<SPK>_<emotion>_<n>.opus (or .wav/.flac), data.tsv beside samples/
  ased         <NN><Emotion>/<e><k>-<sentence>-<repetition>-<gender>-<speaker>.opus (or .wav/.flac)
  cremad       AudioWAV/1001_DFA_ANG_XX.wav
  meld         {train,dev,test}_sent_emo.csv (text only)
  voxceleb     [wav/]idNNNNN/<video>/<utt>.wav (speaker labels, for pretraining)
  librispeech  <spk>/[<chapter>/]<spk>-<chapter>-<utt>.flac (speaker labels)
  generic      ROOT is your CSV with columns path,label,speaker[,id,group,start,end,text]

examples:
  emovox prepare emodb ../shared/corpora/emodb -o data/emodb.csv
  emovox prepare iemocap /data/IEMOCAP_full_release --labels iemocap_exp3 -o data/iemocap_exp3.csv
  emovox prepare iemocap /data/IEMOCAP_full_release --option sessions=[1,2] -o data/s12.jsonl
  emovox prepare generic my_clips.csv --durations -o data/mine.csv

Labels are written as canonical names (angry, boredom, calm, disgust, excited, fear, frustrated,
happy, neutral, other, sad, surprise). --labels applies a label map (preset name) and drops
utterances whose label it does not cover.
"""

SPEAKER_ROWS = 40


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "prepare", help="scan a corpus folder into a manifest (CSV/JSONL) with a summary",
        description="Scan a corpus in its official layout, validate every row (files exist, unique ids, "
                    "speakers present) and write a manifest; print counts per label and per speaker.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("corpus", help="corpus name: iemocap, ravdess, tess, emodb, nemo, ased, cremad, meld, voxceleb, "
                                  "librispeech, generic")
    p.add_argument("root", help="corpus folder (for 'generic': your CSV file)")
    p.add_argument("-o", "--output", required=True, help="manifest to write: .csv or .jsonl")
    p.add_argument("--labels", help="label map preset, e.g. iemocap_exp1, iemocap_exp3, four_class_calm, emodb7")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="loader option, e.g. sessions=[1,2] or keep_unagreed=true (repeatable)")
    p.add_argument("--durations", action="store_true", help="fill the duration column from audio headers")
    p.add_argument("--relative", action="store_true",
                   help="write audio paths relative to the manifest's folder (default: absolute)")
    p.add_argument("--no-check-files", action="store_true", help="do not check that every audio file exists")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar (shown only on a terminal anyway)")
    p.set_defaults(func=run)


def summary_table(utterances: list[Any]) -> str:
    """Counts per label and per speaker as plain-text tables."""
    from emovox.corpora import label_counts, speaker_counts

    n = len(utterances)
    lines = [f"{n} utterances, {len(speaker_counts(utterances))} speakers", "", f"{'label':<14}{'count':>8}{'%':>8}"]
    for label, c in sorted(label_counts(utterances).items()):
        lines.append(f"{label or '(none)':<14}{c:>8}{100 * c / n:>8.1f}")
    spk = speaker_counts(utterances)
    lines += ["", f"{'speaker':<14}{'count':>8}"]
    items = sorted(spk.items())
    for s, c in items[:SPEAKER_ROWS]:
        lines.append(f"{s:<14}{c:>8}")
    if len(items) > SPEAKER_ROWS:
        vals = sorted(spk.values())
        lines.append(f"... {len(items) - SPEAKER_ROWS} more speakers (per speaker: min {vals[0]}, "
                     f"median {vals[len(vals) // 2]}, max {vals[-1]})")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from emovox.corpora import apply_labels, fill_durations, iter_corpus, validate, write_manifest
    from emovox.corpora.registry import ALIASES, SPEAKER_ONLY
    from emovox.errors import ManifestError

    key = ALIASES.get(args.corpus.lower(), args.corpus.lower())
    loader_options = parse_key_values(args.option, "--option")
    utts = list(tqdm(iter_corpus(args.corpus, args.root, **loader_options), desc=f"scan {args.corpus}",
                     unit=" utt", disable=not show_progress(args.no_progress), file=sys.stderr))
    if not utts:
        raise ManifestError(f"{args.corpus}: no utterances found under {args.root} (see `emovox prepare --help`)")
    validate(utts, f"{args.corpus} corpus at {args.root}", check_files=not args.no_check_files,
             require_label=key not in SPEAKER_ONLY)
    utts = apply_labels(utts, args.labels)
    if not utts:
        raise ManifestError(f"label map {args.labels!r} left no utterances")
    if args.durations:
        chunks = [utts[i:i + 256] for i in range(0, len(utts), 256)]
        utts = [u for chunk in tqdm(chunks, desc="durations", unit=" batch", disable=not show_progress(args.no_progress),
                                    file=sys.stderr) for u in fill_durations(chunk)]
    path = write_manifest(args.output, utts, relative=args.relative)
    print(summary_table(utts))
    print(f"\nwrote {path}")
    return 0
