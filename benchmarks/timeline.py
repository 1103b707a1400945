"""A 1-hour recording through ``emovox timeline``: wall time, real-time factor, peak memory.

    .venv/bin/python benchmarks/timeline.py [--model FOLDER] [--minutes 60] [--vad sohn]

The recording is made by concatenating corpus clips (RAVDESS, TESS, EmoDB from ../shared, in a
fixed interleaved order, 0.5 s of silence between clips) into ``tmp/benchmark_hour.flac`` (the
repo's git-ignored tmp/ folder), written block by block. The timeline then runs as a separate
process (``emovox timeline ... --threads 1``) so its peak RSS is its own
(``getrusage(RUSAGE_CHILDREN)``). Goal: peak RSS < 1 GB.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpora"
SR = 16000


def make_recording(path: Path, minutes: float) -> float:
    """Concatenate corpus clips into ``path`` until it is ``minutes`` long; returns seconds."""
    import soundfile as sf

    pools = [sorted((SHARED / c).rglob("*.flac")) for c in ("ravdess", "tess", "emodb")]
    if not any(pools):
        sys.exit(f"no corpora under {SHARED}; this benchmark needs ../shared/corpora")
    order = [p for group in zip(*[pool[: min(map(len, pools))] for pool in pools]) for p in group]
    target = int(minutes * 60 * SR)
    gap = np.zeros(SR // 2, np.float32)
    written = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16", format="FLAC") as out:
        i = 0
        while written < target:
            x, sr = sf.read(order[i % len(order)], dtype="float32")
            assert sr == SR, f"{order[i % len(order)]} is {sr} Hz"
            x = np.concatenate([x if x.ndim == 1 else x.mean(axis=1), gap])[: target - written]
            out.write(x)
            written += x.size
            i += 1
    return written / SR


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (default: the bundled model)")
    p.add_argument("--minutes", type=float, default=60.0)
    p.add_argument("--vad", default="sohn", choices=("sohn", "silero", "none"))
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"))
    p.add_argument("--scoring", default="auto", choices=("auto", "window"),
                   help="auto: one encoding, windows pooled from frames (onnx backend, default model)")
    args = p.parse_args(argv)
    rec = REPO / "tmp" / f"benchmark_{args.minutes:g}min.flac"
    if not rec.is_file():
        start = time.perf_counter()
        seconds = make_recording(rec, args.minutes)
        print(f"wrote {rec} ({seconds / 60:.1f} min) in {time.perf_counter() - start:.1f} s")
    out = REPO / "tmp" / "benchmark_timeline"
    cmd = [sys.executable, "-c", "import sys; from emovox.cli import main; sys.exit(main())", "timeline", str(rec), "-o", str(out), "--threads", "1",
           "--vad", args.vad, "--backend", args.backend, "--scoring", args.scoring]
    if args.model:
        cmd += ["--model", args.model]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_mb = usage.ru_maxrss / 1024  # Linux: KiB
    cpu = usage.ru_utime + usage.ru_stime
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr, sep="\n")
        return proc.returncode
    data = json.loads((out / f"{rec.stem}.json").read_text())
    duration = data["duration"]
    classified = sum(1 for w in data["windows"] if w["label"])
    print(f"recording {duration / 60:.1f} min; {len(data['windows'])} windows ({classified} classified), "
          f"{len(data['regions'])} regions, speech {100 * data['speech_fraction']:.0f}% (VAD {args.vad})")
    print(f"wall {wall:.1f} s (incl. start-up and writing CSV/JSON/PNG), RTF {wall / duration:.4f}; "
          f"CPU {cpu:.1f} s, RTF by CPU time {cpu / duration:.4f}; "
          f"peak RSS {peak_mb:.0f} MB (goal < 1024 MB: {'met' if peak_mb < 1024 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
