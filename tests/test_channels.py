"""Calls recorded one side per channel (emovox.channels): the split rule, crosstalk, the joined timeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.audio import iter_blocks, prepare_array
from emovox.channels import channel_layout, decide, frame_levels, own_frames, own_speech
from emovox.conversation import speaker_timeline
from emovox.errors import AudioError, ConfigError
from tests.conftest import make_voice
from tests.product_fixtures import default_recognizer, recognizer, tiny_model  # noqa: F401

SR = 16000
#: (start, end, channel) of each side's speech in the generated call
TURNS = [(0.5, 3.5, 0), (4.0, 7.0, 1), (7.5, 10.5, 0), (11.0, 14.0, 1)]
ECHO_DB = -20.0


def two_sided_call(seconds: float = 15.0, echo_db: float = ECHO_DB, seed: int = 0) -> np.ndarray:
    """(n, 2): each side's voice on its own channel, the other side leaking in at ``echo_db``, faint noise."""
    rng = np.random.default_rng(seed)
    own = np.zeros((int(seconds * SR), 2), np.float32)
    for start, end, ch in TURNS:
        voice = make_voice(end - start, f0=120.0 if ch == 0 else 210.0, seed=int(start))
        own[int(start * SR):int(start * SR) + voice.size, ch] = voice
    call = own + 10 ** (echo_db / 20) * own[:, ::-1]
    return call + 1e-3 * rng.standard_normal(call.shape).astype(np.float32)


def one_room(seconds: float = 15.0, seed: int = 0) -> np.ndarray:
    """(n, 2): the same talk on both channels, 4 dB apart, independent noise (a stereo recorder)."""
    mono = two_sided_call(seconds, echo_db=-120.0, seed=seed).sum(axis=1)
    rng = np.random.default_rng(seed + 1)
    x = np.stack([mono, 10 ** (-4 / 20) * mono], axis=1)
    return (x + 1e-3 * rng.standard_normal(x.shape)).astype(np.float32)


def test_the_rule_splits_a_two_sided_call_only():
    assert decide(frame_levels(two_sided_call())).split
    assert not decide(frame_levels(one_room())).split
    live_and_dead = two_sided_call()
    live_and_dead[:, 1] = 1e-4 * np.random.default_rng(0).standard_normal(live_and_dead.shape[0])
    assert not decide(frame_levels(live_and_dead)).split  # only one channel ever leads
    assert not decide(frame_levels(two_sided_call()[:, 0])).split  # mono
    assert not decide(frame_levels(np.zeros((SR, 2), np.float32))).split  # digital silence


def test_layout_of_files_and_arrays(tmp_path: Path):
    call, room = tmp_path / "call.flac", tmp_path / "room.wav"
    sf.write(call, two_sided_call(), SR)
    sf.write(room, one_room(), SR)
    layout = channel_layout(call)
    assert layout.split and layout.channels == 2 and min(layout.side_shares) > 0.3
    assert "one speaker per channel" in layout.describe()
    assert not channel_layout(room).split
    assert channel_layout(two_sided_call(), SR).split
    mono = tmp_path / "mono.wav"
    sf.write(mono, two_sided_call()[:, 0], SR)
    assert channel_layout(mono).channels == 1 and not channel_layout(mono).split


def test_one_channel_of_a_file_or_an_array(tmp_path: Path):
    x = two_sided_call()
    path = tmp_path / "call.wav"
    sf.write(path, x, 48000)  # read as 48 kHz (3x faster: the 5 s mark is at 1.67 s), resampled to 16 kHz
    second = np.concatenate(list(iter_blocks(path, 5.0, channel=1)))
    mix = np.concatenate(list(iter_blocks(path, 5.0)))
    assert second.size == mix.size == x.shape[0] // 3
    loud = frame_levels(second)[:, 0]
    assert loud[int(5.0 / 3 / 0.1)] - loud[int(2.0 / 3 / 0.1)] > 15  # channel 2 speaks at 5 s, echoes at 2 s
    assert np.allclose(prepare_array(x, SR, channel=0), x[:, 0])
    with pytest.raises(AudioError, match="no channel 3"):
        list(iter_blocks(path, channel=2))
    with pytest.raises(AudioError, match="no channel 2"):
        prepare_array(x[:, 0], SR, channel=1)


def test_crosstalk_is_not_speech():
    levels = frame_levels(two_sided_call())
    own = own_frames([levels[:, 0], levels[:, 1]])
    # channel 1's VAD would call its echo of channel 2 speech: 0.5-14 s; its own speech is 0.5-3.5 and 7.5-10.5
    kept = own_speech([(0.5, 14.0)], own[0])
    assert len(kept) == 2, kept
    for (s, e), (start, end, _) in zip(kept, [TURNS[0], TURNS[2]]):
        assert start - 0.31 <= s <= start and end <= e <= end + 0.31  # HANG: 0.3 s around active frames


