"""Fuzz the audio path: bytes/arrays -> decode -> resample -> front-end -> model.

    .venv/bin/python fuzz/fuzz_audio.py [--examples 10000] [--seed 0] [--max-minutes 30] [--model FOLDER]

Inputs (drawn with hypothesis, generation phase only, no shrinking):

* mutations of real WAV (8-bit/16-bit/24-bit/float, 8-48 kHz, mono/stereo/6-channel), FLAC and
  OGG files made from an example clip: bit flips and byte overwrites (biased to the header),
  header integers set to extreme values, truncation, deletion, insertion, repetition, splicing;
  plus random bytes with and without an audio magic number;
* arrays of any dtype (ints, floats incl. float16/longdouble, byte-swapped, bool, complex,
  strings), shape (0-d to 3-d, empty, transposed, many channels), memory layout, values
  (NaN, +-inf, huge, subnormal) and sample rate (any int, float, NaN, bool, None, string).

Bytes go through :func:`emovox.audio.decode_bytes` and then ``Recognizer.predict``; every 10th
input is also written to a file and read by ``load_audio``, ``audio_duration``, ``iter_blocks``
and ``Recognizer.predict(path)``. Arrays go through ``Recognizer.predict(array, sample_rate)``
(``prepare_array`` inside). The model is the bundled default model when present, else a
randomly initialised ResNet18 of the default model's size (8 channels, 64 log-mels).

The only exception allowed to escape is :class:`emovox.errors.EmovoxError`; a prediction must
have finite probabilities summing to 1. The script prints the number of inputs, the outcomes by
kind, the slowest input, and exits 1 if anything else escaped (failing inputs are saved under
``--out`` for reproduction).
"""

from __future__ import annotations

import argparse
import collections
import io
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

REPO = Path(__file__).resolve().parents[1]
#: Decoding stops past this length (what the service does for uploads; a decompression-bomb guard).
MAX_SECONDS = 120.0
MAGICS = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"FORM", b"ID3", b"\xff\xfb", b"%PDF", b"PK\x03\x04",
          b"\x00\x00\x00\x1cftypM4A ", b"\x00\x00\x00\x14ftypqt  ", b"\x1a\x45\xdf\xa3", b"\xff\xf1")


class BadOutput(AssertionError):
    """A prediction that came back without an exception but with unusable probabilities."""


