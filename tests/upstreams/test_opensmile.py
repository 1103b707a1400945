"""openSMILE functionals on a generated tone."""

import sys

import numpy as np
import pytest

from emovox.errors import AudioError, DependencyError
from emovox.upstreams import build_upstream
from tests.conftest import make_tone


@pytest.mark.parametrize("name,dim", [("egemaps", 88), ("compare", 6373)])
def test_functionals_shape(name, dim):
    up = build_upstream(name)
    arrays = up.extract(make_tone(1.0))
    vec = up.pooled(arrays)
    assert up.dim == dim and vec.shape == (dim,) and vec.dtype == np.float32
    assert np.isfinite(vec).all() and np.abs(vec).sum() > 0
    assert len(up.feature_names) == dim


def test_egemaps_tracks_pitch():
    up = build_upstream("egemaps")
    names = up.feature_names
    f0 = names.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    low, high = up(make_tone(1.0, freq=150.0))[f0], up(make_tone(1.0, freq=300.0))[f0]
    assert high - low == pytest.approx(12.0, abs=1.5)  # one octave = 12 semitones


def test_wrong_rate_raises():
    with pytest.raises(AudioError, match="16000 Hz"):
        build_upstream("egemaps").extract(make_tone(1.0, sr=8000), 8000)


def test_missing_package_names_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opensmile", None)
    with pytest.raises(DependencyError, match="pip install 'opensmile"):
        build_upstream("egemaps")