@pytest.mark.parametrize("echo_db,quieter_db", [(-8.0, 0.0), (-10.0, 5.0), (-25.0, 12.0)])
def test_strong_crosstalk_and_unequal_sides(echo_db: float, quieter_db: float):
    """Lavalier-grade crosstalk (8 dB down) and a quiet side whose line carries the loud side's echo
    only 5 dB under its own speech: both are split, and each side keeps its own turns only."""
    call = two_sided_call(echo_db=-120.0)
    call[:, 0] *= 10 ** (-quieter_db / 20)  # side 1 recorded quieter, the echo at side 2's level
    call = call + 10 ** (echo_db / 20) * call[:, ::-1]
    levels = frame_levels(call)
    assert decide(levels).split
    own = own_frames([levels[:, 0], levels[:, 1]])
    for ch in (0, 1):
        kept = own_speech([(0.5, 14.0)], own[ch])
        mine = [(s, e) for s, e, c in TURNS if c == ch]
        assert len(kept) == len(mine), (ch, kept)
        for (s, e), (start, end) in zip(kept, mine):
            assert start - 0.31 <= s and e <= end + 0.31, (ch, kept)


def test_split_timeline_gives_each_channel_a_speaker(tmp_path: Path, recognizer):  # noqa: F811
    path = tmp_path / "call.wav"
    sf.write(path, two_sided_call(), SR, subtype="PCM_16")
    tl = speaker_timeline(recognizer, path, vad="sohn")
    assert tl.split_channels == 2 and tl.speakers == ["CH1", "CH2"]
    for start, end, ch in TURNS:
        found = [t for t in tl.turns if t.speaker == f"CH{ch + 1}" and t.start < end and t.end > start]
        assert found and abs(found[0].start - start) < 0.4 and abs(found[-1].end - end) < 0.6, (start, tl.turns)
    for w in tl.windows:  # a labelled window is its channel's own speech, never the other side's echo
        if w.is_speech:
            owner = {ch for s, e, ch in TURNS if min(e, w.end) - max(s, w.start) >= 0.25}
            assert int(w.speaker[2:]) - 1 in owner, (w, owner)
    summary = tl.summary()
    assert set(summary) == {"CH1", "CH2"} and summary["CH1"]["speech_seconds"] == pytest.approx(6.0, abs=1.0)
    data = json.loads(json.dumps(tl.to_dict()))
    assert data["split_channels"] == 2 and {w["speaker"] for w in data["windows"]} == {"CH1", "CH2"}
    tl.plot(tmp_path / "call.png")
    assert (tmp_path / "call.png").stat().st_size > 10_000
    # the same file mixed: the tiny model's diariser cannot use frames, so no GE2E -> no split, no speakers
    mixed = speaker_timeline(recognizer, path, vad="sohn", channels="mix", speakers=None)
    assert mixed.split_channels == 0 and not mixed.speakers


def test_split_arrays_and_modes(tmp_path: Path, recognizer):  # noqa: F811
    tl = speaker_timeline(recognizer, two_sided_call(), SR, vad="sohn", channels="split", speakers=2)
    assert tl.speakers == ["CH1", "CH2"]
    room = tmp_path / "room.wav"
    sf.write(room, one_room(), SR)
    forced = speaker_timeline(recognizer, room, vad="sohn", channels="split")
    assert forced.split_channels == 2  # asked for: each channel gets a speaker, the layout is not consulted
    mono = tmp_path / "mono.wav"
    sf.write(mono, two_sided_call()[:, 0], SR)
    with pytest.raises(ConfigError, match="needs 2 to 8 channels"):
        speaker_timeline(recognizer, mono, vad="sohn", channels="split")
    with pytest.raises(ConfigError, match="speakers is 3"):
        speaker_timeline(recognizer, room, vad="sohn", channels="split", speakers=3)
    with pytest.raises(ConfigError, match="speakers 'none'"):
        speaker_timeline(recognizer, room, vad="sohn", channels="split", speakers=None)
    with pytest.raises(ConfigError, match="unknown channels mode"):
        speaker_timeline(recognizer, room, vad="sohn", channels="left")


def test_split_timeline_adapts_each_channel_on_its_own(tmp_path: Path, default_recognizer):  # noqa: F811
    """--adapt with split channels: each side's windows normalised by that side's statistics."""
    path = tmp_path / "call.wav"
    sf.write(path, two_sided_call(), SR, subtype="PCM_16")
    plain = speaker_timeline(default_recognizer, path, vad="sohn")
    adapted = speaker_timeline(default_recognizer, path, vad="sohn", adapt=True)
    assert adapted.speakers == plain.speakers == ["CH1", "CH2"]
    pairs = [(a, b) for a, b in zip(plain.windows, adapted.windows) if a.is_speech]
    assert [(a.start, a.speaker) for a, _ in pairs] == [(b.start, b.speaker) for _, b in pairs]
    changed = {a.speaker for a, b in pairs if max(abs(a.probabilities[k] - b.probabilities[k]) for k in a.probabilities) > 1e-3}
    assert changed == {"CH1", "CH2"}
