"""SpecAugment: mask bounds (property tests), policies, seeding, batches, lengths, K copies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from emovox.augment import POLICIES, SpecAugment
from emovox.errors import ConfigError

params = st.fixed_dictionaries({
    "F": st.integers(0, 40), "W": st.integers(0, 100), "p": st.floats(0.0, 1.0),
    "n_freq_masks": st.integers(0, 3), "n_time_masks": st.integers(0, 3),
})


@settings(max_examples=150, deadline=None)
@given(params=params, lengths=st.lists(st.integers(0, 400), min_size=1, max_size=4),
       nu=st.integers(1, 200), seed=st.integers(0, 2**31 - 1))
def test_every_mask_respects_the_bounds(params, lengths, nu, seed):
    aug = SpecAugment(**params, seed=seed)
    m = aug.sample(lengths, nu)
    T = torch.tensor(lengths)[:, None]
    w_max = torch.clamp(torch.floor(params["p"] * T.double()).long(), max=params["W"])
    assert m.f.shape == m.f0.shape == (len(lengths), params["n_freq_masks"])
    assert m.t.shape == m.t0.shape == (len(lengths), params["n_time_masks"])
    assert (m.f >= 0).all() and (m.f <= min(params["F"], nu)).all()
    assert (m.f0 >= 0).all() and (m.f0 + m.f <= nu).all()
    assert (m.t >= 0).all() and (m.t <= w_max).all()
    assert (m.t0 >= 0).all() and (m.t0 + m.t <= T).all()


@settings(max_examples=60, deadline=None)
@given(params=params, T=st.integers(1, 120), nu=st.integers(1, 50), data=st.data())
def test_output_is_masked_exactly_where_masks_cover(params, T, nu, data):
    lengths = data.draw(st.lists(st.integers(0, T), min_size=2, max_size=2))
    x = torch.randn(2, T, nu) + 5.0  # no natural zeros
    seed = data.draw(st.integers(0, 1000))
    out = SpecAugment(**params, seed=seed)(x, lengths=lengths)
    m = SpecAugment(**params, seed=seed).sample(lengths, nu)  # same seed: same draws
    valid = torch.arange(T)[None, :, None] < torch.tensor(lengths)[:, None, None]
    cover = (m.time_mask(T)[:, :, None] | m.frequency_mask(nu)[:, None, :]) & valid
    assert (out[cover] == 0).all()
    assert torch.equal(out[~cover], x[~cover])
    for i, n in enumerate(lengths):  # padded frames are never touched
        assert torch.equal(out[i, n:], x[i, n:])


def test_policies_are_table_1():
    assert POLICIES["conservative"] == {"F": 15, "W": 50, "p": 0.2, "n_freq_masks": 2, "n_time_masks": 2}
    assert POLICIES["aggressive"] == {"F": 27, "W": 70, "p": 0.2, "n_freq_masks": 2, "n_time_masks": 2}
    aug = SpecAugment.from_policy("aggressive", seed=1)
    assert (aug.F, aug.W, aug.p, aug.n_freq_masks, aug.n_time_masks) == (27, 70, 0.2, 2, 2)
    x = torch.randn(300, 128)
    assert torch.equal(SpecAugment.from_policy("none")(x), x)
    with pytest.raises(ConfigError, match="unknown SpecAugment policy 'wild'.*conservative"):
        SpecAugment.from_policy("wild")
    with pytest.raises(ConfigError, match="p <= 1"):
        SpecAugment(F=10, W=10, p=1.5)


def test_widths_are_uniform_over_the_closed_range():
    aug = SpecAugment(F=15, W=50, p=0.2, n_freq_masks=1, n_time_masks=1, seed=0)
    m = aug.sample([300] * 20000, 128)  # W' = min(50, 60) = 50
    f, t = m.f.flatten().numpy(), m.t.flatten().numpy()
    assert f.min() == 0 and f.max() == 15 and t.min() == 0 and t.max() == 50
    assert abs(f.mean() - 7.5) < 0.15 and abs(t.mean() - 25.0) < 0.5
    assert np.bincount(f, minlength=16).min() > 20000 / 16 * 0.85
    short = aug.sample([100] * 5000, 128)  # W' = min(50, 0.2 * 100) = 20
    assert int(short.t.max()) == 20


def test_seeded_reproducible_and_input_untouched():
    x = torch.randn(2, 200, 64)
    before = x.clone()
    a = SpecAugment.from_policy("conservative", seed=7)(x)
    b = SpecAugment.from_policy("conservative", seed=7)(x)
    c = SpecAugment.from_policy("conservative", seed=8)(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(x, before)
    unseeded = SpecAugment.from_policy("aggressive")
    assert not torch.equal(unseeded(x), unseeded(x))  # on the fly: fresh masks every call


def test_single_utterance_and_batch_items_get_their_own_masks():
    aug = SpecAugment.from_policy("aggressive", seed=3)
    out = aug(torch.ones(300, 128))
    assert out.shape == (300, 128) and (out == 0).any()
    batch = aug(torch.ones(4, 300, 128))
    patterns = {tuple((batch[i] == 0).flatten().nonzero().flatten().tolist()) for i in range(4)}
    assert len(patterns) == 4


def test_k_copies():
    aug = SpecAugment.from_policy("conservative", seed=0)
    x = torch.randn(3, 150, 40)
    copies = aug.copies(x, 2)
    assert isinstance(copies, list) and len(copies) == 2
    assert all(c.shape == x.shape for c in copies) and not torch.equal(copies[0], copies[1])
    stacked = aug.copies(x, 3, lengths=[150, 100, 20], stack=True)
    assert stacked.shape == (3, 3, 150, 40)
    assert torch.equal(stacked[:, 2, 20:], x[2, 20:].expand(3, -1, -1))
    assert aug.copies(x, 0) == [] and aug.copies(x, 0, stack=True).shape == (0, 3, 150, 40)


def test_bad_shapes():
    aug = SpecAugment.from_policy("conservative", seed=0)
    with pytest.raises(ValueError, match=r"\(T, F\)"):
        aug(torch.zeros(5))
    with pytest.raises(ValueError, match="lengths"):
        aug(torch.zeros(2, 10, 4), lengths=[11, 3])
