"""GE2E speaker encoder: shapes, normalisation, the missing-package path."""

import importlib.util

import numpy as np
import pytest

from emovox.errors import DependencyError
from emovox.upstreams import build_upstream
from emovox.upstreams.ge2e import partial_slices
from tests.conftest import make_tone


@pytest.fixture(scope="module")
def ge2e():
    return build_upstream("ge2e")


def test_shapes_on_tone(ge2e):
    arrays = ge2e.extract(make_tone(2.0))
    assert arrays["embedding"].shape == (256,)
    assert np.linalg.norm(arrays["embedding"]) == pytest.approx(1.0, abs=1e-5)
    assert (arrays["embedding"] >= 0).all()  # ReLU before the L2 norm
    assert arrays["partials"].shape == (len(partial_slices(32000)), 256) == (2, 256)
    assert arrays["frames"].shape[1] == 256 and abs(arrays["frames"].shape[0] - 200) <= 1
    assert ge2e.pooled(arrays).shape == (256,)


def test_short_clip_gives_one_partial(ge2e):
    arrays = ge2e.extract(make_tone(0.3))
    assert arrays["partials"].shape == (1, 256)


def test_embedding_is_speaker_like(ge2e):
    a, b = ge2e(make_tone(2.0, freq=120.0)), ge2e(make_tone(2.0, freq=120.0, seed=3))
    c = ge2e(np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1)
    assert float(a @ b) > float(a @ c)  # same "voice" closer than white noise


def test_pooling_options():
    up = build_upstream("ge2e", pooling="partials_mean_std")
    assert up.dim == 512 and up(make_tone(2.0)).shape == (512,)


def test_missing_package_names_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "resemblyzer" else real(n, *a))
    with pytest.raises(DependencyError, match="pip install --no-deps resemblyzer==0.1.4"):
        build_upstream("ge2e")
