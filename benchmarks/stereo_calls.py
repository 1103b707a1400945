"""Calls recorded one side per channel: speakers by channel (``--channels auto``) against diarising the mix.

    .venv/bin/python benchmarks/stereo_calls.py [--n 30] [--mixes balanced skewed] [--overlap] [--snr 30]
        [--out runs/stereo_calls.json]      # tables: benchmarks/results/stereo_calls*.md
    .venv/bin/python benchmarks/stereo_calls.py --speed 60   # CPU and peak RSS of `emovox timeline` on a 60 min call

The conversations are those of ``benchmarks/conversations.py eval --speakers 2`` (the default
model's held-out speakers, same seeds, so the same clips and turns), each rendered twice:

* **call**: each speaker on a channel of its own, as call recorders store them: the other side
  leaks in (line echo / headset crosstalk) at -15 to -30 dB (`--echo`), 0-30 ms late; the two sides' levels
  differ by up to 6 dB; independent white noise on each channel at ``--snr`` dB below the
  speech. ``--telephone``: then each channel through an 8 kHz G.711 mu-law line.
* **room**: the mono conversation on both channels (a stereo recorder, two microphones in one
  room): the second channel 0-6 dB quieter and up to 1 ms late, independent noise at ``--snr``.

Rows: how often ``emovox.channels``'s ``auto`` rule splits each kind (it should split every call
and no room recording), then the timeline of each call with ``channels="auto"`` (one speaker per
channel) and with ``channels="mix"`` (the down-mix through the Whisper-frame diariser, automatic
count: what emovox did before): DER (no collar, overlap scored), miss / false alarm / confusion,
window UA and per-speaker dominant emotion, as ``conversations.py`` scores them. Reference =
the Sohn regions of each clean clip. One thread; results written after every conversation.

``--calibrate``: the auto rule's lead threshold chosen on the *calibration* speakers
(``conversations.py calibrate``'s pool), calls with crosstalk anywhere in 0-20 dB; see
:func:`run_calibrate`.

``--speed MINUTES``: held-out conversations rendered as calls (balanced mix), joined into one
two-channel FLAC of that length (``tmp/stereo_call_<M>min.flac``), then ``emovox timeline`` on it
with ``--channels auto`` and ``--channels mix`` in separate processes, interleaved, ``--repeat`` rounds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from conversations import evaluate_one, timed_timeline, unweighted_accuracy
from synthetic_conversations import REPO, SR, build, corpus_clips, pools


def delayed(x: np.ndarray, samples: int) -> np.ndarray:
    return np.concatenate([np.zeros(samples, x.dtype), x[:x.size - samples]]) if samples else x


def noise_like(rng: np.random.Generator, speech: np.ndarray, n: int, snr: float) -> np.ndarray:
    power = float(np.mean(speech[np.abs(speech) > 1e-4] ** 2)) if np.any(np.abs(speech) > 1e-4) else 1e-6
    return (rng.standard_normal(n) * np.sqrt(power / 10 ** (snr / 10))).astype(np.float32)


def telephone(call: np.ndarray) -> np.ndarray:
    """Each side through a narrowband line: 8 kHz, G.711 mu-law, back to 16 kHz."""
    from emovox.robust import telephone_band

    return np.stack([telephone_band(call[:, k], SR, mulaw=True) for k in range(call.shape[1])], axis=1)


def as_call(tracks: np.ndarray, rng: np.random.Generator, snr: float,
            echo: tuple[float, float] = (15, 30)) -> tuple[np.ndarray, dict]:
    quieter = np.zeros(2)
    quieter[rng.integers(2)] = rng.uniform(0, 6)
    gains = 10 ** (-quieter / 20)
    echo_db, delay = rng.uniform(*echo, 2), rng.integers(0, int(0.03 * SR), 2)
    own = tracks * gains
    out = np.empty_like(own)
    for k in range(2):
        leak = delayed(own[:, 1 - k], int(delay[k])) * 10 ** (-echo_db[k] / 20)
        out[:, k] = own[:, k] + leak + noise_like(rng, own[:, k], own.shape[0], snr)
    return out, {"echo_db": echo_db.round(1).tolist(), "gains_db": (20 * np.log10(gains)).round(1).tolist()}


def as_room(tracks: np.ndarray, rng: np.random.Generator, snr: float) -> np.ndarray:
    mono = tracks.sum(axis=1)
    second = delayed(mono, int(rng.integers(0, SR // 1000 + 1))) * 10 ** (-rng.uniform(0, 6) / 20)
    out = np.stack([mono, second], axis=1)
    for k in range(2):
        out[:, k] += noise_like(rng, out[:, k], out.shape[0], snr)
    return out.astype(np.float32)


def summarise(rows: list[dict]) -> list[str]:
    lines = ["| mix | recording | speakers from | conv | split by auto | DER | miss / FA / confusion | "
             "speaker count right | window UA | dominant acc |", "|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["mix"], r["kind"], r["mode"]) for r in rows})
    for mix, kind, mode in keys:
        rs = [r for r in rows if (r["mix"], r["kind"], r["mode"]) == (mix, kind, mode)]
        split = f"{100 * np.mean([r['split'] for r in rs]):.0f} %"
        if mode == "layout":
            lines.append(f"| {mix} | {kind} | - | {len(rs)} | {split} | | | | | |")
            continue
        pairs = [p for r in rs for p in r["pairs"]]
        dom = [d for r in rs for d in r["dominant"]]
        lines.append(f"| {mix} | {kind} | {mode} | {len(rs)} | {split} | {100 * np.mean([r['der'] for r in rs]):.1f} % | "
                     + " / ".join(f"{100 * np.mean([r[c] for r in rs]):.1f}" for c in ("miss", "fa", "conf"))
                     + f" | {100 * np.mean([r['n_hyp'] == r['n_ref'] for r in rs]):.0f} % | "
                     f"{100 * unweighted_accuracy(pairs):.1f} % | {100 * np.mean(dom):.0f} % |")
    return lines


def run_speed(minutes: float, snr: float, repeat: int) -> int:
    import soundfile as sf

    path = REPO / "tmp" / f"stereo_call_{minutes:g}min.flac"
    if not path.is_file():
        rng, render = np.random.default_rng(0), np.random.default_rng(1)
        pool = pools(corpus_clips(), "eval")
        path.parent.mkdir(parents=True, exist_ok=True)
        with sf.SoundFile(path, "w", SR, 2, subtype="PCM_16", format="FLAC") as out:
            written = 0
            while written < minutes * 60 * SR:
                tracks, _ = build(rng, pool, 2, 10, "balanced", False, None, tracks=True)
                call, _ = as_call(tracks, render, snr)
                out.write(np.clip(call, -1, 1))
                written += call.shape[0]
    for _ in range(repeat):
        for mode in ("auto", "mix"):
            timed_timeline(path, f"channels {mode}", ["--channels", mode])
    return 0


def run_calibrate(n: int, snr: float, seed: int, out: str) -> int:
    """Choose ``emovox.channels.LEAD_DB`` on the calibration speakers (not the eval ones): calls
    with crosstalk anywhere in 0-20 dB (lavalier microphones in one room to clean call lines), both
    speakers from one corpus (``--same-corpus``: the diariser's hard case), and room stereo; per conversation the DER of the forced split and of the diarised mix, then for
    each threshold the DER ``auto`` would get (split where the rule splits)."""
    from emovox import Recognizer
    from emovox.channels import channel_levels, decide
    from emovox.conversation import speaker_timeline

    pool = pools(corpus_clips(), "calibrate")
    rec = Recognizer.load()
    thresholds = (4.0, 6.0, 8.0, 10.0, 12.0, 15.0)
    rows = []
    rng = np.random.default_rng([seed, 2, 99])
    for i in range(n):
        tracks, ref = build(rng, pool, 2, 8, "none", False, None, same_corpus=True, tracks=True)
        render = np.random.default_rng([seed, i, 99, 7])
        call, setup = as_call(tracks, render, snr, echo=(0, 20))
        room = as_room(tracks, render, snr)
        row: dict = {"crosstalk_db": min(setup["echo_db"]), **setup}
        for kind, x in (("call", call), ("room", room)):
            levels = np.stack([channel_levels(x, SR, c) for c in range(2)], axis=1)
            row[f"{kind}_split"] = {t: decide(levels, t).split for t in thresholds}
        for mode in ("split", "mix"):
            row[mode] = evaluate_one(speaker_timeline(rec, call, SR, channels=mode), ref)["der"]
        rows.append(row)
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(rows, default=str))
        print(f"{i}: crosstalk {row['crosstalk_db']:.1f} dB, DER split {row['split']:.3f} mix {row['mix']:.3f}",
              file=sys.stderr)
    print("| LEAD_DB | calls split | rooms split | DER auto (mean over calls) |\n|---|---|---|---|")
    for t in thresholds:
        der = [r["split"] if r["call_split"][t] else r["mix"] for r in rows]
        print(f"| {t:g} | {np.mean([r['call_split'][t] for r in rows]):.0%} | "
              f"{np.mean([r['room_split'][t] for r in rows]):.0%} | {100 * np.mean(der):.1f} % |")
    print(f"| (always split / always mix) | | | {100 * np.mean([r['split'] for r in rows]):.1f} / "
          f"{100 * np.mean([r['mix'] for r in rows]):.1f} % |")
    print("\n| crosstalk | calls | DER forced split | DER mix |\n|---|---|---|---|")
    for lo in range(0, 20, 4):
        rs = [r for r in rows if lo <= r["crosstalk_db"] < lo + 4]
        if rs:
            print(f"| {lo}-{lo + 4} dB | {len(rs)} | {100 * np.mean([r['split'] for r in rs]):.1f} % | "
                  f"{100 * np.mean([r['mix'] for r in rs]):.1f} % |")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=30, help="conversations per mix")
    p.add_argument("--turns", type=int, default=8)
    p.add_argument("--mixes", nargs="+", default=["balanced", "skewed"])
    p.add_argument("--overlap", action="store_true", help="turns may start up to 0.5 s early (30 %% of turns)")
    p.add_argument("--snr", type=float, default=30.0, help="noise on each channel, dB below the speech")
    p.add_argument("--telephone", action="store_true", help="each channel through 8 kHz G.711 mu-law")
    p.add_argument("--echo", type=float, nargs=2, default=(15.0, 30.0), metavar=("LO", "HI"),
                   help="crosstalk of the other side, dB below it (default 15 30: call lines; 0 20: lavaliers too)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--calibrate", action="store_true",
                   help="choose LEAD_DB on calibration speakers, crosstalk 0-20 dB (--n calls)")
    p.add_argument("--speed", type=float, default=None, metavar="MINUTES", help="time a call this long instead")
    p.add_argument("--repeat", type=int, default=1, help="--speed: rounds")
    p.add_argument("--out", default=str(REPO / "runs" / "stereo_calls.json"), help="every row, written as it goes")
    args = p.parse_args(argv)
    if args.speed:
        return run_speed(args.speed, args.snr, args.repeat)
    if args.calibrate:
        return run_calibrate(args.n, args.snr, args.seed, args.out)

    import torch

    from emovox import Recognizer
    from emovox.channels import channel_layout
    from emovox.conversation import speaker_timeline

    torch.set_num_threads(1)
    pool = pools(corpus_clips(), "eval")
    rec = Recognizer.load()
    rows: list[dict] = []
    cpu = {"auto": 0.0, "mix": 0.0}
    for mix in args.mixes:
        rng = np.random.default_rng([args.seed, 2, len(mix)])  # the seeds of conversations.py eval
        for i in range(args.n):
            tracks, ref = build(rng, pool, 2, args.turns, mix, args.overlap, None, tracks=True)
            render = np.random.default_rng([args.seed, i, len(mix), 7])
            call, setup = as_call(tracks, render, args.snr, tuple(args.echo))
            room = as_room(tracks, render, args.snr)
            if args.telephone:
                call, room = telephone(call), telephone(room)
            rows.append({"mix": mix, "kind": "room", "mode": "layout", "split": channel_layout(room, SR).split})
            split = channel_layout(call, SR).split
            for mode in ("auto", "mix"):
                start = time.process_time()
                tl = speaker_timeline(rec, call, SR, channels=mode, source=f"{mix}-{i}")
                cpu[mode] += time.process_time() - start
                rows.append({"mix": mix, "kind": "call", "mode": mode, "split": split, **setup,
                             **evaluate_one(tl, ref)})
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps({"args": vars(args), "cpu_seconds": cpu, "rows": rows}, default=str))
            print(f"{mix} {i}: split={split} DER auto {rows[-2]['der']:.3f} mix {rows[-1]['der']:.3f}", file=sys.stderr)
    print("\n".join(summarise(rows)))
    print(f"\nCPU seconds (1 thread): channels=auto {cpu['auto']:.1f}, channels=mix {cpu['mix']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
