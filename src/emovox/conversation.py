"""Speaker-aware timelines in one call: emotions per window, speakers, optional per-speaker adaptation.

:func:`speaker_timeline` is what ``emovox timeline`` and the service's ``POST /v1/conversation``
run. Diarisers (``diarizer``):

* ``whisper`` — from the timeline's own Whisper frames (:mod:`emovox.frame_speakers`): no second
  model and no second pass over the audio; needs an audio-in package with frames (the default
  model, onnx backend) and a speaker projection for its Whisper model (base is shipped).
* ``ge2e`` — the GE2E speaker encoder on a second pass (:mod:`emovox.diarize`; needs resemblyzer).
* ``auto`` — ``whisper`` when the model allows it, else ``ge2e``.

``channels`` (:mod:`emovox.channels`): a call recorded one side per channel gets one speaker per
channel instead of a diariser (``auto``: when the levels say so; ``split``: always; ``mix``: never).

``adapt`` (:mod:`emovox.speaker_adapt`) re-scores each speaker's windows after normalising their
pooled statistics with that speaker's own mean and spread in the recording (opt-in).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from emovox.audio import check_recording
from emovox.channels import source_name
from emovox.diarize import EmbedFn
from emovox.errors import ConfigError
from emovox.timeline import Timeline

DIARIZERS = ("auto", "whisper", "ge2e")


def speaker_projection(recognizer: Any):
    """The :class:`emovox.frame_speakers.SpeakerProjection` for this recogniser's Whisper frames, or
    None when its model has no frames, or emovox no speaker projection for its Whisper model / layers."""
    from emovox.frame_speakers import SpeakerProjection

    engine = getattr(recognizer, "engine", None)
    config = getattr(engine, "config", None)
    if not getattr(engine, "has_frames", False) or config is None:
        return None
    projection = SpeakerProjection.load(str(config.whisper_model))
    if projection is None or max(projection.layers) > max(config.layers):
        return None
    return projection


def speaker_observer(recognizer: Any, speakers: int | None = None, min_turn: float = 1.0,
                     threshold: float | None = None):
    """A :class:`emovox.frame_speakers.FrameSpeakers` for this recogniser, or None (see
    :func:`speaker_projection`)."""
    from emovox.frame_speakers import FrameSpeakers

    projection = speaker_projection(recognizer)
    if projection is None:
        return None
    return FrameSpeakers(projection, speakers=speakers, min_turn=min_turn, threshold=threshold)


def check_diarizer(diarizer: str) -> None:
    if diarizer not in DIARIZERS:
        raise ConfigError(f"unknown diarizer {diarizer!r}; choose one of {', '.join(DIARIZERS)}")


def uses_frames(recognizer: Any, diarizer: str = "auto", scoring: str = "auto") -> bool:
    """Whether speakers come from the recogniser's Whisper frames (else GE2E) for this ``diarizer``
    and ``scoring``; :class:`ConfigError` when ``diarizer="whisper"`` cannot have them."""
    check_diarizer(diarizer)
    # frames exist only when windows pool them (--scoring auto)
    frames = diarizer != "ge2e" and scoring != "window" and speaker_projection(recognizer) is not None
    if diarizer == "whisper" and not frames:
        if scoring == "window":
            raise ConfigError("the whisper diarizer pools the frames of --scoring auto; with --scoring window use "
                              "--diarizer ge2e (or auto)")
        raise ConfigError("the whisper diarizer needs an audio-in model with frame outputs (the default model, "
                          "onnx backend) whose Whisper model has a speaker projection; use --diarizer ge2e")
    return frames


def speaker_timeline(recognizer: Any, recording: str | os.PathLike | np.ndarray, sample_rate: int | None = None, *,
                     speakers: int | str | None = "auto", diarizer: str = "auto", min_turn: float = 1.0,
                     adapt: bool = False, on_no_speakers: Callable[[str], None] | None = None,
                     ge2e: EmbedFn | None = None, channels: str = "auto", **options: Any) -> Timeline:
    """``recognizer.timeline(recording, **options)`` with speakers attached.

    ``speakers``: ``"auto"`` (counted), a number, or None (no diarisation). When the GE2E diariser
    is needed but not installed: with ``speakers="auto"``, no ``adapt`` and ``on_no_speakers``
    given, that function gets the reason and the timeline comes back without speakers; else
    :class:`emovox.errors.DependencyError` is raised. ``ge2e``: an already loaded GE2E embedder
    (archives load it once per worker). ``channels``: see the module docstring; a split recording
    needs ``speakers`` "auto" or its channel count."""
    from emovox.diarize import add_speakers, check_options
    from emovox.errors import DependencyError

    check_diarizer(diarizer)
    check_recording(recording, "speaker_timeline")
    if speakers is not None and speakers != "auto" and (isinstance(speakers, bool) or not isinstance(speakers, int)):
        raise ConfigError(f"speakers must be 'auto', a number or None, got {speakers!r}")
    count = None if speakers in (None, "auto") else int(speakers)  # type: ignore[arg-type]
    check_options(count, 0.5, min_turn)
    if adapt and speakers is None:
        raise ConfigError("--adapt normalises each speaker's windows, so it needs speakers (not --speakers none)")
    split = split_channels(recording, sample_rate, channels, speakers, source_name(recording, options.get("source")))
    if split:
        from emovox.channels import split_timeline

        return split_timeline(recognizer, recording, sample_rate, split, adapt=adapt, **options)
    frames = speakers is not None and uses_frames(recognizer, diarizer, options.get("scoring", "auto"))
    observer = speaker_observer(recognizer, count, min_turn) if frames else None
    if isinstance(recording, np.ndarray):  # one 16 kHz array for the timeline and a GE2E second pass
        from emovox.audio import prepare_array

        recording = prepare_array(recording, sample_rate, source=str(options.get("source") or "<array>"))
        sample_rate = 16000
    pooled = None
    if adapt:
        from emovox.speaker_adapt import PooledWindows

        pooled = PooledWindows()
        options["observers"] = [*options.get("observers", ()), pooled]
    if observer is not None:
        options["observers"] = [*options.get("observers", ()), observer]
    tl = recognizer.timeline(recording, sample_rate, **options)
    if speakers is None:
        return tl
    if observer is not None:
        tl.attach_speakers(observer.turns())
    else:
        try:
            add_speakers(tl, recording, speakers=count, min_turn=min_turn, embed=ge2e)
        except DependencyError as exc:
            if speakers != "auto" or adapt or on_no_speakers is None:
                raise
            on_no_speakers(str(exc))
            return tl
    if pooled is not None:
        from emovox.speaker_adapt import adapt_timeline

        adapt_timeline(tl, pooled, recognizer)
    return tl


def split_channels(recording: str | os.PathLike | np.ndarray, sample_rate: int | None, channels: str,
                   speakers: int | str | None, source: str) -> int:
    """How many channels to give a speaker each (0: mix them), by ``channels`` and ``speakers``."""
    from emovox.channels import MAX_SPLIT, channel_count, channel_layout, check_mode

    check_mode(channels)
    if channels == "mix" or (channels == "auto" and (speakers is None or isinstance(speakers, int) and speakers < 2)):
        return 0
    if speakers is None:
        raise ConfigError("channels 'split' gives each channel a speaker; it cannot go with speakers 'none'")
    if channels == "auto":
        layout = channel_layout(recording, sample_rate, source)
        fits = speakers == "auto" or speakers == layout.channels
        return layout.channels if layout.split and fits else 0
    n = channel_count(recording, source)
    if not 2 <= n <= MAX_SPLIT:
        raise ConfigError(f"channels 'split' (a speaker per channel) needs 2 to {MAX_SPLIT} channels; {source} has "
                          f"{n} (use channels 'auto' or 'mix')")
    if speakers != "auto" and speakers != n:
        raise ConfigError(f"channels 'split' gives {source}'s {n} channels a speaker each, but speakers is {speakers}")
    return n


__all__ = ["DIARIZERS", "check_diarizer", "split_channels", "speaker_observer", "speaker_projection", "speaker_timeline", "uses_frames"]
