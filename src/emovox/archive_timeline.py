"""``emovox timeline`` over archives: the timeline task of :mod:`emovox.archive`.

    from emovox.archive import ModelSpec, iter_inputs, run_archive
    from emovox.archive_timeline import TimelineTask
    run_archive(iter_inputs(["calls/"]), "timelines.jsonl", TimelineTask(ModelSpec(vad="none")), jobs=2)

Each file gets what ``emovox timeline FILE`` computes (:meth:`emovox.inference.Recognizer.timeline`,
the service's size bounds, and with ``speakers`` :func:`emovox.conversation.speaker_timeline`) as one
record, through the same inputs, workers, ordered writer, resume and progress as ``emovox predict``.

* **JSON Lines record** (one per file): :data:`FIELDS`: ``source, duration, speech_fraction,
  labels, window, hop, vad, min_speech`` then the lists ``windows`` (start, end, speech_fraction,
  label, probabilities, speaker, no_speech, uncertain), ``regions``, ``speech`` (VAD regions),
  ``speakers``, ``turns``, the per-speaker ``summary``, ``speakers_note`` (why there are no
  speakers although they were asked for: resemblyzer missing, or diarisation failed on this
  file; else null) and ``error``; plus the stamp ``model, model_version, settings``.
* **CSV / Parquet** (:class:`WindowRows`): one row per window: ``file, duration, window``
  (0-based index in the file), ``windows`` (the file's number of windows), ``start, end,
  speech_fraction, speaker, label, no_speech, uncertain`` (0/1), one probability column per
  label (empty when the window was not classified), ``speakers_note, error, model,
  model_version, settings``. A file without windows or with an error has one row (``window``
  empty, ``windows`` 0). Regions and the speaker summary are in the JSON Lines records only.
* **Stamp**: ``settings`` (``window=2 hop=1 vad=sohn min_speech=0.3 speakers=auto min_turn=1``)
  must match to resume a file, like the model name and version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Sequence

from emovox.archive import ModelSpec, guarded, model_info
from emovox.archive_output import STAMP, Layout
from emovox.channels import check_mode
from emovox.conversation import check_diarizer
from emovox.errors import AudioError, ConfigError, DependencyError, EmovoxError
from emovox.inference import TIMELINE_VAD, VADS

log = logging.getLogger(__name__)

#: The keys of a timeline record, in order (a record may have more: what later Timelines add).
FIELDS = ("source", "duration", "speech_fraction", "labels", "window", "hop", "vad", "min_speech", "windows",
          "regions", "speech", "speakers", "turns", "summary", "speakers_note", "error")
_LISTS = ("windows", "regions", "speech", "speakers", "turns")
TIMELINE_STAMP = (*STAMP, "settings")


@dataclass(frozen=True)
class TimelineTask:
    """``emovox timeline`` on each file: sliding windows (``window``/``hop`` s), ``vad``
    (``sohn``, ``silero`` or ``none``), ``min_speech``, and speakers: ``"none"``, ``"auto"``
    (counted; without resemblyzer the records say why there are none) or a number."""

    model: ModelSpec = field(default_factory=lambda: ModelSpec(vad="none"))
    window: float = 2.0
    hop: float = 1.0
    vad: str = TIMELINE_VAD
    min_speech: float = 0.3
    speakers: str | int = "none"
    min_turn: float = 1.0
    diarizer: str = "auto"
    adapt: bool = False
    scoring: str = "auto"
    channels: str = "auto"
    kind: str = "timeline"

    def __post_init__(self) -> None:
        from emovox.diarize import THRESHOLD, check_options
        from emovox.service.budget import check_timeline_settings
        from emovox.timeline import check_window

        check_window(self.window, self.hop, self.min_speech)
        check_timeline_settings(self.window, self.hop)
        if self.vad not in (*VADS, "none"):
            raise ConfigError(f"unknown VAD {self.vad!r}; choose {', '.join(VADS)} or none")
        speakers = None if self.speakers in ("auto", "none") else self.speakers
        check_options(speakers, THRESHOLD, self.min_turn)  # type: ignore[arg-type]
        check_diarizer(self.diarizer)
        if self.scoring not in ("auto", "window"):
            raise ConfigError(f"unknown scoring {self.scoring!r}; choose auto or window")
        check_mode(self.channels)
        if self.adapt and self.speakers == "none":
            raise ConfigError("--adapt normalises each speaker's windows, so it needs speakers (not --speakers none)")

    @property
    def threads(self) -> int:
        return self.model.threads

    @property
    def settings(self) -> str:
        text = (f"window={self.window:g} hop={self.hop:g} vad={self.vad} min_speech={self.min_speech:g} "
                f"speakers={self.speakers} min_turn={self.min_turn:g}")
        # options added later are named only when they differ from their default (old files resume)
        text += f" diarizer={self.diarizer}" if self.diarizer != "auto" and self.speakers != "none" else ""
        text += " adapt=1" if self.adapt else ""
        text += f" scoring={self.scoring}" if self.scoring != "auto" else ""
        text += f" channels={self.channels}" if self.channels != "auto" else ""
        return text + (f" labels={','.join(self.model.labels)}" if self.model.labels else "")

    def build(self) -> "TimelineWorker":
        return TimelineWorker(self)

    def error_record(self, source: str, problem: str) -> dict[str, Any]:
        record: dict[str, Any] = {k: [] if k in _LISTS else None for k in FIELDS}
        record.update(source=source, window=float(self.window), hop=float(self.hop), vad=self.vad,
                      min_speech=float(self.min_speech), summary={}, error=problem)
        return record

    def layout(self, info: dict[str, Any]) -> Layout:
        return WindowRows(info["labels"])

    def stamp(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"model": info["model"], "model_version": info["model_version"], "settings": self.settings}


def timeline_record(timeline: Any, speakers_note: str | None = None) -> dict[str, Any]:
    """A :class:`emovox.timeline.Timeline` as an archive record (:data:`FIELDS` first)."""
    d = timeline.to_dict()
    record = {k: d.get(k) for k in FIELDS}
    record.update(speakers_note=speakers_note, error=None)
    record.update({k: v for k, v in d.items() if k not in record})
    return record


class TimelineWorker:
    """A loaded model (and, when the diariser needs it, the GE2E encoder): path -> timeline record.

    Each file goes through :func:`emovox.conversation.speaker_timeline`, as ``emovox timeline
    FILE`` does: speakers from the model's Whisper frames when it has them (``diarizer="auto"``),
    else from GE2E, loaded once per worker."""

    def __init__(self, task: TimelineTask) -> None:
        from emovox.conversation import uses_frames

        self.task = task
        self.recognizer = task.model.load()
        self.info = model_info(self.recognizer, whole_files=False)
        self.ge2e: Any = None
        self.note: str | None = None
        if task.speakers != "none" and not uses_frames(self.recognizer, task.diarizer, task.scoring):
            from emovox import diarize

            try:
                self.ge2e = diarize.GE2EEmbedder()  # once per worker, not per file
            except DependencyError as exc:
                if task.speakers != "auto" or task.adapt:
                    raise
                self.note = f"no speakers ({exc})"

    def __call__(self, source: str) -> dict[str, Any]:
        return guarded(self.task, source, self._timeline)

    def _timeline(self, source: str) -> dict[str, Any]:
        from emovox.audio import audio_duration
        from emovox.conversation import speaker_timeline
        from emovox.service.budget import check_timeline_request

        t = self.task
        # the single-file command's bounds: window/hop, no window count (one record per file, written as it comes)
        check_timeline_request(audio_duration(source), t.window, t.hop, max_windows=None, max_output_bytes=None)
        notes: list[str] = []
        speakers = None if t.speakers == "none" or self.note else t.speakers
        try:
            tl = speaker_timeline(self.recognizer, source, speakers=speakers, diarizer=t.diarizer,
                                  min_turn=t.min_turn, adapt=t.adapt, ge2e=self.ge2e, on_no_speakers=notes.append,
                                  window=t.window, hop=t.hop, vad=None if t.vad == "none" else t.vad,
                                  min_speech=t.min_speech, scoring=t.scoring, channels=t.channels)
        except (AudioError, ConfigError):
            raise
        except EmovoxError as exc:
            if speakers is None:
                raise
            # the emotions stand without speakers; the record says why
            tl = self.recognizer.timeline(source, window=t.window, hop=t.hop, vad=None if t.vad == "none" else t.vad,
                                          min_speech=t.min_speech, scoring=t.scoring)
            notes.append(str(exc))
        return timeline_record(tl, self.note or (f"no speakers ({notes[0]})" if notes else None))


# ------------------------------------------------------------------------------------- rows
class WindowRows:
    """CSV/Parquet layout of timeline records: one row per window (see the module docstring)."""

    kind = "timeline"
    stamp_keys: tuple[str, ...] = TIMELINE_STAMP
    required: tuple[str, ...] = ("source", "windows")
    WINDOW = ("start", "end", "speech_fraction", "speaker", "label", "no_speech", "uncertain")

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = list(labels)
        self.header = ["file", "duration", "window", "windows", *self.WINDOW, *self.labels, "speakers_note",
                       "error", *TIMELINE_STAMP]
        self.types = {**{c: "float" for c in ("duration", "start", "end", "speech_fraction", *self.labels)},
                      **{c: "int" for c in ("window", "windows", "no_speech", "uncertain")}}

    def rows(self, record: dict[str, Any]) -> list[list[Any]]:
        head = [record.get("source"), record.get("duration")]
        tail = [record.get("speakers_note"), record.get("error"), *(record.get(k) for k in TIMELINE_STAMP)]
        windows = record.get("windows") or []
        if record.get("error") is not None or not windows:
            return [[*head, None, 0, *[None] * (len(self.WINDOW) + len(self.labels)), *tail]]
        rows = []
        for i, w in enumerate(windows):
            probs = w.get("probabilities") or {}
            cells = [w.get("start"), w.get("end"), w.get("speech_fraction"), w.get("speaker"), w.get("label"),
                     int(bool(w.get("no_speech"))), int(bool(w.get("uncertain")))]
            rows.append([*head, i, len(windows), *cells, *(probs.get(k) for k in self.labels), *tail])
        return rows

    def complete(self, rows: list[dict[str, str]]) -> bool:
        first = rows[0]
        n = int(first["windows"] or 0)
        if first["error"] or n == 0:
            return len(rows) == 1
        return len(rows) == n and rows[-1]["window"] == str(n - 1)

    def record(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        first = rows[0]
        windows = [] if first.get("window") is None else [
            {"start": r["start"], "end": r["end"], "speech_fraction": r["speech_fraction"], "label": r["label"],
             "probabilities": None if r["label"] is None else {k: r[k] for k in self.labels},
             "speaker": r["speaker"], "no_speech": bool(r["no_speech"]), "uncertain": bool(r["uncertain"])}
            for r in rows]
        record: dict[str, Any] = {k: [] if k in _LISTS else None for k in FIELDS}
        record.update(source=first["file"], duration=first["duration"], windows=windows,
                      speakers_note=first["speakers_note"], error=first["error"],
                      **{k: first[k] for k in TIMELINE_STAMP})
        return record


__all__ = ["FIELDS", "TimelineTask", "TimelineWorker", "WindowRows", "timeline_record"]
