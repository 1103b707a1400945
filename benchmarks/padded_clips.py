"""One utterance inside a longer recording: does the silence or noise around it change the answer?

    .venv/bin/python benchmarks/padded_clips.py [--crops 0.5 1.0 1.5 2.0] [--out runs/padded_clips]

Voice notes and calls often hold a few seconds of speech inside more of silence or room noise.
``predict`` scores a recording longer than 6 s by the mean of its timeline windows
(:mod:`emovox.long_inputs`), and the windows at the edges of the speech hold mostly silence.
This benchmark measures what that costs and what scoring the *speech crop* whole costs instead:
the recording from its first to its last speech (the timeline's speech regions), widened by a
margin on each side (``--crops``), through the graph as one clip.

Speakers: the bundled default model's validation speakers (its card's ``valid_speakers``), so a
rule chosen here is a model choice made on validation speakers. Each clip (seeded) gets a lead
and a tail of 0.5-8 s (drawn again until the recording is longer than 6.5 s, so that it is
scored by windows), of one background: digital silence, white noise at -60 dBFS, or pink noise
at -45 dBFS (the clip itself stays at its corpus level). Reported per way of scoring: UA and
accuracy against the clip's emotion, the share agreeing with the clip scored alone, the share
confident (top probability >= the model's ``uncertain_below``) and wrong, and ``no_speech``;
then the rule "crop when the crop is at most T s, else windows" for each margin and T.
``--report`` summarises a finished run's ``rows.json`` again.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from validation_speakers import REPO, default_model_and_clips, report_again  # noqa: E402  (benchmarks/)

SR = 16000
BACKGROUNDS = ("silence", "white-60", "pink-45")


def background(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of one background kind."""
    if kind == "silence":
        return np.zeros(n, np.float32)
    white = rng.standard_normal(n)
    if kind == "white-60":
        return (white * 10 ** (-60 / 20)).astype(np.float32)
    spectrum = np.fft.rfft(white) / np.sqrt(np.arange(n // 2 + 1) + 1.0)  # 1/f power
    pink = np.fft.irfft(spectrum, n)
    return (pink / (np.sqrt(np.mean(pink ** 2)) + 1e-12) * 10 ** (-45 / 20)).astype(np.float32)


def padded(clip: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """The clip inside a lead and a tail of one background, longer than 6.5 s in all."""
    while True:
        lead, tail = rng.uniform(0.5, 8.0, 2)
        if clip.size / SR + lead + tail > 6.5:
            break
    kind = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
    a, b = background(kind, int(lead * SR), rng), background(kind, int(tail * SR), rng)
    return np.concatenate([a, clip, b]), {"lead": round(float(lead), 2), "tail": round(float(tail), 2), "background": kind}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--crops", nargs="+", default=["0.25", "0.5", "0.75", "1.0", "1.5"],
                    help="margins (s) of the speech crops scored whole")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=0, help="at most this many clips (0: all)")
    ap.add_argument("--out", default=str(REPO / "runs" / "padded_clips"))
    ap.add_argument("--report", action="store_true", help="only summarise OUT/rows.json again")
    args = ap.parse_args(argv)
    if args.report:
        return report_again(args.out, summarise)
    from emovox.audio import load_audio
    from emovox.long_inputs import speech_crop, speech_summary, window_mean

    rec, utts = default_model_and_clips()
    labels = rec.model_labels
    utts = sorted(utts, key=lambda u: u.path)
    rng = np.random.default_rng(args.seed)
    if args.limit:
        utts = [utts[i] for i in sorted(rng.choice(len(utts), args.limit, replace=False))]
    rows, start = [], time.process_time()
    for u in utts:
        clip = load_audio(u.path)
        x, how = padded(clip, rng)
        row = {"path": u.path, "corpus": u.corpus, "speaker": u.speaker, "label": u.label, **how,
               "seconds": x.size / SR, "alone": _probs(rec.predict(clip, SR), labels)}
        probs, tl = window_mean(rec, x, SR)
        row["windows"] = None if probs is None or speech_summary(rec, tl).no_speech else probs.tolist()
        row["wins"] = [[w.speech_fraction, *(w.probabilities[k] for k in labels)] for w in tl.windows if w.label]
        row["crops"] = {}
        for c in args.crops:
            span = speech_crop(tl.speech, tl.duration, float(c))
            if span is not None and row["windows"] is not None:  # the graph on the crop, whole (<= 30 s)
                crop = x[int(span[0] * SR):int(span[1] * SR)]
                row["crops"][c] = {"seconds": crop.size / SR, "probs": np.asarray(rec.engine(crop), float).tolist()}
        rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.json").write_text(json.dumps(rows))
    report = summarise(rows, labels, float(rec.package.uncertain_below or 0.5))
    report.append(f"\n{len(rows)} clips; CPU {time.process_time() - start:.0f} s; options: {vars(args)}")
    (out / "report.md").write_text("\n".join(report) + "\n")
    print("\n".join(report))
    return 0


def _probs(p, labels: list[str]) -> list[float] | None:
    return None if p.label is None else [p.probabilities[k] for k in labels]


def summarise(rows: list[dict], labels: list[str], confident: float) -> list[str]:
    rows = [r for r in rows if r["windows"] is not None]  # recordings the timeline found speech in
    margins = sorted({c for r in rows for c in r["crops"]}, key=float)
    scored = {"the clip alone": lambda r: r["alone"], "padded, by windows (before)": lambda r: r["windows"]}
    if all("wins" in r for r in rows):
        scored["padded, windows weighted by their speech fraction"] = lambda r: _window_mean(r["wins"], 0.0, True)
        for f in (0.5, 0.7, 0.9):
            scored[f"padded, windows with >= {f:g} speech (all when none)"] = lambda r, f=f: _window_mean(r["wins"], f)
    for c in margins:
        scored[f"padded, speech crop ± {c} s, whole"] = lambda r, c=c: r["crops"][c]["probs"]
    lines = ["| scored | UA | accuracy | agrees with the clip alone | confident and wrong | no_speech "
             "| UA: silence / white -60 / pink -45 |", "|---|---|---|---|---|---|---|"]
    for name, pick in scored.items():
        lines.append(f"| {name} | " + " | ".join(_cells(rows, pick, labels, confident)) + " |")
    lines += ["", "Rule: the speech crop whole when it is at most T s long, else windows (UA):", "",
              "| margin | " + " | ".join(f"T = {t:g}" for t in RULE_T) + " |", "|---|" + "---|" * len(RULE_T)]
    for c in margins:
        cells = [_cells(rows, lambda r, c=c, t=t: r["crops"][c]["probs"] if r["crops"][c]["seconds"] <= t
                        else r["windows"], labels, confident)[0] for t in RULE_T]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return lines


def _window_mean(wins: list[list[float]], least: float, weighted: bool = False) -> list[float]:
    """Mean probabilities of the windows with at least ``least`` speech (all of them when none has),
    weighted by their speech fractions when ``weighted``."""
    w = np.asarray(wins, float)
    keep = w[w[:, 0] >= least] if (w[:, 0] >= least).any() else w
    return np.average(keep[:, 1:], axis=0, weights=keep[:, 0] if weighted else None).tolist()


#: Crop lengths (s) up to which the rule scores the crop whole.
RULE_T = (4.0, 5.0, 6.0, 7.0, 8.0, 10.0)


def _cells(rows: list[dict], pick, labels: list[str], confident: float) -> list[str]:
    """UA, accuracy, agreement with the clip alone, confident and wrong, no_speech, UA by background."""
    def top(p):
        return None if p is None else labels[int(np.argmax(p))]

    def ua(rs: list[dict]) -> float:
        classes = sorted({r["label"] for r in rs})
        return 100 * float(np.mean([np.mean([top(pick(r)) == c for r in rs if r["label"] == c]) for c in classes]))

    acc = 100 * np.mean([top(pick(r)) == r["label"] for r in rows])
    agree = 100 * np.mean([top(pick(r)) == top(r["alone"]) for r in rows])
    bad = 100 * np.mean([pick(r) is not None and max(pick(r)) >= confident and top(pick(r)) != r["label"] for r in rows])
    silent = 100 * np.mean([pick(r) is None for r in rows])
    by_bg = " / ".join(f"{ua([r for r in rows if r['background'] == b]):.1f}" for b in BACKGROUNDS)
    return [f"{ua(rows):.1f}", f"{acc:.1f}", f"{agree:.1f}", f"{bad:.1f}", f"{silent:.1f}", by_bg]


if __name__ == "__main__":
    raise SystemExit(main())
