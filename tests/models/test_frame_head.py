"""FrameHead: pooled frozen frames -> standardisation fitted on training frames -> [MLP] -> logits."""

from __future__ import annotations

import pytest
import torch

from emovox.models.frame_head import FrameHead


def frames(n: int, seed: int, shift: float = 3.0, scale: float = 5.0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [shift + scale * torch.randn(int(torch.randint(10, 40, (1,), generator=g)), 6, generator=g) for _ in range(n)]


def test_fit_inputs_standardises_the_pooled_training_features() -> None:
    head = FrameHead(3, in_features=6, pooling="stats")
    train = frames(50, 0)
    head.fit_inputs(train)
    pooled = torch.cat([head.standardize(head.pooling(f.T.unsqueeze(0))) for f in train])
    assert pooled.shape == (50, 12)
    torch.testing.assert_close(pooled.mean(0), torch.zeros(12), atol=1e-4, rtol=0)
    torch.testing.assert_close(pooled.std(0, unbiased=False), torch.ones(12), atol=1e-4, rtol=0)
    # the statistics are buffers: they travel with the state dict
    state = head.state_dict()
    assert torch.equal(state["feature_mean"], head.feature_mean) and not torch.all(state["feature_scale"] == 1)


def test_constant_feature_keeps_scale_one_and_empty_input_is_refused() -> None:
    head = FrameHead(2, in_features=2, pooling="avg")
    head.fit_inputs([torch.tensor([[1.0, 7.0], [3.0, 7.0]]), torch.tensor([[5.0, 7.0]])])
    assert head.feature_scale[1] == 1.0 and head.feature_mean[1] == 7.0
    with pytest.raises(ValueError, match="no training utterances"):
        head.fit_inputs([])


def test_mlp_head_shapes_and_linear_head_has_no_hidden_layer() -> None:
    mlp = FrameHead(4, in_features=6, hidden=16, dropout=0.2).eval()
    x = torch.randn(3, 25, 6)
    assert mlp.embed(x).shape == (3, 16) and mlp(x, torch.tensor([25, 10, 5])).shape == (3, 4)
    assert torch.all(mlp.embed(x) >= 0)  # ReLU output
    linear = FrameHead(4, in_features=6)
    assert linear.embed_dim == 12 and not any(n.startswith("mlp") for n, _ in linear.named_parameters())
    assert {n.split(".")[0] for n, _ in mlp.named_parameters()} == {"mlp", "classifier"}
    with pytest.raises(ValueError, match="hidden"):
        FrameHead(4, in_features=6, hidden=-1)


def test_padding_does_not_change_the_head_output() -> None:
    head = FrameHead(3, in_features=6, pooling="attentive", hidden=8).eval()
    head.fit_inputs(frames(10, 1))
    a = torch.randn(1, 12, 6)
    padded = torch.cat([a, torch.zeros(1, 8, 6)], dim=1)
    torch.testing.assert_close(head(a), head(padded, torch.tensor([12])), atol=1e-5, rtol=1e-5)
