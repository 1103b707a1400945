"""VGGish (seed 002 Table 2), its classifier, the baseline MLP, and loading torchvggish weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from emovox.errors import ModelError
from emovox.models.base import count_parameters
from emovox.models.vggish import VGGISH_LAYOUT, PatchMLP, VGGish, VGGishClassifier, load_vggish_weights


class ReferenceVGGish(nn.Module):
    """harritaylor/torchvggish's VGG as published (module names, transposes), written out here
    independently of emovox so the test checks the key layout *and* the flatten order."""

    def __init__(self) -> None:
        super().__init__()
        layers, c = [], 1
        for v in [64, "M", 128, "M", 256, 256, "M", 512, 512, "M"]:
            if v == "M":
                layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
            else:
                layers += [nn.Conv2d(c, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(nn.Linear(512 * 4 * 6, 4096), nn.ReLU(True), nn.Linear(4096, 4096),
                                        nn.ReLU(True), nn.Linear(4096, 128), nn.ReLU(True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (P, 1, 96, 64)
        x = self.features(x)
        x = torch.transpose(x, 1, 3)
        x = torch.transpose(x, 1, 2)
        return self.embeddings(x.contiguous().view(x.size(0), -1))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[ReferenceVGGish, Path, Path]:
    torch.manual_seed(0)
    ref = ReferenceVGGish().eval()
    with torch.no_grad():  # small weights so activations stay non-zero through 9 ReLU layers
        for p in ref.parameters():
            p.mul_(0.5).add_(0.002)
    folder = tmp_path_factory.mktemp("vggish")
    state = ref.state_dict()
    pth = folder / "vggish-10086976.pth"
    torch.save({**state, "pproc._pca_matrix": torch.eye(128), "pproc._pca_means": torch.zeros(128, 1)}, pth)
    st = folder / "vggish.safetensors"
    save_file({f"module.{k}": v.contiguous() for k, v in state.items()}, str(st))
    return ref, pth, st


def test_table2_activation_sizes():
    model = VGGish().eval()
    sizes = []
    for m in list(model.features) + list(model.embeddings):
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.Linear)):
            m.register_forward_hook(lambda _m, _i, out: sizes.append(tuple(out.shape[1:])))
    with torch.no_grad():
        out = model(torch.randn(2, 96, 64))
    assert sizes == [(64, 96, 64), (64, 48, 32), (128, 48, 32), (128, 24, 16), (256, 24, 16), (256, 24, 16),
                     (256, 12, 8), (512, 12, 8), (512, 12, 8), (512, 6, 4), (4096,), (4096,), (128,)]
    assert out.shape == (2, 128) and (out >= 0).all()  # ReLU on the embedding too
    assert sum(isinstance(m, nn.ReLU) for m in model.modules()) == 9
    assert count_parameters(model) == 72_141_184  # "~72 million parameters"
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == VGGISH_LAYOUT


@pytest.mark.parametrize("which", ["pth", "safetensors"])
def test_loads_public_layout_and_matches_reference_outputs(reference, which):
    ref, pth, st = reference
    model = VGGishClassifier(4, hidden=100).eval()
    head = model.classifier.weight.clone()
    load_vggish_weights(model, pth if which == "pth" else st)
    for key, value in ref.state_dict().items():
        assert torch.equal(model.vggish.state_dict()[key], value), key
    x = torch.randn(3, 96, 64)
    with torch.no_grad():
        expected = ref(x.unsqueeze(1))
        torch.testing.assert_close(model.vggish(x), expected)
        assert expected.abs().sum() > 0
        assert model(x).shape == (3, 4) and model.embed(x).shape == (3, 100)
    assert torch.equal(model.classifier.weight, head)  # head untouched


def test_loader_errors(tmp_path, reference):
    ref, _, _ = reference
    model = VGGish()
    with pytest.raises(ModelError, match="not found"):
        load_vggish_weights(model, tmp_path / "missing.pth")
    bad = tmp_path / "garbage.pth"
    bad.write_bytes(b"\x00not a torch file")
    with pytest.raises(ModelError, match="cannot read VGGish weights"):
        load_vggish_weights(model, bad)
    pickled = tmp_path / "object.pth"
    torch.save({"model": nn.Linear(2, 2)}, pickled)  # a pickled module: refused by weights_only
    with pytest.raises(ModelError, match="cannot read|not a state dict"):
        load_vggish_weights(model, pickled)
    partial = tmp_path / "partial.safetensors"
    save_file({"features.0.weight": torch.zeros(64, 1, 3, 3)}, str(partial))
    with pytest.raises(ModelError, match="missing.*features.0.bias"):
        load_vggish_weights(model, partial)
    wrong = tmp_path / "wrong.safetensors"
    state = {k: torch.zeros(shape) for k, shape in VGGISH_LAYOUT.items() if not k.startswith("embeddings.0")}
    state.update({"embeddings.0.weight": torch.zeros(4096, 100), "embeddings.0.bias": torch.zeros(4096)})
    save_file(state, str(wrong))
    with pytest.raises(ModelError, match=r"wrong shapes: embeddings.0.weight \(4096, 100\)"):
        load_vggish_weights(model, wrong)
    with pytest.raises(ModelError, match="needs a VGGish"):
        load_vggish_weights(nn.Linear(2, 2), wrong)


def test_hidden_sizes_and_patch_check():
    with torch.device("meta"):
        for n in (100, 200, 400):
            model = VGGishClassifier(4, hidden=n)
            assert model.hidden[0].out_features == n and model.classifier.in_features == n
            assert count_parameters(model) == 72_141_184 + 128 * n + n + n * 4 + 4
    with pytest.raises(ModelError, match=r"\(P, 96, 64\)"):
        PatchMLP(4)(torch.randn(2, 100, 64))


def test_baseline_mlp_structure():
    model = PatchMLP(4, num_layers=3, hidden=200)
    linears = [m for m in model.layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(6144, 200), (200, 200), (200, 200)]
    assert sum(isinstance(m, nn.BatchNorm1d) for m in model.layers) == 3
    assert [m.p for m in model.layers if isinstance(m, nn.Dropout)] == [0.5] * 3
    model.train()
    assert model(torch.randn(5, 96, 64)).shape == (5, 4)
    model.eval()
    x = torch.randn(2, 96, 64)
    torch.testing.assert_close(model(x), model(x))  # dropout off in eval
