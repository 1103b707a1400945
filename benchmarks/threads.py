"""The intra-op thread default for clip-level prediction: CPU time and wall clock per clip for
``--threads`` 1, 2, ... on an idle machine and on one loaded by CPU burners.

    .venv/bin/python benchmarks/threads.py [--clips 60] [--settings 1,2,4] [--burners N] [--model NAME]

Each setting runs in a fresh process: ``Recognizer.load(model, threads=T)`` (the bundled default
model, torch backend, Sohn VAD: what ``emovox predict`` does), one warm-up clip, then
``predict(path)`` for every clip, one at a time (decoding included), for at most ``--budget``
seconds. The child reports its own CPU time (user + system, ``getrusage``) and the wall clock of
that loop; both are compared per clip. "loaded" starts
``--burners`` busy-loop processes (default: one per core) before the runs and stops them after.

The default (``emovox predict --threads 1``) passes when its CPU time per clip is within 10 %
of the best setting's, in both conditions. Why one thread: a 3 s clip is a few ms of
convolutions, too little to split; extra OpenMP threads spin-wait for work, burning CPU that
other processes (or ``--jobs`` workers) need, and on a loaded machine they wait for cores.
Parallelism across files (``--jobs N``) is the way to use more cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "corpora"
DEFAULT_THREADS = 1
TOLERANCE = 0.10

CHILD = r'''
import json, resource, sys, time
import torch
from emovox.inference import Recognizer

model, threads, budget, paths = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
r = Recognizer.load(None if model == "default" else model, threads=threads)
r.predict(paths[0])  # warm-up: lazy initialisation is not the steady state
u0 = resource.getrusage(resource.RUSAGE_SELF)
t0 = time.perf_counter()
done = 0
for p in paths:
    r.predict(p)
    done += 1
    if time.perf_counter() - t0 > budget:  # a setting that crawls (spin-waiting threads) stops early
        break
wall = time.perf_counter() - t0
u1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (u1.ru_utime - u0.ru_utime) + (u1.ru_stime - u0.ru_stime)
print(json.dumps({"threads": threads, "torch_threads": torch.get_num_threads(), "cpu": cpu, "wall": wall,
                  "clips": done}))
'''


def clip_paths(n: int) -> list[str]:
    """The example clips, then a deterministic spread of RAVDESS/EmoDB/TESS files, up to ``n``."""
    paths = sorted(str(p) for p in (REPO / "examples").glob("*.flac"))
    pools = [sorted(str(p) for p in (SHARED / c).rglob("*.flac")) for c in ("ravdess", "emodb", "tess")
             if (SHARED / c).is_dir()]
    i = 0
    while len(paths) < n and any(pools):
        pool = pools[i % len(pools)]
        if pool:
            paths.append(pool.pop(len(pool) * 7 // 13))
        i += 1
    return paths[:n]


def _burn() -> None:  # pragma: no cover - a CPU load generator
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


def measure(model: str, threads: int, paths: list[str], budget: float, checkout: Path = REPO) -> dict:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    env.pop("OMP_NUM_THREADS", None)  # the setting under test decides, as for a user's shell
    done = subprocess.run([sys.executable, "-c", CHILD, model, str(threads), str(budget), *paths], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"threads={threads} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=60, help="clips per setting (default 60)")
    ap.add_argument("--settings", default=None, help="thread counts to compare (default 1,2,...,cores, and 2x cores)")
    ap.add_argument("--burners", type=int, default=os.cpu_count() or 1, help="busy processes for 'loaded'")
    ap.add_argument("--model", default="default", help="bundled model name or folder (default: default)")
    ap.add_argument("--conditions", default="idle,loaded")
    ap.add_argument("--checkout", type=Path, default=REPO, help="the emovox source tree to import (default: this one)")
    ap.add_argument("--budget", type=float, default=60.0,
                    help="seconds of wall clock per setting; a slower setting stops early (default 60)")
    args = ap.parse_args(argv)
    cores = os.cpu_count() or 1
    settings = [int(s) for s in args.settings.split(",")] if args.settings else \
        sorted({*range(1, cores + 1), 2 * cores})
    paths = clip_paths(args.clips)
    print(f"{len(paths)} clips, model {args.model} of {args.checkout}, {cores} cores, load average before: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    ok = True
    for condition in args.conditions.split(","):
        burners = []
        if condition == "loaded":
            ctx = multiprocessing.get_context("spawn")
            burners = [ctx.Process(target=_burn, daemon=True) for _ in range(args.burners)]
            for b in burners:
                b.start()
            time.sleep(1.0)
        try:
            rows = [measure(args.model, t, paths, args.budget, args.checkout) for t in settings]
        finally:
            for b in burners:
                b.terminate()
                b.join()
        for r in rows:  # per clip from here on: settings cut short by --budget did fewer clips
            r["cpu"], r["wall"] = r["cpu"] / r["clips"], r["wall"] / r["clips"]
        best = min(r["cpu"] for r in rows)
        print(f"\n{condition} ({len(burners)} burner processes)")
        print(f"{'threads':>8}{'clips':>7}{'CPU ms/clip':>13}{'wall ms/clip':>14}{'CPU / best':>12}")
        for r in rows:
            mark = "  <- default" if r["threads"] == DEFAULT_THREADS else ""
            print(f"{r['threads']:>8}{r['clips']:>7}{1000 * r['cpu']:>13.1f}{1000 * r['wall']:>14.1f}"
                  f"{r['cpu'] / best:>12.2f}{mark}")
        default = next((r for r in rows if r["threads"] == DEFAULT_THREADS), None)
        if default is not None:
            within = default["cpu"] <= (1 + TOLERANCE) * best
            ok &= within
            print(f"default ({DEFAULT_THREADS} thread) within {100 * TOLERANCE:.0f} % of the best CPU time: "
                  f"{'yes' if within else 'NO'} ({default['cpu'] / best:.2f}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
