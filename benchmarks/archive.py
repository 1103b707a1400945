"""Archive prediction at scale: ``emovox predict FOLDER -o results.jsonl`` over N short clips.

    .venv/bin/python benchmarks/archive.py [--n 10000] [--seconds 1.0] [--workdir DIR] [--model NAME]
        [--repeats 1] [--timeline 200] [--skip PARTS] [--out benchmarks/results/archive.json]

The clips are cut from corpus audio in ../shared/corpora (RAVDESS, EmoDB, TESS: consecutive
``--seconds`` pieces of each file, 16 kHz 16-bit WAV) into ``--workdir`` (a temporary folder by
default; reused when it already holds the N clips). Four measurements, each the real command
line in a fresh process with this checkout's ``src`` (the shipped default model unless
``--model``, ``emovox predict``'s default options: the Silero speech check, one thread per process):

1. **Throughput**: wall clock of the whole command (process start and model loading included)
   with ``--jobs 1`` and ``--jobs 2`` (``--repeats R``: R of each, interleaved), and its CPU
   seconds (the command and its workers); files/s and the ratio (the issue's target: >= 1.8x on
   2 cores; CPU about equal in both means a low ratio came from other load, not from the code).
2. **Parent memory**: peak RSS of the ``emovox predict`` process itself (its workers excluded:
   ``getrusage(RUSAGE_SELF)``) for manifests of N and N/10 files with ``--jobs 2`` (target: within 10 %).
3. **Resume**: ``--jobs 2`` killed with SIGKILL once the output holds ~50 % of the records, then
   the same command again. Records on disk after the kill + records the second run predicted must
   be N (nothing written twice). Every prediction of both runs is counted (a ``sitecustomize``
   on the benchmark's PYTHONPATH, loaded by every process including the workers, wraps
   ``emovox.archive.Predictor.__call__`` to append the file name to a trace file): files
   predicted more than once = predictions - N (at most the window of pending files, 8 per job).
4. **Timeline** (``--timeline M`` clips): ``emovox timeline DIR -o t.jsonl --jobs 1`` over M
   clips of ``--timeline-seconds`` (default 4 s: 3 windows each), with its defaults (Sohn VAD,
   speakers counted when resemblyzer is installed) and with ``--speakers none``: CPU seconds
   (user + system of the command and its children, start-up and model loading included) per
   second of audio.

State N in any number you quote; the machine's load average is printed (and stored) because the
throughput ratio needs two idle cores. The results go to ``--out`` as JSON, one entry per part
with the load average before and after it; a part run again (``--skip`` the others) replaces
its entry.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"  # this checkout's code in every process (not whatever the venv's editable install points at)
SHARED = REPO.parent / "shared" / "corpora"
WRAP = ("import resource, sys\nfrom emovox.cli import main\ncode = main(sys.argv[1:])\n"
        "print('peak_rss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
        "sys.exit(code)\n")


def make_clips(folder: Path, n: int, seconds: float) -> Path:
    """``n`` clips of ``seconds`` cut from corpus files, in sub-folders of 500."""
    import soundfile as sf

    from emovox.audio import load_audio

    marker = folder / f".clips-{n}-{seconds}"
    if marker.exists():
        return folder
    sources = [p for c in ("ravdess", "emodb", "tess") if (SHARED / c).is_dir() for p in sorted((SHARED / c).rglob("*.flac"))]
    if not sources:
        raise SystemExit(f"no corpus audio under {SHARED}: this benchmark slices real recordings")
    rng = np.random.default_rng(0)
    rng.shuffle(sources)
    size = int(seconds * 16000)
    made = 0
    for src in sources:
        wave = load_audio(src)
        for start in range(0, wave.size - size + 1, size):
            out = folder / f"part{made // 500:03d}" / f"clip{made:06d}.wav"
            out.parent.mkdir(parents=True, exist_ok=True)
            sf.write(out, wave[start:start + size], 16000, subtype="PCM_16")
            made += 1
            if made == n:
                marker.touch()
                return folder
    raise SystemExit(f"the corpora give only {made} clips of {seconds} s; lower --n or --seconds")


def command(inputs: list[str], out: Path, jobs: int, model: str) -> list[str]:
    return [sys.executable, "-c", WRAP, "predict", *inputs, "-o", str(out), "--jobs", str(jobs), "--model", model,
            "--no-progress"]


TRACER = """import os
if os.environ.get("EMOVOX_BENCH_TRACE"):
    import emovox.archive as _a
    _call = _a.Predictor.__call__

    def _traced(self, source):
        record = _call(self, source)
        fd = os.open(os.environ["EMOVOX_BENCH_TRACE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        os.write(fd, (source + "\\n").encode())
        os.close(fd)
        return record

    _a.Predictor.__call__ = _traced
"""


def env(trace: Path | None = None) -> dict[str, str]:
    extra = {}
    if trace is not None:
        site = trace.parent / "tracer"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(TRACER)
        extra = {"EMOVOX_BENCH_TRACE": str(trace), "PYTHONPATH": f"{SRC}{os.pathsep}{site}"}
    return {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1", **extra}


def run(cmd: list[str], trace: Path | None = None) -> tuple[float, int, str]:
    """(wall seconds, parent peak RSS in kB, stderr)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env(trace), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd[3:])}\n{done.stderr[-2000:]}")
    rss = int(next(line.split()[1] for line in done.stderr.splitlines() if line.startswith("peak_rss_kb")))
    return wall, rss, done.stderr


