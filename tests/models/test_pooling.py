"""Temporal pooling layers: statistics, average, attentive, none (flatten)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emovox.errors import ConfigError
from emovox.models.pooling import build_pooling, fit_length, pooling_name
from emovox.upstreams.pooling import mean_std


def _padded_batch(rows: list[torch.Tensor], pad_value: float = 1e3) -> tuple[torch.Tensor, torch.Tensor]:
    """(D, T_i) rows -> (B, D, T_max) padded with a large junk value, and lengths."""
    t_max = max(r.shape[-1] for r in rows)
    batch = torch.full((len(rows), rows[0].shape[0], t_max), pad_value)
    for i, r in enumerate(rows):
        batch[i, :, : r.shape[-1]] = r
    return batch, torch.tensor([r.shape[-1] for r in rows])


def test_stats_is_mean_then_population_std_like_numpy_counterpart():
    x = torch.randn(1, 6, 40, dtype=torch.float64).float()
    pooled = build_pooling("stats", 6)(x)[0].numpy()
    np.testing.assert_allclose(pooled, mean_std(x[0].T.numpy()), rtol=1e-5, atol=1e-5)
    assert pooled.shape == (12,)


@pytest.mark.parametrize("name", ["stats", "avg", "attentive"])
def test_padding_is_ignored_when_lengths_given(name):
    torch.manual_seed(0)
    pool = build_pooling(name, 5).eval()
    rows = [torch.randn(5, 23), torch.randn(5, 7), torch.randn(5, 1)]
    batch, lengths = _padded_batch(rows)
    together = pool(batch, lengths)
    for i, r in enumerate(rows):
        alone = pool(r.unsqueeze(0))
        torch.testing.assert_close(together[i], alone[0], rtol=1e-5, atol=1e-5)
    # Without lengths the junk padding does change the result (so the mask is what helps).
    assert not torch.allclose(pool(batch)[1], together[1])


def test_output_dims():
    assert build_pooling("stats", 8).out_dim == 16
    assert build_pooling("avg", 8).out_dim == 8
    assert build_pooling("attentive", 8, attention_dim=4).out_dim == 16
    assert build_pooling("attentive", 8, channel_wise=True)(torch.randn(2, 8, 9)).shape == (2, 16)
    assert build_pooling("none", 8, num_frames=5).out_dim == 40


def test_stats_gradient_finite_on_constant_input():
    x = torch.ones(2, 3, 10, requires_grad=True)
    build_pooling("stats", 3)(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_none_pooling_truncates_and_pads_to_fixed_length():
    pool = build_pooling("none", 2, num_frames=4)
    long = torch.arange(20.0).reshape(1, 2, 10)
    out = pool(long)
    assert out.shape == (1, 8)
    torch.testing.assert_close(out, long[..., :4].flatten(1))
    short = torch.ones(1, 2, 3)
    assert pool(short).shape == (1, 8)
    assert fit_length(short, 4)[..., 3].abs().sum() == 0  # zero padding


def test_names_and_errors():
    assert pooling_name("mean_std") == "stats"
    assert pooling_name("GAP") == "avg"
    with pytest.raises(ConfigError, match="unknown pooling 'max'.*stats"):
        build_pooling("max", 4)
    with pytest.raises(ConfigError, match="num_frames"):
        build_pooling("none", 4)
    with pytest.raises(ConfigError, match="num_frames >= 1"):
        build_pooling("none", 4, num_frames=0)
