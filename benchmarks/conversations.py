"""Synthetic conversations: diarisation (DER, JER) and emotion accuracy of speaker-aware timelines.

    .venv/bin/python benchmarks/conversations.py eval [--n 8] [--turns 8] [--speakers 2 3 4] [--overlap] [--noise 20]
        [--diarizer whisper|ge2e] [--scoring auto|window] [--adapt]
    .venv/bin/python benchmarks/conversations.py calibrate [--n 12]     # choose emovox.diarize.THRESHOLD
    .venv/bin/python benchmarks/conversations.py speed [--minutes 10]   # CPU time and peak RSS, before/after, with/without speakers
    .venv/bin/python benchmarks/conversations.py stream [--seconds 30]  # live latency of WS /v1/stream
    .venv/bin/python benchmarks/conversations.py demo [--seed 0]        # tmp/conversation_demo.flac (docs' picture)
    .venv/bin/python benchmarks/conversations.py live [--n 10]          # live speaker labels vs the offline timeline

Conversations are built from corpus clips in ../shared/corpora (16 kHz FLAC):

* ``eval`` uses only the default model's **held-out speakers** (its config.json
  ``card.valid_speakers`` found in RAVDESS and EmoDB; for the model shipped at the time of
  writing EmoDB 09 and RAVDESS actors 03, 15, 18, 23), so the emotion numbers are
  speaker-independent. RAVDESS "calm" and EmoDB "boredom" (not model labels) are not used.
  Mixes: ``balanced`` (emotion uniform per clip) and ``skewed`` (70 % neutral, the rest uniform).
* ``calibrate`` uses *other* speakers only: the 10 LibriSpeech speakers, the other EmoDB
  speakers and RAVDESS actors 01-09 minus the held-out ones (none of them in ``eval``, none in
  the training of the speaker projection, ``recipes/speaker_lda``).

A conversation has 2-4 speakers taking turns (never the same speaker twice in a row); a turn is
1-6 clips of its speaker; clips are scaled to one level (-26 dBFS RMS), trimmed to their speech (Sohn VAD) and separated by pauses of
0.2-1.5 s; ``--overlap`` lets a turn start up to 0.5 s before the previous one ends (30 % of
turns); ``--noise DB`` adds white noise at that SNR. The reference speaker turns are the trimmed
clips.

Metrics: DER and JER from ``pyannote.metrics`` (DER with no collar and with a 0.25 s collar,
overlap scored); window-level UA (each classified window's reference = the emotion of the clip
covering most of it); reference speech = Sohn VAD regions of each clean clip; per-speaker dominant emotion accuracy (reference speaker -> hypothesis
speaker by pyannote's optimal mapping; dominant = largest share of speech time). ``--diarizer``
chooses the speaker embeddings (the timeline's Whisper frames, or GE2E on a second pass),
``--scoring`` how windows are scored (pooled from one encoding, or every window through the
graph: the timeline before frames), ``--adapt`` adds rows with per-speaker adaptation
(:mod:`emovox.speaker_adapt`) on the same windows and speakers.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

from synthetic_conversations import REPO, SHARED, SR, build, corpus_clips, corpus_of, pools

warnings.filterwarnings("ignore", message=".*uem.*")


def annotation(segments) -> object:
    from pyannote.core import Annotation, Segment

    ann = Annotation()
    for i, (s, e, spk) in enumerate(segments):
        ann[Segment(s, e), i] = spk
    return ann


def evaluate_one(tl, ref) -> dict:
    from pyannote.metrics.diarization import DiarizationErrorRate, JaccardErrorRate

    reference = annotation([(s, e, spk) for s, e, spk, _ in ref])
    hypothesis = annotation([(t.start, t.end, t.speaker) for t in tl.turns])
    detail = DiarizationErrorRate()(reference, hypothesis, detailed=True)
    total = max(detail["total"], 1e-9)
    out = {"der": detail["diarization error rate"], "miss": detail["missed detection"] / total,
           "fa": detail["false alarm"] / total, "conf": detail["confusion"] / total,
           "der_collar": DiarizationErrorRate(collar=0.25)(reference, hypothesis),
           "jer": JaccardErrorRate()(reference, hypothesis),
           "n_ref": len({r[2] for r in ref}), "n_hyp": len(tl.speakers)}
    pairs = []
    for w in tl.windows:
        if w.is_speech:
            best = max(ref, key=lambda r: min(r[1], w.end) - max(r[0], w.start))
            if min(best[1], w.end) - max(best[0], w.start) > 0 and best[3] is not None:
                pairs.append((best[3], w.label))
    out["pairs"] = pairs
    mapping = DiarizationErrorRate().optimal_mapping(reference, hypothesis)  # hyp -> ref
    to_hyp = {r: h for h, r in mapping.items()}
    summary = tl.summary()
    dom = []
    for spk in sorted({r[2] for r in ref}):
        times: dict[str, float] = {}
        for s, e, who, emo in ref:
            if who == spk and emo:
                times[emo] = times.get(emo, 0.0) + e - s
        truth = max(times, key=lambda k: times[k]) if times else None
        hyp = summary.get(to_hyp.get(spk, ""), {}).get("dominant")
        dom.append(truth is not None and hyp == truth)
    out["dominant"] = dom
    return out


def unweighted_accuracy(pairs) -> float:
    classes = sorted({t for t, _ in pairs})
    return float(np.mean([np.mean([p == c for t, p in pairs if t == c]) for c in classes])) if classes else float("nan")


def timeline_and_diarizer(rec, audio: np.ndarray, args, count: int | None):
    """The conversation's timeline (emotions when ``rec`` is given) and its diariser, finished."""
    from emovox.conversation import speaker_observer
    from emovox.diarize import Diarizer
    from emovox.speaker_adapt import PooledWindows

    observers: list = [PooledWindows()] if args.adapt else []
    if args.diarizer == "whisper":
        observer = speaker_observer(rec, count, args.min_turn)
        if observer is None:
            sys.exit("--diarizer whisper needs the default model (frames) and emovox's speaker projection")
        observers.append(observer)
    if rec is not None:
        tl = rec.timeline(audio, sample_rate=SR, source="conversation", scoring=args.scoring, observers=observers)
    else:
        from emovox.timeline import Timeline
        from emovox.vad import build_vad

        speech = [(float(a), float(b)) for a, b in build_vad("sohn").regions(audio)]
        tl = Timeline("c", audio.size / SR, ["x"], 2.0, 1.0, "sohn", 0.3, [], speech)
    if args.diarizer == "whisper":
        return tl, observers[-1].diarizer, observers[0] if args.adapt else None
    d = Diarizer(speakers=count, min_turn=args.min_turn)
    d.feed(audio, tl.speech)
    d.finish(tl.speech)
    return tl, d, observers[0] if args.adapt else None


