"""A seeded set of generated non-speech clips (16 kHz float32) for abstention tests.

:func:`nonspeech_clips` returns ``(name, audio)`` pairs, 1–30 s long, none of which contains
speech, in these kinds (the name starts with the kind):

* ``silence``: digital zero and near-silent dither;
* ``noisefloor``: white/pink noise at -70 to -50 dBFS RMS (a quiet room or a preamp);
* ``hum``: mains hum at 50 or 60 Hz with odd and even harmonics, some over a noise floor;
* ``tone``: pure sine tones from 60 Hz to 7 kHz, ``beeps`` (tone bursts with gaps), ``dtmf``
  (telephone key dual tones) and ``siren`` (a tone warbling slowly between two pitches);
* ``sweep``: linear and logarithmic sine sweeps, up and down;
* ``noise``: white, pink and brown noise at -40 to -10 dBFS RMS; ``fan``: low-passed noise with a
  blade-rate hum (fans, air conditioning);
* ``clicks``: impulse trains (1–20 Hz) and random (Poisson) clicks;
* ``chord`` / ``arpeggio``: music-like harmonic notes with attack/decay envelopes (major, minor
  and seventh chords, progressions, arpeggios over two octaves), some with a little reverb-like
  smear or noise.

Durations cycle through 1–30 s (every kind gets short and long clips); the whole set is about
``n_clips`` clips and a few hundred seconds of audio. Same seed, same clips.
"""

from __future__ import annotations

from typing import Callable, Iterator, cast

import numpy as np

SAMPLE_RATE = 16_000
DURATIONS = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 30.0)
KINDS = ("silence", "noisefloor", "hum", "tone", "beeps", "dtmf", "siren", "sweep", "noise", "fan", "clicks", "chord",
         "arpeggio")
_A4 = 440.0


def _db(level_dbfs: float) -> float:
    return float(10 ** (level_dbfs / 20))


def _noise(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with PSD ~ 1/f**exponent."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n)
    f[0] = f[1] if n > 1 else 1.0
    spec *= f ** (-exponent / 2)
    spec[0] = 0
    x = np.fft.irfft(spec, n)
    return x / max(float(np.sqrt(np.mean(x ** 2))), 1e-12)


def _note(freq: float, n: int, sr: int, harmonics: int = 6, decay: float = 3.0) -> np.ndarray:
    """A plucked/struck-like note: harmonics with 1/k amplitudes, 10 ms attack, exponential decay."""
    t = np.arange(n) / sr
    x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, harmonics + 1) if freq * k < sr / 2 - 500)
    env = np.minimum(1.0, t / 0.01) * np.exp(-decay * t)
    return x * env


def _midi(m: float) -> float:
    return _A4 * 2 ** ((m - 69) / 12)


def _chords(n: int, sr: int, rng: np.random.Generator, progression: bool) -> np.ndarray:
    shapes = ([0, 4, 7], [0, 3, 7], [0, 4, 7, 10], [0, 3, 7, 10], [0, 5, 7])
    step = int(sr * rng.uniform(0.8, 2.0)) if progression else n
    out = np.zeros(n)
    for start in range(0, n, step):
        root = int(rng.integers(45, 65))
        shape = shapes[int(rng.integers(len(shapes)))]
        length = min(step, n - start)
        out[start:start + length] += sum(_note(_midi(root + s), length, sr, decay=rng.uniform(0.5, 2.5)) for s in shape)
    return out


def _arpeggio(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    root = int(rng.integers(48, 64))
    pattern = [0, 4, 7, 12, 16, 19, 24, 19, 16, 12, 7, 4] if rng.random() < 0.5 else [0, 3, 7, 12, 15, 19, 24, 19]
    step = int(sr * rng.uniform(0.12, 0.35))
    out = np.zeros(n)
    for i, start in enumerate(range(0, n, step)):
        length = min(int(step * 2.5), n - start)
        out[start:start + length] += _note(_midi(root + pattern[i % len(pattern)]), length, sr, decay=4.0)
    return out


def _sweep(n: int, sr: int, f0: float, f1: float, log: bool) -> np.ndarray:
    t = np.arange(n) / sr
    dur = n / sr
    if log:
        k = np.log(f1 / f0)
        phase = 2 * np.pi * f0 * dur / k * (np.exp(t / dur * k) - 1)
    else:
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * dur))
    return np.sin(phase)


