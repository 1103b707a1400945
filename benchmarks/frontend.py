"""Front-end throughput on one core: emovox log-mel vs librosa on the same 60 s of audio.

    .venv/bin/python benchmarks/frontend.py [--seconds 60] [--repeats 20]

Prints seconds per call (best of ``--repeats``, the median, and the best thread CPU time),
× real time (from the best wall time) and the ratio librosa/emovox; the two log-mel
contenders run interleaved so both see the same background load. Both compute the same thing: 128-band log-mel, 25 ms / 10 ms, n_fft 512,
``log(max(mel, 1e-10))``. The audio is the bundled example clips tiled to 60 s (white noise
if they are missing). Also times the other front-ends and the Sohn VAD for reference.
Goal (issue 2): ≥ 3× librosa and ≥ 5000× real time.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy/torch load their thread pools

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from emovox.audio import SAMPLE_RATE, load_audio  # noqa: E402
from emovox.frontend import build_frontend  # noqa: E402
from emovox.vad import SohnVAD  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_audio(seconds: float) -> np.ndarray:
    clips = [load_audio(p) for p in sorted(EXAMPLES.glob("*.flac"))]
    base = np.concatenate(clips) if clips else np.random.default_rng(0).standard_normal(SAMPLE_RATE) * 0.1
    n = int(seconds * SAMPLE_RATE)
    return np.resize(base, n).astype(np.float32)


def timeit(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, float]]:
    """Best and median wall and CPU seconds per call. The functions run interleaved (round
    robin), so on a shared machine every contender sees the same background load."""
    for fn in fns.values():
        fn()  # warm-up (allocations, caches, librosa's filter cache)
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            w0, c0 = time.perf_counter(), time.thread_time()
            fn()
            cpu[name].append(time.thread_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    return {name: {"best": min(wall[name]), "median": statistics.median(wall[name]), "cpu": min(cpu[name])}
            for name in fns}


def librosa_logmel(x: np.ndarray) -> np.ndarray:
    import librosa

    mel = librosa.feature.melspectrogram(y=x, sr=SAMPLE_RATE, n_fft=512, hop_length=160, win_length=400,
                                         n_mels=128, power=2.0)
    return np.log(np.maximum(mel, 1e-10))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = test_audio(args.seconds)
    xt = torch.from_numpy(x)
    fe = build_frontend("logmel")
    diff = np.abs(fe(xt).numpy() - librosa_logmel(x).T).max()
    print(f"audio: {args.seconds:.0f} s, torch threads: {torch.get_num_threads()}, "
          f"max |emovox - librosa| log-mel: {diff:.2e}")
    rows = timeit({"emovox logmel": lambda: fe(xt), "librosa logmel": lambda: librosa_logmel(x)}, args.repeats)
    for name in ("mulaw_spec", "vggish"):
        other = build_frontend(name)
        rows.update(timeit({f"emovox {name}": lambda other=other: other(xt)}, args.repeats))
    vad = SohnVAD()
    rows.update(timeit({"emovox Sohn VAD": lambda: vad.frame_mask(x)}, max(1, args.repeats // 10)))
    print(f"{'what':<18} {'best s':>9} {'median s':>9} {'best CPU s':>10} {'x real time':>12}")
    for name, r in rows.items():
        print(f"{name:<18} {r['best']:>9.4f} {r['median']:>9.4f} {r['cpu']:>10.4f} {args.seconds / r['best']:>12.0f}")
    ours, ref = rows["emovox logmel"], rows["librosa logmel"]
    print(f"log-mel speed-up over librosa: {ref['best'] / ours['best']:.2f}x (best wall), "
          f"{ref['median'] / ours['median']:.2f}x (median wall), {ref['cpu'] / ours['cpu']:.2f}x (best CPU); "
          f"goal >= 3x and >= 5000x real time")

if __name__ == "__main__":
    main()
