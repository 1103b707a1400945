"""Speaker diarisation: options, streaming segments to turns; GE2E on real speakers (turns: test_speaker_turns)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from emovox.diarize import (
    Diarizer,
    check_options,
    diarize,
)
from emovox.errors import ConfigError

SR = 16000


@pytest.mark.parametrize("speakers,threshold,min_turn", [(0, 0.5, 1.0), (2.5, 0.5, 1.0), (None, 0.0, 1.0),
                                                          (None, 0.5, -1.0), (True, 0.5, 1.0)])
def test_bad_options(speakers, threshold, min_turn):
    with pytest.raises(ConfigError):
        check_options(speakers, threshold, min_turn)


# ------------------------------------------------------------------------------ streaming
def tone_embed(segments: np.ndarray) -> np.ndarray:
    """Fake speaker encoder: the normalised magnitude spectrum in 32 bands (a tone's pitch = its 'voice')."""
    spec = np.abs(np.fft.rfft(segments, n=25600, axis=1))[:, : 32 * 100].reshape(len(segments), 32, -1).sum(axis=2)
    return spec / np.linalg.norm(spec, axis=1, keepdims=True)


def two_speakers(seed: int = 0) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """A 220 Hz and a 700 Hz 'speaker' taking turns of 3-6 s, with 0.5 s pauses."""
    rng = np.random.default_rng(seed)
    parts, ref, t = [], [], 0.0
    for i, length in enumerate([4.0, 3.0, 6.0, 3.5, 5.0]):
        f = 220.0 if i % 2 == 0 else 700.0
        n = int(length * SR)
        parts.append(0.3 * np.sin(2 * np.pi * f * np.arange(n) / SR) + 0.01 * rng.standard_normal(n))
        ref.append((t, t + length, "A" if i % 2 == 0 else "B"))
        parts.append(np.zeros(SR // 2))
        t += length + 0.5
    return np.concatenate(parts).astype(np.float32), ref


def test_streaming_diarisation_finds_the_known_turns():
    x, ref = two_speakers()
    speech = [(s, e) for s, e, _ in ref]
    blocks = [x[i:i + 12345] for i in range(0, x.size, 12345)]
    turns = diarize(blocks, speech, tone_embed)
    assert [t.speaker for t in turns] == ["S1", "S2", "S1", "S2", "S1"]
    for t, (s, e, _) in zip(turns, ref):
        assert abs(t.start - s) <= 0.11 and abs(t.end - e) <= 0.11
    # the block size does not matter, and a fixed count of 2 agrees with the automatic one
    whole = diarize([x], speech, tone_embed, speakers=2)
    assert [(t.start, t.end, t.speaker) for t in whole] == [(t.start, t.end, t.speaker) for t in turns]


def test_diarizer_keeps_bounded_audio():
    x, ref = two_speakers(1)
    d = Diarizer(tone_embed, batch_size=4)
    for i in range(0, x.size, SR):
        d.feed(x[i:i + SR], [(s, e) for s, e, _ in ref])
        assert d._buf.size <= 2 * d.seg_n + SR  # the open segment, the tail and the newest block
    assert len(d.finish([(s, e) for s, e, _ in ref])) == 5
    assert d.embeddings().shape[1] == 32


def test_no_speech_gives_no_turns():
    assert diarize([np.zeros(3 * SR, np.float32)], [], tone_embed) == []
    assert diarize([], [], tone_embed) == []


# ------------------------------------------------------------------------- real speakers
@pytest.mark.shared
@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("resemblyzer") is None or importlib.util.find_spec("librosa") is None,
                    reason="GE2E needs resemblyzer and librosa (pip install --no-deps resemblyzer==0.1.4 librosa)")
def test_ge2e_separates_two_librispeech_speakers(corpora_dir):
    import soundfile as sf

    root = corpora_dir / "librispeech-samples"
    spk = [sorted((root / s).glob("*.flac")) for s in ("1688", "3005")]
    parts, ref, t = [], [], 0.0
    for i in range(6):
        x, sr = sf.read(spk[i % 2][i // 2], dtype="float32")
        assert sr == SR
        x = x[: 5 * SR]
        parts += [x, np.zeros(SR // 2, np.float32)]
        ref.append((t, t + x.size / SR))
        t += x.size / SR + 0.5
    audio = np.concatenate(parts)
    turns = diarize([audio], ref)
    assert len({t.speaker for t in turns}) == 2
    assert len(turns) == 6 and [t.speaker for t in turns] == ["S1", "S2"] * 3
    for turn, (s, e) in zip(turns, ref):
        assert abs(turn.start - s) <= 0.3 and abs(turn.end - e) <= 0.3


@pytest.mark.skipif(importlib.util.find_spec("librosa") is None, reason="the reference mel front-end needs librosa")
@pytest.mark.parametrize("n", [25600, 12345, 8000])
def test_numpy_mel_equals_the_librosa_one(n):
    from emovox.upstreams.ge2e import mel_power as librosa_mel
    from emovox.upstreams.ge2e import numpy_mel_power

    x = (0.1 * np.random.default_rng(n).standard_normal(n)).astype(np.float32)
    ours, theirs = numpy_mel_power(x), librosa_mel(x)
    assert ours.shape == theirs.shape == (1 + n // 160, 40)
    assert np.abs(ours - theirs).max() <= 1e-5 * np.abs(theirs).max()


def test_split_share_gives_two_speakers_when_one_was_counted():
    """With a threshold too wide to separate them, the automatic count finds one speaker; the
    two-way split share (clear for two pitches) then gives two, in the right places, and a recording
    of one voice stays one speaker."""
    x, ref = two_speakers()
    speech = [(s, e) for s, e, _ in ref]

    rng = np.random.default_rng(0)

    def one_voice(segments: np.ndarray) -> np.ndarray:  # one speaker: scatter the same in every direction
        return 5.0 + rng.standard_normal((len(segments), 64))

    def turns(audio, share, embed=tone_embed):
        d = Diarizer(embed, threshold=1.99, split_share=share)
        d.feed(audio, speech)
        return d.finish(speech)

    assert {t.speaker for t in turns(x, None)} == {"S1"}  # the wide threshold alone: one speaker
    split = turns(x, 0.15)
    assert [t.speaker for t in split] == ["S1", "S2", "S1", "S2", "S1"]
    assert {t.speaker for t in turns(x, 0.15, one_voice)} == {"S1"}
    with pytest.raises(ConfigError, match="split_share"):
        Diarizer(tone_embed, split_share=1.5)


def test_a_few_segments_of_one_voice_are_not_split_by_chance():
    """16 segments of one voice (one Gaussian blob; 12 dimensions, about what the Whisper projection
    spreads one voice over) explain about 1/sqrt(16) of their scatter when split in two: over the
    0.15 split share, but one speaker. Two voices still split, short or long."""
    from emovox.diarize import splits_in_two
    from emovox.speaker_turns import two_way_share

    rng = np.random.default_rng(0)
    one = rng.standard_normal((16, 12))
    assert 0.15 < two_way_share(one) < 0.25 and not splits_in_two(one, 0.15)
    assert splits_in_two(np.concatenate([one[:8] + 1.5, one[8:] - 1.5]), 0.15)
    many = rng.standard_normal((400, 12))  # long recordings: the stored split share decides, as before
    assert two_way_share(many) < 0.15 and not splits_in_two(many, 0.15)
    assert splits_in_two(np.concatenate([many[:200] + 0.6, many[200:] - 0.6]), 0.15)
