"""Speech presence for abstention: the Silero VAD's ONNX graph run with onnxruntime (torch-free).

The ``silero-vad`` package ships ``silero_vad_16k_sequence.onnx`` (from 6.2.2; its file is
located without importing the package, which imports torch). The model takes 512-sample chunks
(32 ms at 16 kHz), each with the previous chunk's last 64 samples as context, and a recurrent
state, and gives a speech probability per chunk. The sequence graph runs the convolutional
front-end of up to :data:`BLOCK` chunks in one call and only the LSTM step by step inside it:
the same probabilities as the chunk-at-a-time ``silero_vad.onnx`` emovox ran before (identical
on 1329 s of corpus audio) at 0.46x its CPU time (``benchmarks/vad_speed.py``).

:func:`speech_summary` reports the speech fraction and seconds of a clip and its longest speech
region (pauses under :data:`MIN_PAUSE` bridged). A recording is ``no_speech`` when it has less
than :data:`MIN_SPEECH_SECONDS` of speech, or a speech fraction below :data:`MIN_SPEECH_FRACTION`
and no region as long as :data:`MIN_SPEECH_RUN` (documented defaults, checked on the generated
non-speech set of :mod:`emovox.testing.nonspeech` and on every shared corpus). The region clause
(2026-12-02) is for long recordings with little speech: a 60 s voice note holding one 4 s
utterance has a fraction of 3 % and was ``no_speech`` before it. On 1040 generated non-speech
clips (seeds 0-9, 7713 s) no clip had more than 0.35 s of speech in all, nor a region longer, and
ten 770 s recordings of them joined end to end at most a 0.86 s region; of 120 clips per corpus
92.5 % (ASED) to 100 % (TESS) have a region of at least 1 s, and 99 of the 100 LibriSpeech clips.
Each of those 600 corpus clips alone in 60 s of room noise was ``no_speech`` 97 % of the time
without the region clause and 3.5 % with it (``benchmarks/speech_runs.py``).

The VAD misses quiet speech: on the default model's validation speakers (497 clips) turned down
by 30 dB it called 15.5 % of the clips ``no_speech`` (4.2 % at their own level), though nothing but
the level had changed. A clip quieter than :data:`VAD_LOUDNESS` is therefore raised to it first, for
the VAD only (by at most ``MAX_GAIN_DB``; louder clips are left alone, but for float data beyond
full scale, louder than :data:`VAD_CEILING`, which is turned down): 6.4 % at -30 dB, and the 104
generated non-speech clips still have no speech (``benchmarks/input_level.py --vad``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from typing import NamedTuple
from pathlib import Path

import numpy as np

from emovox.errors import DependencyError
from emovox.loudness import within_range

SAMPLE_RATE = 16000
CHUNK, CONTEXT = 512, 64
THRESHOLD = 0.5
MIN_SPEECH_SECONDS = 0.3
MIN_SPEECH_FRACTION = 0.05
MIN_SPEECH_RUN = 1.0  #: s: a region this long is speech whatever the fraction (see the module notes)
MIN_PAUSE = 0.3  #: s: shorter pauses inside a speech region are bridged
#: s: an answer from less speech than this is marked ``uncertain`` whatever its probability. The
#: first 0.4-0.8 s of the validation speakers' clips got a confident label that was wrong 57-66 %
#: of the time (whole clips: 10 %); from 1 s on, under half (the model card, "Abstention").
SHORT_SPEECH = 1.0
VAD_LOUDNESS = -23.0  #: LUFS: quieter clips are raised to this before the VAD
#: LUFS: louder clips (float data beyond full scale, e.g. samples at 16-bit integer scale) are turned
#: down to VAD_LOUDNESS: no clip within full scale is this loud, and Silero found 15 % less speech in one
VAD_CEILING = 0.0
SEQUENCE_GRAPH = "silero_vad_16k_sequence.onnx"
BLOCK = 512  #: chunks per graph call (16.4 s; the package's own default)
_LOCK = threading.Lock()
_SESSIONS: dict[int, object] = {}
#: the probabilities of the last few clips, by content: ``predict`` asks twice for one clip's (the
#: speech check, and the speech crop of a model that sets ``speech_crop``); at most this many kept
RECENT = 8
_RECENT: OrderedDict[bytes, np.ndarray] = OrderedDict()


def silero_onnx_path() -> Path:
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise DependencyError("silero-vad", "speech detection", "pip install 'silero-vad>=6.2.2'")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / SEQUENCE_GRAPH
    if not path.is_file():
        raise DependencyError("silero-vad", f"speech detection ({path.name} missing: silero-vad older than 6.2.2)",
                              "pip install 'silero-vad>=6.2.2'")
    return path


def _session(threads: int = 1):
    with _LOCK:
        if threads not in _SESSIONS:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = opts.inter_op_num_threads = threads
            opts.log_severity_level = 3
            _SESSIONS[threads] = ort.InferenceSession(str(silero_onnx_path()), opts, providers=["CPUExecutionProvider"])
        return _SESSIONS[threads]


def _blocks(x: np.ndarray) -> Iterator[np.ndarray]:
    """(b, CONTEXT + CHUNK) arrays of up to :data:`BLOCK` zero-padded chunks, each chunk led by
    the previous chunk's last CONTEXT samples (zeros before the first); built block by block, so
    memory does not grow with the recording."""
    previous = np.zeros(CONTEXT, np.float32)
    for start in range(0, len(x), BLOCK * CHUNK):
        part = x[start:start + BLOCK * CHUNK]
        chunks = np.zeros((-(-len(part) // CHUNK), CHUNK), np.float32)
        chunks.reshape(-1)[: len(part)] = part
        context = np.empty((len(chunks), CONTEXT), np.float32)
        context[0], context[1:] = previous, chunks[:-1, -CONTEXT:]
        previous = chunks[-1, -CONTEXT:].copy()
        yield np.concatenate([context, chunks], axis=1)


def speech_probabilities(samples: np.ndarray, threads: int = 1) -> np.ndarray:
    """One speech probability per 32 ms chunk of 16 kHz ``samples`` (the last chunk zero-padded;
    a quiet clip raised to :data:`VAD_LOUDNESS` first); the same samples again within the last
    :data:`RECENT` calls are not run again (read-only result)."""
    x = np.ascontiguousarray(np.asarray(samples, np.float32).reshape(-1))
    key = hashlib.blake2b(x.view(np.uint8).data, digest_size=16).digest() + x.size.to_bytes(8, "little")
    with _LOCK:
        if key in _RECENT:
            _RECENT.move_to_end(key)
            return _RECENT[key]
    probs = _probabilities(x, threads)
    probs.flags.writeable = False
    with _LOCK:
        _RECENT[key] = probs
        while len(_RECENT) > RECENT:
            _RECENT.popitem(last=False)
    return probs


def _probabilities(samples: np.ndarray, threads: int) -> np.ndarray:
    x = within_range(samples, VAD_LOUDNESS, VAD_CEILING)
    session = _session(threads)
    h = np.zeros((1, 1, 128), np.float32)
    c = np.zeros((1, 1, 128), np.float32)
    out = [np.zeros(0, np.float32)]
    for block in _blocks(x):
        probs, h, c = session.run(None, {"input": block, "h": h, "c": c})  # type: ignore[attr-defined]
        out.append(np.asarray(probs, np.float32).reshape(-1))
    return np.concatenate(out)


class SpeechStats(NamedTuple):
    """How much speech a recording holds by a VAD (all None for a model without one)."""

    fraction: float | None = None
    seconds: float | None = None
    longest: float | None = None  #: seconds of its longest speech region

    @classmethod
    def from_regions(cls, regions: Sequence[tuple[float, float]], duration: float) -> SpeechStats:
        """The stats of a recording of ``duration`` seconds whose VAD found ``regions``."""
        seconds = float(sum(e - s for s, e in regions))
        return cls(min(1.0, seconds / duration) if duration > 0 else 0.0, seconds,
                   max((e - s for s, e in regions), default=0.0))

    @property
    def no_speech(self) -> bool:
        return self.seconds is not None and is_no_speech(self.seconds, self.fraction or 0.0, self.longest or 0.0)

    @property
    def short(self) -> bool:
        """Speech, but less than :data:`SHORT_SPEECH` of it: too little to be sure of an emotion."""
        return self.seconds is not None and self.seconds < SHORT_SPEECH


def is_no_speech(seconds: float, fraction: float, longest: float) -> bool:
    """The abstention rule: too little speech in seconds, or as a share of the recording unless
    one region of it lasts :data:`MIN_SPEECH_RUN` (a long voice note or call with a few words in it)."""
    return seconds < MIN_SPEECH_SECONDS or (fraction < MIN_SPEECH_FRACTION and longest < MIN_SPEECH_RUN)


def speech_summary(samples: np.ndarray, threads: int = 1) -> SpeechStats:
    """Speech fraction/seconds of a clip (chunks with probability >= :data:`THRESHOLD`) and its
    longest speech region (:func:`mask_regions`)."""
    mask = speech_probabilities(samples, threads) >= THRESHOLD
    seconds = float(mask.sum()) * CHUNK / SAMPLE_RATE
    duration = max(len(samples) / SAMPLE_RATE, 1e-9)
    longest = max((e - s for s, e in mask_regions(mask, duration)), default=0.0)
    return SpeechStats(min(1.0, seconds / duration), seconds, longest)


def mask_regions(mask: np.ndarray, duration: float, min_pause: float = MIN_PAUSE,
                 min_speech: float = 0.1) -> list[tuple[float, float]]:
    """Speech regions ``[(start, end)]`` in seconds of a per-chunk speech mask: pauses shorter than
    ``min_pause`` are bridged, runs shorter than ``min_speech`` dropped (32 ms resolution)."""
    step = CHUNK / SAMPLE_RATE
    runs: list[list[float]] = []
    for i in np.flatnonzero(mask):
        start = float(i) * step
        if runs and start - runs[-1][1] < min_pause:
            runs[-1][1] = start + step
        else:
            runs.append([start, start + step])
    return [(round(s, 3), round(min(e, duration), 3)) for s, e in runs if e - s >= min_speech]


def speech_regions(samples: np.ndarray, min_pause: float = MIN_PAUSE, min_speech: float = 0.1,
                   threads: int = 1) -> list[tuple[float, float]]:
    """Speech regions ``[(start, end)]`` in seconds (:func:`mask_regions` of the chunk mask)."""
    mask = speech_probabilities(samples, threads) >= THRESHOLD
    return mask_regions(mask, len(samples) / SAMPLE_RATE, min_pause, min_speech)
