"""CPU time per audio second at 1 thread: the default model against the previous default, same run.

    python benchmarks/default_speed.py [--clips 30] [--out benchmarks/results/default_speed.json]
                                       [--baseline OLD_PACKAGE] [--rounds 3]

Clips (examples + corpus files) are decoded once; every row predicts the same arrays one at a time
through :class:`emovox.Recognizer` (``predict`` as the CLI calls it), after one warm-up pass.
Rows: the default model (onnxruntime int8) with and without its Silero speech check, and the
previous default (``fast``: ResNet18 log-mel CNN) with torch and onnxruntime, no VAD.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

import numpy as np

from emovox.audio import load_audio
from emovox.inference import Recognizer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpora"


def clips(n: int) -> list[np.ndarray]:
    files = sorted(glob.glob(str(REPO / "examples" / "*.flac")))
    for g in ("emodb/wav/*.flac", "ravdess/*/*.flac", "nemo/samples/*.opus", "ased/*/*.opus", "tess/*/*.flac"):
        found = sorted(glob.glob(str(SHARED / g)))
        files += found[:: max(1, len(found) // 6)][:6]
    return [load_audio(f) for f in files[:n]]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=30)
    ap.add_argument("--out", default=None)
    ap.add_argument("--baseline", default=None, help="another audio-model package (e.g. an older default's folder): one more "
                    "row, onnxruntime int8, no VAD")
    ap.add_argument("--rounds", type=int, default=1, help="time every row this many times, alternating; report the median")
    args = ap.parse_args(argv)
    waves = clips(args.clips)
    seconds = sum(w.size for w in waves) / 16000
    rows = {"default, onnxruntime int8 + Silero speech check": ("default", "auto", "silero"),
            "default, onnxruntime int8, no VAD": ("default", "auto", None),
            "fast (previous default), torch, no VAD": ("fast", "torch", None),
            "fast (previous default), onnxruntime, no VAD": ("fast", "onnx", None)}
    if args.baseline:
        rows[f"baseline {args.baseline}, onnxruntime int8, no VAD"] = (args.baseline, "onnx", None)
    result: dict = {"clips": len(waves), "audio_seconds": round(seconds, 1), "rounds": args.rounds, "rows": {}}
    loaded = {}
    for name, (model, backend, vad) in rows.items():
        loaded[name] = Recognizer.load(model, backend=backend, vad=vad, threads=1)
        for w in waves[:3]:
            loaded[name].predict(w, sample_rate=16000)
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.rounds):
        for name, r in loaded.items():
            t = time.process_time()
            for w in waves:
                r.predict(w, sample_rate=16000)
            times[name].append((time.process_time() - t) / seconds)
    for name, values in times.items():
        result["rows"][name] = round(float(np.median(values)), 5)
        print(f"| {name} | {result['rows'][name]:.4f} |", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