# ------------------------------------------------------------------------------------ seeds
def seed_files(seconds: float = 0.5) -> list[tuple[str, bytes]]:
    """Small valid files in every supported container/depth/rate/layout, from a real clip if present."""
    import soundfile as sf
    import soxr

    examples = sorted((REPO / "examples").glob("*.flac"))
    if examples:
        x, rate = sf.read(examples[0], dtype="float32", always_2d=True)
        x = x.mean(axis=1)
        start = max(0, len(x) // 2 - int(seconds * rate) // 2)
        x = x[start:start + int(seconds * rate)]
    else:
        rate = 16_000
        t = np.arange(int(seconds * rate)) / rate
        x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    layouts = [("WAV", "PCM_16", 16_000, 1, "wav"), ("WAV", "PCM_24", 44_100, 2, "wav"),
               ("WAV", "FLOAT", 48_000, 1, "wav"), ("WAV", "PCM_U8", 8_000, 1, "wav"),
               ("WAV", "PCM_16", 16_000, 6, "wav"), ("FLAC", "PCM_16", 16_000, 1, "flac"),
               ("FLAC", "PCM_24", 22_050, 2, "flac"), ("OGG", "VORBIS", 16_000, 1, "ogg")]
    out = []
    for fmt, subtype, sr, channels, ext in layouts:
        y = soxr.resample(x, rate, sr).astype(np.float32)
        y = np.repeat(y[:, None], channels, axis=1) * np.linspace(1.0, 0.5, channels, dtype=np.float32)
        buf = io.BytesIO()
        sf.write(buf, y, sr, format=fmt, subtype=subtype)
        out.append((f"seed_{subtype.lower()}_{sr}_{channels}ch.{ext}", buf.getvalue()))
    return out


#: Containers only PyAV decodes (libsndfile refuses them): (name, format, codec, video codec, rate, channels).
AV_LAYOUTS = [("seed_aac_44100_2ch.m4a", "ipod", "aac", None, 44_100, 2),
              ("seed_aac_48000_1ch_video.mp4", "mp4", "aac", "mpeg4", 48_000, 1),
              ("seed_aac_16000_1ch.mov", "mov", "aac", None, 16_000, 1),
              ("seed_opus_48000_1ch_video.webm", "webm", "libopus", "libvpx", 48_000, 1),
              ("seed_opus_48000_2ch.mka", "matroska", "libopus", None, 48_000, 2),
              ("seed_aac_22050_1ch.aac", "adts", "aac", None, 22_050, 1)]


def encode_av(x: np.ndarray, rate: int, fmt: str, codec: str, video: str | None = None, channels: int = 1) -> bytes:
    """``x`` (mono float32 at ``rate``) encoded with PyAV in container ``fmt`` (plus a tiny video track)."""
    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as c:
        stream = c.add_stream(codec, rate=rate)
        stream.layout = "mono" if channels == 1 else "stereo"
        if codec.startswith("wmav"):
            stream.bit_rate = 96_000  # the WMA encoder has no default rate
        if video:
            v = c.add_stream(video, rate=10)
            v.width = v.height = 32
            v.pix_fmt = "yuv420p"
            for _ in range(3):
                for packet in v.encode(av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")):
                    c.mux(packet)
            for packet in v.encode():
                c.mux(packet)
        samples = np.tile(x[None].astype(np.float32), (channels, 1))
        if not stream.codec_context.is_open:
            stream.codec_context.open()
        size = stream.codec_context.frame_size or samples.shape[1]  # WMA takes frames of a fixed size only
        for start in range(0, samples.shape[1], size):
            piece = samples[:, start:start + size]
            if stream.codec_context.frame_size:
                piece = np.pad(piece, ((0, 0), (0, size - piece.shape[1])))
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="fltp", layout=stream.layout.name)
            frame.sample_rate, frame.pts = rate, start
            for packet in stream.encode(frame):
                c.mux(packet)
        for packet in stream.encode():
            c.mux(packet)
    return buf.getvalue()


def av_seed_files(seconds: float = 0.5) -> list[tuple[str, bytes]]:
    """Valid M4A/MP4/MOV/WEBM/MKA/AAC files (the PyAV decoder's seeds); empty without PyAV."""
    import soxr

    try:
        import av  # noqa: F401
    except ImportError:
        return []
    name, base = seed_files(seconds)[0]
    x = decode_seed(base)
    return [(n, encode_av(soxr.resample(x, 16_000, sr).astype(np.float32), sr, fmt, codec, video, ch))
            for n, fmt, codec, video, sr, ch in AV_LAYOUTS]


def decode_seed(data: bytes) -> np.ndarray:
    import soundfile as sf

    return sf.read(io.BytesIO(data), dtype="float32")[0]


# ------------------------------------------------------------------------------- strategies
SPECIAL_INTS = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


@st.composite
def mutated_files(draw: Callable, seeds: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """A seed file with 1-4 mutations (header-biased)."""
    name, data = draw(st.sampled_from(seeds))
    buf = bytearray(data)
    for op in draw(st.lists(st.sampled_from(("flip", "overwrite", "field", "truncate", "delete", "insert",
                                             "repeat", "splice")), min_size=1, max_size=4)):
        if not buf:
            break
        pos = draw(st.one_of(st.integers(0, min(63, len(buf) - 1)), st.integers(0, len(buf) - 1)))
        if op == "flip":
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            buf[pos:pos + len(chunk)] = chunk
        elif op == "field":
            width = draw(st.sampled_from((2, 4)))
            value = draw(st.one_of(st.sampled_from(SPECIAL_INTS), st.integers(0, 2 ** (8 * width) - 1)))
            order = draw(st.sampled_from(("little", "big")))
            buf[pos:pos + width] = (value % 2 ** (8 * width)).to_bytes(width, order)
        elif op == "truncate":
            del buf[pos:]
        elif op == "delete":
            del buf[pos:pos + draw(st.integers(1, 512))]
        elif op == "insert":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "repeat":
            n = draw(st.integers(1, 256))
            buf[pos:pos] = bytes(buf[pos:pos + n]) * draw(st.integers(1, 8))
        else:
            other = draw(st.sampled_from(seeds))[1]
            buf[pos:] = other[draw(st.integers(0, len(other) - 1)):]
    return name, bytes(buf)


def byte_inputs(seeds: list[tuple[str, bytes]]) -> st.SearchStrategy[tuple[str, bytes]]:
    """Mutated real files (most), random bytes, and random bytes behind an audio magic number."""
    random_bytes = st.tuples(st.just("random.wav"), st.binary(max_size=2048))
    with_magic = st.builds(lambda m, b: ("magic.wav", m + b), st.sampled_from(MAGICS), st.binary(max_size=2048))
    return st.one_of(mutated_files(seeds), mutated_files(seeds), mutated_files(seeds), random_bytes, with_magic)


NUMERIC = ("int8", "uint8", "<i2", ">i2", "uint16", "int32", "uint32", "int64", "uint64",
           "float16", "<f4", ">f4", "float64", ">f8", "longdouble")


@st.composite
def shapes(draw: Callable) -> tuple[int, ...]:
    return draw(st.one_of(
        st.tuples(st.integers(0, 24_000)),                                # mono, empty to 1.5 s at 16 kHz
        st.tuples(st.integers(0, 12_000), st.integers(0, 8)),             # (samples, channels)
        st.tuples(st.integers(0, 8), st.integers(0, 12_000)),             # (channels, samples): transposed
        st.tuples(st.integers(0, 64), st.integers(200, 600)),             # many channels
        st.just(()),                                                      # 0-d
        st.tuples(st.integers(0, 4), st.integers(0, 64), st.integers(0, 4)),  # 3-d
    ))


@st.composite
def arrays(draw: Callable) -> np.ndarray:
    """Numeric arrays (few distinct values + a fill; NaN/inf/huge allowed) or non-numeric ones."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from((np.array(["a", "b"]), np.array([1 + 2j] * 800), np.zeros(800, bool),
                                     np.array([None] * 800, dtype=object), np.array(b"\x00\x01" * 400))))
    dtype = np.dtype(draw(st.sampled_from(NUMERIC)))
    shape = draw(shapes())
    if dtype.kind == "f":
        finite = draw(st.booleans())
        elements = st.floats(width=min(dtype.itemsize * 8, 64), allow_nan=not finite, allow_infinity=not finite)
        fill = st.one_of(st.just(0.0), st.floats(-1, 1, width=min(dtype.itemsize * 8, 64)))
    else:
        elements, fill = hnp.from_dtype(dtype), hnp.from_dtype(dtype)
    x = draw(hnp.arrays(dtype, shape, elements=elements, fill=fill))
    if x.size > 1 and draw(st.integers(0, 4)) == 0:
        x = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).standard_normal(x.shape).astype(dtype) \
            if dtype.kind == "f" else x
    layout = draw(st.sampled_from(("c", "f", "strided")))
    if layout == "f" and x.ndim >= 2:
        x = np.asfortranarray(x)
    elif layout == "strided" and x.ndim >= 1 and x.shape[0] > 1:
        x = x[::2]
    return x


def rates() -> st.SearchStrategy[Any]:
    common = st.sampled_from((8000, 11025, 16000, 22050, 44100, 48000, 96000))
    odd = st.one_of(st.integers(-2**40, 2**40), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from((True, False, None, "16000", 16000.0, 16000.5, np.int64(44100), np.float32(8000))))
    return st.one_of(common, common, odd)


# -------------------------------------------------------------------------------- targets
def check_prediction(pred: Any) -> None:
    """A usable Prediction; a list (an object array is a batch of inputs) must hold results or errors."""
    if isinstance(pred, list):
        for p in pred:
            if p.error is None:
                check_prediction(p)
            elif not isinstance(p.error, str) or p.label is not None:
                raise BadOutput(f"malformed failed prediction {p!r}")
        return
    probs = np.array(list(pred.probabilities.values()), dtype=np.float64)
    if not pred.ok or pred.label is None or not np.isfinite(probs).all() or abs(probs.sum() - 1.0) > 1e-3:
        raise BadOutput(f"unusable prediction {pred!r}")


def run_bytes(recognizer: Any, name: str, data: bytes, via_file: bool = False) -> str:
    """Bytes through decode -> model (and the file readers when ``via_file``); returns the outcome.

    Raises whatever escapes other than EmovoxError (the caller decides: test failure or tally).
    """
    from emovox.audio import audio_duration, decode_bytes, iter_blocks, load_audio
    from emovox.errors import EmovoxError

    try:
        samples = decode_bytes(data, name, max_seconds=MAX_SECONDS)
        check_prediction(recognizer.predict(samples, sample_rate=16000, source=name))
        outcome = "ok"
    except EmovoxError as exc:
        outcome = f"EmovoxError/{type(exc).__name__}: {problem(exc)}"
    if via_file:
        with tempfile.TemporaryDirectory(prefix="emovox-fuzz-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            for fn in (load_audio, audio_duration, lambda p: [b.size for b in iter_blocks(p, 0.25)]):
                try:
                    fn(path)
                except EmovoxError:
                    pass
            try:
                check_prediction(recognizer.predict(path))
            except EmovoxError:
                pass
    return outcome


def run_array(recognizer: Any, x: np.ndarray, rate: Any) -> str:
    """An array through prepare_array -> front-end -> model; returns the outcome (see run_bytes)."""
    from emovox.errors import EmovoxError

    try:
        check_prediction(recognizer.predict(x, sample_rate=rate))
        return "ok"
    except EmovoxError as exc:
        return f"EmovoxError/{type(exc).__name__}: {problem(exc)}"


def problem(exc: Exception) -> str:
    """The kind of problem an error reports, without the numbers and names that vary per input."""
    text = getattr(exc, "problem", None) or str(exc)
    text = re.sub(r"\(.*", "", text)  # drop details in parentheses (libsndfile's wording, hints)
    return re.sub(r"-?\d[\d.e+-]*|'[^']*'|\[[^]]*\]", "#", text).strip()[:70]


# ------------------------------------------------------------------------------------ model
def model_folder(model: str | None, workdir: Path) -> Path:
    """``model``, else the bundled default model, else a random ResNet18 of its size saved in ``workdir``."""
    from emovox.inference import DEFAULT_MODEL

    folder = Path(model) if model else DEFAULT_MODEL
    if model or (folder / "config.json").is_file():
        return folder
    import torch

    from emovox.models import build_model, save_model

    torch.manual_seed(0)
    labels = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    net = build_model("resnet18", len(labels), n_mels=64, base_channels=8, embed_dim=128)
    return save_model(workdir / "random_resnet18", net.eval(), {
        "frontend": {"name": "logmel", "kwargs": {"n_mels": 64}}, "normalize": "segment",
        "labels": labels, "name": "random-resnet18"})


def load_recognizer(model: str | None, workdir: Path) -> Any:
    """A one-thread Recognizer for :func:`model_folder`."""
    from emovox.inference import Recognizer

    return Recognizer.load(model_folder(model, workdir), threads=1)


# ------------------------------------------------------------------------------------- main
class Tally:
    def __init__(self, recognizer: Any, out: Path, deadline: float) -> None:
        self.recognizer, self.out, self.deadline = recognizer, out, deadline
        self.outcomes: collections.Counter = collections.Counter()
        self.escaped: collections.Counter = collections.Counter()
        self.count = 0
        self.slowest = (0.0, "")

    def __call__(self, case: tuple) -> None:
        if time.time() > self.deadline:
            raise TimeoutError("time cap reached")
        self.count += 1
        t0 = time.perf_counter()
        kind = "bytes" if isinstance(case[1], bytes) else "array"
        try:
            if kind == "bytes":
                outcome = run_bytes(self.recognizer, case[0], case[1], via_file=self.count % 10 == 0)
            else:
                outcome = run_array(self.recognizer, case[0], case[1])
        except Exception as exc:  # noqa: BLE001 - the whole point: record what escaped
            outcome = f"ESCAPED/{type(exc).__name__}"
            self.escaped[f"{type(exc).__name__}: {str(exc)[:120]}"] += 1
            self._save(case, exc)
        self.outcomes[f"{kind} {outcome}"] += 1
        took = time.perf_counter() - t0
        if took > self.slowest[0]:
            self.slowest = (took, f"{kind} {outcome} {describe(case)}")

    def _save(self, case: tuple, exc: BaseException) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        stem = self.out / f"escape_{self.count:06d}"
        if isinstance(case[1], bytes):
            stem.with_suffix(".bin").write_bytes(case[1])
        else:
            if case[0].dtype != object:
                np.save(stem.with_suffix(".npy"), case[0], allow_pickle=False)
            stem.with_suffix(".rate.txt").write_text(repr(case[1]))
        stem.with_suffix(".txt").write_text("".join(traceback.format_exception(exc)))


class _NoModel:
    """Stands in for the recognizer with ``--decode-only``: checks the decoded audio, runs no model."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def info(self) -> dict:
        return {**self.inner.info(), "name": "none (--decode-only)"}

    def predict(self, x: Any, sample_rate: Any = None, source: str | None = None) -> Any:
        from emovox.audio import load_audio, prepare_array
        from emovox.inference import Prediction

        y = load_audio(x) if isinstance(x, (str, Path)) else prepare_array(x, sample_rate, source or "<array>")
        return Prediction(source or str(x), "ok", {"ok": 1.0}, y.size / 16000)


def describe(case: tuple) -> str:
    if isinstance(case[1], bytes):
        return f"{case[0]} ({len(case[1])} bytes)"
    return f"array {case[0].dtype} {case[0].shape} rate={case[1]!r}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=10_000, help="number of inputs (default 10000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-minutes", type=float, default=30.0, help="time cap (default 30 min)")
    ap.add_argument("--model", help="model folder (default: the bundled model, else a random ResNet18)")
    ap.add_argument("--out", default=str(REPO / "runs" / "fuzz"), help="where failing inputs are saved")
    ap.add_argument("--decoder", choices=("all", "av"), default="all",
                    help="all: every seed and arrays; av: only mutated M4A/MP4/MOV/WEBM/MKA/AAC (the PyAV path)")
    ap.add_argument("--decode-only", action="store_true", help="skip the model (decoders only; faster)")
    args = ap.parse_args(argv)

    import logging
    import warnings

    import torch
    from hypothesis import HealthCheck, Phase, given, seed, settings

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="emovox-fuzz-model-"))
    recognizer = load_recognizer(args.model, workdir)
    tally = Tally(recognizer, Path(args.out), started + 60 * args.max_minutes)
    if args.decode_only:
        recognizer = _NoModel(recognizer)
    if args.decoder == "av":
        cases = byte_inputs(av_seed_files())
    else:
        cases = st.one_of(byte_inputs(seed_files() + av_seed_files()), st.tuples(arrays(), rates()))
    attempt = 0
    while tally.count < args.examples and time.time() < tally.deadline:
        budget = args.examples - tally.count

        @seed(args.seed + attempt)
        @settings(max_examples=budget, database=None, deadline=None, phases=[Phase.generate],
                  suppress_health_check=list(HealthCheck))
        @given(cases)
        def fuzz(case: tuple) -> None:
            tally(case)

        try:
            fuzz()
        except TimeoutError:
            break
        attempt += 1
    wall = time.time() - started
    print(f"model: {recognizer.info()['name']} ({recognizer.info()['model']})")
    print(f"inputs: {tally.count} in {wall:.0f} s ({tally.count / max(wall, 1e-9):.1f}/s)")
    for outcome, n in sorted(tally.outcomes.items()):
        print(f"  {n:6d}  {outcome}")
    print(f"slowest input: {tally.slowest[0]:.2f} s ({tally.slowest[1]})")
    if tally.escaped:
        print(f"FAIL: {sum(tally.escaped.values())} inputs raised something other than EmovoxError "
              f"(saved under {args.out}):")
        for what, n in tally.escaped.most_common():
            print(f"  {n:6d}  {what}")
        return 1
    if tally.count < args.examples:
        print(f"FAIL: only {tally.count} of {args.examples} inputs before the time cap")
        return 1
    print("OK: only EmovoxError escaped")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
