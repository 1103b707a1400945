"""Does the answer depend on how loud the recording is? UA of models at several input gains.

    .venv/bin/python benchmarks/input_level.py --model default [--model runs/generalist/package-v3] \
        [--gains -30 -20 -10 0 6] [--out runs/input_level]

Clips: every clip of the first model's validation speakers (its config card ``valid_speakers``:
never trained on) with a label the model knows, from ../shared/corpora. Each clip is scaled by each
gain (dB; samples clipped to [-1, 1], as a recorder would) and scored by the model alone
(``Recognizer.engine``: no VAD, so every clip is scored). Reported per model and gain: UA (mean
recall over labels), accuracy, and the most predicted label with its share (a level-driven
collapse onto one class shows there). Rows are written to ``OUT/rows.json`` after each model.

``--vad`` also reports, per gain, what the abstention of ``emovox predict`` makes of the same clips
(``emovox.speech.speech_summary``, the clip VAD): the share called ``no_speech`` and the mean
speech fraction. Every clip is speech, so every ``no_speech`` there is a miss. Compare two commits by
running it under each one's ``PYTHONPATH=src`` (``OUT/vad.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpora"
sys.path.insert(0, str(REPO / "recipes" / "generalist"))


def score(rec, waves: list[np.ndarray], truth: list[str], gain_db: float) -> dict:
    g = np.float32(10 ** (gain_db / 20))
    labels = rec.model_labels
    pred = [labels[int(np.argmax(rec.engine(np.clip(w * g, -1.0, 1.0))))] for w in waves]
    recalls = [np.mean([p == t for p, t in zip(pred, truth) if t == k]) for k in sorted(set(truth))]
    top, count = Counter(pred).most_common(1)[0]
    return {"gain_db": gain_db, "ua": float(np.mean(recalls)), "acc": float(np.mean([p == t for p, t in zip(pred, truth)])),
            "most_predicted": top, "share": count / len(pred)}


def vad_rows(waves: list[np.ndarray], gains: list[float]) -> list[dict]:
    from emovox.speech import speech_summary

    rows = []
    for gain_db in gains:
        g = np.float32(10 ** (gain_db / 20))
        summaries = [speech_summary(np.clip(w * g, -1.0, 1.0)) for w in waves]
        rows.append({"gain_db": gain_db, "no_speech": float(np.mean([s.no_speech for s in summaries])),
                     "speech_fraction": float(np.mean([s.fraction for s in summaries]))})
        print(f"VAD {gain_db:+5.0f} dB  no_speech {100 * rows[-1]['no_speech']:5.1f} %  "
              f"speech fraction {rows[-1]['speech_fraction']:.3f}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", default=None, help="bundled name or package folder (repeatable)")
    ap.add_argument("--gains", type=float, nargs="+", default=[-30.0, -20.0, -10.0, 0.0, 6.0])
    ap.add_argument("--out", default=str(REPO / "runs" / "input_level"))
    ap.add_argument("--vad", action="store_true", help="also: the clip VAD's no_speech share at each gain")
    args = ap.parse_args(argv)
    if not SHARED.is_dir():
        sys.exit(f"no corpora under {SHARED}; this benchmark needs ../shared/corpora")
    import torch
    from data import load_utterances

    from emovox import Recognizer
    from emovox.audio import load_audio
    from emovox.audio_model import read_audio_config

    torch.set_num_threads(1)
    models = args.model or ["default"]
    first = Recognizer.load(models[0], vad=None)
    held = set(read_audio_config(first.folder).card["valid_speakers"])
    utts = [u for u in load_utterances(str(SHARED)) if u.speaker in held and u.label in first.model_labels]
    waves, truth = [load_audio(u.path) for u in utts], [u.label for u in utts]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.vad:
        rows_vad = vad_rows(waves, args.gains)
        (out / "vad.json").write_text(json.dumps({"clips": len(waves), "rows": rows_vad}, indent=1))
    rows = []
    for name in models:
        rec = first if name == models[0] else Recognizer.load(name, vad=None)
        cfg = read_audio_config(rec.folder)
        version = f"{cfg.name} {cfg.version} (input_loudness {cfg.input_loudness})"
        start = time.process_time()
        for gain in args.gains:
            row = {"model": name, "version": version, **score(rec, waves, truth, gain)}
            rows.append(row)
            print(f"{name:30s} {gain:+5.0f} dB  UA {100 * row['ua']:5.1f}  acc {100 * row['acc']:5.1f}  "
                  f"most predicted {row['most_predicted']} ({100 * row['share']:.0f} %)", flush=True)
        print(f"{name}: {len(waves)} clips x {len(args.gains)} gains, CPU {time.process_time() - start:.0f} s", flush=True)
        (out / "rows.json").write_text(json.dumps({"clips": len(waves), "speakers": sorted(held), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
