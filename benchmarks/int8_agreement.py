"""int8 vs fp32 ONNX graph of an audio-in package: agreement, UA and calibration on real clips.

    python benchmarks/int8_agreement.py --held-out                       # the default model, its held-out speakers
    python benchmarks/int8_agreement.py --package runs/generalist/package --corpus emodb
    python benchmarks/int8_agreement.py --package runs/generalist/package --corpus ravdess --limit 600

Both graphs score every clip (labels outside the model's set are skipped). ``--held-out``: every
clip of the package's held-out validation speakers (config ``card.valid_speakers``) in the five
corpora, instead of one corpus. The fp32 graph is ``model.fp32.onnx``, kept beside the int8
``model.onnx`` in a training run's package. An installed package has none: its fp32 graph is
re-exported from its ``config.json`` and ``head.safetensors`` into ``runs/int8_agreement/`` (needs
torch and the Whisper package), and that package's int8 graph must equal the installed one byte
for byte, so the fp32 graph is the one the shipped int8 graph was quantised from.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from emovox.audio import load_audio
from emovox.audio_model import OnnxAudioModel, read_audio_config
from emovox.calibration import expected_calibration_error
from emovox.corpora.registry import load_corpus
from emovox.inference import model_folder

CORPORA = ("ravdess", "tess", "emodb", "nemo", "ased")


def fp32_package(package: Path) -> Path:
    """``package`` if it has ``model.fp32.onnx``, else its re-export under ``runs/int8_agreement/``."""
    if (package / "model.fp32.onnx").is_file():
        return package
    from safetensors.torch import load_file

    from emovox.whisper.export import write_package

    config = read_audio_config(package)
    out = Path("runs") / "int8_agreement" / f"{config.name}-v{config.version}"
    if not (out / "model.fp32.onnx").is_file():
        write_package(out, config, load_file(str(package / "head.safetensors")))
    for graph in ("model.onnx", "head.onnx"):
        if not filecmp.cmp(out / graph, package / graph, shallow=False):
            sys.exit(f"the re-exported {out / graph} differs from {package / graph}: its fp32 graph is not the "
                     "one the package was quantised from (another torch/onnxruntime version?)")
    return out


def clips(args, package: Path, labels: list[str]) -> list:
    if args.held_out:
        held = set(read_audio_config(package).card["valid_speakers"])
        utts = [u for corpus in CORPORA for u in load_corpus(corpus, os.path.join(args.root, corpus), check_files=False)
                if u.speaker in held]
    else:
        utts = load_corpus(args.corpus, os.path.join(args.root, args.corpus), check_files=False)
    utts = [u for u in utts if u.label in labels]
    if args.limit is not None and len(utts) > args.limit:
        keep = np.random.default_rng(0).choice(len(utts), args.limit, replace=False)
        utts = [utts[i] for i in sorted(keep)]
    return utts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--package", default=None, help="an audio-in package folder (default: the default model)")
    ap.add_argument("--corpus", default="emodb")
    ap.add_argument("--held-out", action="store_true", help="the package's held-out speakers in all five corpora")
    ap.add_argument("--root", default="../shared/corpora")
    ap.add_argument("--limit", type=int, default=None, help="score a seeded random sample of this many clips")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    package = model_folder(args.package)
    fp32 = OnnxAudioModel(fp32_package(package), graph="model.fp32.onnx")
    int8 = OnnxAudioModel(package)
    labels = fp32.labels
    utts = clips(args, package, labels)
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
    q32, q8 = np.array(p32), np.array(p8)
    a, b = q32.argmax(1), q8.argmax(1)

    def ua(pred: np.ndarray) -> float:
        return float(np.mean([(pred[y == c] == c).mean() for c in np.unique(y)]))

    diff = np.abs(q32 - q8)
    result = {"clips": len(utts), "corpus": "held-out speakers" if args.held_out else args.corpus,
              "agreement": float((a == b).mean()), "ua_fp32": ua(a), "ua_int8": ua(b),
              "ece_fp32": expected_calibration_error(q32, y), "ece_int8": expected_calibration_error(q8, y),
              "max_abs_prob_diff": float(diff.max()), "mean_abs_top_prob_diff": float(diff[np.arange(len(a)), a].mean()),
              "cpu_s_per_audio_s": {k: v / seconds for k, v in cpu.items()}}
    print(json.dumps(result, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
