"""Audio input: every supported format/rate/depth/layout in, 16 kHz mono float32 out; bad input
raises AudioError naming the file."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.audio import (MIN_SAMPLES, SAMPLE_RATE, DecodeBudget, audio_duration, decode_bytes, iter_blocks, load_audio,
                          prepare_array, read_header)
from emovox.errors import AudioError, AudioTooLong

from tests.conftest import make_tone, wav_bytes


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


@pytest.mark.parametrize("ext", ["wav", "ogg"])
def test_channels_that_cancel_in_their_mean_give_the_loudest_channel(tmp_path: Path, ext: str) -> None:
    """One channel wired with inverted polarity: the mean of x and -0.9x is almost silence, so the
    loudest channel is kept (file, decoded block by block, and array alike); two different
    channels are still averaged."""
    x = make_tone(1.0) * np.hanning(SAMPLE_RATE).astype(np.float32)
    inverted = np.stack([-0.9 * x, x], axis=1).astype(np.float32)
    path = tmp_path / f"inverted.{ext}"
    sf.write(path, inverted, SAMPLE_RATE)
    y = load_audio(path)
    assert np.sqrt(np.mean(y**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=0.05)
    np.testing.assert_allclose(prepare_array(inverted, SAMPLE_RATE), x, atol=1e-6)
    other = np.roll(x, 4000)  # another signal on the right: no cancelling, the mean
    both = np.stack([x, other], axis=1)
    np.testing.assert_allclose(prepare_array(both, SAMPLE_RATE), both.mean(axis=1), atol=1e-6)


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


def test_url_and_stdin_are_named_as_such() -> None:
    """Users try ``-`` and URLs: say what they are, with the URL as typed (Path collapses its ``//``)."""
    err = _expect("https://example.com/talks/a.wav", "is a URL")
    assert err.source == "https://example.com/talks/a.wav" and "download the file" in err.hint
    assert "save the audio to a file" in _expect("-", "standard input is not read").hint


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


# ------------------------------------------------------------------ cost budget and block decoding
def _wav_with_rate(rate: int) -> bytes:
    import io
    import struct

    buf = io.BytesIO()
    sf.write(buf, make_tone(1.0), SAMPLE_RATE, format="WAV", subtype="PCM_16")
    data = bytearray(buf.getvalue())
    data[24:28] = struct.pack("<I", rate % 2**32)  # fmt chunk: sample rate, then byte rate
    data[28:32] = struct.pack("<I", 2 * rate % 2**32)
    return bytes(data)


@pytest.mark.parametrize("rate", [0, 1, 3_999, 384_001, 655_350, 4_000_000_000])
def test_invalid_rates_are_named(rate: int) -> None:
    with pytest.raises(AudioError, match=f"sample rate {rate} Hz is outside the supported range") as info:
        decode_bytes(_wav_with_rate(rate), "r.wav", max_seconds=600)
    assert " at 0x" not in str(info.value) and not isinstance(info.value, AudioTooLong)


def test_block_resampling_matches_one_shot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import emovox.audio as audio
    import soxr

    x = make_tone(3.0, sr=44100)
    path = tmp_path / "x.wav"
    sf.write(path, x, 44100, subtype="FLOAT")
    monkeypatch.setattr(audio, "_BLOCK_SAMPLES", 10_000)  # many blocks
    y = load_audio(path)
    ref = soxr.resample(x, 44100, SAMPLE_RATE, quality="HQ")
    assert abs(y.size - ref.size) <= 1
    n = min(y.size, ref.size)
    assert np.max(np.abs(y[:n] - ref[:n])) < 1e-3


def test_budget_checked_from_header_and_while_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import emovox.audio as audio

    buf = io.BytesIO()
    sf.write(buf, make_tone(4.0, sr=48000), 48000, format="FLAC")
    data = buf.getvalue()
    header = read_header(data)
    assert (header.rate, header.channels, header.frames) == (48000, 1, 4 * 48000)
    with pytest.raises(AudioTooLong, match="more than this server decodes"):
        decode_bytes(data, "x.flac", budget=DecodeBudget(max_input_samples=100_000))
    with pytest.raises(AudioTooLong, match="longer than the limit of 3 s"):
        decode_bytes(data, "x.flac", max_seconds=3)
    # a header that under-declares is caught while decoding: the same limits, checked per block
    monkeypatch.setattr(audio, "check_budget", lambda *a: None)
    monkeypatch.setattr(audio, "_BLOCK_SAMPLES", 8192)
    with pytest.raises(AudioTooLong, match="longer than the limit of 3 s"):
        decode_bytes(data, "x.flac", max_seconds=3)
    with pytest.raises(AudioTooLong, match="more than 100000 samples"):
        decode_bytes(data, "x.flac", budget=DecodeBudget(max_input_samples=100_000))
    assert decode_bytes(data, "x.flac", max_seconds=5).size == 4 * SAMPLE_RATE


def test_cancel_runs_between_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import emovox.audio as audio
    from emovox.errors import Cancelled

    buf = io.BytesIO()
    sf.write(buf, make_tone(2.0), SAMPLE_RATE, format="WAV")
    monkeypatch.setattr(audio, "_BLOCK_SAMPLES", 4000)
    calls = []

    def cancel() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise Cancelled("deadline passed")

    with pytest.raises(Cancelled):
        decode_bytes(buf.getvalue(), "x.wav", budget=DecodeBudget(cancel=cancel))
    assert len(calls) == 3  # stopped at the third block of eight


def test_timeline_blocks_share_the_minimum_length_rule(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    sf.write(path, make_tone(0.01), SAMPLE_RATE)  # 10 ms: predict refuses it, so must timeline
    with pytest.raises(AudioError, match="shorter than one 25 ms analysis frame"):
        list(iter_blocks(path))
    with pytest.raises(AudioError, match="shorter than one 25 ms analysis frame"):
        load_audio(path)


_RSS_PROBE = """
import resource, sys
from pathlib import Path
from emovox.audio import decode_bytes
from emovox.errors import EmovoxError
data = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    out = decode_bytes(data, "bomb.flac", max_seconds=600).size
except EmovoxError as exc:
    out = type(exc).__name__
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(out, (after - before) / 1024)
"""


def _silent_flac(path: Path, rate: int, seconds: float) -> None:
    with sf.SoundFile(path, "w", rate, 1, format="FLAC", subtype="PCM_16") as f:
        block, left = np.zeros(1 << 20, np.float32), int(rate * seconds)
        while left > 0:
            f.write(block[:min(left, block.size)])
            left -= block.size


@pytest.mark.slow
@pytest.mark.parametrize("rate,expect", [(384_000, "9440000"), (655_350, "AudioError")])
def test_high_rate_bomb_memory_is_bounded_by_the_16khz_output(tmp_path: Path, rate: int, expect: str) -> None:
    """590 s of silence at a high rate: under 1.5 MB of FLAC that used to cost 1.7-3 GB to decode.

    Decoding resamples each block to 16 kHz, so the extra peak RSS is about the 16 kHz output
    (590 s x 16 kHz x 4 B = 38 MB) plus one block, whatever the input rate (655 350 Hz is refused).
    """
    import os
    import subprocess
    import sys

    path = tmp_path / "bomb.flac"
    _silent_flac(path, rate, 590)
    assert path.stat().st_size < 1.5e6
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1] / "src"), str(Path(__file__).resolve().parents[1])]), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _RSS_PROBE, str(path)], capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    result, extra_mb = run.stdout.split()
    assert result == expect
    assert float(extra_mb) <= 100, f"decoding cost {extra_mb} MB of extra RSS"