def _hum(n: int, sr: int, mains: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / sr
    return cast(np.ndarray, sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi))
                                for k in range(1, 8)))  # a sum of 7 arrays is an array


def _clicks(n: int, sr: int, rate: float, rng: np.random.Generator, poisson: bool) -> np.ndarray:
    out = np.zeros(n)
    if poisson:
        times = np.cumsum(rng.exponential(1 / rate, size=int(rate * n / sr * 2) + 2))
        idx = (times[times < n / sr] * sr).astype(int)
    else:
        idx = np.arange(0, n, int(sr / rate))
    click = np.exp(-np.arange(int(0.003 * sr)) / (0.0005 * sr)) * np.sign(rng.standard_normal(int(0.003 * sr)))
    for i in idx:
        m = min(click.size, n - i)
        out[i:i + m] += click[:m]
    return out


def _rms_to(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x ** 2))) if x.size else 0.0
    return x * (_db(dbfs) / rms) if rms > 0 else x


def _peak_to(x: np.ndarray, dbfs: float) -> np.ndarray:
    peak = float(np.abs(x).max()) if x.size else 0.0
    return x * (_db(dbfs) / peak) if peak > 0 else x


Builder = Callable[..., np.ndarray]  # called as (n, rng); the lambdas bind loop values as default arguments


