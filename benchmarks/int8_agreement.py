"""int8 vs fp32 ONNX graph of an audio-in package: top-label agreement and UA on a real corpus.

    python benchmarks/int8_agreement.py --package runs/generalist/package --corpus emodb
    python benchmarks/int8_agreement.py --package runs/generalist/package --corpus ravdess --limit 600

Both graphs score every clip of the corpus (labels outside the model's set are skipped); the
fp32 graph is ``model.fp32.onnx`` (kept beside the shipped int8 ``model.onnx`` in the training
run's package, not in the installed package).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from emovox.audio import load_audio
from emovox.audio_model import OnnxAudioModel
from emovox.corpora.registry import load_corpus


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default="runs/generalist/package")
    ap.add_argument("--corpus", default="emodb")
    ap.add_argument("--root", default="../shared/corpora")
    ap.add_argument("--limit", type=int, default=None, help="score a seeded random sample of this many clips")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    fp32 = OnnxAudioModel(args.package, graph="model.fp32.onnx")
    int8 = OnnxAudioModel(args.package)
    labels = fp32.labels
    utts = [u for u in load_corpus(args.corpus, os.path.join(args.root, args.corpus), check_files=False) if u.label in labels]
    if args.limit is not None and len(utts) > args.limit:
        keep = np.random.default_rng(0).choice(len(utts), args.limit, replace=False)
        utts = [utts[i] for i in sorted(keep)]
    y = np.array([labels.index(u.label) for u in utts])
    p32, p8, cpu = [], [], {"fp32": 0.0, "int8": 0.0}
    seconds = 0.0
    for u in utts:
        x = load_audio(u.path)
        seconds += x.size / 16000
        for name, model, store in (("fp32", fp32, p32), ("int8", int8, p8)):
            t = time.process_time()
            store.append(model(x))
            cpu[name] += time.process_time() - t
    a, b = np.array(p32).argmax(1), np.array(p8).argmax(1)

    def ua(pred: np.ndarray) -> float:
        return float(np.mean([(pred[y == c] == c).mean() for c in np.unique(y)]))

    result = {"corpus": args.corpus, "clips": len(utts), "agreement": float((a == b).mean()), "ua_fp32": ua(a),
              "ua_int8": ua(b), "max_abs_prob_diff": float(np.abs(np.array(p32) - np.array(p8)).max()),
              "cpu_s_per_audio_s": {k: v / seconds for k, v in cpu.items()}}
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
