"""Whisper encoder speed at one CPU thread: CPU seconds per audio second (lower is faster).

    python benchmarks/whisper_speed.py [--clips 20] [--layers 4] [--out benchmarks/whisper_speed.json]

Same clips (EmoDB/RAVDESS/nEMO files, unpadded), one process, one thread, audio decoded and
log-mels computed beforehand (the encoder alone is timed; ``model`` rows time a whole audio-in
package, log-mel included). Rows: tiny.en and base, full encoder vs truncated after
``--layers``, in torch fp32, onnxruntime fp32, onnxruntime int8, and CTranslate2 int8 (full
encoder only: it cannot stop early) — the last is what the retired bundled ``whisper`` model ran.
Every row also gives its ratio to that CTranslate2 tiny.en int8 row.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from emovox.whisper.encoder import WhisperLayers, load_encoder
from emovox.whisper.export import quantize_int8
from emovox.whisper.mel import log_mel
from emovox.whisper.packaged import source_files

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"


def clips(n: int) -> list[np.ndarray]:
    files = sorted(glob.glob(str(SHARED / "emodb/wav/*.flac")))[::25] + sorted(glob.glob(str(SHARED / "ravdess/*/*.flac")))[::97] \
        + sorted(glob.glob(str(SHARED / "nemo/samples/*.opus")))[::401]
    return [sf.read(f, dtype="float32")[0] for f in files[:n]]


def cpu_per_second(fn, mels, seconds: float, repeats: int = 2) -> float:
    for m in mels[:2]:
        fn(m)
    best = float("inf")
    for _ in range(repeats):
        t = time.process_time()
        for m in mels:
            fn(m)
        best = min(best, (time.process_time() - t) / seconds)
    return best


def onnx_session(module: torch.nn.Module, path: Path, int8: bool):
    import onnxruntime as ort

    torch.onnx.export(module, (torch.zeros(1, 80, 300),), str(path), dynamo=True, input_names=["mel"],
                      dynamic_shapes={"mel": {2: torch.export.Dim("t", min=20, max=3000)}}, opset_version=17)
    if int8:
        quantize_int8(path, path.with_suffix(".int8.onnx"))
        path = path.with_suffix(".int8.onnx")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ct2_model(name: str, folder: Path):
    import ctranslate2

    src = source_files(name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.bin").write_bytes(b"".join(p.read_bytes() for p in src))
    for extra in ("config.json", "vocabulary.txt", "tokenizer.json"):
        if (src[0].parent / extra).is_file():
            (folder / extra).write_bytes((src[0].parent / extra).read_bytes())
    model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type="int8", intra_threads=1)
    return lambda m: model.encode(ctranslate2.StorageView.from_array(m[None]), to_cpu=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--layers", type=int, default=4, help="truncate after this layer")
    ap.add_argument("--out", default="benchmarks/whisper_speed.json")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    waves = clips(args.clips)
    seconds = sum(len(w) for w in waves) / 16000
    mels = [np.ascontiguousarray(log_mel(w)) for w in waves]
    rows: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp())
    rows["log-mel (numpy)"] = cpu_per_second(log_mel, waves, seconds)
    rows["ctranslate2 int8 tiny.en full (retired 'whisper' model's encoder)"] = cpu_per_second(
        ct2_model("tiny.en", tmp / "ct2-tiny"), mels, seconds)
    rows["ctranslate2 int8 base full"] = cpu_per_second(ct2_model("base", tmp / "ct2-base"), mels, seconds)
    for name in ("tiny.en", "base"):
        encoder, dims = load_encoder(name, attn="sdpa")
        for top in sorted({dims.n_layers, min(args.layers, dims.n_layers)}, reverse=True):
            label = "full" if top == dims.n_layers else f"layers 0..{top}"
            module = WhisperLayers(encoder, dims, [top]).eval()

            def run_torch(m, module=module):
                with torch.inference_mode():
                    module(torch.from_numpy(m)[None])

            rows[f"torch fp32 {name} {label}"] = cpu_per_second(run_torch, mels, seconds)
            eager = WhisperLayers(load_encoder(name, attn="eager")[0], dims, [top]).eval()
            for int8 in (False, True):
                sess = onnx_session(eager, tmp / f"{name}-{top}.onnx", int8)
                rows[f"onnxruntime {'int8' if int8 else 'fp32'} {name} {label}"] = cpu_per_second(
                    lambda m, s=sess: s.run(None, {"mel": m[None]}), mels, seconds)
            print(json.dumps({k: round(v, 5) for k, v in rows.items()}, indent=1), flush=True)
    ref = rows["ctranslate2 int8 tiny.en full (retired 'whisper' model's encoder)"]
    table = {k: {"cpu_s_per_audio_s": round(v, 5), "ratio_to_retired_whisper": round(v / ref, 2)} for k, v in rows.items()}
    result = {"clips": len(waves), "audio_seconds": round(seconds, 1), "threads": 1, "rows": table,
              "host_cpus": os.cpu_count()}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for k, v in table.items():
        print(f"| {k} | {v['cpu_s_per_audio_s']:.4f} | {v['ratio_to_retired_whisper']:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