def run_eval(args, split: str, thresholds: list[float] | None = None) -> dict:
    import torch

    from emovox import Recognizer
    from emovox.speaker_adapt import adapt_timeline

    torch.set_num_threads(1)
    pool = pools(corpus_clips(), split)
    if args.corpus:  # the speakers of one corpus only (e.g. librispeech: read speech, no acted emotions)
        pool = {k: v for k, v in pool.items() if corpus_of(k) == args.corpus}
        if not pool:
            sys.exit(f"--corpus {args.corpus}: no {split} speakers of that corpus")
    rec = Recognizer.load(args.model) if split == "eval" or args.diarizer == "whisper" else None
    rows = []
    for mix in (args.mixes if split == "eval" else ["none"]):
        for n_spk in args.speakers:
            rng = np.random.default_rng([args.seed, n_spk, len(mix)])
            for _ in range(args.n):
                audio, ref = build(rng, pool, n_spk, args.turns, mix, args.overlap, args.noise, args.same_corpus)
                tl, d, pooled = timeline_and_diarizer(rec, audio, args, n_spk if args.oracle_count else None)
                speech = tl.speech
                for th in thresholds or [None]:
                    tl.attach_speakers(d.turns(speech, threshold=th))
                    rows.append({"mix": mix, "speakers": n_spk, "threshold": th, **evaluate_one(tl, ref)})
                    if pooled is not None:
                        adapt_timeline(tl, pooled, rec)
                        rows.append({"mix": f"{mix} +adapt", "speakers": n_spk, "threshold": th,
                                     **evaluate_one(tl, ref)})
    return {"rows": rows}


