"""Recordings longer than one utterance: pooled whole, or the mean of their timeline windows?

    .venv/bin/python benchmarks/long_recordings.py [--draws 3] [--out runs/long_recordings]

Speakers: the bundled default model's validation speakers (its config card ``valid_speakers``:
never trained on, used to choose its epoch and temperature), so choosing how ``predict`` scores
long recordings here is a model choice made on validation speakers. Recordings:

* *one emotion*: 1, 2, 3, 4 or 6 clips of one speaker and one emotion (a seeded draw, ``--draws``
  per group and length) joined by 0.5 s pauses of low noise (-50 dBFS);
* *mixed*: 8 clips of one speaker, two of each of 4 emotions, in a random order.

Scores, per recording: **whole** = the default graph on the whole recording (what ``predict``
did before :mod:`emovox.long_inputs`; recordings here are at most 30 s, one graph piece) and
**windows** = the mean probabilities of the timeline's classified windows (2 s every 1 s, speech
windows only; ``emovox.long_inputs.window_mean``). Reported: accuracy and UA (mean recall over the
emotions) by number of clips and corpus, accuracy by length, the UA of ``predict`` for each
candidate threshold (recordings longer than it by windows), the share of confident wrong answers
(top probability >= the model's ``uncertain_below``, wrong label), and for mixed recordings the
share given a confident label. ``--report`` summarises a finished run's ``rows.json`` again.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from validation_speakers import REPO, default_model_and_clips, report_again  # noqa: E402  (benchmarks/)

SR = 16000
LENGTHS = (1, 2, 3, 4, 6)
THRESHOLDS = (3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0)
#: Crop lengths (s) up to which the speech-crop rule scores the crop whole.
CROP_T = (4.0, 5.0, 6.0, 7.0, 8.0)


def recordings(utts, draws: int, rng: np.random.Generator):
    """(kind, speaker, labels, paths) of every recording, in a fixed order."""
    groups: dict[tuple[str, str], list] = {}
    for u in utts:
        groups.setdefault((u.speaker, u.label), []).append(u.path)
    for (spk, label), paths in sorted(groups.items()):
        if len(paths) < 4:
            continue
        for n in LENGTHS:
            for _ in range(draws if n <= len(paths) else 0):
                yield "single", spk, [label] * n, list(rng.choice(sorted(paths), n, replace=False))
    by_spk: dict[str, dict[str, list]] = {}
    for (spk, label), paths in groups.items():
        by_spk.setdefault(spk, {})[label] = sorted(paths)
    for spk, labels in sorted(by_spk.items()):
        usable = sorted(k for k, v in labels.items() if len(v) >= 2)
        for _ in range(draws if len(usable) >= 4 else 0):
            chosen = list(rng.choice(usable, 4, replace=False))
            pairs = [(k, p) for k in chosen for p in rng.choice(labels[k], 2, replace=False)]
            order = rng.permutation(len(pairs))
            yield "mixed", spk, [pairs[i][0] for i in order], [pairs[i][1] for i in order]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--crops", nargs="*", default=["0.5", "1.0", "1.5", "2.0"],
                    help="margins (s) of the speech crops also scored whole (emovox.long_inputs.speech_crop)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "runs" / "long_recordings"))
    ap.add_argument("--report", action="store_true", help="only summarise OUT/rows.json again")
    args = ap.parse_args(argv)
    if args.report:
        return report_again(args.out, summarise)
    from emovox.audio import load_audio
    from emovox.long_inputs import speech_crop, window_mean

    rec, utts = default_model_and_clips()
    labels = rec.model_labels
    corpus = {u.speaker: u.corpus for u in utts}
    rng = np.random.default_rng(args.seed)
    cache: dict[str, np.ndarray] = {}
    rows, start = [], time.process_time()
    for kind, spk, truth, paths in recordings(utts, args.draws, rng):
        parts = []
        for p in paths:
            if p not in cache:
                cache[p] = load_audio(p)
            parts += [cache[p], (0.003 * rng.standard_normal(SR // 2)).astype(np.float32)]
        x = np.concatenate(parts)
        windows, tl = window_mean(rec, x, SR)
        crops = {}
        for c in args.crops:
            span = speech_crop(tl.speech, tl.duration, float(c))
            if span is not None:
                crop = x[int(span[0] * SR):int(span[1] * SR)]
                crops[c] = {"seconds": crop.size / SR, "probs": np.asarray(rec.engine(crop), float).tolist()}
        wins = [[w.speech_fraction, *(w.probabilities[k] for k in labels)] for w in tl.windows if w.label]
        rows.append({"kind": kind, "speaker": spk, "corpus": corpus[spk], "labels": truth, "n": len(paths),
                     "seconds": x.size / SR, "whole": np.asarray(rec.engine(x), float).tolist(),
                     "windows": None if windows is None else windows.tolist(), "crops": crops, "wins": wins})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.json").write_text(json.dumps(rows))
    report = summarise(rows, labels, float(rec.package.uncertain_below or 0.5))
    report.append(f"\n{len(rows)} recordings; CPU {time.process_time() - start:.0f} s; options: {vars(args)}")
    (out / "report.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    return 0


def summarise(rows: list[dict], labels: list[str], confident: float) -> list[str]:
    def right(r: dict, key) -> bool:
        """Whether ``r``'s probabilities under ``key`` (a field name, or row -> probabilities) are right."""
        p = key(r) if callable(key) else r[key]
        return p is not None and labels[int(np.argmax(p))] == r["labels"][0]

    def ua(rs: list[dict], key) -> float:
        classes = sorted({r["labels"][0] for r in rs})
        return 100 * float(np.mean([np.mean([right(r, key) for r in rs if r["labels"][0] == c]) for c in classes]))

    single = [r for r in rows if r["kind"] == "single" and r["windows"] is not None]
    lines = ["| clips | corpus | recordings | mean length (s) | whole: acc / UA | windows: acc / UA "
             "| confident and wrong: whole / windows |", "|---|---|---|---|---|---|---|"]
    for n in LENGTHS:
        for c in ("all", *sorted({r["corpus"] for r in single})):
            rs = [r for r in single if r["n"] == n and c in ("all", r["corpus"])]
            if rs:
                acc = [100 * np.mean([right(r, k) for r in rs]) for k in ("whole", "windows")]
                bad = [100 * np.mean([max(r[k]) >= confident and not right(r, k) for r in rs]) for k in ("whole", "windows")]
                lines.append(f"| {n} | {c} | {len(rs)} | {np.mean([r['seconds'] for r in rs]):.1f} | "
                             f"{acc[0]:.1f} / {ua(rs, 'whole'):.1f} | {acc[1]:.1f} / {ua(rs, 'windows'):.1f} | "
                             f"{bad[0]:.1f} / {bad[1]:.1f} |")
    lines += ["", "| threshold (s) | predict UA, all one-emotion recordings |", "|---|---|"]
    for t in (*THRESHOLDS, float("inf")):
        lines.append(f"| {'never' if t == float('inf') else f'{t:g}'} | "
                     f"{ua(single, lambda r, t=t: r['windows'] if r['seconds'] > t else r['whole']):.1f} |")
    margins = sorted({c for r in single for c in r.get("crops", {})}, key=float)
    if margins:
        lines += ["", "Speech-crop rule: over 6 s, the speech crop whole when it is at most T s long, else "
                      "windows (predict UA, all one-emotion recordings):", "",
                  "| margin | " + " | ".join(f"T = {t:g}" for t in CROP_T) + " |", "|---|" + "---|" * len(CROP_T)]
        for c in margins:
            def rule(r: dict, t: float, c: str = c) -> list[float] | None:
                crop = r["crops"].get(c)
                return r["whole"] if r["seconds"] <= 6.0 else crop["probs"] if crop and crop["seconds"] <= t else r["windows"]

            lines.append(f"| {c} | " + " | ".join(f"{ua(single, lambda r, t=t: rule(r, t)):.1f}" for t in CROP_T) + " |")
    mixed = [r for r in rows if r["kind"] == "mixed" and r["windows"] is not None]
    if mixed:
        share = [100 * np.mean([max(r[k]) >= confident for r in mixed]) for k in ("whole", "windows")]
        lines += ["", f"Mixed recordings (8 clips, 4 emotions; {len(mixed)}): a confident label (top >= "
                      f"{confident:g}) pooled whole {share[0]:.1f} %, by windows {share[1]:.1f} %"]
    return lines


if __name__ == "__main__":
    sys.exit(main())
