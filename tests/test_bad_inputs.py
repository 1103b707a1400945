"""The issue's whole bad-input list, each through the Python API (Recognizer), the command line
(``emovox predict``/``timeline``: exit codes, specific messages, no traceback unless --debug) and
the HTTP service (413/415/422 JSON bodies); good inputs in the same batch still get results."""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PARTIAL, main
from emovox.errors import AudioError
from emovox.inference import Recognizer
from tests.conftest import make_tone
from tests.product_fixtures import LABELS


@dataclass(frozen=True)
class Case:
    name: str
    problem: str | None  # regex of the AudioError message; None = a valid input
    status: int = 200  # service answer
    code: str | None = None  # service error code


def _wav(x: np.ndarray, sr: int = 16000, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _with(x: np.ndarray, value: float) -> np.ndarray:
    x = x.copy()
    x[1000:1010] = value
    return x


def _corrupt_fmt(data: bytes) -> bytes:
    b = bytearray(data)
    b[20:22] = b"\xff\xff"  # WAVE format tag: garbage (the RIFF magic is intact)
    return bytes(b)


TONE = make_tone(1.0)
GOOD_WAV = _wav(TONE)
GOOD_FLAC = _wav(TONE, fmt="FLAC")
#: name -> (file bytes, expectation). Valid inputs get a prediction everywhere.
CASES: dict[str, tuple[bytes, Case]] = {c.name: (data, c) for data, c in [
    (b"XXXX" + GOOD_WAV[4:], Case("corrupt_magic.wav", "not a readable audio file", 415, "unsupported_media_type")),
    (_corrupt_fmt(GOOD_WAV), Case("corrupt_fmt.wav", "not a readable audio file.*fmt", 422, "undecodable_audio")),
    (GOOD_WAV[: len(GOOD_WAV) // 2], Case("truncated.wav", "truncated", 422, "undecodable_audio")),
    (GOOD_FLAC[: len(GOOD_FLAC) // 2], Case("truncated.flac", "truncated|corrupt", 422, "undecodable_audio")),
    (b"", Case("zero_length.wav", r"empty \(0 bytes\)", 422, "empty_upload")),
    (_wav(np.zeros(16000, np.float32)), Case("all_zero.wav", None)),
    (_wav(_with(TONE, np.nan), subtype="FLOAT"), Case("nan.wav", "NaN/inf", 422, "undecodable_audio")),
    (_wav(_with(TONE, np.inf), subtype="FLOAT"), Case("posinf.wav", "NaN/inf", 422, "undecodable_audio")),
    (_wav(_with(TONE, -np.inf), subtype="FLOAT"), Case("neginf.wav", "NaN/inf", 422, "undecodable_audio")),
    (_wav(make_tone(1.0, sr=8000), 8000), Case("telephone_8k.wav", None)),
    (_wav(make_tone(1.0, sr=44100), 44100), Case("cd_44k1.wav", None)),
    (_wav(make_tone(1.0, sr=48000), 48000, fmt="FLAC"), Case("dat_48k.flac", None)),
    (_wav(TONE, subtype="PCM_24"), Case("pcm24.wav", None)),
    (_wav(TONE, subtype="FLOAT"), Case("float32.wav", None)),
    (_wav(np.stack([TONE, 0.5 * TONE], 1)), Case("stereo.wav", None)),
    (_wav(np.stack([TONE * (c + 1) / 6 for c in range(6)], 1)), Case("six_channel.wav", None)),
    (_wav(make_tone(0.02)), Case("short_20ms.wav", "shorter than one 25 ms analysis frame", 422, "undecodable_audio")),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 8, Case("document.wav", "not a readable audio file",
                                                                      415, "unsupported_media_type")),
    (b"meeting notes, not audio\n" * 40, Case("notes.wav", "not a readable audio file", 415, "unsupported_media_type")),
]}
BAD = sorted(n for n, (_, c) in CASES.items() if c.problem)
GOOD = sorted(n for n, (_, c) in CASES.items() if not c.problem)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    """Every case as a file in one folder, plus a sub-folder and a non-audio extension (skipped)."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    for name, (data, _) in CASES.items():
        (folder / name).write_bytes(data)
    (folder / "sub").mkdir()
    sf.write(folder / "sub" / "nested.wav", make_tone(1.0, freq=300), 22050)
    (folder / "README.txt").write_text("not an audio extension: not predicted")
    return folder


@pytest.fixture(scope="module")
def hour(tmp_path_factory) -> Path:
    """One hour of 8 kHz audio: a tone every minute, silence between (FLAC, under 1 MB)."""
    path = tmp_path_factory.mktemp("hour") / "hour.flac"
    minute = np.zeros(8000 * 60, np.float32)
    minute[:8000] = make_tone(1.0, sr=8000)
    with sf.SoundFile(path, "w", 8000, 1, subtype="PCM_16", format="FLAC") as f:
        for _ in range(60):
            f.write(minute)
    return path


def unreadable(path: Path, monkeypatch) -> None:
    """Make ``path`` unreadable (chmod 000; root ignores modes, so os.access is patched too)."""
    os.chmod(path, 0)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == path else real(p, mode, **kw))


# ------------------------------------------------------------------------------- Python API
@pytest.mark.parametrize("name", BAD)
def test_api_single_bad_file_raises_a_specific_audio_error(recognizer, files, name):
    with pytest.raises(AudioError, match=CASES[name][1].problem) as info:
        recognizer.predict(files / name)
    assert name in str(info.value)  # the message names the file


@pytest.mark.parametrize("name", GOOD)
def test_api_valid_variants_get_a_prediction(recognizer, files, name):
    p = recognizer.predict(files / name)
    assert p.ok and p.label in LABELS and p.duration == pytest.approx(1.0, abs=0.01)
    assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    if name == "all_zero.wav":  # scored (the fixture has no VAD); with the default VAD it is no_speech
        silent = Recognizer.load(recognizer.folder, threads=1).predict(files / name)
        assert silent.ok and silent.no_speech and silent.label is None and silent.speech_fraction == 0.0


def test_api_batch_keeps_good_results_next_to_errors(recognizer, files, tmp_path, monkeypatch):
    locked = tmp_path / "locked.wav"
    locked.write_bytes(GOOD_WAV)
    unreadable(locked, monkeypatch)
    names = sorted(CASES)
    inputs = [files / n for n in names] + [locked, tmp_path / "missing.wav", "x" * 300 + ".wav",
                                           np.full(8000, np.nan, np.float32), make_tone(1.0)]
    results = recognizer.predict(inputs, sample_rate=16000)
    assert len(results) == len(inputs)
    for name, r in zip(names, results):
        expected = CASES[name][1].problem
        assert (r.ok, r.label in LABELS) == (expected is None, expected is None), name
        if expected:
            assert re.search(expected, r.error) and r.probabilities == {}
    locked_r, missing_r, long_r, nan_r, array_r = results[len(names):]
    assert "permission denied" in locked_r.error
    assert "file not found" in missing_r.error
    assert "cannot access" in long_r.error and "name too long" in long_r.error.lower()
    assert "NaN" in nan_r.error and array_r.ok


def test_api_arrays_at_any_rate_depth_and_layout(recognizer):
    tone44 = make_tone(1.0, sr=44100)
    for x, sr in [((tone44 * 32767).astype(np.int16), 44100), (np.stack([tone44] * 6, 1), 44100),
                  (make_tone(1.0, sr=8000).astype(np.float64), 8000), (np.zeros(16000, np.float32), 16000)]:
        assert recognizer.predict(x, sample_rate=sr).ok
    with pytest.raises(AudioError, match="x.T"):
        recognizer.predict(np.stack([TONE, TONE]), sample_rate=16000)  # (channels, samples)
    with pytest.raises(AudioError, match="outside the supported range"):
        recognizer.predict(TONE, sample_rate=16)  # kHz instead of Hz
    with pytest.raises(AudioError, match="far outside audio range"):
        recognizer.predict(TONE * 1e30, sample_rate=16000)


# ------------------------------------------------------------------------------ command line
def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([*argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_folder_with_mixed_files_exit_1_with_a_line_per_bad_file(files, tiny_model, capsys):
    code, out, err = cli(capsys, "predict", str(files), "--json", "--model", str(tiny_model), "--threads", "1")
    assert code == EXIT_PARTIAL
    by_name = {Path(d["source"]).name: d for d in json.loads(out)}
    assert sorted(by_name) == sorted([*CASES, "nested.wav"])  # recursive, README.txt skipped
    for name in GOOD + ["nested.wav"]:  # test tones: a label, or (default Silero VAD) an explicit no_speech
        assert by_name[name]["error"] is None, name
        assert by_name[name]["label"] in LABELS or (by_name[name]["no_speech"] and by_name[name]["label"] is None), name
    for name in BAD:
        assert re.search(CASES[name][1].problem, by_name[name]["error"]), name
        assert f"emovox predict: {files / name}: " in err  # one specific stderr line per bad file
    assert "Traceback" not in err
    assert f"{len(GOOD) + 1} of {len(CASES) + 1} inputs predicted" in err


@pytest.mark.parametrize("name", ["truncated.wav", "nan.wav", "document.wav", "short_20ms.wav", "zero_length.wav"])
def test_cli_only_bad_files_exit_2(files, tiny_model, capsys, name):
    code, out, err = cli(capsys, "predict", str(files / name), "--model", str(tiny_model), "--threads", "1")
    assert code == EXIT_BAD_INPUT and out == ""
    assert re.search(CASES[name][1].problem, err) and "Traceback" not in err


def test_cli_unreadable_and_missing_paths(files, tiny_model, tmp_path, capsys, monkeypatch):
    locked = tmp_path / "locked.wav"
    locked.write_bytes(GOOD_WAV)
    unreadable(locked, monkeypatch)
    code, out, err = cli(capsys, "predict", str(locked), str(tmp_path / "nope.wav"), str(tmp_path / "*.flac"),
                         str(files / "stereo.wav"), "--model", str(tiny_model), "--threads", "1")
    assert code == EXIT_PARTIAL and "stereo.wav" in out
    assert "permission denied" in err and "file not found" in err and "no files match this pattern" in err
    assert "Traceback" not in err


def test_cli_hour_long_file_is_read_in_bounded_blocks(hour, tiny_model, capsys, monkeypatch):
    """An hour-long file gets one result through the API path, scored block by block (the network
    is stubbed: the hour's compute is measured by benchmarks/timeline.py; this checks the reading)."""
    sizes = []

    def fake_raw(self, waves):
        sizes.append(waves.shape[1])
        return np.full((len(waves), len(LABELS)), 1.0 / len(LABELS))

    monkeypatch.setattr(Recognizer, "_raw", fake_raw)
    code, out, err = cli(capsys, "predict", str(hour), "--csv", "--vad", "none", "--model", str(tiny_model))
    assert code == EXIT_OK, err
    row = out.strip().splitlines()[1].split(",")
    assert row[0] == str(hour) and float(row[2]) == pytest.approx(3600.0)
    assert len(sizes) >= 100 and max(sizes) <= 31 * 16000  # 30 s pieces (+ resampler slack), never the hour


def test_cli_traceback_only_with_debug(files, tiny_model, tmp_path, capsys):
    """`emovox timeline` on a bad file raises AudioError: a one-line message, the traceback with --debug."""
    args = ["timeline", str(files / "document.wav"), "-o", str(tmp_path), "--model", str(tiny_model)]
    code, _, err = cli(capsys, *args)
    assert code == EXIT_BAD_INPUT and "Traceback" not in err
    assert re.fullmatch(r"emovox timeline: error: .*document.wav: not a readable audio file.*\n", err)
    code, _, err = cli(capsys, "--debug", *args)
    assert code == EXIT_BAD_INPUT and "Traceback (most recent call last)" in err and "AudioError" in err
    assert not list(tmp_path.iterdir())  # nothing written for a bad input


def test_cli_timeline_of_a_truncated_recording_uses_what_is_there(files, tiny_model, tmp_path, capsys, caplog):
    code, out, err = cli(capsys, "timeline", str(files / "truncated.wav"), "-o", str(tmp_path), "--format", "json",
                         "--vad", "none", "--model", str(tiny_model))
    assert code == EXIT_OK and "truncated.wav: file is truncated or corrupt; using the 0.5 s" in caplog.text
    assert json.loads((tmp_path / "truncated.json").read_text())["duration"] == pytest.approx(0.5, abs=0.01)


def test_cli_bad_model_folder_names_it(tmp_path, files, capsys):
    code, _, err = cli(capsys, "predict", str(files / "stereo.wav"), "--model", str(tmp_path))
    assert code == EXIT_BAD_INPUT and str(tmp_path) in err and "config.json" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------- service
@pytest.fixture(scope="module")
def client(recognizer):
    pytest.importorskip("fastapi", reason="the service needs fastapi (pip install 'emovox[serve]')")
    from fastapi.testclient import TestClient

    from emovox.service.app import create_app

    with TestClient(create_app(recognizer, max_upload_bytes=2_000_000, max_seconds=600), base_url="http://127.0.0.1") as c:
        yield c


def post(client, name: str, data: bytes):
    return client.post("/v1/predict", files={"file": (name, data, "application/octet-stream")})


@pytest.mark.parametrize("name", sorted(CASES))
def test_service_answers_each_case_with_its_status_and_json_error(client, name):
    data, case = CASES[name]
    resp = post(client, name, data)
    assert resp.status_code == case.status, resp.text
    body = resp.json()
    if case.problem is None:
        assert body["label"] in LABELS and body["error"] is None
    else:
        assert resp.headers["content-type"].startswith("application/json")
        assert body["error"]["code"] == case.code and name in body["error"]["message"]
        assert body["error"].get("hint")  # what to do about it


def test_service_hour_long_and_oversize_uploads_are_413(client, hour):
    resp = post(client, "hour.flac", hour.read_bytes())
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "audio_too_long"
    assert "3600 s" in resp.json()["error"]["message"]
    resp = post(client, "big.wav", b"RIFF" + bytes(2_100_000))
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"


def test_service_good_uploads_succeed_between_bad_ones(client):
    statuses = [post(client, n, CASES[n][0]).status_code for n in sorted(CASES) for _ in range(2)]
    assert statuses == [CASES[n][1].status for n in sorted(CASES) for _ in range(2)]
    assert client.get("/healthz").json()["status"] == "ok"


# --------------------------------------------------------------------- audio reader limits
def test_decode_stops_at_max_seconds(files, hour):
    from emovox.audio import decode_bytes, load_audio

    with pytest.raises(AudioError, match="longer than the limit of 60 s"):
        decode_bytes(hour.read_bytes(), "hour.flac", max_seconds=60)
    with pytest.raises(AudioError, match="longer than the limit of 0.5 s"):
        load_audio(files / "stereo.wav", max_seconds=0.5)
    assert load_audio(files / "stereo.wav", max_seconds=1.5).size == 16000


def test_a_header_claiming_huge_length_is_not_allocated():
    """The reader never sizes a buffer from the header: a FLAC claiming 2**36 samples (~50 days)
    with 1 s of data is reported as corrupt without a giant allocation."""
    import tracemalloc

    from emovox.audio import decode_bytes

    data = bytearray(GOOD_FLAC)
    field = int.from_bytes(data[18:26], "big") | ((1 << 36) - 1)  # STREAMINFO total samples
    data[18:26] = field.to_bytes(8, "big")
    tracemalloc.start()
    try:
        with pytest.raises(AudioError, match="truncated|corrupt"):
            decode_bytes(bytes(data), "liar.flac")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024


def test_corrupt_rate_and_channel_headers(files):
    from emovox.audio import audio_duration, decode_bytes, iter_blocks

    slow = bytearray(GOOD_WAV)
    slow[24:28] = (100).to_bytes(4, "little")  # 100 Hz: 1 s of samples would become 160 s at 16 kHz
    with pytest.raises(AudioError, match="sample rate 100 Hz is outside the supported range"):
        decode_bytes(bytes(slow), "slow.wav")
    path = files.parent / "slow.wav"
    path.write_bytes(bytes(slow))
    for reader in (audio_duration, lambda p: list(iter_blocks(p))):
        with pytest.raises(AudioError, match="outside the supported range"):
            reader(path)


def test_paths_that_cannot_be_accessed(tmp_path):
    from emovox.audio import audio_duration, iter_blocks, load_audio

    for bad in (tmp_path / ("x" * 300 + ".wav"), tmp_path / "file.wav" / "below.wav", Path("/dev/null")):
        if bad.parent.name == "file.wav":
            bad.parent.write_bytes(GOOD_WAV)
        for reader in (load_audio, audio_duration, lambda p: list(iter_blocks(p))):
            with pytest.raises(AudioError):
                reader(bad)


def test_api_zero_sample_rate_is_refused(recognizer):
    """0 Hz is an error, not "the default 16 kHz"."""
    for call in (lambda: recognizer.predict(TONE, sample_rate=0), lambda: recognizer.timeline(TONE, sample_rate=0)):
        with pytest.raises(AudioError, match="sample rate"):
            call()


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_service_reads_an_oversize_body_before_answering_413(declared):
    """The 413 goes out after the (bounded) rest of the body was read, so the client reads it."""
    import asyncio

    from emovox.service.limits import BodySizeLimit

    chunks, events = [b"x" * 1000] * 5, []

    async def receive():
        events.append("receive")
        return {"type": "http.request", "body": chunks[events.count("receive") - 1],
                "more_body": events.count("receive") < len(chunks)}

    async def send(message):
        events.append(message["type"])

    async def app(scope, receive, send):
        raise AssertionError("an oversize body reached the app")

    headers = [(b"content-length", b"5000")] if declared else []
    asyncio.run(BodySizeLimit(app, max_bytes=2000, paths=("/v1/",))(
        {"type": "http", "path": "/v1/predict", "headers": headers}, receive, send))
    assert events == ["receive"] * 5 + ["http.response.start", "http.response.body"]


def test_a_folder_given_to_the_api_says_how_to_predict_its_files(recognizer, tmp_path):
    with pytest.raises(AudioError, match="is a directory.*emovox predict FOLDER.*iter_inputs"):
        recognizer.predict(tmp_path)


def test_a_tilde_path_says_that_the_shell_shorthand_is_not_expanded(recognizer):
    """'~/Downloads/note.m4a' from a notebook: 'file not found, check the path' hid the reason."""
    with pytest.raises(AudioError, match="file not found.*'~' is a shell shorthand.*expanduser"):
        recognizer.predict("~/emovox-no-such-dir/note.m4a")