def _specs(sr: int) -> list[tuple[str, Builder]]:
    s: list[tuple[str, Builder]] = [
        ("silence_zero", lambda n, r: np.zeros(n)),
        ("silence_zero_b", lambda n, r: np.zeros(n)),
        ("silence_dither", lambda n, r: r.standard_normal(n) * _db(-96)),
        ("silence_dither_dc", lambda n, r: r.standard_normal(n) * _db(-90) + _db(-70)),
    ]
    for level in (-70, -60, -50):
        s.append((f"noisefloor_white_{-level}dB", lambda n, r, lv=level: _noise(n, 0, r) * _db(lv)))
        s.append((f"noisefloor_pink_{-level}dB", lambda n, r, lv=level: _noise(n, 1, r) * _db(lv)))
    for mains in (50, 60):
        for level in (-45, -30, -20):
            s.append((f"hum_{mains}Hz_{-level}dB", lambda n, r, m=mains, lv=level: _rms_to(_hum(n, sr, m, r), lv)))
        s.append((f"hum_{mains}Hz_over_noise", lambda n, r, m=mains: _rms_to(_hum(n, sr, m, r), -35)
                  + _noise(n, 1, r) * _db(-55)))
        s.append((f"hum_{mains}Hz_buzz", lambda n, r, m=mains: _rms_to(np.clip(3 * _hum(n, sr, m, r), -1, 1), -25)))
    for freq in (60, 100, 250, 440, 1000, 2000, 3150, 5000, 7000):
        s.append((f"tone_{freq}Hz", lambda n, r, f=freq: _db(-12) * np.sin(2 * np.pi * f * np.arange(n) / sr)))
    for freq in (440, 1000, 1400, 2600):
        def beeps(n: int, r: np.random.Generator, f: float = freq) -> np.ndarray:
            t = np.arange(n) / sr
            gate = (np.mod(t, r.uniform(0.4, 1.5)) < r.uniform(0.08, 0.3)).astype(float)
            return _db(-15) * gate * np.sin(2 * np.pi * f * t)
        s.append((f"beeps_{freq}Hz", beeps))
    dtmf = ((697, 1209), (770, 1336), (852, 1477), (941, 1633))
    for lo, hi in dtmf:
        def keys(n: int, r: np.random.Generator, a: float = lo, b: float = hi) -> np.ndarray:
            t = np.arange(n) / sr
            gate = (np.mod(t, 0.2) < 0.1).astype(float)
            return _db(-12) * gate * (np.sin(2 * np.pi * a * t) + np.sin(2 * np.pi * b * t)) / 2
        s.append((f"dtmf_{lo}+{hi}Hz", keys))
    for low, high, rate in ((600, 1200, 0.5), (800, 1600, 1.0), (450, 900, 2.0)):
        def siren(n: int, r: np.random.Generator, a: float = low, b: float = high, k: float = rate) -> np.ndarray:
            t = np.arange(n) / sr
            freq = a + (b - a) * 0.5 * (1 - np.cos(2 * np.pi * k * t))
            return _db(-12) * np.sin(2 * np.pi * np.cumsum(freq) / sr)
        s.append((f"siren_{low}-{high}Hz", siren))
    for blade in (30, 45, 75, 120):
        s.append((f"fan_{blade}Hz", lambda n, r, b=blade: _rms_to(_noise(n, 2.5, r), -30)
                  + _rms_to(_hum(n, sr, b, r), -42)))
    for f0, f1, log in ((50, 7900, False), (50, 7900, True), (7900, 100, False), (7900, 100, True),
                        (200, 2000, True), (1000, 4000, False)):
        s.append((f"sweep_{f0}-{f1}Hz_{'log' if log else 'lin'}",
                  lambda n, r, a=f0, b=f1, lg=log: _db(-10) * _sweep(n, sr, a, b, lg)))
    for color, exponent in (("white", 0), ("pink", 1), ("brown", 2)):
        for level in (-40, -30, -20, -10):
            s.append((f"noise_{color}_{-level}dB", lambda n, r, e=exponent, lv=level: _noise(n, e, r) * _db(lv)))
    for rate in (1, 2, 5, 10, 20):
        s.append((f"clicks_train_{rate}Hz", lambda n, r, k=rate: _peak_to(_clicks(n, sr, k, r, False), -3)))
    for rate in (0.5, 3, 12):
        s.append((f"clicks_random_{rate}Hz", lambda n, r, k=rate: _peak_to(_clicks(n, sr, k, r, True), -6)
                  + _noise(n, 1, r) * _db(-65)))
    for i in range(14):
        s.append((f"chord_{'progression' if i % 2 else 'held'}_{i}",
                  lambda n, r, p=bool(i % 2): _peak_to(_chords(n, sr, r, p), -6)))
    for i in range(12):
        s.append((f"arpeggio_{i}", lambda n, r: _peak_to(_arpeggio(n, sr, r), -6)))
    for i in range(4):
        s.append((f"chord_over_noise_{i}", lambda n, r: _peak_to(_chords(n, sr, r, True), -10)
                  + _noise(n, 1, r) * _db(-40)))
        s.append((f"arpeggio_over_hum_{i}", lambda n, r, m=50 if i % 2 else 60: _peak_to(_arpeggio(n, sr, r), -10)
                  + _rms_to(_hum(n, sr, m, r), -40)))
    return s


def iter_nonspeech(seed: int = 0, sr: int = SAMPLE_RATE, max_seconds: float | None = None
                   ) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, float32 mono audio at sr)``; ``max_seconds`` caps durations (quick tests)."""
    rng = np.random.default_rng(seed)
    offset = int(rng.integers(len(DURATIONS)))
    for i, (name, build) in enumerate(_specs(sr)):
        seconds = DURATIONS[(i * 5 + offset) % len(DURATIONS)]
        if max_seconds is not None:
            seconds = min(seconds, max_seconds)
        n = int(round(seconds * sr))
        x = np.asarray(build(n, np.random.default_rng([seed, i])), dtype=np.float64)
        peak = float(np.abs(x).max()) if x.size else 0.0
        if peak > 0.99:
            x *= 0.99 / peak
        yield f"{name}_{seconds:g}s", x.astype(np.float32)


def nonspeech_clips(seed: int = 0, sr: int = SAMPLE_RATE, max_seconds: float | None = None
                    ) -> list[tuple[str, np.ndarray]]:
    """All clips of :func:`iter_nonspeech` as a list (about 100 MB of float32 audio at full length)."""
    return list(iter_nonspeech(seed, sr, max_seconds))


__all__ = ["DURATIONS", "KINDS", "SAMPLE_RATE", "iter_nonspeech", "nonspeech_clips"]
