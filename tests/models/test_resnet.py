"""ResNet34/18: shapes, variable length, lengths, pooling variants, PReLU, parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from emovox.errors import ConfigError, ModelError
from emovox.models.base import count_parameters, halve_lengths
from emovox.models.resnet import ResNet18, ResNet34

SMALL = dict(n_mels=24, base_channels=4, embed_dim=16)


def small(pooling: str = "stats", **kwargs) -> nn.Module:
    torch.manual_seed(0)
    return ResNet34(3, pooling=pooling, **{**SMALL, **kwargs}).eval()


def test_shapes_for_any_length():
    model = small()
    for frames in (1, 9, 57, 150):
        x = torch.randn(2, frames, 24)
        assert model(x).shape == (2, 3)
        assert model.embed(x).shape == (2, 16)
        assert model.frame_features(x).shape == (2, 8 * 4 * 3, int(halve_lengths(torch.tensor(frames), 3)))


def test_lengths_select_valid_frames_for_pooling():
    model = small()
    x = torch.randn(2, 40, 24)
    lengths = torch.tensor([40, 13])
    frames = model.frame_features(x)
    valid = int(halve_lengths(lengths, 3)[1])
    assert valid == 2  # ceil(13 / 8)
    expected = model.embedding(model.pool(frames[1:, :, :valid]))
    torch.testing.assert_close(model.embed(x, lengths)[1:], expected)
    torch.testing.assert_close(model.embed(x, lengths)[:1], model.embed(x[:1]))
    assert not torch.allclose(model.embed(x, lengths)[1], model.embed(x)[1])


@pytest.mark.parametrize("pooling", ["avg", "attentive"])
def test_other_poolings(pooling):
    model = small(pooling)
    assert model(torch.randn(2, 33, 24), torch.tensor([33, 20])).shape == (2, 3)


def test_no_pooling_uses_fixed_truncated_input():
    model = small("none", num_frames=32)
    x = torch.randn(1, 32, 24)
    longer = torch.cat([x, torch.randn(1, 50, 24)], dim=1)
    torch.testing.assert_close(model(longer), model(x))  # frames after 32 are cut off
    assert model(torch.randn(1, 10, 24)).shape == (1, 3)  # shorter input is zero-padded
    assert model.pool.out_dim == 8 * 4 * 3 * 4


def test_prelu_everywhere_but_output_and_batchnorm_after_convs():
    model = small()
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    n_conv = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert n_conv == n_bn == 1 + 2 * 16 + 3  # stem, 16 blocks × 2, 3 projection shortcuts
    assert isinstance(model.embedding[-1], nn.PReLU)
    assert isinstance(model.classifier, nn.Linear) and model.classifier.out_features == 3
    assert len(ResNet18(3, **SMALL).layer3) == 2 and len(model.layer3) == 6


def test_trains_one_step():
    model = small().train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.randn(4, 30, 24), torch.tensor([0, 1, 2, 0])
    before = model.classifier.weight.clone()
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and not torch.equal(before, model.classifier.weight)


def test_wrong_feature_size_is_a_model_error():
    with pytest.raises(ModelError, match=r"\(batch, frames, 24\).*\(2, 30, 40\)"):
        small()(torch.randn(2, 30, 40))
    with pytest.raises(ConfigError, match="4 stages"):
        ResNet34(3, n_mels=0)


def test_replace_classifier():
    model = small()
    model.replace_classifier(7)
    assert model(torch.randn(1, 20, 24)).shape == (1, 7) and model.num_classes == 7


def test_parameter_counts_against_paper():
    """The paper reports 21.5 M parameters (seed 001 Table 3) for its ResNet34.

    With the stated 32 channels in the first block, 128 log-mels and statistics pooling our
    ResNet34 has 9.53 M (5.33 M in the convolutional trunk). 21.5 M is what the *standard-width*
    ResNet34 trunk (64 channels in the first block) has: 21.28 M, within 1 % of 21.5 M — so the
    paper's count matches base_channels=64 convolutions (plus a small head), not 32. Built on the
    meta device: no memory, no time.
    """
    with torch.device("meta"):
        paper = ResNet34(4, n_mels=128, base_channels=32, embed_dim=512, pooling="stats")
        wide = ResNet34(4, n_mels=128, base_channels=64, embed_dim=512, pooling="stats")

    def trunk(m: nn.Module) -> int:
        return sum(p.numel() for n, p in m.named_parameters() if not n.startswith(("pool", "embedding", "classifier")))

    assert count_parameters(paper) == 9_525_572
    assert trunk(paper) == 5_327_168
    assert count_parameters(paper.embedding) == 256 * 16 * 2 * 512 + 512 + 2 * 512 + 512  # 8192 -> 512, BN, PReLU
    assert trunk(wide) == 21_283_456
    assert abs(trunk(wide) - 21.5e6) / 21.5e6 < 0.011
