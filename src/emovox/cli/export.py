"""``emovox export --onnx``: write a model package as an ONNX graph (dynamic time axis)."""

from __future__ import annotations

import argparse
from typing import Any

from emovox.cli._model_args import add_model_args

EPILOG = """examples:
  emovox export --onnx -o emovox.onnx                         # the bundled default model
  emovox export --onnx --model fast -o fast.onnx              # the small CNN (log-mel input)

The default model's graph maps 16 kHz mono samples (1, N) to calibrated posteriors (1, classes):
the whole feature pipeline is inside, so onnxruntime + numpy run it without emovox
(examples/onnx_standalone.py); labels and temperature are in the graph's metadata. Models on
log-mel features export a graph from log-mels (batch, frames, mels) to probabilities.
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="export a model to ONNX (for onnxruntime)",
        description="Export a model package to ONNX with a dynamic time axis.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", action="store_true", required=True, help="export to ONNX (the only format)")
    p.add_argument("-o", "--out", metavar="PATH", help="output .onnx file, or a folder for model.onnx (default: <model folder>/model.onnx; "
                        "./model.onnx for the default model)")
    add_model_args(p, labels=False, backend=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from emovox.audio_model import is_audio_model
    from emovox.errors import ModelError
    from emovox.export import export_onnx
    from emovox.inference import model_folder

    folder = model_folder(args.model)
    if args.out and (os.path.isdir(args.out) or args.out.endswith(("/", os.sep))):  # a folder: model.onnx in it
        os.makedirs(args.out, exist_ok=True)
        args.out = os.path.join(args.out, "model.onnx")
    if is_audio_model(folder):
        from emovox.whisper.export import export_posteriors_graph

        path = export_posteriors_graph(folder, args.out or "model.onnx")
        print(path)
        print(f"exported {folder} -> {path} ({path.stat().st_size / 1e6:.1f} MB): waves in, posteriors out",
              file=sys.stderr)
        return 0
    target_dir = os.path.dirname(os.path.abspath(args.out)) if args.out else str(folder)
    if os.path.isdir(target_dir) and not os.access(target_dir, os.W_OK):
        raise ModelError(f"{target_dir} is not writable; choose another output with -o PATH")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    path = export_onnx(folder, args.out)
    print(path)
    print(f"exported {folder} -> {path} ({path.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0
