"""Pooled Whisper hidden states of every clip of the shared corpora (the default model's features).

For each clip: 16 kHz mono audio (soundfile), Whisper log-mel (:func:`emovox.whisper.mel.log_mel`,
unpadded, chunked at 30 s), the packaged Whisper encoder's hidden states 0..n_layers
(:mod:`emovox.whisper.encoder`), each mean ‖ std pooled over frames -> ``(n_layers + 1, 2 d)``
fp16. ``--degrade telephone`` first passes the audio through the telephone band (8 kHz, G.711 mu-law) of
:mod:`emovox.robust` (the robustness table's test copies); ``--degrade robust`` through a random chain
of every effect; ``--degrade speed|reverb|noise|codec`` through that one effect (training copies for
the one-effect rows). ``--max-layer 4`` keeps states 0..4 only (the shipped head's layers) and is faster. Shards of 200 clips are written
atomically under ``OUT/<corpus>/``; a re-run skips finished clips.

    python recipes/generalist/features.py --corpora ravdess tess --out runs/generalist/feats
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from emovox.io import atomic_path
from emovox.loudness import normalise, remove_dc
from emovox.whisper.encoder import MAX_MEL_FRAMES, whisper_layers
from emovox.whisper.mel import HOP, log_mel
from emovox.whisper.model import mean_std

GLOBS = {"ravdess": "ravdess/Actor_*/*.flac", "tess": "tess/*/*.flac", "emodb": "emodb/wav/*.flac",
         "nemo": "nemo/samples/*.opus", "ased": "ased/*/*.opus"}


def pooled_layers(wl: torch.nn.Module, samples: np.ndarray) -> np.ndarray:
    mel = log_mel(samples)
    chunks = [mel[:, i:i + MAX_MEL_FRAMES] for i in range(0, mel.shape[1], MAX_MEL_FRAMES)] or [mel]
    with torch.inference_mode():
        hs = torch.cat([wl(torch.from_numpy(np.ascontiguousarray(c))[None]) for c in chunks], dim=2)
    return mean_std(hs)[:, 0].numpy().astype(np.float16)


#: ``--degrade robust``: every effect of :mod:`emovox.robust`, each with this probability per clip
ROBUST = {"speed": 0.3, "reverb": {"p": 0.3, "method": "synthetic"}, "noise": 0.4, "telephone": 0.2, "codec": 0.3}
#: ``--degrade speed|reverb|noise|codec``: that effect alone, on every clip (its default ranges);
#: the one-effect-at-a-time rows of the robustness table
SINGLE = {"speed": {"speed": 1.0}, "reverb": {"reverb": {"p": 1.0, "method": "synthetic"}},
          "noise": {"noise": 1.0}, "codec": {"codec": 1.0}}
DEGRADE = ("none", "telephone", "robust", *SINGLE)
_AUGMENTER = None


def degrade(samples: np.ndarray, kind: str, seed: int) -> np.ndarray:
    global _AUGMENTER
    if kind == "none":
        return samples
    from emovox.robust import RobustAugmenter, telephone_band
    from emovox.robust_config import robust_config

    if kind == "telephone":
        return telephone_band(samples, mulaw=True)
    if _AUGMENTER is None:
        _AUGMENTER = RobustAugmenter(robust_config(SINGLE.get(kind, ROBUST)), seed=0)
    return _AUGMENTER(samples, key=seed)


def variant_name(model: str, kind: str, lufs: float | None = None, crop: float | None = None) -> str:
    """The feature folder of one model, degradation, input loudness and speech crop
    (``base-robust-lufs23``, ``base-none-lufs23-crop0.25``)."""
    return f"{model}-{kind}" + ("" if lufs is None else f"-lufs{-lufs:g}") + ("" if crop is None else f"-crop{crop:g}")


_VAD = None


def crop_to_speech(samples: np.ndarray, margin: float) -> np.ndarray:
    """:func:`emovox.long_inputs.crop_to_speech` with one VAD for the whole run."""
    global _VAD
    from emovox.long_inputs import crop_to_speech as crop
    from emovox.vad import GatedVAD

    _VAD = _VAD or GatedVAD()
    return crop(samples, margin, _VAD)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="../shared/corpora")
    ap.add_argument("--corpora", nargs="+", default=list(GLOBS), choices=list(GLOBS))
    ap.add_argument("--model", default="base")
    ap.add_argument("--degrade", default="none", choices=DEGRADE)
    ap.add_argument("--max-layer", type=int, default=None,
                    help="keep hidden states 0..N only and cut the encoder there (default: all)")
    ap.add_argument("--loudness", type=float, default=None, metavar="LUFS",
                    help="scale every clip (after --degrade) to this integrated loudness, as a model whose config "
                         "sets input_loudness does (emovox.loudness); features go to MODEL-DEGRADE-lufsN")
    ap.add_argument("--crop", type=float, default=None, metavar="S",
                    help="keep each clip (after --degrade) from its first to its last speech, S s on each side "
                         "(crop_to_speech); features go to MODEL-DEGRADE[-lufsN]-cropS")
    ap.add_argument("--out", default="runs/generalist/feats")
    ap.add_argument("--shard", type=int, default=200)
    ap.add_argument("--reverse", action="store_true", help="last shard first (a second worker on the same corpus)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    wl = whisper_layers(args.model, "all" if args.max_layer is None else range(args.max_layer + 1), attn="sdpa")
    for corpus in args.corpora:
        files = sorted(glob.glob(os.path.join(args.root, GLOBS[corpus])))
        out = Path(args.out) / variant_name(args.model, args.degrade, args.loudness, args.crop) / corpus
        out.mkdir(parents=True, exist_ok=True)
        starts = range(0, len(files), args.shard)
        for s in reversed(starts) if args.reverse else starts:
            target = out / f"{s // args.shard:04d}.npz"
            if target.exists():
                continue
            part = files[s:s + args.shard]
            feats, durs = [], []
            for i, f in enumerate(part):
                x, sr = sf.read(f, dtype="float32", always_2d=True)
                x = x.mean(1)
                if sr != 16000:
                    raise SystemExit(f"{f}: {sr} Hz, expected 16 kHz")
                x = degrade(x, args.degrade, seed=zlib.crc32(f"{corpus}/{s + i}".encode()) if args.degrade != "telephone" else s + i)
                if args.crop is not None:
                    x = crop_to_speech(x, args.crop)
                x = remove_dc(x)  # as emovox.audio_model.model_input feeds the graph
                if args.loudness is not None:
                    x = normalise(x, args.loudness)
                if len(x) < 2 * HOP * 2:
                    x = np.pad(x, (0, 4 * HOP - len(x)))
                feats.append(pooled_layers(wl, x))
                durs.append(len(x) / 16000)
            rel = np.array([os.path.relpath(f, args.root) for f in part])
            with atomic_path(target, suffix=".npz") as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, paths=rel, feats=np.stack(feats), durations=np.array(durs, np.float32))
            print(corpus, target.name, len(part), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
