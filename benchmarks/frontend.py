"""Front-end throughput on one core: emovox log-mel vs librosa on the same 60 s of audio.

    .venv/bin/python benchmarks/frontend.py [--seconds 60] [--repeats 20]

Prints seconds per call (best of ``--repeats``, and the median), × real time and the ratio
emovox/librosa. Both compute the same thing: 128-band log-mel, 25 ms / 10 ms, n_fft 512,
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


def timeit(fn, repeats: int) -> tuple[float, float]:
    fn()  # warm-up (allocations, caches, librosa's filter cache)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


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
    rows = {}
    for name, fn in [("emovox logmel", lambda: fe(xt)), ("librosa logmel", lambda: librosa_logmel(x))]:
        rows[name] = timeit(fn, args.repeats)
    for name in ("mulaw_spec", "vggish"):
        other = build_frontend(name)
        rows[f"emovox {name}"] = timeit(lambda: other(xt), args.repeats)
    vad = SohnVAD()
    rows["emovox Sohn VAD"] = timeit(lambda: vad.frame_mask(x), max(1, args.repeats // 10))
    print(f"{'what':<18} {'best s':>9} {'median s':>9} {'x real time':>12}")
    for name, (best, med) in rows.items():
        print(f"{name:<18} {best:>9.4f} {med:>9.4f} {args.seconds / best:>12.0f}")
    ratio = rows["librosa logmel"][0] / rows["emovox logmel"][0]
    ratio_med = rows["librosa logmel"][1] / rows["emovox logmel"][1]
    print(f"log-mel speed-up over librosa: {ratio:.2f}x (best), {ratio_med:.2f}x (median); "
          f"goal >= 3x and >= 5000x real time")


if __name__ == "__main__":
    main()
