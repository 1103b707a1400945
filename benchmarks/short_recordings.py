"""Short recordings (voice notes, short exchanges): is the automatic speaker count right?

    .venv/bin/python benchmarks/short_recordings.py [--pool calibrate|eval] [--n 12] [--out runs/short_counts.json]

One- and two-speaker recordings of 2, 3, 4 and 6 turns (``synthetic_conversations.build``, both
speakers from one corpus; a turn is 1-6 clips, so 2 turns is about 20 s), ``--n`` of each, through
the default model's timeline with its Whisper-frame speakers. For each recording: the segments,
their split share (:func:`emovox.speaker_turns.two_way_share`) and the count of the threshold
alone. The count rule of :mod:`emovox.diarize` (one speaker -> two when the split share reaches
``max(split_share, scale / sqrt(segments))``) is then scored offline for several ``scale`` values:
how many recordings get their true count. ``scale`` = :data:`emovox.diarize.SPLIT_SHARE_SCALE`
was chosen with ``--pool calibrate`` (speakers outside the evaluation); ``--pool eval`` reports
the held-out speakers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from synthetic_conversations import REPO, SR, build, corpus_clips, pools

SCALES = (0.0, 0.6, 0.8, 1.0, 1.2, 1.5)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pool", choices=("calibrate", "eval"), default="calibrate")
    p.add_argument("--n", type=int, default=12, help="recordings per (speakers, turns)")
    p.add_argument("--seed", type=int, default=5)
    p.add_argument("--out", default=str(REPO / "runs" / "short_counts.json"))
    args = p.parse_args(argv)

    import torch

    from emovox import Recognizer
    from emovox.conversation import speaker_observer
    from emovox.speaker_turns import two_way_share

    torch.set_num_threads(1)
    pool = pools(corpus_clips(), args.pool)
    rec = Recognizer.load()
    rng = np.random.default_rng(args.seed)
    mix = "balanced" if args.pool == "eval" else "none"
    rows = []
    for n_spk in (1, 2):
        for turns in (2, 3, 4, 6):
            for _ in range(args.n):
                audio, _ = build(rng, pool, n_spk, turns, mix, False, None, same_corpus=True)
                observer = speaker_observer(rec)
                tl = rec.timeline(audio, SR, observers=[observer])
                d = observer.diarizer
                emb, share = d.embeddings(), d.split_share
                d.split_share = None  # the threshold alone
                alone = len({t.speaker for t in d.turns(tl.speech)})
                rows.append({"speakers": n_spk, "turns": turns, "seconds": audio.size / SR, "segments": len(emb),
                             "share": two_way_share(emb), "threshold_count": alone, "split_share": share})
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(rows))
            print(f"{n_spk} speaker(s), {turns} turns done", file=sys.stderr)
    print(f"| scale | one speaker counted right | two speakers counted right | all ({args.pool} pool) |")
    print("|---|---|---|---|")
    for scale in SCALES:
        right = {1: 0, 2: 0}
        for r in rows:
            count = r["threshold_count"]
            if count == 1 and r["share"] >= max(r["split_share"], scale / np.sqrt(max(r["segments"], 1))):
                count = 2
            right[r["speakers"]] += count == r["speakers"]
        n1, n2 = (sum(r["speakers"] == k for r in rows) for k in (1, 2))
        print(f"| {scale:g} | {right[1]} / {n1} | {right[2]} / {n2} | {right[1] + right[2]} / {n1 + n2} |")
    for n_spk in (1, 2):
        for turns in (2, 3, 4, 6):
            rs = [r for r in rows if (r["speakers"], r["turns"]) == (n_spk, turns)]
            print(f"{n_spk} speaker(s), {turns} turns: median {np.median([r['seconds'] for r in rs]):.0f} s, "
                  f"{np.median([r['segments'] for r in rs]):.0f} segments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
