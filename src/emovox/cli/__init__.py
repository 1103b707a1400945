"""The ``emovox`` command. Thin: every subcommand lives in its own module of this package.

A subcommand module defines ``register(subparsers)`` which adds a parser and sets
``func=run`` (a callable taking the parsed args and returning an exit code). Modules are
discovered automatically, so adding a command touches no other file. Heavy imports (torch,
transformers...) happen inside ``run`` so ``emovox --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
import traceback

from emovox import __version__
from emovox.errors import EmovoxError

#: Exit codes: 0 ok, 1 some inputs failed (batch commands), 2 bad input/usage, 130 interrupted.
EXIT_OK, EXIT_PARTIAL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emovox",
        description="Speech emotion recognition: predict, train, evaluate, serve. Offline, CPU-friendly.",
    )
    parser.add_argument("--version", action="version", version=f"emovox {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # Lightning's "GPU available: ..." banners and tips are noise for a CPU command line.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(max(level, logging.WARNING))
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except EmovoxError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"emovox {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # `emovox ... | head`: the reader left; files were written, the listing stops
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        except (OSError, ValueError):  # stdout is no file (captured): nothing to flush into a pipe
            pass
        return 1
    except KeyboardInterrupt:
        print("emovox: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
