"""Run an exported emovox graph with numpy + onnxruntime + soundfile only (no emovox, no torch).

    emovox export --onnx -o emovox.onnx
    python examples/onnx_standalone.py emovox.onnx recording.wav
"""

import sys

import numpy as np
import onnxruntime as ort
import soundfile as sf


def load_16k_mono(path: str) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    if sr != 16000:  # simple linear resampling; use soxr or similar for quality
        t = np.arange(int(len(x) * 16000 / sr)) * sr / 16000
        x = np.interp(t, np.arange(len(x)), x).astype(np.float32)
    return x


def scaled(x: np.ndarray, lufs: float | None) -> np.ndarray:
    """The piece as the model expects it: its mean (DC offset) taken away, then scaled to the
    loudness of ``emovox_input_loudness`` in the graph's metadata when there is one."""
    x = (x - x.mean(dtype=np.float64)).astype(np.float32) if len(x) else x
    if lufs is None or len(x) <= 6400 or not np.any(x):
        return x
    import pyloudnorm  # pip install pyloudnorm

    level = pyloudnorm.Meter(16000).integrated_loudness(x.astype(np.float64))
    gain = min(lufs - level, 30.0) if np.isfinite(level) else 0.0  # up by at most 30 dB, down as far as needed
    return (x * 10 ** (gain / 20)).astype(np.float32)


def posteriors(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    # the graph takes up to 30 s; longer audio: equal pieces (as emovox cuts them), log posteriors averaged
    count = max(1, -(-len(x) // (30 * 16000)))
    piece = max(1, -(-len(x) // count))
    meta = session.get_modelmeta().custom_metadata_map
    lufs = float(meta["emovox_input_loudness"]) if "emovox_input_loudness" in meta else None
    chunks = [scaled(x[i:i + piece], lufs) for i in range(0, max(len(x), 1), piece)]
    logp = [np.log(session.run(None, {"waves": np.pad(c, (0, max(0, 640 - len(c))))[None]})[0][0] + 1e-12)
            for c in chunks]
    p = np.exp(np.mean(logp, axis=0))
    return p / p.sum()


if __name__ == "__main__":
    graph, audio = sys.argv[1], sys.argv[2]
    session = ort.InferenceSession(graph, providers=["CPUExecutionProvider"])
    labels = session.get_modelmeta().custom_metadata_map["emovox_labels"].split(",")
    p = posteriors(session, load_16k_mono(audio))
    for label, prob in sorted(zip(labels, p), key=lambda t: -t[1]):
        print(f"{label:10s} {prob:.3f}")
