"""Inference speed at one CPU thread: the default model (torch, onnxruntime) vs the seed ResNet34.

    .venv/bin/python benchmarks/inference.py [--model FOLDER] [--clips 60] [--repeats 3]

All three run on the same clips in one process, through the same :class:`emovox.Recognizer`
code path (log-mel front-end + segment MVN + network + softmax; no VAD), one clip at a time
(batch 1, the ``emovox predict`` case). Audio is decoded once beforehand, so decoding is not
timed. RTF = processing seconds / audio seconds (lower is faster); each entry is the median of
``--repeats`` passes over all clips after one warm-up pass.

Reference: ResNet34 with 32 base channels on 128 log-mels and statistics pooling (seed 000/001),
randomly initialised (weights do not change its speed). Goal for the default model: RTF <= 0.005
and >= 3x faster than the reference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpora"
GOAL_RTF, GOAL_SPEEDUP = 0.005, 3.0


def clips(n: int) -> list[np.ndarray]:
    """The example clips, then RAVDESS/TESS/EmoDB clips (every k-th file) up to ``n``."""
    from emovox.audio import load_audio

    paths = sorted((REPO / "examples").glob("*.flac"))
    pools = [sorted((SHARED / c).rglob("*.flac")) for c in ("ravdess", "tess", "emodb") if (SHARED / c).is_dir()]
    i = 0
    while len(paths) < n and any(pools):
        pool = pools[i % len(pools)]
        if pool:
            paths.append(pool.pop(len(pool) * 7 // 13))  # a spread of files, deterministic
        i += 1
    return [load_audio(p) for p in paths[:n]]


def reference_model(folder: Path) -> Path:
    import torch

    from emovox.models import build_model, save_model

    torch.manual_seed(0)
    model = build_model("resnet34", 7, n_mels=128, base_channels=32, pooling="stats")
    return save_model(folder, model.eval(), {"frontend": {"name": "logmel", "kwargs": {"n_mels": 128}},
                                             "normalize": "segment", "labels": [f"c{i}" for i in range(7)]})


def rtf(recognizer, waves: list[np.ndarray], repeats: int) -> float:
    audio = sum(w.size for w in waves) / 16000
    for w in waves:  # warm-up
        recognizer.predict(w)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for w in waves:
            recognizer.predict(w)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / audio


def main(argv: list[str] | None = None) -> int:
    import torch

    from emovox.inference import Recognizer, model_folder
    from emovox.models import count_parameters, load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (default: the bundled model)")
    p.add_argument("--clips", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--reference-clips", type=int, default=None,
                   help="time the slow reference on the first N clips only (default: all)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    waves = clips(args.clips)
    audio = sum(w.size for w in waves) / 16000
    folder = model_folder(args.model)
    print(f"{len(waves)} clips, {audio:.1f} s of audio; 1 thread; torch {torch.__version__}")
    rows = []
    default_params = count_parameters(load_model(folder)[0])
    rows.append(("default model, torch", default_params,
                 rtf(Recognizer.load(folder, vad=None, threads=1), waves, args.repeats)))
    rows.append(("default model, onnxruntime", default_params,
                 rtf(Recognizer.load(folder, backend="onnx", vad=None, threads=1), waves, args.repeats)))
    with tempfile.TemporaryDirectory() as tmp:
        ref = reference_model(Path(tmp) / "resnet34")
        ref_waves = waves[: args.reference_clips] if args.reference_clips else waves
        rows.append(("reference ResNet34 (32 ch, 128 mels), torch", count_parameters(load_model(ref)[0]),
                     rtf(Recognizer.load(ref, vad=None, threads=1), ref_waves, max(1, args.repeats - 1))))
    ref_rtf = rows[-1][2]
    print(f"\n{'model':<46}{'params':>11}{'RTF':>10}{'x faster than ref':>19}")
    for name, params, value in rows:
        print(f"{name:<46}{params:>11,}{value:>10.5f}{ref_rtf / value:>19.1f}")
    best = min(rows[0][2], rows[1][2])
    ok = rows[0][2] <= GOAL_RTF and ref_rtf / rows[0][2] >= GOAL_SPEEDUP
    print(f"\ngoal (default model, torch): RTF <= {GOAL_RTF} and >= {GOAL_SPEEDUP:.0f}x faster than the reference: "
          f"{'met' if ok else 'NOT met'} (torch {rows[0][2]:.5f}, best backend {best:.5f}, "
          f"onnxruntime / torch = {rows[1][2] / rows[0][2]:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
