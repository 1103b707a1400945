"""``emovox export --onnx``: write a model package as an ONNX graph (dynamic time axis)."""

from __future__ import annotations

import argparse
from typing import Any

from emovox.cli._model_args import add_model_args

EPILOG = """examples:
  emovox export --onnx --model runs/default/model            # writes runs/default/model/model.onnx
  emovox export --onnx -o emovox.onnx                         # the bundled model

The graph maps log-mel features (batch, frames, mels) to probabilities (batch, classes);
batch and frames are dynamic. 'emovox predict --backend onnx' uses model.onnx from the model
folder when its checksum matches the weights (and exports in memory otherwise).
"""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export", help="export a model to ONNX (for onnxruntime)",
        description="Export a model package to ONNX with a dynamic time axis.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--onnx", action="store_true", required=True, help="export to ONNX (the only format)")
    p.add_argument("-o", "--out", metavar="PATH", help="output .onnx file (default: <model folder>/model.onnx)")
    add_model_args(p, labels=False, backend=False)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from emovox.errors import ModelError
    from emovox.export import export_onnx
    from emovox.inference import model_folder

    folder = model_folder(args.model)
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
