"""The evidence for the abstention rule's region clause (emovox.speech.MIN_SPEECH_RUN).

    python benchmarks/speech_runs.py [--seeds 10] [--per-corpus 120] [--pad 60] [--out FILE.json]
    python benchmarks/speech_runs.py --timeline --seeds 10 [--vads gated sohn] [--out FILE.json]

By the Silero speech check of ``emovox.speech`` (regions: pauses under MIN_PAUSE bridged):

* non-speech: every clip of the generated set (:mod:`emovox.testing.nonspeech`, seeds 0..N-1):
  the most speech seconds and the longest region any clip has; then each seed's clips joined end
  to end into one long recording (an abrupt edge every few seconds), its longest region;
* speech: ``--per-corpus`` clips of each shared corpus (seeded sample) and every LibriSpeech
  sample: the share whose longest region reaches 0.5-2 s;
* the same corpus clips placed in ``--pad`` seconds of room noise (-60 dBFS white): the share
  called ``no_speech`` by the rule without the region clause and with it.

``--timeline``: instead, the default model's timeline of every generated non-speech clip with each
VAD of ``--vads``: windows, windows given an emotion, and the clips that have any.
"""

from __future__ import annotations

import argparse
import glob
import json
from pathlib import Path

import numpy as np

from emovox.audio import load_audio
from emovox.corpora.registry import load_corpus
from emovox.speech import MIN_SPEECH_RUN, SpeechStats, is_no_speech, speech_regions
from emovox.testing.nonspeech import nonspeech_clips

REPO = Path(__file__).resolve().parents[1]
CORPORA = REPO.parent / "shared" / "corpora"
RUNS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0)


def stats(wave: np.ndarray) -> SpeechStats:
    return SpeechStats.from_regions(speech_regions(wave), wave.size / 16000)


def non_speech(seeds: int) -> dict:
    most, longest, joined = 0.0, 0.0, []
    clips, audio = 0, 0.0
    for seed in range(seeds):
        waves = [x for _, x in nonspeech_clips(seed=seed)]
        for x in waves:
            s = stats(x)
            most, longest = max(most, s.seconds or 0.0), max(longest, s.longest or 0.0)
            clips, audio = clips + 1, audio + x.size / 16000
        whole = np.concatenate(waves)
        joined.append({"seconds": round(whole.size / 16000, 1), "longest_region": round(stats(whole).longest or 0.0, 3)})
    return {"clips": clips, "audio_seconds": round(audio), "most_speech_seconds_in_a_clip": round(most, 3),
            "longest_region_in_a_clip": round(longest, 3), "joined_per_seed": joined,
            "longest_region_joined": max(j["longest_region"] for j in joined)}


def corpus_clips(per_corpus: int) -> dict[str, list[str]]:
    out = {}
    for corpus in ("emodb", "ravdess", "tess", "nemo", "ased"):
        utts = load_corpus(corpus, str(CORPORA / corpus), check_files=False)
        pick = np.random.default_rng(0).permutation(len(utts))[:per_corpus]
        out[corpus] = [utts[i].path for i in pick]
    return out


def speech(per_corpus: int, pad: float) -> dict:
    files = corpus_clips(per_corpus)
    result: dict = {}
    rng = np.random.default_rng(0)
    before = after = total = 0
    for corpus, paths in files.items():
        longest = []
        for path in paths:
            x = np.asarray(load_audio(path), np.float32)
            longest.append(stats(x).longest or 0.0)
            room = (10 ** (-60 / 20) * rng.standard_normal(int(pad * 16000))).astype(np.float32)
            at = int(rng.integers(0, max(1, room.size - x.size)))
            room[at:at + x.size] += x[: room.size - at]
            s = stats(room)
            seconds, fraction = s.seconds or 0.0, s.fraction or 0.0
            before += is_no_speech(seconds, fraction, 0.0)  # the rule before the region clause
            after += s.no_speech
            total += 1
        result[corpus] = {f">= {r} s": round(float(np.mean(np.array(longest) >= r)), 3) for r in RUNS}
    libri = [stats(np.asarray(load_audio(f), np.float32)).longest or 0.0
             for f in sorted(glob.glob(str(CORPORA / "librispeech-samples" / "**" / "*.flac"), recursive=True))]
    result["librispeech"] = {f">= {r} s": round(float(np.mean(np.array(libri) >= r)), 3) for r in RUNS}
    result[f"in {pad:g} s of room noise: no_speech without / with the region clause"] = [
        round(before / total, 3), round(after / total, 3)]
    return result


def timeline_labels(seeds: int, vads: list[str]) -> dict:
    from emovox import Recognizer

    rec = Recognizer.load()
    out = {}
    for vad in vads:
        windows, labelled, clips = 0, 0, []
        for seed in range(seeds):
            for name, x in nonspeech_clips(seed=seed):
                tl = rec.timeline(x, sample_rate=16000, vad=vad)
                n = sum(w.label is not None for w in tl.windows)
                windows, labelled = windows + len(tl.windows), labelled + n
                if n:
                    clips.append(f"seed {seed} {name}")
        out[vad] = {"windows": windows, "labelled": labelled, "clips_with_labels": len(clips), "first": clips[:10]}
        print(vad, out[vad], flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--per-corpus", type=int, default=120)
    ap.add_argument("--pad", type=float, default=60.0)
    ap.add_argument("--out", default=None)
    ap.add_argument("--timeline", action="store_true", help="timeline windows given an emotion on non-speech, per VAD")
    ap.add_argument("--vads", nargs="+", default=["gated", "sohn"])
    args = ap.parse_args(argv)
    if args.timeline:
        result = {"seeds": args.seeds, "timeline_on_non_speech": timeline_labels(args.seeds, args.vads)}
        if args.out:
            Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
        return 0
    result = {"min_speech_run": MIN_SPEECH_RUN, "non_speech": non_speech(args.seeds),
              "speech_longest_region_share": speech(args.per_corpus, args.pad)}
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