def table(rows, key) -> list[str]:
    lines = [f"| {key} | spk | conv | DER | miss / FA / confusion | DER (0.25 s collar) | JER | speaker count right "
             "| window UA | dominant acc |", "|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict = {}
    for r in rows:
        groups.setdefault((r[key], r["speakers"]), []).append(r)
    for (k, n), rs in sorted(groups.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        pairs = [p for r in rs for p in r["pairs"]]
        dom = [d for r in rs for d in r["dominant"]]
        lines.append(f"| {k} | {n} | {len(rs)} | {100 * np.mean([r['der'] for r in rs]):.1f} % | "
                     + " / ".join(f"{100 * np.mean([r[c] for r in rs]):.1f}" for c in ("miss", "fa", "conf")) + " | "
                     f"{100 * np.mean([r['der_collar'] for r in rs]):.1f} % | {100 * np.mean([r['jer'] for r in rs]):.1f} % | "
                     f"{np.mean([r['n_hyp'] == r['n_ref'] for r in rs]) * 100:.0f} % | "
                     f"{100 * unweighted_accuracy(pairs):.1f} % | {100 * np.mean(dom) if dom else float('nan'):.0f} % |")
    return lines


def run_speed(args) -> int:
    """Time `emovox timeline` on a long 2-speaker recording with and without speakers (separate processes)."""
    import soundfile as sf

    path = REPO / "tmp" / f"conversation_{args.minutes:g}min.flac"
    if not path.is_file():
        rng = np.random.default_rng(0)
        pool = pools(corpus_clips(), "eval")
        path.parent.mkdir(parents=True, exist_ok=True)
        with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16", format="FLAC") as out:
            written = 0
            while written < args.minutes * 60 * SR:
                audio, _ = build(rng, pool, 2, 10, "balanced", False, None)
                out.write(audio)
                written += audio.size
    settings = {"before: every window through the graph, no speakers": ["--scoring", "window", "--speakers", "none"],
                "before: every window through the graph, GE2E speakers": ["--scoring", "window", "--diarizer", "ge2e"],
                "after: frames, no speakers": ["--speakers", "none"],
                "after: frames, GE2E speakers": ["--diarizer", "ge2e"],
                "after: frames, Whisper-frame speakers (default)": ["--diarizer", "whisper"]}
    for (name, flags), _ in ((item, r) for r in range(args.repeat) for item in settings.items()):
        timed_timeline(path, name, flags)
    return 0


def timed_timeline(path, name: str, flags: list[str]) -> float:
    """Run `emovox timeline PATH FLAGS` (1 thread) in a child process; print and return its CPU
    seconds per audio second (wall time and peak RSS printed too)."""
    import soundfile as sf

    code = ("import resource, sys; from emovox.cli import main; rc = main(); "
            "print('MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)")
    cmd = [sys.executable, "-c", code, "timeline",
           str(path), "-o", str(REPO / "tmp" / "conversation_speed"), "--threads", "1", *flags, "--format", "json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    duration = sf.info(path).duration
    rss = [int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("MAXRSS")][0] / 1024
    print(f"{name} ({' '.join(flags)}): {duration / 60:.1f} min audio, wall {wall:.1f} s, CPU {cpu:.1f} s "
          f"= {cpu / duration:.4f} s per audio second; peak RSS {rss:.0f} MB", flush=True)
    return cpu / duration


def run_stream(args) -> int:
    """Latency of WS /v1/stream: audio sent at real-time pace in 0.25 s chunks, server-side latency_ms."""
    import torch
    from fastapi.testclient import TestClient

    from emovox import Recognizer
    from emovox.service.app import create_app

    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    audio, _ = build(rng, pools(corpus_clips(), "eval"), 2, 4, "balanced", False, None)
    audio = audio[: int(args.seconds * SR)]
    q = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    step = SR // 4 * 2
    with TestClient(create_app(Recognizer.load(args.model))) as client:
        with client.websocket_connect("ws://127.0.0.1/v1/stream") as ws:  # the service accepts local hosts only
            start = time.monotonic()
            for i in range(0, len(q), step):
                time.sleep(max(0.0, start + i / 2 / SR - time.monotonic()))
                ws.send_bytes(q[i:i + step])
            ws.send_text("end")
            msgs = [ws.receive_json()]
            while msgs[-1]["type"] != "end":
                msgs.append(ws.receive_json())
    lat = np.array([m["latency_ms"] for m in msgs[:-1] if m.get("latency_ms") is not None and m["label"]])
    print(f"{audio.size / SR:.1f} s streamed at real-time pace, {len(msgs) - 1} windows, {lat.size} classified; "
          f"latency from the window's last chunk to its result: median {np.median(lat):.0f} ms, "
          f"p90 {np.percentile(lat, 90):.0f} ms, max {lat.max():.0f} ms; live speakers "
          f"{sorted({m['speaker'] for m in msgs[:-1] if m.get('speaker')}) or 'none (model without frames)'}")
    return 0


def window_speaker_accuracy(windows, ref) -> tuple[float, int]:
    """(share of speech windows whose speaker maps to the true one, number of speakers named):
    true speaker = the clip covering most of the window; hypothesis -> reference by the best
    one-to-one mapping (scipy's Hungarian solver); unmapped names count as wrong."""
    from scipy.optimize import linear_sum_assignment

    pairs = []
    for start, end, speaker in windows:
        best = max(ref, key=lambda r: min(r[1], end) - max(r[0], start))
        if speaker is not None and min(best[1], end) - max(best[0], start) > 0:
            pairs.append((best[2], speaker))
    truth, hyp = sorted({t for t, _ in pairs}), sorted({h for _, h in pairs})
    counts = np.zeros((len(hyp), len(truth)))
    for t, h in pairs:
        counts[hyp.index(h), truth.index(t)] += 1
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / max(1, len(pairs))), len(hyp)


def run_live(args) -> int:
    """Live speaker labels (WS /v1/stream's LiveSession) against the offline timeline, same windows."""
    import torch

    from emovox import Recognizer
    from emovox.conversation import speaker_timeline
    from emovox.service.stream import LiveSession

    torch.set_num_threads(1)
    rec = Recognizer.load(args.model)
    pool = pools(corpus_clips(), "eval")
    for mix in args.mixes:
        for n_spk in args.speakers:
            rng = np.random.default_rng([args.seed, n_spk, len(mix)])
            live_acc, off_acc, live_n, off_n = [], [], [], []
            for _ in range(args.n):
                audio, ref = build(rng, pool, n_spk, args.turns, mix, args.overlap, args.noise)
                session = LiveSession(rec, 2.0, 1.0, "sohn")
                for i in range(0, audio.size, SR // 4):
                    session.put(audio[i:i + SR // 4], min(audio.size, i + SR // 4) / SR)
                session.inbox.put(None)
                msgs = []
                while (m := session.results.get()) is not None:
                    msgs.append(m)
                windows = [(m["start"], m["end"], m["speaker"]) for m in msgs if m["type"] == "window"]
                a, k = window_speaker_accuracy(windows, ref)
                live_acc.append(a)
                live_n.append(k == n_spk)
                tl = speaker_timeline(rec, audio, SR, source="conversation")
                a, k = window_speaker_accuracy([(w.start, w.end, w.speaker) for w in tl.windows if w.is_speech], ref)
                off_acc.append(a)
                off_n.append(k == n_spk)
            print(f"{mix}, {n_spk} speakers, {args.n} conversations: window speaker accuracy live "
                  f"{100 * np.mean(live_acc):.1f} % (count right {100 * np.mean(live_n):.0f} %), offline timeline "
                  f"{100 * np.mean(off_acc):.1f} % (count right {100 * np.mean(off_n):.0f} %)", flush=True)
    return 0


def run_demo(args) -> int:
    """Write one held-out 2-speaker conversation (skewed mix) for the picture in docs/conversations.md."""
    import soundfile as sf

    rng = np.random.default_rng([args.seed, 2, len("skewed")])
    audio, ref = build(rng, pools(corpus_clips(), "eval"), 2, args.turns, "skewed", False, None)
    path = REPO / "tmp" / "conversation_demo.flac"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, SR)
    turns: list[list] = []
    for s, e, spk, _ in ref:
        if turns and turns[-1][2] == spk:
            turns[-1][1] = e
        else:
            turns.append([s, e, spk])
    print(f"wrote {path} ({audio.size / SR:.1f} s); true turns: "
          + ", ".join(f"{spk} {s:.1f}-{e:.1f} s" for s, e, spk in turns))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("eval", "calibrate", "speed", "stream", "demo", "live"))
    p.add_argument("--n", type=int, default=8, help="conversations per (mix, speaker count)")
    p.add_argument("--turns", type=int, default=8)
    p.add_argument("--speakers", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--mixes", nargs="+", default=["balanced", "skewed"])
    p.add_argument("--overlap", action="store_true")
    p.add_argument("--noise", type=float, default=None, help="white noise at this SNR (dB)")
    p.add_argument("--oracle-count", action="store_true", help="give the diariser the true speaker count")
    p.add_argument("--corpus", choices=("ravdess", "emodb", "librispeech"), default=None,
                   help="speakers of this corpus only (calibrate: librispeech is read speech without acted emotions)")
    p.add_argument("--same-corpus", action="store_true",
                   help="every speaker of a conversation from one corpus (one recording setup, as in a real call)")
    p.add_argument("--min-turn", type=float, default=1.0)
    p.add_argument("--diarizer", choices=("ge2e", "whisper"), default="whisper",
                   help="speaker embeddings: the timeline's Whisper frames (default) or GE2E")
    p.add_argument("--scoring", choices=("auto", "window"), default="auto",
                   help="timeline: pool windows from one encoding (auto) or run the model on every window")
    p.add_argument("--adapt", action="store_true", help="eval: also score with per-speaker adaptation")
    p.add_argument("--piece", type=float, default=None, help="seconds per encoded piece (default emovox's 4 s)")
    p.add_argument("--model", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--minutes", type=float, default=10.0, help="speed: length of the recording")
    p.add_argument("--seconds", type=float, default=30.0, help="stream: seconds of audio to stream")
    p.add_argument("--repeat", type=int, default=1, help="speed: rounds over the settings (interleaved)")
    args = p.parse_args(argv)
    if not SHARED.is_dir():
        sys.exit(f"no corpora under {SHARED}; this benchmark needs ../shared/corpora")
    if args.diarizer == "whisper" and args.scoring == "window":
        sys.exit("--diarizer whisper pools the frames of --scoring auto; use --diarizer ge2e with --scoring window")
    if args.piece is not None:
        import emovox.frame_scoring

        emovox.frame_scoring.PIECE = args.piece
    if args.mode == "speed":
        return run_speed(args)
    if args.mode == "stream":
        return run_stream(args)
    if args.mode == "demo":
        return run_demo(args)
    if args.mode == "live":
        return run_live(args)
    start = time.process_time()
    if args.mode == "calibrate":
        lo, hi = (0.35, 0.86) if args.diarizer == "ge2e" else (0.3, 1.01)
        grid = [round(x, 2) for x in np.arange(lo, hi, 0.05)]
        rows = run_eval(args, "calibrate", grid)["rows"]
        print("\n".join(table(rows, "threshold")))
    else:
        rows = run_eval(args, "eval")["rows"]
        print("\n".join(table(rows, "mix")))
    print(f"\n{len(rows)} rows; CPU {time.process_time() - start:.0f} s; options: {vars(args)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
