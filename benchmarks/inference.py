"""Inference speed at one CPU thread: the default model (torch, onnxruntime) vs the seed ResNet34.

    .venv/bin/python benchmarks/inference.py [--model FOLDER] [--clips 60] [--repeats 3]

All three run on the same clips in one process, through the same :class:`emovox.Recognizer`
code path (log-mel front-end + segment MVN + network + softmax; no VAD), one clip at a time
(batch 1, the ``emovox predict`` case). Audio is decoded once beforehand, so decoding is not
timed. One extra row adds the Sohn VAD that ``emovox predict`` runs for its speech-fraction
column (it does not change the prediction); ``--also`` adds rows for other models (torch backend). RTF = processing seconds / audio seconds (lower is faster); each entry is the median of
``--repeats`` passes over all clips after one warm-up pass.

Reference: ResNet34 with 32 base channels on 128 log-mels and statistics pooling (seed 000/001),
randomly initialised (weights do not change its speed). Goal for the default model: RTF <= 0.005
and >= 3x faster than the reference.

Two RTFs are printed: wall clock, and process CPU time. With one thread they agree on an idle
machine; on a shared, oversubscribed machine the wall clock also counts time spent waiting for
a core, and the CPU-time RTF is the better estimate of the compute the model needs.
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


def rtf(recognizer, waves: list[np.ndarray], repeats: int) -> tuple[float, float]:
    """(wall-clock RTF, CPU-time RTF), medians over ``repeats`` passes after a warm-up pass."""
    audio = sum(w.size for w in waves) / 16000
    for w in waves:  # warm-up
        recognizer.predict(w, sample_rate=16000)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for w in waves:
            recognizer.predict(w, sample_rate=16000)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall) / audio, statistics.median(cpu) / audio


def main(argv: list[str] | None = None) -> int:
    import torch

    from emovox.inference import Recognizer, model_folder
    from emovox.models import count_parameters, load_model

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="model folder (default: the bundled model)")
    p.add_argument("--clips", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--also", action="append", default=[], metavar="MODEL",
                   help="time another model too (torch backend), e.g. --also whisper or a fold's model/ folder "
                        "from 'emovox experiment' (repeatable)")
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
    rows.append(("default model, torch + Sohn VAD (emovox predict)", default_params,
                 rtf(Recognizer.load(folder, vad="sohn", threads=1), waves, args.repeats)))
    for other in args.also:
        rows.append((f"{other}, torch", count_parameters(load_model(model_folder(other))[0]),
                     rtf(Recognizer.load(other, vad=None, threads=1), waves, args.repeats)))
    with tempfile.TemporaryDirectory() as tmp:
        ref = reference_model(Path(tmp) / "resnet34")
        ref_waves = waves[: args.reference_clips] if args.reference_clips else waves
        rows.append(("reference ResNet34 (32 ch, 128 mels), torch", count_parameters(load_model(ref)[0]),
                     rtf(Recognizer.load(ref, vad=None, threads=1), ref_waves, max(1, args.repeats - 1))))
    (ref_wall, ref_cpu) = rows[-1][2]
    print(f"\n{'model':<52}{'params':>11}{'RTF wall':>10}{'RTF cpu':>10}{'x faster than ref (wall/cpu)':>30}")
    for name, params, (wall, cpu) in rows:
        print(f"{name:<52}{params:>11,}{wall:>10.5f}{cpu:>10.5f}{ref_wall / wall:>20.1f} / {ref_cpu / cpu:.1f}")
    for i, kind in ((0, "wall"), (1, "cpu")):
        torch_rtf, onnx_rtf, ref = rows[0][2][i], rows[1][2][i], rows[-1][2][i]
        ok = torch_rtf <= GOAL_RTF and ref / torch_rtf >= GOAL_SPEEDUP
        print(f"goal by {kind} time (default model, torch: RTF <= {GOAL_RTF}, >= {GOAL_SPEEDUP:.0f}x faster than the "
              f"reference): {'met' if ok else 'NOT met'} (torch {torch_rtf:.5f}, onnxruntime {onnx_rtf:.5f}, "
              f"onnxruntime / torch = {onnx_rtf / torch_rtf:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
