"""Prediction for users: :class:`Recognizer` turns recordings into typed emotion results.

    from emovox import Recognizer
    r = Recognizer.load()                       # the bundled default model (no download)
    w = Recognizer.load("whisper")              # the bundled Whisper-encoder model (alias)
    p = r.predict("clip.wav")                   # -> Prediction(label="angry", probabilities={...})
    ps = r.predict(["a.wav", "b.flac"])         # batches; bad files get .error instead of raising
    p = r.predict(samples, sample_rate=44100)   # numpy arrays too
    four = Recognizer.load(labels=["angry", "happy", "neutral", "sad"])  # renormalised subset
    tl = r.timeline("meeting.flac")             # windows + VAD + merged regions (emovox.timeline)

A model is a package folder whose ``config.json`` is typed
(:class:`emovox.models.package.PackageConfig`; audio-in packages :mod:`emovox.audio_model`); the
bundled ones have short names (:data:`BUNDLED_MODELS`). Its feature pipeline
(:class:`emovox.pipeline.PipelineConfig`, saved with the model by training) runs unchanged here
(:class:`emovox.frontend.pipeline.FeaturePipeline`): the front-end, then (when the model was
trained with ``vad: true``) only the speech frames, normalised as in training; an audio-in model
(front-end ``waves``) takes the samples themselves. A clip is scored whole; a recording of
several utterances is scored by the mean of its timeline windows when the model pools windows
from frames (:mod:`emovox.long_inputs`), else in equal pieces of at most ``max_clip_seconds``
whose log-posteriors are averaged (:func:`emovox.segments.aggregate`). Clips are batched only with clips of exactly the same
length: padding would change a ResNet's scores (see :mod:`emovox.models.resnet`), and a file
must get the same answer alone or in a batch.

Backends (:mod:`emovox.engines`): ``torch`` (eager) and ``onnx`` (onnxruntime running the graph
written by :func:`emovox.export.export_onnx`; the front-end stays the torch module, normalisation
and network run in onnxruntime). Models on an ``upstream`` front-end are torch-only: their
encoder (Whisper via CTranslate2, GE2E) is not part of any exportable graph.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, TypeGuard

import numpy as np

from emovox.audio import SAMPLE_RATE, TAKES, check_recording, iter_blocks, load_audio, prepare_array
from emovox.engines import load_engine
from emovox.errors import ConfigError, EmovoxError, ModelError
from emovox.long_inputs import read_span, single_utterance, speech_summary, window_mean, windowed
from emovox.models.package import PackageConfig
from emovox.speech import SpeechStats

if TYPE_CHECKING:
    from emovox.frontend.pipeline import FeaturePipeline
    from emovox.timeline import Timeline

log = logging.getLogger(__name__)

DEFAULT_MODEL = Path(__file__).parent / "assets" / "default_model"
FAST_MODEL = Path(__file__).parent / "assets" / "fast_model"
#: Short names of the bundled models (``Recognizer.load("fast")``, ``--model fast``); an existing
#: folder of the same name in the working directory takes precedence. ``whisper`` (the retired
#: Whisper tiny.en model) is an alias of ``default``, which replaced it.
BUNDLED_MODELS = ("default", "fast")
ALIASES = {"whisper": "default"}
BACKENDS = ("auto", "torch", "onnx")
VADS = ("sohn", "silero", "gated")
TIMELINE_VAD = "gated"  #: the timeline's default VAD (CLI, service, live stream, archives): emovox.vad.GatedVAD
VAD_PATTERN = f"^({'|'.join((*VADS, 'none'))})$"  #: a VAD query parameter of the service

Source = str | os.PathLike | np.ndarray


@dataclass
class Prediction:
    """The result for one input. ``error`` is set (and ``label`` None) when it could not be used."""

    source: str
    label: str | None
    probabilities: dict[str, float]
    duration: float | None = None
    speech_fraction: float | None = None
    error: str | None = None
    #: too little speech to judge (:mod:`emovox.speech`): no emotion label, empty probabilities
    no_speech: bool = False
    #: calibrated top probability below the model's ``uncertain_below``, or under
    #: :data:`emovox.speech.SHORT_SPEECH` of speech
    uncertain: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_folder(path: str | os.PathLike | None) -> Path:
    """The model folder for ``path``: None = the default model, a :data:`BUNDLED_MODELS` name, or a folder."""
    alias = "default" if path is None else str(path)
    bundled = (alias in BUNDLED_MODELS or alias in ALIASES) and (path is None or not Path(alias).exists())
    alias = ALIASES.get(alias, alias) if bundled else alias
    folder = {"default": DEFAULT_MODEL, "fast": FAST_MODEL}[alias] if bundled else Path(str(path))
    if not bundled and not folder.exists() and not any(c in alias for c in "/\\.~"):  # a name: say which exist
        raise ModelError(f"unknown model {alias!r}: the bundled models are {', '.join(BUNDLED_MODELS)} "
                         f"({', '.join(f'{a} = {b}' for a, b in ALIASES.items())}); or give a model folder "
                         "(config.json + weights)")
    if bundled and not (folder / "config.json").is_file():
        raise ModelError(
            f"the bundled {alias} model is missing from this installation ({folder}); reinstall emovox "
            "(pip install .) or pass a model folder with --model / Recognizer.load(path)")
    return folder


class Recognizer:
    """A loaded emotion model plus its feature pipeline; thread-safe for concurrent ``predict`` calls.

    ``features`` is the package's :class:`FeaturePipeline` (None for audio-in models, whose
    engine takes the waves), ``package`` its typed config.
    """

    def __init__(self, features: "FeaturePipeline | None", engine: Callable[[Any], np.ndarray], package: PackageConfig,
                 folder: Path, backend: str, labels: Sequence[str] | None = None,
                 vad: str | None = "silero", batch_size: int = 16, max_clip_seconds: float = 30.0) -> None:
        self.features, self.engine, self.package = features, engine, package
        self.config: dict[str, Any] = package.to_dict()  #: the package config as a mapping
        self.folder, self.backend = folder, backend
        self.model_labels: list[str] = list(package.labels)
        self.vad = _check_vad(vad)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = batch_size
        self.max_clip_seconds = float(max_clip_seconds)
        self._index = self._label_index(labels)

    # ------------------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike | None = None, backend: str = "auto",
             labels: Sequence[str] | str | None = None, vad: str | None = "silero", batch_size: int = 16,
             threads: int | None = None) -> "Recognizer":
        """Load a model package (default: the bundled model).

        ``backend``: ``auto`` (onnxruntime for audio-in models such as the default, torch for the
        others), ``onnx`` or ``torch``. ``labels`` restricts the output to a subset (probabilities
        renormalised over it); ``vad`` (``silero`` | ``sohn`` | None) measures each clip's speech
        (no VAD: no ``no_speech`` abstention); ``threads`` sets the backend's intra-op threads
        (default 1: parallelise across files or requests instead, see README "Threads").
        """
        if backend not in BACKENDS:
            raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
            raise ConfigError(f"threads must be a positive integer, got {threads!r}")
        if isinstance(labels, str):
            labels = [s.strip() for s in labels.split(",") if s.strip()]
        folder = model_folder(path)
        features, engine, package, backend = load_engine(folder, backend, threads or 1)
        return cls(features, engine, package, folder, backend, labels=labels, vad=vad, batch_size=batch_size)

    def with_labels(self, labels: Sequence[str] | None) -> "Recognizer":
        """The same model restricted to ``labels`` (shares the loaded weights)."""
        return Recognizer(self.features, self.engine, self.package, self.folder, self.backend, labels,
                          self.vad, self.batch_size, self.max_clip_seconds)

    @property
    def label_index(self) -> list[int]:
        """Positions of :attr:`labels` among the model's labels (what every score is restricted to)."""
        return list(self._index)

    def _label_index(self, labels: Sequence[str] | None) -> list[int]:
        if labels is None:
            return list(range(len(self.model_labels)))
        labels = list(labels)
        folded = {m.casefold(): m for m in self.model_labels}  # "Angry" is angry
        if len(folded) == len(self.model_labels):
            labels = [folded.get(str(x).casefold(), x) for x in labels]
        unknown = [x for x in labels if x not in self.model_labels]
        if unknown or len(labels) < 2 or len(set(labels)) != len(labels):
            problem = (f"unknown label(s) {unknown}" if unknown else "duplicate labels" if len(labels) >= 2 else
                       "give at least two labels (one label alone always gets probability 1)")
            raise ConfigError(f"cannot restrict the output to {labels}: {problem}; this model knows "
                              f"{', '.join(self.model_labels)}")
        return [self.model_labels.index(x) for x in labels]

    @property
    def labels(self) -> list[str]:
        """Output labels (the model's, or the chosen subset), in probability order."""
        return [self.model_labels[i] for i in self._index]

    def info(self) -> dict[str, Any]:
        """Model name, labels, backend and card facts (for /healthz and ``--json`` output)."""
        return {
            "name": self.package.name or self.folder.name,
            "path": str(self.folder),
            "model": self.package.model.name,
            "frontend": self.package.pipeline.frontend,
            "labels": self.labels,
            "model_labels": self.model_labels,
            "backend": self.backend,
        }

    # ---------------------------------------------------------------------------- scoring
    def posteriors(self, waves: np.ndarray, labels: Sequence[str] | None = None) -> np.ndarray:
        """(B, N) equal-length 16 kHz float32 waves -> (B, C) probabilities over ``self.labels``."""
        probs = self._raw(waves)
        index = self._index if labels is None else self._label_index(labels)
        sub = probs[:, index]
        return sub / np.clip(sub.sum(axis=1, keepdims=True), 1e-30, None)

    def _clip_scores(self, wave: np.ndarray) -> tuple[np.ndarray, SpeechStats]:
        """(C,) model probabilities and the speech summary of one clip that is scored alone: a recording
        longer than an utterance by its windows when the model can, or by its speech crop when that
        is short (:mod:`emovox.long_inputs`; one pass: the timeline's VAD gives the speech), else whole."""
        if windowed(self, wave.size / SAMPLE_RATE):
            probs, tl = self._windows_or_crop(wave)
            if probs is not None:
                return probs, speech_summary(self, tl)
        return self._clip_posterior(wave), self.speech_of(wave)

    def _windows_or_crop(self, recording: np.ndarray | Path) -> tuple[np.ndarray | None, "Timeline"]:
        """(C,) probabilities of a windowed recording (None without a classified window) and its
        timeline: the mean of its windows, or its speech crop scored whole when that is one
        utterance (:func:`emovox.long_inputs.single_utterance`; a file's crop is read again)."""
        probs, tl = window_mean(self, recording, SAMPLE_RATE if isinstance(recording, np.ndarray) else None)
        span = single_utterance(tl)
        if span is not None:
            probs = self._clip_posterior(read_span(recording, *span))
        return probs, tl

    def _clip_posterior(self, wave: np.ndarray) -> np.ndarray:
        """(C,) model probabilities of one clip of any length, scored whole (long clips in equal pieces)."""
        from emovox.segments import aggregate

        limit = int(self.max_clip_seconds * SAMPLE_RATE)
        if wave.size <= limit:
            return self._raw(wave[None])[0]
        pieces = -(-wave.size // limit)
        size = wave.size // pieces
        probs = np.concatenate([self._raw(wave[i * size:(i + 1) * size][None]) for i in range(pieces)])
        return aggregate(np.log(np.clip(probs, 1e-12, 1.0)), "mean_log_posteriors")

    def _raw(self, waves: np.ndarray) -> np.ndarray:
        """Probabilities over all model labels (no restriction)."""
        if self.features is None:  # audio-in model: the engine takes the waves themselves
            return np.stack([np.asarray(self.engine(w), dtype=np.float64) for w in waves])
        waves = np.ascontiguousarray(waves, dtype=np.float32)
        feats = self.features.frames(waves)
        if self.features.vad is None:
            return np.asarray(self.engine(feats), dtype=np.float64)
        # the model was trained on speech frames only (VAD before normalisation): the same, clip by clip
        return np.concatenate([np.asarray(self.engine(self.features.speech_only(f, w)[None]), dtype=np.float64)
                               for f, w in zip(feats, waves)])

    def _result(self, source: str, probs: np.ndarray, wave_or_seconds: Any,
                speech: SpeechStats, labels: Sequence[str] | None) -> Prediction:
        duration = wave_or_seconds.size / SAMPLE_RATE if isinstance(wave_or_seconds, np.ndarray) else wave_or_seconds
        fraction = None if speech.fraction is None else round(float(speech.fraction), 4)
        if speech.no_speech:
            return Prediction(source=source, label=None, probabilities={}, duration=round(float(duration), 3),
                              speech_fraction=fraction, no_speech=True)
        index = self._index if labels is None else self._label_index(labels)
        names = [self.model_labels[i] for i in index]
        sub = probs[index] / max(float(probs[index].sum()), 1e-30)
        threshold = self.package.uncertain_below
        uncertain = (threshold is not None and float(probs.max()) < float(threshold)) or speech.short
        return Prediction(source=source, label=names[int(np.argmax(sub))],
                          probabilities={k: round(float(v), 6) for k, v in zip(names, sub)},
                          duration=round(float(duration), 3), speech_fraction=fraction, uncertain=bool(uncertain))

    # ------------------------------------------------------------------------- prediction
    def predict(self, inputs: Source | Sequence[Source], sample_rate: int | None = None, *,
                source: str | None = None, labels: Sequence[str] | None = None,
                progress: Callable[[Iterable], Iterable] | None = None) -> Prediction | list[Prediction]:
        """Predict one input (path or array) -> :class:`Prediction`, or a list -> list of them.

        Arrays need ``sample_rate`` (required: None is an AudioError). For a single input bad audio raises
        :class:`emovox.errors.AudioError`; in a list each bad item gets ``error`` set and the
        others still get results. ``progress`` wraps the item iterator (e.g. ``tqdm``).
        """
        if labels is not None:
            self._label_index(labels)  # fail early on unknown labels
        if _is_single(inputs):
            return self._predict_many([inputs], sample_rate, [source], labels, None, strict=True)[0]
        items = _items(inputs)
        return self._predict_many(items, sample_rate, [None] * len(items), labels, progress)

    def _predict_many(self, items: list[Source], sample_rate: int | None, sources: list[str | None],
                      labels: Sequence[str] | None, progress: Callable | None, strict: bool = False
                      ) -> list[Prediction]:
        """Predict ``items`` in batches; ``strict`` re-raises errors instead of recording them."""
        results: list[Prediction | None] = [None] * len(items)
        batch: list[tuple[int, str, np.ndarray]] = []
        indexed = list(enumerate(zip(items, sources)))
        for i, (item, src) in progress(indexed) if progress is not None else indexed:
            name = src or _name(item)
            try:
                if self._is_long(item):
                    results[i] = self._predict_long(Path(item), name, labels)  # type: ignore[arg-type]
                    continue
                batch.append((i, name, self._load(item, sample_rate, name)))
            except EmovoxError as exc:
                if strict:
                    raise
                results[i] = _failed(name, exc)
            if len(batch) >= self.batch_size:
                self._run_batch(batch, results, labels, strict)
        self._run_batch(batch, results, labels, strict)
        return results  # type: ignore[return-value]

    def _run_batch(self, batch: list[tuple[int, str, np.ndarray]], results: list, labels: Sequence[str] | None,
                   strict: bool = False) -> None:
        groups: dict[int, list[tuple[int, str, np.ndarray]]] = {}
        for entry in batch:
            n = entry[2].size
            alone = n > self.max_clip_seconds * SAMPLE_RATE or windowed(self, n / SAMPLE_RATE)
            groups.setdefault(-entry[0] - 1 if alone else n, []).append(entry)
        for key, group in groups.items():
            try:
                if key >= 0:
                    probs = self._raw(np.stack([w for _, _, w in group]))
                    speech = [self.speech_of(w) for _, _, w in group]
                else:
                    one, summary = self._clip_scores(group[0][2])
                    probs, speech = one[None], [summary]
                for (i, name, wave), p, s in zip(group, probs, speech):
                    results[i] = self._result(name, p, wave, s, labels)
            except EmovoxError as exc:
                if strict:
                    raise
                for i, name, _ in group:
                    results[i] = _failed(name, exc)
        batch.clear()

    def _load(self, item: Source, sample_rate: int | None, name: str) -> np.ndarray:
        if isinstance(item, np.ndarray):
            return prepare_array(item, sample_rate, source=name)  # None is refused: no guessed rate
        if isinstance(item, (str, os.PathLike)):
            return load_audio(item)
        raise ConfigError(f"cannot predict {type(item).__name__} {item!r}: pass a path or a numpy array")

    def _is_long(self, item: Source) -> bool:
        """A readable file much longer than one piece: read it block by block instead of whole."""
        if not isinstance(item, (str, os.PathLike)):
            return False
        from emovox.audio import audio_duration

        try:
            return audio_duration(item) > 4 * self.max_clip_seconds
        except EmovoxError:
            return False  # load_audio reports the precise problem

    def _predict_long(self, path: Path, name: str, labels: Sequence[str] | None) -> Prediction:
        """A long file, block by block (memory O(block)): the mean of its windows
        (:mod:`emovox.long_inputs`) or, for models that cannot pool windows, mean log-posteriors of its pieces."""
        from emovox.segments import aggregate

        if windowed(self, 4 * self.max_clip_seconds):  # the file is longer than that (_is_long)
            probs, tl = self._windows_or_crop(path)
            if probs is not None:  # one read (two for one utterance in minutes of silence), one VAD pass
                return self._result(name, probs, tl.duration, speech_summary(self, tl), labels)
        logps: list[np.ndarray] = []
        total, speech, longest = 0, 0.0, 0.0
        for block in iter_blocks(path, self.max_clip_seconds):
            total += block.size
            if block.size < SAMPLE_RATE and logps:
                continue  # a short tail adds little; it still counts in the duration
            logps.append(np.log(np.clip(self._raw(block[None])[0], 1e-12, 1.0)))
            stats = self.speech_of(block)
            speech, longest = speech + (stats.seconds or 0.0), max(longest, stats.longest or 0.0)
        probs = aggregate(np.stack(logps), "mean_log_posteriors")
        seconds = total / SAMPLE_RATE
        summary = SpeechStats(speech / seconds, speech, longest) if self.vad else SpeechStats()
        return self._result(name, probs, seconds, summary, labels)

    # ------------------------------------------------------------------------------- VAD
    def speech_of(self, wave: np.ndarray) -> SpeechStats:
        """Speech fraction, seconds and longest region of a 16 kHz clip by this model's VAD (all None without one)."""
        if self.vad is None:
            return SpeechStats()
        if self.vad == "silero":
            from emovox.speech import speech_summary

            return speech_summary(wave)
        return SpeechStats.from_regions(_vad_function(self.vad)(wave), wave.size / SAMPLE_RATE)

    # -------------------------------------------------------------------------- timeline
    def timeline(self, recording: str | os.PathLike | np.ndarray, sample_rate: int | None = None, *,
                 window: float = 2.0, hop: float = 1.0, vad: str | None = TIMELINE_VAD, min_speech: float = 0.3,
                 source: str | None = None, labels: Sequence[str] | None = None, block_seconds: float = 60.0,
                 scoring: str = "auto", observers: Sequence[Any] = (), channel: int | None = None,
                 vad_filter: Callable[[Any], Any] | None = None):
        """Emotions over time of a long recording (file read in blocks) -> :class:`emovox.timeline.Timeline`.

        ``scoring``: ``auto`` encodes the recording once and pools windows from its frames when the
        model can (:mod:`emovox.frame_scoring`), ``window`` runs the model on every window.
        ``channel`` (0-based): that channel alone instead of the down-mix. ``vad_filter`` wraps the
        VAD function (:class:`emovox.channels.MaskedVad`)."""
        from emovox.frame_scoring import frame_scorer
        from emovox.timeline import check_window, compute_timeline

        check_window(window, hop, min_speech)
        if scoring not in ("auto", "window"):
            raise ConfigError(f"scoring must be 'auto' or 'window', got {scoring!r}")
        check_recording(recording, "timeline")
        vad = _check_vad(vad)
        index = self._index if labels is None else self._label_index(labels)
        names = [self.model_labels[i] for i in index]
        if isinstance(recording, np.ndarray):
            wave = prepare_array(recording, sample_rate, source=source or "<array>", channel=channel)  # None refused
            step = int(block_seconds * SAMPLE_RATE)
            blocks: Iterable[np.ndarray] = (wave[i:i + step] for i in range(0, wave.size, step))
            name = source or "<array>"
        else:
            blocks = iter_blocks(recording, block_seconds, channel=channel)
            name = source or str(recording)
        vad_fn = _vad_function(vad) if vad else None
        if vad_fn is not None and vad_filter is not None:
            vad_fn = vad_filter(vad_fn)
        return compute_timeline(
            blocks, lambda w: self.posteriors(w, names), names, vad_fn,
            source=name, vad_name=vad or "none", window=window, hop=hop, min_speech=min_speech,
            batch_size=max(self.batch_size, 8), observers=observers,
            scorer=frame_scorer(self.engine, index) if scoring == "auto" else None)


# ----------------------------------------------------------------------------------- helpers
def _failed(name: str, exc: EmovoxError) -> Prediction:
    return Prediction(source=name, label=None, probabilities={}, error=str(exc))


def _is_single(inputs: Any) -> TypeGuard[Source]:
    return isinstance(inputs, (str, os.PathLike)) or (isinstance(inputs, np.ndarray) and inputs.dtype != object)


def _items(inputs: Any) -> list[Any]:
    """A batch's inputs as a list, or a ConfigError saying what to pass instead."""
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        check_recording(inputs, "predict")
    try:
        items = list(inputs)
    except TypeError:
        raise ConfigError(f"predict() got {type(inputs).__name__}: {TAKES}, or a list of them") from None
    if items and all(isinstance(x, (int, float, np.number)) for x in items):
        raise ConfigError(f"predict() got a list of {len(items)} numbers: {TAKES}, or a list of them; samples "
                          "go in an array, e.g. predict(np.asarray(samples, dtype=np.float32), sample_rate=16000)")
    return items


def _name(item: Any) -> str:
    return str(item) if isinstance(item, (str, os.PathLike)) else "<array>"


def _check_vad(vad: str | None) -> str | None:
    if vad is not None and vad not in VADS:
        raise ConfigError(f"unknown VAD {vad!r}; choose one of {', '.join(VADS)} (or None for no VAD)")
    return vad


def _vad_function(name: str) -> Callable[[np.ndarray], list[tuple[float, float]]]:
    """mono 16 kHz wave -> speech regions in seconds, with the VAD of :mod:`emovox.vad`."""
    from emovox.vad import build_vad

    if name == "silero":  # the Silero ONNX graph through onnxruntime (torch-free, thread-safe)
        from emovox.speech import speech_regions

        return speech_regions
    detector = build_vad(name)
    return lambda wave: [(float(s), float(e)) for s, e in detector.regions(wave)]


__all__ = ["BACKENDS", "DEFAULT_MODEL", "Prediction", "Recognizer"]
