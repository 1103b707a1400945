"""Options shared by the commands that load a model (predict, timeline, serve, export)."""

from __future__ import annotations

import argparse
from typing import Any


def add_model_args(p: argparse.ArgumentParser, labels: bool = True, backend: bool = True,
                   threads_default: int | None = None, threads_help: str = "default: all") -> None:
    """--model, --backend, --labels, --threads (default ``threads_default``; None = the backend's)."""
    p.add_argument("--model", metavar="FOLDER|NAME",
                   help="model folder (config.json + weights) or a bundled model's name: 'default' (Whisper "
                        "base layers + head, int8 ONNX; the default) or 'fast' (small ResNet18 on log-mels)")
    if backend:
        p.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                       help="inference engine: auto (default: onnxruntime for audio-in models such as the "
                            "default, torch otherwise), torch, or onnx")
    if labels:
        p.add_argument("--labels", metavar="A,B,...",
                       help="only these labels, probabilities renormalised (e.g. angry,happy,neutral,sad)")
    p.add_argument("--threads", type=positive_int, metavar="N", default=threads_default,
                   help=f"CPU threads for inference ({threads_help})")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def load_recognizer(args: argparse.Namespace, vad: str | None = "silero", **kwargs: Any):
    """The Recognizer the options ask for (errors are EmovoxError: the CLI prints them, exit 2)."""
    from emovox.inference import Recognizer

    return Recognizer.load(getattr(args, "model", None), backend=getattr(args, "backend", "auto"),
                           labels=getattr(args, "labels", None), vad=vad, threads=getattr(args, "threads", None),
                           **kwargs)
