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
import signal
import sys
import threading
import traceback
from typing import Any

from emovox import __version__
from emovox.errors import EmovoxError

#: Exit codes: 0 ok, 1 some inputs failed (batch commands), 2 bad input/usage, 130 interrupted
#: (Ctrl-C), 143 terminated (SIGTERM).
EXIT_OK, EXIT_PARTIAL, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 1, 2, 130, 143


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``docker stop``, a batch scheduler's time limit), raised where the command
    is, so that it stops as after Ctrl-C: outputs closed whole, worker processes shut down."""


#: The signals received during this command (Lightning turns an interrupt during training into sys.exit(1)).
_RECEIVED: list[int] = []


def _on_signal(signum: int, frame: Any) -> None:
    _RECEIVED.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _stopped(terminated: bool) -> int:
    print(f"emovox: {'terminated (SIGTERM)' if terminated else 'interrupted'}", file=sys.stderr)
    return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


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
    signals = (signal.SIGINT, signal.SIGTERM) if threading.current_thread() is threading.main_thread() else ()
    # a signal the caller ignores (`cmd &` in a script ignores SIGINT) stays ignored
    previous = {s: signal.signal(s, _on_signal) for s in signals if signal.getsignal(s) is not signal.SIG_IGN}
    _RECEIVED.clear()
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
    except KeyboardInterrupt as exc:
        return _stopped(isinstance(exc, Terminated))
    except SystemExit:
        if _RECEIVED:  # Lightning's answer to an interrupt during training: sys.exit(1)
            return _stopped(_RECEIVED[-1] == signal.SIGTERM)
        raise
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
