"""The speech check's Silero VAD: the sequence graph (emovox.speech) against the chunk-at-a-time
graph it replaced, on the same clips in the same run (CPU time per audio second, 1 thread).

    python benchmarks/vad_speed.py [--per-corpus 60] [--out benchmarks/results/vad_speed.json]

Clips: up to ``--per-corpus`` files of each shared corpus (every k-th file, sorted), decoded once,
plus one long input (the first 40 clips joined, so that it crosses the 512-chunk blocks of the
sequence graph). Both paths get the same waveform (raised to VAD_LOUDNESS when quiet, turned down when beyond full scale, as
``speech_probabilities`` does). Reports the largest probability difference, the chunks whose
speech decision (>= 0.5) differs, and both CPU times.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from emovox.audio import load_audio
from emovox.loudness import within_range
from emovox.speech import CHUNK, CONTEXT, THRESHOLD, VAD_CEILING, VAD_LOUDNESS, speech_probabilities

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpora"
GLOBS = ("emodb/wav/*.flac", "ravdess/*/*.flac", "tess/*/*.flac", "nemo/samples/*.opus", "ased/*/*.opus",
         "librispeech-samples/**/*.flac")


class ChunkAtATime:
    """The graph emovox used before: ``silero_vad.onnx``, one 32 ms chunk per call."""

    def __init__(self) -> None:
        spec = importlib.util.find_spec("silero_vad")
        assert spec is not None and spec.submodule_search_locations
        path = Path(list(spec.submodule_search_locations)[0]) / "data" / "silero_vad.onnx"
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        x = within_range(np.asarray(samples, np.float32).reshape(-1), VAD_LOUDNESS, VAD_CEILING)
        n = -(-len(x) // CHUNK)
        x = np.pad(x, (0, n * CHUNK - len(x)))
        state = np.zeros((2, 1, 128), np.float32)
        context = np.zeros((1, CONTEXT), np.float32)
        sr = np.array(16000, dtype=np.int64)
        out = np.empty(n, np.float32)
        for i in range(n):
            inp = np.concatenate([context, x[i * CHUNK:(i + 1) * CHUNK].reshape(1, CHUNK)], axis=1)
            prob, state = self.session.run(None, {"input": inp, "state": state, "sr": sr})
            context = inp[:, -CONTEXT:]
            out[i] = float(np.asarray(prob).reshape(-1)[0])
        return out


def machine() -> str:
    """CPU model and whether it has AVX-512 VNNI (int8 speed depends on it), from /proc/cpuinfo."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    vnni = "AVX-512 VNNI" if " avx512_vnni" in info else "no AVX-512 VNNI"
    return f"{name}, {len(list(filter(None, info.split(chr(10) + chr(10)))))} logical CPUs, {vnni}"


def clips(per_corpus: int) -> list[np.ndarray]:
    files: list[str] = []
    for g in GLOBS:
        found = sorted(glob.glob(str(SHARED / g), recursive=True))
        files += found[:: max(1, len(found) // per_corpus)][:per_corpus]
    if not files:
        sys.exit(f"no clips under {SHARED}: this benchmark needs ../shared/corpora")
    waves = [np.asarray(load_audio(f), np.float32).reshape(-1) for f in files]
    return waves + [np.concatenate(waves[:40])]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-corpus", type=int, default=60)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    waves = clips(args.per_corpus)
    old = ChunkAtATime()
    old(waves[0])
    speech_probabilities(waves[0][: waves[0].size // 2])  # warm-up on other samples (results are kept by content)
    cpu = {"chunk_at_a_time": 0.0, "sequence": 0.0}
    max_diff, flips, chunks = 0.0, 0, 0
    for w in waves:
        t = time.process_time()
        ref = old(w)
        cpu["chunk_at_a_time"] += time.process_time() - t
        t = time.process_time()
        new = speech_probabilities(w, threads=1)
        cpu["sequence"] += time.process_time() - t
        max_diff = max(max_diff, float(np.abs(new - ref).max(initial=0.0)))
        flips += int(((new >= THRESHOLD) != (ref >= THRESHOLD)).sum())
        chunks += ref.size
    seconds = sum(w.size for w in waves) / 16000
    result = {"inputs": len(waves), "audio_seconds": round(seconds, 1), "chunks": chunks,
              "max_abs_probability_difference": max_diff, "decisions_differing": flips,
              "cpu_s_per_audio_s": {k: round(v / seconds, 5) for k, v in cpu.items()},
              "ratio_sequence_to_chunk_at_a_time": round(cpu["sequence"] / cpu["chunk_at_a_time"], 3),
              "machine": machine(), "onnxruntime": ort.__version__}
    print(json.dumps(result, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
