"""Cold-start cost of ``emovox predict one.wav``: CPU seconds (user + system) of a fresh process.

    python benchmarks/cold_start.py [--clip examples/03-01-05-02-01-01-08.flac] [--repeats 3]
                                    [--before ../before]   # an older checkout: "today" in the same run

Each row runs the CLI in a new interpreter ``--repeats`` times and reports the median CPU time
of the child (``resource.RUSAGE_CHILDREN``) and its wall time; ``--before`` adds the same command
run from another checkout (``PYTHONPATH`` pointing there), e.g. the previous release.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default=str(REPO / "examples" / "03-01-05-02-01-01-08.flac"), type=lambda p: str(Path(p).resolve()))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--before", default=None, help="another checkout to time the same command from")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    base = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = ["-c", "import sys; from emovox.cli import main; sys.exit(main())", "predict", args.clip]
    rows = {"default (this checkout)": (cli, str(REPO)),
            "--model fast (this checkout)": ([*cli, "--model", "fast"], str(REPO))}
    if args.before:
        rows["default (--before checkout)"] = (cli, str(Path(args.before).resolve()))
    result = {}
    for name, (cmd, path) in rows.items():
        env = {**base, "PYTHONPATH": path}  # run from the checkout itself: python -c puts the cwd first
        run([sys.executable, *cmd], env, path)  # warm the file cache
        samples = [run([sys.executable, *cmd], env, path) for _ in range(args.repeats)]
        result[name] = {"cpu_s": round(statistics.median(s[0] for s in samples), 3),
                        "wall_s": round(statistics.median(s[1] for s in samples), 3)}
        print(name, result[name], flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