def cpu_run(cmd: list[str]) -> tuple[float, float, str]:
    """(CPU seconds of the command and its children, wall seconds, stderr)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env(), capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd[3:])}\n{done.stderr[-2000:]}")
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, wall, done.stderr


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="clips (default 10 000, as the issue asks)")
    ap.add_argument("--seconds", type=float, default=1.0, help="clip length (default 1.0 s)")
    ap.add_argument("--workdir", type=Path, default=None, help="where the clips and outputs go (default: a temp dir)")
    ap.add_argument("--model", default="default")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: throughput,memory,resume,timeline")
    ap.add_argument("--repeats", type=int, default=1, help="throughput: runs of each --jobs, interleaved (default 1)")
    ap.add_argument("--timeline", type=int, default=200, help="clips for the timeline part (default 200)")
    ap.add_argument("--timeline-seconds", type=float, default=4.0, help="their length (default 4 s)")
    ap.add_argument("--out", type=Path, default=None,
                    help="write the results here as JSON (parts run now replace those parts in an existing file)")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    work = (args.workdir or Path(tempfile.mkdtemp(prefix="emovox-archive-bench-"))).resolve()
    clips = make_clips(work / f"clips{args.n}", args.n, args.seconds)
    print(f"N = {args.n} clips of {args.seconds} s in {clips}; {os.cpu_count()} cores; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    parts = {"throughput": lambda: throughput(work, clips, args.n, args.model, args.repeats),
             "memory": lambda: memory(work, clips, args.n, args.model),
             "resume": lambda: resume(work, clips, args.n, args.model),
             "timeline": lambda: timeline_part(work, args.timeline, args.timeline_seconds, args.model)}
    results: dict[str, object] = {"n": args.n, "seconds": args.seconds, "model": args.model, "cores": os.cpu_count()}
    for name, part in parts.items():
        if name not in skip:
            before = load()
            results[name] = {**part(), "load_before": before, "load_after": load(),
                             "date": time.strftime("%Y-%m-%d %H:%M")}
    print(json.dumps(results))
    if args.out:
        old = json.loads(args.out.read_text()) if args.out.exists() else {}
        if {k: old.get(k) for k in ("n", "seconds", "model")} != {k: results[k] for k in ("n", "seconds", "model")}:
            old = {}  # another configuration: start the file afresh
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**old, **results}, indent=1) + "\n")
    return 0


def throughput(work: Path, clips: Path, n: int, model: str, repeats: int) -> dict[str, object]:
    """Wall clock and CPU (command + workers) of --jobs 1 and --jobs 2, interleaved ``repeats`` times."""
    walls: dict[int, list[float]] = {1: [], 2: []}
    cpus: dict[int, list[float]] = {1: [], 2: []}
    for _ in range(repeats):
        for jobs in (1, 2):
            out = work / f"tp{jobs}.jsonl"
            out.unlink(missing_ok=True)
            cpu, wall, _ = cpu_run(command([str(clips)], out, jobs, model))
            assert count_lines(out) == n, f"{out}: {count_lines(out)} records, expected {n}"
            walls[jobs].append(round(wall, 2))
            cpus[jobs].append(round(cpu, 2))
            print(f"--jobs {jobs}: {wall:.1f} s wall, {n / wall:.1f} files/s, {cpu:.1f} CPU s "
                  f"(load average now {load()[0]})")
    same = (work / "tp1.jsonl").read_bytes() == (work / "tp2.jsonl").read_bytes()
    ratios = [round(a / b, 3) for a, b in zip(walls[1], walls[2])]
    speedup = sum(walls[1]) / sum(walls[2])
    print(f"--jobs 2 / --jobs 1 throughput: {speedup:.2f}x (per pair {ratios}; target >= 1.8x); "
          f"identical output files: {same}")
    return {"wall_jobs1": walls[1], "wall_jobs2": walls[2], "cpu_jobs1": cpus[1], "cpu_jobs2": cpus[2],
            "speedup": round(speedup, 3), "speedup_per_pair": ratios, "identical": same}


def memory(work: Path, clips: Path, n: int, model: str) -> dict[str, object]:
    """Peak RSS of the parent process for manifests of N and N/10 files (--jobs 2)."""
    rss = {}
    files = sorted(str(p) for p in clips.rglob("*.wav"))
    for label, count in (("N", n), ("N/10", n // 10)):
        listing = work / f"list-{count}.txt"
        listing.write_text("\n".join(files[:count]) + "\n")
        out = work / f"mem-{count}.jsonl"
        out.unlink(missing_ok=True)
        _, rss[label], _ = run(command([], out, 2, model) + ["--manifest", str(listing)])
        print(f"parent peak RSS, {label} = {count_lines(out)} files: {rss[label] / 1024:.1f} MiB")
    change = 100 * (rss["N"] / rss["N/10"] - 1)
    print(f"N vs N/10 parent peak RSS: {change:+.1f} % (target within 10 %)")
    return {"rss_n_kb": rss["N"], "rss_tenth_kb": rss["N/10"], "change_percent": round(change, 2)}


def resume(work: Path, clips: Path, n: int, model: str) -> dict[str, object]:
    """--jobs 2 killed with SIGKILL at ~50 %, then the same command: files redone, final file."""
    out = work / "resume.jsonl"
    trace = work / "resume.trace"
    out.unlink(missing_ok=True)
    trace.unlink(missing_ok=True)
    cmd = command([str(clips)], out, 2, model)
    proc = subprocess.Popen(cmd, env=env(trace), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and count_lines(out) < n // 2:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    at_kill = count_lines(out)
    _, _, err = run(cmd, trace)
    predicted = next((int(line.split()[-3]) for line in err.splitlines() if "predicted now" in line), 0)
    final = count_lines(out)
    ref = work / "tp1.jsonl"
    same = ref.exists() and out.read_bytes() == ref.read_bytes()
    print(f"killed at {at_kill} complete records ({100 * at_kill / n:.0f} %); the re-run predicted "
          f"{predicted}; {at_kill} + {predicted} = {at_kill + predicted} of {n}; final records {final}; "
          f"same file as the uninterrupted --jobs 1 run: {same if ref.exists() else 'not compared'}")
    made = trace.read_text().splitlines()
    redone = len(made) - len(set(made))
    print(f"predictions in both runs: {len(made)} for {len(set(made))} distinct files: {redone} files redone "
          f"= {100 * redone / n:.2f} % of N (target <= 1 %)")
    return {"killed_at": at_kill, "repredicted": predicted, "final": final,
            "identical_after_resume": same if ref.exists() else None, "predictions": len(made), "redone": redone,
            "redone_percent": round(100 * redone / n, 3)}


def timeline_part(work: Path, n: int, seconds: float, model: str) -> dict[str, object]:
    """``emovox timeline`` over ``n`` clips in archive mode: CPU s per audio s, with speakers (the default
    diariser: Whisper frames with the default model; GE2E) and without."""
    clips = make_clips(work / f"timeline{n}-{seconds:g}", n, seconds)
    out: dict[str, object] = {"clips": n, "clip_seconds": seconds}
    for name, extra in (("defaults", []), ("ge2e", ["--diarizer", "ge2e"]), ("speakers_none", ["--speakers", "none"])):
        target = work / f"timeline-{name}.jsonl"
        target.unlink(missing_ok=True)
        cmd = [sys.executable, "-c", WRAP, "timeline", str(clips), "-o", str(target), "--jobs", "1", "--model", model,
               "--no-progress", *extra]
        cpu, wall, _ = cpu_run(cmd)
        records = [json.loads(line) for line in target.read_text().splitlines()]
        audio = sum(r["duration"] or 0.0 for r in records)
        notes = {r["speakers_note"] for r in records if r["speakers_note"]}
        print(f"timeline ({name}): {len(records)} records, {audio:.0f} s of audio: {cpu:.1f} CPU s, {wall:.1f} s wall: "
              f"{cpu / audio:.4f} CPU s per audio s" + (f"; note: {sorted(notes)[0]}" if notes else ""))
        out[name] = {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2), "audio_s": round(audio, 1),
                     "cpu_per_audio_s": round(cpu / audio, 5), "records": len(records),
                     "with_speakers": sum(bool(r["speakers"]) for r in records)}
    return out


if __name__ == "__main__":
    sys.exit(main())
