"""Speed of each frozen upstream at 1 thread: seconds of compute per second of audio.

    .venv/bin/python benchmarks/upstreams.py [--seconds 2 10] [--repeats 5] [--threads 1]

Input is real speech (the example clips, concatenated and cut to each length). Model loading
and the first call (JIT / warm-up) are excluded. Prints one row per extractor and length.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CONFIGS = [
    ("egemaps", {}),
    ("compare", {}),
    ("ge2e", {}),
    ("whisper", {"pad_to_30s": False}),
    ("whisper", {"pad_seconds": 10.0}),
    ("whisper", {"pad_to_30s": True}),
]


def speech(seconds: float) -> np.ndarray:
    from emovox.audio import SAMPLE_RATE, load_audio

    clips = [load_audio(p) for p in sorted((REPO / "examples").glob("*.flac"))]
    x = np.concatenate(clips)
    n = int(seconds * SAMPLE_RATE)
    return np.tile(x, n // len(x) + 1)[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, nargs="+", default=[2.0, 10.0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    import torch
    from threadpoolctl import threadpool_limits

    from emovox.upstreams import build_upstream

    torch.set_num_threads(args.threads)
    print(f"threads={args.threads}  repeats={args.repeats}  (seconds of compute per second of audio; lower is faster)")
    print(f"{'upstream':<22}{'clip s':>8}{'s/audio s':>12}{'x realtime':>12}{'output':>16}")
    with threadpool_limits(args.threads):
        for name, opts in CONFIGS:
            if name == "whisper":
                opts = {**opts, "threads": args.threads}
            up = build_upstream(name, **opts)
            label = name + ("-pad30" if opts.get("pad_to_30s") else "") + \
                (f"-pad{opts['pad_seconds']:g}" if opts.get("pad_seconds") else "")
            for seconds in args.seconds:
                x = speech(seconds)
                arrays = up.extract(x)  # warm-up
                times = []
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    up.extract(x)
                    times.append(time.perf_counter() - t)
                rtf = float(np.median(times)) / seconds
                shape = "x".join(map(str, next(iter(arrays.values())).shape))
                print(f"{label:<22}{seconds:>8.1f}{rtf:>12.4f}{1 / rtf:>12.1f}{shape:>16}")


if __name__ == "__main__":
    main()