def test_arrays_without_a_sample_rate_are_refused(recognizer) -> None:
    x = make_tone(1.0, sr=44100)
    with pytest.raises(AudioError, match="an array needs its sample rate"):
        prepare_array(x, None)
    with pytest.raises(AudioError, match="pass sample_rate="):
        recognizer.predict(x)
    with pytest.raises(AudioError, match="pass sample_rate="):
        recognizer.timeline(x)
    assert recognizer.predict(x, sample_rate=44100).duration == pytest.approx(1.0, abs=1e-3)


# ------------------------------------------------------------------ PyAV fallback (M4A, video tracks)
AV_CASES = [("m4a", "ipod", "aac", None), ("mp4", "mp4", "aac", "mpeg4"), ("mov", "mov", "aac", "mpeg4"),
            ("webm", "webm", "libopus", "libvpx"), ("mka", "matroska", "libopus", None), ("aac", "adts", "aac", None),
            ("wma", "asf", "wmav2", None), ("wv", "wv", "wavpack", None)]


def test_amr_voice_recordings_decode(tmp_path: Path) -> None:
    """AMR-NB (Android voice recorders, MMS, call recorders): "#!AMR" files go to PyAV (libsndfile cannot read them)."""
    av = pytest.importorskip("av", reason="AMR needs PyAV (pip install av)")
    from fuzz.fuzz_audio import encode_av

    codec, rate = "libopencore_amrnb", 8000
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build cannot encode {codec}")
    t = np.arange(2 * rate) / rate
    path = tmp_path / "note.amr"
    path.write_bytes(encode_av((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate, "amr", codec))
    assert path.read_bytes().startswith(b"#!AMR\n")
    y = load_audio(path)
    assert y.dtype == np.float32 and 31_000 <= y.size <= 33_000
    peak = np.argmax(np.abs(np.fft.rfft(y))) * SAMPLE_RATE / y.size
    assert abs(peak - 440) < 5
    from emovox.archive_inputs import iter_inputs

    assert list(iter_inputs([str(tmp_path)])) == [str(path)]  # a folder of voice notes finds it


def test_a_folder_walk_finds_the_same_containers_under_their_other_names(tmp_path: Path) -> None:
    """.aifc/.au/.w64/.rf64 (libsndfile) and .m4b/.m4v/.3g2 (MP4) decoded when named, but a folder
    walk, which goes by the name, skipped them."""
    from emovox.archive_inputs import iter_inputs

    x = make_tone(1.0)
    for ext, fmt in (("aifc", "AIFF"), ("au", "AU"), ("w64", "W64"), ("rf64", "RF64")):
        sf.write(tmp_path / f"a.{ext}", x, SAMPLE_RATE, format=fmt, subtype="PCM_16")
    if importlib.util.find_spec("av") is not None:
        from fuzz.fuzz_audio import encode_av

        for ext in ("m4b", "m4v", "3g2"):
            (tmp_path / f"a.{ext}").write_bytes(encode_av(x, SAMPLE_RATE, "ipod", "aac"))
    found = list(iter_inputs([str(tmp_path)]))
    assert sorted(Path(f).name for f in found) == sorted(p.name for p in tmp_path.iterdir())
    for f in found:
        assert 15_500 <= load_audio(f).size <= 16_600, f


@pytest.mark.parametrize("ext,fmt,codec,video", AV_CASES)
def test_pyav_formats_decode_to_16k_mono(tmp_path: Path, ext: str, fmt: str, codec: str, video: str | None) -> None:
    pytest.importorskip("av", reason="M4A/MP4/WEBM need PyAV (pip install av)")
    from fuzz.fuzz_audio import encode_av

    t = np.arange(48000) / 48000
    data = encode_av((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 48000, fmt, codec, video, channels=2)
    header = read_header(data, f"x.{ext}")
    assert header.rate == 48000 and header.channels == 2 and 0.9 < header.seconds < 1.2
    path = tmp_path / f"x.{ext}"
    path.write_bytes(data)
    for y in (decode_bytes(data, f"x.{ext}", max_seconds=5), load_audio(path), np.concatenate(list(iter_blocks(path)))):
        assert y.dtype == np.float32 and 15_500 <= y.size <= 16_500  # codec priming samples included
        peak = np.argmax(np.abs(np.fft.rfft(y))) * SAMPLE_RATE / y.size
        assert abs(peak - 440) < 5 and 0.15 < np.sqrt(np.mean(y**2)) < 0.25
    assert audio_duration(path) == pytest.approx(header.seconds)
    with pytest.raises(AudioTooLong):
        decode_bytes(data, f"x.{ext}", max_seconds=0.5)


def test_pyav_path_keeps_the_budget_and_the_cancel_hook() -> None:
    pytest.importorskip("av")
    from emovox.errors import Cancelled
    from fuzz.fuzz_audio import encode_av

    data = encode_av(make_tone(20.0), 16000, "ipod", "aac")
    with pytest.raises(AudioTooLong, match="more than this server decodes"):
        decode_bytes(data, "x.m4a", budget=DecodeBudget(max_input_samples=100_000))

    def cancel() -> None:
        raise Cancelled("deadline passed")

    with pytest.raises(Cancelled):
        decode_bytes(data, "x.m4a", budget=DecodeBudget(cancel=cancel))


@pytest.mark.parametrize("ext", ["raw", "pcm", "sln"])
def test_headerless_raw_pcm_says_what_is_missing_and_how_to_convert(tmp_path: Path, ext: str) -> None:
    """Telephony dumps (Asterisk .sln, .raw, .pcm): '.raw' gave 'not a readable audio file (TypeError)'."""
    path = tmp_path / f"call.{ext}"
    (make_tone(1.0) * 32767).astype(np.int16).tofile(path)
    with pytest.raises(AudioError, match="headerless raw PCM.*sample rate.*ffmpeg -f s16le -ar 8000"):
        load_audio(path)
    if ext != "raw":  # libsndfile takes a .raw name as headerless whatever it holds; the others by content
        wav = tmp_path / f"really_a_wav.{ext}"
        sf.write(wav, make_tone(1.0), SAMPLE_RATE, format="WAV")
        assert load_audio(wav).size == SAMPLE_RATE


def test_unknown_formats_list_what_is_supported(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="M4A/AAC, AMR, WMA, WavPack and the audio track of MP4/MOV/3GP/WEBM/MKV/WMV") as info:
        decode_bytes(b"#EXTM3U\nfile:///etc/passwd\n", "odd.bin")
    assert "passwd" not in str(info.value).replace("odd.bin", "")


def test_a_damaged_container_is_named_with_what_to_do() -> None:
    """A truncated M4A said 'Format not recognised' and listed the formats, M4A among them."""
    pytest.importorskip("av")
    for data, name in ((b"\x00\x00\x00\x1cftypM4A " + bytes(200), "MP4/M4A/MOV"), (b"\x1a\x45\xdf\xa3" + bytes(200), "MKV/WEBM")):
        with pytest.raises(AudioError, match=f"its {name} data cannot be decoded.*truncated or damaged"):
            decode_bytes(data, "odd.bin")
    from fuzz.fuzz_audio import encode_av

    whole = encode_av(make_tone(1.0), SAMPLE_RATE, "ipod", "aac")
    with pytest.raises(AudioError, match="MP4/M4A/MOV data cannot be decoded"):
        decode_bytes(whole[: len(whole) // 3], "cut.m4a")


def test_playlists_are_never_followed(tmp_path: Path) -> None:
    """FFmpeg's HLS/concat demuxers would open the files a playlist names; only forced containers are used."""
    pytest.importorskip("av")
    secret = tmp_path / "secret.wav"
    sf.write(secret, make_tone(1.0), SAMPLE_RATE)
    for text in (f"#EXTM3U\n#EXTINF:1,\n{secret}\n", f"ffconcat version 1.0\nfile '{secret}'\n"):
        with pytest.raises(AudioError, match="not a readable audio file"):
            decode_bytes(text.encode(), "list.m3u8")


@pytest.mark.parametrize("ext", ["wav", "m4a"])
def test_a_file_name_that_is_not_utf8_is_read(tmp_path: Path, ext: str) -> None:
    """'café' in Latin-1 (old archives, Windows zips): libsndfile and FFmpeg could not take the name
    (its undecodable byte is a surrogate in Python's text), so it was 'not a readable audio file'."""
    from emovox.audio import read_header

    x = make_tone(2.0)
    if ext == "wav":
        data = wav_bytes(x)
    else:
        pytest.importorskip("av")
        from fuzz.fuzz_audio import encode_av

        data = encode_av(x, 16000, "ipod", "aac")
    path = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9." + ext.encode()))
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system takes UTF-8 names only")
    y = load_audio(path)
    assert abs(y.size - x.size) < 0.1 * x.size and read_header(path).channels == 1
    assert sum(b.size for b in iter_blocks(path, 0.5)) == y.size


@pytest.mark.parametrize("declared", [0xFFFFFFFF, 0])
def test_a_streamed_wav_is_read_to_its_end(tmp_path: Path, declared: int) -> None:
    """``ffmpeg -f wav pipe:`` and recorders that never finalise leave the sizes 0xFFFFFFFF or 0 in
    the header: such a WAV was 'truncated or corrupt' (or had 'no audio samples'); it is whole."""
    import struct

    from emovox.audio import read_header

    x = make_tone(2.0)
    data = bytearray(wav_bytes(x))
    at = data.find(b"data")
    data[4:8] = data[at + 4:at + 8] = struct.pack("<I", declared)
    path = tmp_path / "streamed.wav"
    path.write_bytes(bytes(data))
    y = load_audio(path)
    assert y.size == x.size and np.allclose(y, x, atol=1e-3)
    assert decode_bytes(bytes(data), "streamed.wav").size == x.size
    assert sum(b.size for b in iter_blocks(path, 0.5)) == x.size and read_header(path).channels == 1
    cut = tmp_path / "cut.wav"  # a finalised header with half the data gone is still refused
    cut.write_bytes(wav_bytes(x)[: len(data) // 2])
    _expect(cut, "truncated")
