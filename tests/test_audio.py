"""Audio input: every supported format/rate/depth/layout in, 16 kHz mono float32 out; bad input
raises AudioError naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.audio import MIN_SAMPLES, SAMPLE_RATE, audio_duration, decode_bytes, iter_blocks, load_audio, prepare_array
from emovox.errors import AudioError

from tests.conftest import make_tone


@pytest.mark.parametrize(
    "fmt,subtype,ext",
    [
        ("WAV", "PCM_U8", "wav"),
        ("WAV", "PCM_16", "wav"),
        ("WAV", "PCM_24", "wav"),
        ("WAV", "PCM_32", "wav"),
        ("WAV", "FLOAT", "wav"),
        ("FLAC", "PCM_16", "flac"),
        ("FLAC", "PCM_24", "flac"),
        ("OGG", "VORBIS", "ogg"),
    ],
)
def test_formats_and_depths(tmp_path: Path, fmt: str, subtype: str, ext: str) -> None:
    x = make_tone(0.5)
    path = tmp_path / f"x.{ext}"
    sf.write(path, x, SAMPLE_RATE, format=fmt, subtype=subtype)
    y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - len(x)) <= 1
    tol = 0.02 if subtype == "PCM_U8" else (0.1 if subtype == "VORBIS" else 1e-3)
    assert np.sqrt(np.mean((y[: len(x)] - x[: len(y)]) ** 2)) < tol


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_any_rate_is_resampled(tmp_path: Path, rate: int) -> None:
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    path = tmp_path / "r.wav"
    sf.write(path, x, rate)
    y = load_audio(path)
    assert abs(len(y) - SAMPLE_RATE) <= 2
    spectrum = np.abs(np.fft.rfft(y))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(y) - 440) < 3  # pitch survives resampling


@pytest.mark.parametrize("channels", [2, 6])
def test_multichannel_is_averaged(tmp_path: Path, channels: int) -> None:
    x = make_tone(0.5)
    data = np.stack([x * (c + 1) / channels for c in range(channels)], axis=1)
    path = tmp_path / "mc.wav"
    sf.write(path, data, SAMPLE_RATE, subtype="FLOAT")
    y = load_audio(path)
    np.testing.assert_allclose(y, data.mean(axis=1), atol=1e-6)


def test_integer_arrays_are_scaled() -> None:
    x = (make_tone(0.1) * 32767).astype(np.int16)
    y = prepare_array(x, SAMPLE_RATE)
    assert y.dtype == np.float32 and np.abs(y).max() <= 1.0
    np.testing.assert_allclose(y, x / 32768.0, atol=1e-4)


def _expect(path_or_bytes, match: str) -> AudioError:
    with pytest.raises(AudioError, match=match) as info:
        if isinstance(path_or_bytes, bytes):
            decode_bytes(path_or_bytes, name="upload.wav")
        else:
            load_audio(path_or_bytes)
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    err = _expect(tmp_path / "nope.wav", "file not found")
    assert "nope.wav" in str(err)


def test_directory_is_not_audio(tmp_path: Path) -> None:
    _expect(tmp_path, "directory")


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    _expect(p, "empty")


def test_text_file_renamed_wav(tmp_path: Path) -> None:
    p = tmp_path / "notes.wav"
    p.write_text("this is not audio\n" * 20)
    err = _expect(p, "not a readable audio file")
    assert "notes.wav" in str(err)


def test_pdf_renamed_wav(tmp_path: Path) -> None:
    p = tmp_path / "doc.wav"
    p.write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 8)
    _expect(p, "not a readable audio file")


@pytest.mark.parametrize("ext,fmt", [("wav", "WAV"), ("flac", "FLAC"), ("ogg", "OGG")])
def test_truncated_file(tmp_path: Path, ext: str, fmt: str) -> None:
    full = tmp_path / f"full.{ext}"
    sf.write(full, make_tone(1.0), SAMPLE_RATE, format=fmt)
    data = full.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) // 2])
    _expect(cut, "truncated|corrupt")


def test_corrupt_header(tmp_path: Path, wav_file: Path) -> None:
    data = bytearray(wav_file.read_bytes())
    data[0:4] = b"XXXX"
    p = tmp_path / "badheader.wav"
    p.write_bytes(bytes(data))
    _expect(p, "not a readable audio file")


def test_header_only_wav_has_zero_samples(tmp_path: Path) -> None:
    p = tmp_path / "zero.wav"
    sf.write(p, np.zeros(0, np.float32), SAMPLE_RATE)
    _expect(p, "no audio samples")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_samples(tmp_path: Path, bad: float) -> None:
    x = make_tone(0.5)
    x[100] = bad
    p = tmp_path / "nan.wav"
    sf.write(p, x, SAMPLE_RATE, subtype="FLOAT")
    _expect(p, "NaN/inf")


def test_shorter_than_one_frame(tmp_path: Path) -> None:
    p = tmp_path / "short.wav"
    sf.write(p, make_tone(0.01), SAMPLE_RATE)  # 10 ms < 25 ms
    _expect(p, "shorter than one 25 ms analysis frame")


def test_exactly_one_frame_is_accepted() -> None:
    assert len(prepare_array(np.ones(MIN_SAMPLES, np.float32) * 0.1, SAMPLE_RATE)) == MIN_SAMPLES


def test_all_zero_audio_is_valid_input() -> None:
    y = prepare_array(np.zeros(16000, np.float32), SAMPLE_RATE)
    assert y.shape == (16000,) and not y.any()


def test_decode_bytes_round_trip_and_errors(wav_file: Path) -> None:
    y = decode_bytes(wav_file.read_bytes(), name="a.wav")
    np.testing.assert_allclose(y, load_audio(wav_file), atol=1e-7)
    _expect(b"", "empty")
    _expect(b"RIFF" + b"\x00" * 40, "not a readable audio file|corrupt")


def test_prepare_array_rejects_bad_shapes() -> None:
    with pytest.raises(AudioError, match="shape"):
        prepare_array(np.zeros((2, 2, 2), np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="sample rate"):
        prepare_array(np.zeros(1000, np.float32), 0)
    with pytest.raises(AudioError, match="numeric"):
        prepare_array(np.array(["a", "b"]), SAMPLE_RATE)


def test_iter_blocks_matches_full_load(tmp_path: Path) -> None:
    rate = 44100
    t = np.arange(int(3.3 * rate)) / rate
    x = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    p = tmp_path / "long.wav"
    sf.write(p, np.stack([x, x], axis=1), rate, subtype="FLOAT")
    blocks = list(iter_blocks(p, block_seconds=1.0))
    assert len(blocks) >= 3
    joined = np.concatenate(blocks)
    full = load_audio(p)
    assert abs(len(joined) - len(full)) <= 2
    n = min(len(joined), len(full))
    assert np.max(np.abs(joined[1000 : n - 1000] - full[1000 : n - 1000])) < 1e-3
    assert audio_duration(p) == pytest.approx(3.3, abs=1e-3)


def test_iter_blocks_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="file not found"):
        list(iter_blocks(tmp_path / "x.wav"))
