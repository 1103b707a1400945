"""Fuzz model folders: mutated ``config.json`` (and safetensors headers) -> ``Recognizer.load``.

    .venv/bin/python fuzz/fuzz_config.py [--examples 2000] [--seed 0] [--max-minutes 10]

Starts from a tiny valid package (ResNet18, 4 channels, 16 log-mels) and draws, with hypothesis:
a key anywhere in the config set to an extreme JSON value (huge/negative/fractional numbers,
NaN/Infinity, strings for numbers, nested lists/objects, null), keys deleted, the whole config
replaced by random JSON, deeply nested JSON, byte-level damage to the JSON text, and damage to
the safetensors header. Each folder goes through ``Recognizer.load`` (read_config, the front-end,
load_model). The only exception allowed to escape is :class:`emovox.errors.EmovoxError`; the
script prints outcomes by kind and exits 1 if anything else escaped.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
EXTREME = (0, -1, 1, 2, 3, 7, 8.5, 0.5, -0.0, 1e308, -1e308, 2**31, 2**63, 5_000_000, 5e6, 65_536, 2_000,
           math.nan, math.inf, "64", "", "x" * 300, None, True, False, [], {}, [1, 2], {"a": 1}, [[[]]])


def make_package(folder: Path) -> Path:
    """A tiny valid model package (the fuzzer's seed)."""
    import torch

    from emovox.models import build_model, save_model

    torch.manual_seed(0)
    model = build_model("resnet18", 4, n_mels=16, base_channels=4, embed_dim=16)
    return save_model(folder, model.eval(), {"frontend": {"name": "logmel", "kwargs": {"n_mels": 16}},
                                             "normalize": "segment", "labels": ["a", "b", "c", "d"]})


def seed_config() -> tuple[dict, bytes]:
    """(config, weights bytes) of the tiny seed package."""
    work = Path(tempfile.mkdtemp(prefix="emovox-fuzz-seed-"))
    try:
        folder = make_package(work / "seed")
        return json.loads((folder / "config.json").read_text()), (folder / "model.safetensors").read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path inside a JSON value."""
    out = [prefix] if prefix else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, prefix + (i,))
    return out


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.text(max_size=20),
              st.sampled_from(EXTREME)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)


@st.composite
def mutated_configs(draw: Callable, config: dict, weights: bytes) -> tuple[str, bytes]:
    """(config.json text, model.safetensors bytes) after 1-3 mutations."""
    cfg = json.loads(json.dumps(config))
    data = bytearray(weights)
    text = None
    for op in draw(st.lists(st.sampled_from(("set", "set", "set", "delete", "replace", "nest", "bytes", "header")),
                            min_size=1, max_size=3)):
        paths = _paths(cfg) if isinstance(cfg, (dict, list)) else []
        if op in ("set", "delete") and paths:
            path = draw(st.sampled_from(paths))
            parent = cfg
            for key in path[:-1]:
                parent = parent[key]
            if op == "set":
                parent[path[-1]] = draw(st.one_of(st.sampled_from(EXTREME), json_values))
            elif isinstance(parent, dict):
                del parent[path[-1]]
        elif op == "replace":
            cfg = draw(json_values)
        elif op == "nest":
            depth = draw(st.sampled_from((20, 1000, 100_000)))
            text = "[" * depth + "]" * depth if draw(st.booleans()) else '{"a":' * depth + "1" + "}" * depth
        elif op == "bytes":
            raw = bytearray(json.dumps(cfg, allow_nan=True).encode())
            if raw:
                pos = draw(st.integers(0, len(raw) - 1))
                raw[pos:pos + 1] = draw(st.binary(min_size=0, max_size=4))
            text = raw.decode("utf-8", errors="replace")
        else:  # safetensors header: length field or JSON damaged
            pos = draw(st.integers(0, min(len(data) - 1, 400)))
            data[pos] = draw(st.integers(0, 255))
    if text is None:
        text = json.dumps(cfg, allow_nan=True)
    return text, bytes(data)


def run_case(folder: Path, text: str, weights: bytes) -> str:
    """Load a package made of ``text`` and ``weights``; returns the outcome kind. Anything but an
    EmovoxError propagates."""
    from emovox.errors import EmovoxError
    from emovox.inference import Recognizer

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    (folder / "model.safetensors").write_bytes(weights)
    try:
        Recognizer.load(folder, threads=1)
        return "ok"
    except EmovoxError as exc:
        return type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import seed as use_seed

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--examples", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=10.0)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="emovox-fuzz-config-"))
    config, weights = seed_config()
    outcomes: collections.Counter = collections.Counter()
    escaped: list[str] = []
    deadline = time.monotonic() + 60 * args.max_minutes

    @use_seed(args.seed)
    @settings(max_examples=args.examples, deadline=None, database=None, phases=["generate"],
              suppress_health_check=list(HealthCheck))
    @given(case=mutated_configs(config, weights))
    def one(case: tuple[str, bytes]) -> None:
        if time.monotonic() > deadline:
            return
        try:
            outcomes[run_case(work / "case", *case)] += 1
        except Exception:  # noqa: BLE001 - recorded, not raised: the run reports every escape
            outcomes["ESCAPED"] += 1
            escaped.append(case[0][:300] + "\n" + traceback.format_exc(limit=3))

    start = time.monotonic()
    one()
    shutil.rmtree(work, ignore_errors=True)
    print(f"{sum(outcomes.values())} model folders in {time.monotonic() - start:.0f} s: {dict(outcomes)}")
    for e in escaped[:5]:
        print("ESCAPED:", e, file=sys.stderr)
    return 1 if escaped else 0


if __name__ == "__main__":
    sys.exit(main())
