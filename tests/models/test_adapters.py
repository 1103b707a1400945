"""Residual adapters, ResNet20 (seed 003 Table I) and transfer modes: what trains really trains,
what is frozen really stays frozen after backward + optimizer step."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from emovox.errors import ConfigError
from emovox.models.layers import ConvBN, FrozenBatchNorm2d, set_domain
from emovox.models.resnet20 import ResNet20
from emovox.models.transfer import apply_transfer_mode
from emovox.models.resnet import ResNet34

ACTIVE = re.compile(r"(adapters|bn)\.emotion\.")


def resnet20(adapters: bool = True) -> ResNet20:
    torch.manual_seed(0)
    return ResNet20(3, widths=(4, 8, 16), stem_channels=4, adapters=adapters)


def resnet34(adapters: bool = True) -> ResNet34:
    torch.manual_seed(0)
    return ResNet34(3, n_mels=16, base_channels=4, embed_dim=8, adapters=adapters)


def _step(model: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One train-mode SGD step (momentum, weight decay, *all* parameters given to the optimizer);
    returns the state before and after."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9, weight_decay=0.01)
    x, y = torch.randn(4, 40, 16), torch.tensor([0, 1, 2, 1])
    nn.functional.cross_entropy(model(x, torch.tensor([40, 33, 20, 40])), y).backward()
    opt.step()
    return before, model.state_dict()


def _trainable(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _assert_step_respects_freezing(model: nn.Module) -> None:
    trainable = _trainable(model)
    frozen_modules = {n for n, m in model.named_modules() if isinstance(m, FrozenBatchNorm2d)}
    before, after = _step(model)
    for key, old in before.items():
        owner = key.rsplit(".", 1)[0]
        if key in trainable:
            continue
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            if owner in frozen_modules:
                assert torch.equal(old, after[key]), f"frozen BN statistics {key} changed"
            continue
        assert torch.equal(old, after[key]), f"frozen parameter {key} changed"
    changed = {k for k in trainable if not torch.equal(before[k], after[k])}
    assert changed, "nothing trained"


def test_table1_shapes_and_structure():
    model = ResNet20(4, adapters=True).eval()
    x = torch.randn(1, 200, 400)  # 2 s × 400 frequency bins (0–4 kHz): the paper's 400×200 input
    maps = model.stages(model.stem(x.transpose(1, 2).unsqueeze(1)))
    assert maps.shape == (1, 256, 25, 13)  # "256-dimensional feature map with size 25×13"
    assert model(x).shape == (1, 4) and model.classifier.in_features == 256  # FC 256:classes
    convs = [m for m in model.modules() if isinstance(m, ConvBN)]
    three = [m for m in convs if m.conv.kernel_size == (3, 3)]
    assert len(three) == 18 and all(m.adapters is not None for m in three)
    assert all(m.adapters is None for m in convs if m.conv.kernel_size != (3, 3))
    assert model.stem[0].conv.kernel_size == (7, 7) and model.stem[0].conv.out_channels == 32
    assert [s[-1].conv2.conv.out_channels for s in model.stages] == [64, 128, 256]
    assert set(three[0].adapters) == set(three[0].bn) == {"speaker", "emotion"}


def test_adapter_output_is_added_before_domain_batchnorm():
    torch.manual_seed(0)
    layer = ConvBN(3, 5, 3, 2, domains=("speaker", "emotion")).eval()
    x = torch.randn(2, 3, 9, 7)
    expected = layer.bn["speaker"](layer.conv(x) + layer.adapters["speaker"](x))
    torch.testing.assert_close(layer(x), expected)
    layer.domain = "emotion"
    torch.testing.assert_close(layer(x), layer.bn["emotion"](layer.conv(x) + layer.adapters["emotion"](x)))


def test_switching_domain_starts_from_the_source_domain():
    model = resnet20().eval()
    x = torch.randn(2, 30, 16)
    speaker_out = model(x)
    apply_transfer_mode(model, "residual_adapter", domain="emotion")
    model.eval()
    torch.testing.assert_close(model(x), speaker_out)
    block = model.stages[0][0].conv1
    assert block.adapters["emotion"].weight is not block.adapters["speaker"].weight
    assert not any(p.requires_grad for n, p in model.named_parameters() if ".speaker." in n)


@pytest.mark.parametrize("build", [resnet20, resnet34])
def test_residual_adapter_trains_only_adapters_bn_and_head(build):
    model = apply_transfer_mode(build(), "residual_adapter", domain="emotion")
    head = tuple(f"{h}." for h in model.HEAD)
    trainable = _trainable(model)
    assert all(ACTIVE.search(n) or n.startswith(head) for n in trainable), trainable
    adapters = {n for n, _ in model.named_parameters() if ".adapters.emotion." in n}
    assert adapters and adapters <= trainable
    assert not any(n.endswith("conv.weight") for n in trainable)
    _assert_step_respects_freezing(model)


@pytest.mark.parametrize("build", [resnet20, resnet34])
def test_adapter_only_zeroes_and_freezes_3x3_filters(build):
    model = apply_transfer_mode(build(), "adapter_only", domain="emotion")
    _assert_step_respects_freezing(model)
    for m in model.modules():
        if isinstance(m, ConvBN) and m.adapters is not None:
            assert m.conv.weight.abs().sum() == 0 and not m.conv.weight.requires_grad
            assert m.adapters["emotion"].weight.requires_grad
    assert model.eval()(torch.randn(1, 20, 16)).isfinite().all()


@pytest.mark.parametrize("build", [resnet20, resnet34])
def test_feature_extractor_trains_only_the_output_layer(build):
    model = apply_transfer_mode(build(adapters=False), "feature_extractor")
    assert _trainable(model) == {"classifier.weight", "classifier.bias"}
    _assert_step_respects_freezing(model)
    model.train()
    assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_linear_probe_trains_segment_level_layers_of_resnet34():
    model = apply_transfer_mode(resnet34(adapters=False), "linear_probe")
    assert {n.split(".")[0] for n in _trainable(model)} == {"embedding", "classifier"}
    _assert_step_respects_freezing(model)
    model.train()
    assert model.embedding[1].training  # the head's BatchNorm1d still learns
    assert not model.layer1[0].conv1.bn.training


def test_fine_tune_and_scratch_train_everything_of_the_active_domain():
    model = apply_transfer_mode(resnet34(adapters=False), "linear_probe")
    apply_transfer_mode(model, "fine_tune")  # thaws again
    assert _trainable(model) == {n for n, _ in model.named_parameters()}
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    adapter_model = apply_transfer_mode(resnet20(), "scratch")
    inactive = {n for n, _ in adapter_model.named_parameters() if ".emotion." in n}
    assert inactive and not (inactive & _trainable(adapter_model))
    _assert_step_respects_freezing(adapter_model)


def test_mode_errors():
    with pytest.raises(ConfigError, match="adapters=True"):
        apply_transfer_mode(resnet34(adapters=False), "residual_adapter")
    with pytest.raises(ConfigError, match="without adapters"):
        apply_transfer_mode(resnet20(adapters=False), "fine_tune", domain="emotion")
    with pytest.raises(ConfigError, match="unknown domain 'music'"):
        set_domain(resnet20(), "music")
