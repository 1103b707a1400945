"""Write the default model's training manifest: RAVDESS + TESS + EmoDB from ../shared/corpora.

    python recipes/default/make_manifest.py -o runs/data/default.csv [--corpora ../shared/corpora]

Labels are the canonical names of each loader (the recipe's label map then maps calm -> neutral
and drops boredom). Speaker ids do not collide across the three corpora (Actor_NN, OAF/YAF,
two-digit EmoDB numbers); the script checks that.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORPORA = ("ravdess", "tess", "emodb")


def main(argv: list[str] | None = None) -> int:
    from emovox.corpora import write_manifest
    from emovox.corpora.registry import load_corpus

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-o", "--output", default=str(REPO / "runs" / "data" / "default.csv"), help="manifest to write")
    p.add_argument("--corpora", default=str(REPO.parent / "shared" / "corpora"), help="folder with the corpora")
    args = p.parse_args(argv)
    utts, owner = [], {}
    for name in CORPORA:
        part = load_corpus(name, str(Path(args.corpora) / name))
        for u in part:
            if owner.setdefault(u.speaker, name) != name:
                sys.exit(f"speaker id {u.speaker!r} occurs in both {owner[u.speaker]} and {name}")
        utts += part
        print(f"{name}: {len(part)} utterances, {len({u.speaker for u in part})} speakers")
    write_manifest(args.output, utts)
    counts = Counter(u.label for u in utts)
    print(f"wrote {args.output}: {len(utts)} utterances; labels {dict(sorted(counts.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
