"""How ``predict`` scores a recording longer than one utterance.

The heads are trained on clips of one utterance each (1.5-7 s). Pooling a whole recording of
several utterances into one statistic gives the head an input unlike any it was trained on: on
the default model's validation speakers, recordings of 2-8 clips of one speaker and one emotion
joined by short pauses were labelled right far less often when pooled whole than when scored as
the mean of their 2 s windows, while single clips (3-5 s) were scored better whole
(``benchmarks/long_recordings.py``; table in the model card). Whole-recording pooling also gave
a confident label (top probability >= 0.5) to most recordings that mix four emotions; the mean
of the windows rarely does, so such a recording is marked ``uncertain``.

Rule: a recording longer than :data:`WINDOWED_ABOVE` seconds, on a model that pools windows from
its frames (the default model on onnxruntime), gets the mean probabilities of its timeline's
classified windows (:meth:`emovox.inference.Recognizer.timeline` with its defaults: 2 s windows
every 1 s, windows with at least 30 % speech), the windows ``emovox timeline`` shows. Other
models, and clips up to :data:`WINDOWED_ABOVE` seconds, are scored whole (in equal pieces of at
most ``max_clip_seconds``, log-posteriors averaged). A recording without a classified window
(speech too sparse for any window) is scored whole too. The speech fraction of a windowed
recording (and so its ``no_speech`` mark) comes from the same timeline's speech regions.

One utterance inside more silence or noise (a voice note that starts early and stops late) is
the exception (:func:`single_utterance`): when the recording's *speech crop* -- from its first to its
last speech, :data:`CROP_MARGIN` s kept on each side -- is no longer than :data:`WINDOWED_ABOVE`,
that crop is scored whole, as the clip it is. Its windows would mostly hold the noise around
it: on the validation speakers' clips with 0.5-8 s of silence or noise before and after, the
windows gave UA 70.5 against 87.1 for the clips alone, the crop 83.0
(``benchmarks/padded_clips.py``; the margin chosen there among 0.25-1.5 s).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from emovox.audio_budget import SAMPLE_RATE
from emovox.speech import SpeechStats

if TYPE_CHECKING:
    from emovox.timeline import Timeline

#: Recordings longer than this (seconds) are scored by their windows (chosen on validation speakers:
#: the threshold with the best UA, the longer one where two were within half a point).
WINDOWED_ABOVE = 6.0


#: Seconds of the recording kept on each side of its speech when it is scored as one crop (chosen on
#: validation speakers, ``benchmarks/padded_clips.py``).
CROP_MARGIN = 0.75


def speech_crop(speech: list[tuple[float, float]], duration: float,
                margin: float = CROP_MARGIN) -> tuple[float, float] | None:
    """``(start, end)`` s from the recording's first to its last speech, widened by ``margin`` on
    each side and kept inside the recording; None when it has no speech."""
    if not speech:
        return None
    return max(0.0, speech[0][0] - margin), min(duration, speech[-1][1] + margin)


def crop_to_speech(samples: np.ndarray, margin: float, vad: Any = None) -> np.ndarray:
    """A 16 kHz clip from its first to its last speech by the timeline's VAD (:class:`emovox.vad.GatedVAD`
    unless ``vad`` is given), ``margin`` s kept on each side (:func:`speech_crop`): what a model
    whose config sets ``speech_crop`` is fed, in training (``recipes/generalist/features.py --crop``)
    as in ``predict``. The whole clip when no speech is found (it is then ``no_speech`` anyway)."""
    from emovox.vad import GatedVAD

    x = np.asarray(samples, np.float32).reshape(-1)
    span = speech_crop((vad or GatedVAD()).regions(x), x.size / SAMPLE_RATE, margin)
    if span is None:
        return x
    return x[int(span[0] * SAMPLE_RATE):int(round(span[1] * SAMPLE_RATE))]


def single_utterance(tl: "Timeline", margin: float = CROP_MARGIN) -> tuple[float, float] | None:
    """The span of a windowed recording to score whole instead of its windows: its
    :func:`speech_crop` (``margin`` s on each side), when that is no longer than :data:`WINDOWED_ABOVE`
    (one utterance inside more silence or noise); None otherwise."""
    span = speech_crop(tl.speech, tl.duration, margin)
    return span if span is not None and span[1] - span[0] <= WINDOWED_ABOVE else None


def read_span(recording: str | os.PathLike | np.ndarray, start: float, end: float,
              block_seconds: float = 30.0) -> np.ndarray:
    """Samples ``[start, end)`` s of a 16 kHz array, or of a file decoded block by block (memory
    O(block + span))."""
    from emovox.audio import iter_blocks

    a, b = int(start * SAMPLE_RATE), int(end * SAMPLE_RATE)
    if isinstance(recording, np.ndarray):
        return recording[a:b]
    parts, seen = [], 0
    for block in iter_blocks(recording, block_seconds):
        if seen + block.size > a:
            parts.append(block[max(0, a - seen):max(0, b - seen)])
        seen += block.size
        if seen >= b:
            break
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def _pools_windows(recognizer: Any) -> bool:
    return bool(getattr(recognizer.engine, "has_frames", False))


def windowed(recognizer: Any, seconds: float) -> bool:
    """Whether ``predict`` scores a recording of ``seconds`` by its windows with this recogniser."""
    return seconds > WINDOWED_ABOVE and _pools_windows(recognizer)


def scoring_tag(recognizer: Any) -> str:
    """What :func:`windowed` and :func:`single_utterance` mean for this recogniser, for result stamps
    (``long-windows-6s-crop-0.75s``), or
    ``""`` when it scores every recording whole. Archive results carry it in ``model_version``,
    so a file resumed by an emovox with another rule is refused instead of mixing answers."""
    return f"long-windows-{WINDOWED_ABOVE:g}s-crop-{CROP_MARGIN:g}s" if _pools_windows(recognizer) else ""


def window_mean(recognizer: Any, recording: str | os.PathLike | np.ndarray,
                sample_rate: int | None = None) -> tuple[np.ndarray | None, "Timeline"]:
    """``(C,)`` mean probabilities over the model's labels of the recording's classified windows
    (None when no window was classified) and the timeline they come from."""
    labels = recognizer.model_labels
    tl = recognizer.timeline(recording, sample_rate, vad=recognizer.vad, labels=labels)
    probs = [[w.probabilities[k] for k in labels] for w in tl.windows if w.label is not None]
    return (np.mean(np.asarray(probs, np.float64), axis=0) if probs else None), tl


def speech_summary(recognizer: Any, tl: "Timeline") -> SpeechStats:
    """Speech fraction, seconds and longest region of a recording from its timeline's speech
    regions (the recogniser's own VAD, already run there: a windowed prediction needs no second
    VAD pass); all None for a recogniser without VAD."""
    if recognizer.vad is None:
        return SpeechStats()
    return SpeechStats.from_regions(tl.speech, tl.duration)


__all__ = ["CROP_MARGIN", "WINDOWED_ABOVE", "crop_to_speech", "read_span", "scoring_tag", "single_utterance", "speech_crop", "speech_summary",
           "window_mean", "windowed"]
