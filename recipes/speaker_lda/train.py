"""Train the speaker projection used to diarise from Whisper frames (emovox.frame_speakers).

    python recipes/speaker_lda/train.py                      # -> src/emovox/assets/speaker_lda/base.*
    python recipes/speaker_lda/train.py --threshold 0.7      # the threshold chosen by
        # python benchmarks/conversations.py calibrate --diarizer whisper --same-corpus --speakers 1 2 3 4

Training speakers are those of RAVDESS, TESS, nEMO and ASED that are in neither evaluation of
``benchmarks/conversations.py``: not the default model's validation speakers (``eval``: they are
its held-out speakers) and not the calibration speakers (RAVDESS actors 01-09, EmoDB, LibriSpeech).
Each clip is trimmed to its speech (Sohn VAD), its first 2 s go through the default package's
graph alone (``--piece``, as the timeline's pieces), and ``--spans`` random 1.6 s
stretches (80 frames, a diarisation segment) give the features: the mean over the stretch of
each hidden state in ``--layers`` (``--stats mean_std``: mean ‖ std), concatenated. Each corpus's mean is subtracted (a recording
is one corpus: one channel and language; without this the LDA spends its directions on what
separates corpora, which no conversation needs), then scikit-learn's LDA (eigen solver,
Ledoit-Wolf shrinkage), one class per speaker, keeps ``--dims`` directions. The stored mean (the
projection's offset) is the mean of all training features.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "corpora"
sys.path.insert(0, str(REPO / "benchmarks"))


def training_speakers(clips_per_speaker: int, seed: int) -> dict[str, tuple[str, list[Path]]]:
    """Speaker -> (corpus, up to ``clips_per_speaker`` clips)."""
    from synthetic_conversations import test_speakers  # the held-out speakers of the default model

    from emovox.corpora.registry import load_corpus

    held = set(test_speakers())
    out: dict[str, list[Path]] = {}
    corpus_of: dict[str, str] = {}
    for corpus in ("ravdess", "tess", "nemo", "ased"):
        for u in load_corpus(corpus, str(SHARED / corpus), check_files=False):
            calibration = corpus == "ravdess" and int(u.speaker[6:]) <= 9
            if u.speaker not in held and not calibration:
                out.setdefault(u.speaker, []).append(Path(u.path))
                corpus_of[u.speaker] = corpus
    rng = np.random.default_rng(seed)
    return {s: (corpus_of[s], [paths[i] for i in sorted(rng.permutation(len(paths))[:clips_per_speaker])])
            for s, paths in sorted(out.items())}


def features(model, paths: list[Path], layers: list[int], spans: int, rng: np.random.Generator,
             piece: float, stats: str = "mean") -> np.ndarray:
    from synthetic_conversations import trimmed

    from emovox.frame_scoring import FRAME
    from emovox.frame_speakers import span_statistics

    rows = []
    for path in paths:
        x = trimmed(path)[0][: int(piece * 16000)]
        if x.size < 16000:
            continue
        h = model.hidden(x)[layers]
        n = 80 if h.shape[1] >= 80 else h.shape[1]
        for _ in range(spans):
            a = int(rng.integers(0, h.shape[1] - n + 1))
            rows.append(span_statistics(h[:, a:a + n], stats))
    assert FRAME == 320
    return np.asarray(rows, np.float32)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=96, help="clips per speaker (at most)")
    ap.add_argument("--spans", type=int, default=3, help="1.6 s stretches per clip")
    ap.add_argument("--layers", type=int, nargs="+", default=[1, 2, 3, 4])
    ap.add_argument("--dims", type=int, default=64)
    ap.add_argument("--stats", choices=("mean", "mean_std"), default="mean",
                    help="pooled over each stretch's frames: the mean, or mean || std per layer (x-vector style)")
    ap.add_argument("--piece", type=float, default=2.0, help="seconds of each clip encoded alone (as the "
                    "timeline's pieces, emovox.frame_scoring.PIECE)")
    ap.add_argument("--no-corpus-centring", dest="centre", action="store_false",
                    help="fit the LDA on the raw features (default: each corpus's mean subtracted first, so the "
                         "directions kept separate speakers of one corpus, not corpora)")
    ap.add_argument("--threshold", type=float, default=0.7, help="automatic-count threshold to store")
    ap.add_argument("--split-share", type=float, default=None,
                    help="store this two-way split share: a recording counted as one speaker whose best split in two "
                         "explains at least this share of the scatter gets two (chosen by benchmarks/conversations.py "
                         "calibrate; default: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "src" / "emovox" / "assets" / "speaker_lda"))
    args = ap.parse_args(argv)
    from safetensors.numpy import save_file
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    from synthetic_conversations import forget_trimmed

    from emovox.audio_model import OnnxAudioModel
    from emovox.inference import DEFAULT_MODEL

    start = time.process_time()
    model = OnnxAudioModel(DEFAULT_MODEL)
    if not model.has_frames or max(args.layers) >= model.hidden(np.zeros(16000, np.float32)).shape[0]:
        sys.exit(f"{DEFAULT_MODEL} has no frame outputs for layers {args.layers}")
    rng = np.random.default_rng(args.seed)
    xs, ys, cs = [], [], []
    speakers = training_speakers(args.clips, args.seed)
    for i, (speaker, (corpus, paths)) in enumerate(speakers.items()):
        x = features(model, paths, args.layers, args.spans, rng, args.piece, args.stats)
        xs.append(x)
        ys += [speaker] * len(x)
        cs += [corpus] * len(x)
        forget_trimmed()
        print(f"{i + 1}/{len(speakers)} {speaker}: {len(x)} spans, CPU {time.process_time() - start:.0f} s", flush=True)
    x, y, c = np.concatenate(xs), np.array(ys), np.array(cs)
    fit = x.copy()
    if args.centre:  # within-corpus differences only: a recording is one corpus (one channel, one language)
        for corpus in np.unique(c):
            fit[c == corpus] -= fit[c == corpus].mean(axis=0)
    lda = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(fit, y)
    dims = min(args.dims, len(speakers) - 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({"mean": x.mean(axis=0).astype(np.float32),
               "scalings": np.ascontiguousarray(lda.scalings_[:, :dims], dtype=np.float32)}, str(out / "base.safetensors"))
    info = {"whisper_model": "base", "layers": args.layers, "stats": args.stats, "dims": dims, "piece": args.piece,
            "corpus_centring": bool(args.centre),
            "threshold": args.threshold, "split_share": args.split_share, "speakers": len(speakers), "spans": int(len(x)),
            "corpora": ["ravdess (actors 10-24 minus held-out)", "tess", "nemo", "ased (minus held-out)"],
            "command": "python recipes/speaker_lda/train.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    (out / "base.json").write_text(json.dumps(info, indent=2) + "\n")
    print(f"wrote {out}/base.* ({len(speakers)} speakers, {len(x)} spans, {dims} dims) "
          f"in {time.process_time() - start:.0f} CPU s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
