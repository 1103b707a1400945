"""ONNX export: dynamic time axis, parity of posteriors with torch, the onnx Recognizer backend."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime (pip install 'emovox[onnx]')")
pytest.importorskip("onnxscript", reason="ONNX export needs onnxscript (pip install 'emovox[onnx]')")

from emovox.errors import ModelError  # noqa: E402
from emovox.engines import OnnxEngine, TorchEngine  # noqa: E402
from emovox.export import ONNX_NAME, export_onnx  # noqa: E402
from emovox.frontend.normalize import mvn  # noqa: E402
from emovox.inference import Recognizer  # noqa: E402
from tests.conftest import make_tone  # noqa: E402
from tests.product_fixtures import LABELS, make_tiny_model  # noqa: E402

#: Max abs difference of posteriors allowed between onnxruntime and torch.
PARITY = 1e-4


@pytest.fixture(scope="module")
def exported(tiny_model, tiny_onnx):
    return tiny_model, tiny_onnx


def test_export_writes_graph_with_metadata(exported):
    import onnx

    folder, path = exported
    assert path == folder / ONNX_NAME and path.is_file()
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["emovox_labels"] == ",".join(LABELS)
    assert len(meta["emovox_weights_sha256"]) == 64
    inp = model.graph.input[0]
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert inp.name == "features" and isinstance(dims[0], str) and isinstance(dims[1], str) and dims[2] == 32
    assert not list(folder.glob(".*"))  # written atomically, no temp files left


@pytest.mark.parametrize("batch,frames", [(1, 9), (1, 101), (3, 257), (2, 1203)])
def test_parity_with_torch_over_lengths(exported, batch, frames):
    import torch

    from emovox.models.io import load_model

    folder, _ = exported
    model, _ = load_model(folder)
    feats = torch.randn(batch, frames, 32) * 3 - 5
    ref = TorchEngine(model, mvn)(feats)
    got = OnnxEngine.for_model(folder, threads=1)(feats)
    assert got.shape == (batch, len(LABELS))
    assert np.abs(got - ref).max() < PARITY


def test_onnx_recognizer_matches_torch(exported, examples_dir):
    folder, _ = exported
    files = sorted(examples_dir.glob("*.flac"))[:3] + [make_tone(0.3)]
    torch_r = Recognizer.load(folder, threads=1, vad=None)
    onnx_r = Recognizer.load(folder, backend="onnx", threads=1, vad=None)
    assert onnx_r.info()["backend"] == "onnx"
    diffs = []
    for a, b in zip(torch_r.predict(files, sample_rate=16000), onnx_r.predict(files, sample_rate=16000)):
        assert a.ok and b.ok and a.label == b.label
        diffs.append(max(abs(a.probabilities[k] - b.probabilities[k]) for k in LABELS))
    assert max(diffs) < PARITY


def test_stale_graph_is_not_used(exported, tmp_path):
    folder, path = exported
    other = make_tiny_model(tmp_path / "other", seed=4)
    shutil.copy(path, other / ONNX_NAME)  # a graph of different weights
    x = make_tone(1.0)
    onnx_r = Recognizer.load(other, backend="onnx", threads=1, vad=None)
    torch_r = Recognizer.load(other, threads=1, vad=None)
    a, b = onnx_r.predict(x, sample_rate=16000), torch_r.predict(x, sample_rate=16000)
    assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in LABELS) < PARITY


def test_export_errors(tmp_path):
    with pytest.raises(ModelError, match="no model folder"):
        export_onnx(tmp_path / "missing", tmp_path / "x.onnx")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="not JSON"):
        export_onnx(broken)
    assert not (tmp_path / "x.onnx").exists()


def test_cli_export(tmp_path, capsys):
    from emovox.cli import main

    folder = make_tiny_model(tmp_path / "m", seed=5)
    assert main(["export", "--onnx", "--model", str(folder), "-o", str(tmp_path / "out.onnx")]) == 0
    assert (tmp_path / "out.onnx").stat().st_size > 10_000
    assert capsys.readouterr().out.strip() == str(tmp_path / "out.onnx")
    assert main(["export", "--onnx", "--model", str(tmp_path / "nothing")]) == 2
    assert "no model folder" in capsys.readouterr().err
    # a folder (existing, or new with a trailing slash) gets model.onnx in it: an existing one was a
    # traceback, a new one became a file of the folder's name
    (tmp_path / "graphs").mkdir()
    for out in (tmp_path / "graphs", f"{tmp_path / 'new'}/"):
        assert main(["export", "--onnx", "--model", str(folder), "-o", str(out)]) == 0
        assert (Path(out) / "model.onnx").stat().st_size > 10_000


def test_bundled_onnx_graph_matches_its_weights(examples_dir):
    import onnxruntime as ort

    from emovox.inference import FAST_MODEL
    from emovox.models.io import read_config

    meta = ort.InferenceSession(str(FAST_MODEL / ONNX_NAME)).get_modelmeta().custom_metadata_map
    assert meta["emovox_weights_sha256"] == read_config(FAST_MODEL)["weights_sha256"]  # used as shipped
    clips = sorted(examples_dir.glob("*.flac"))
    a = Recognizer.load("fast", vad=None, threads=1).predict(clips)
    b = Recognizer.load("fast", backend="onnx", vad=None, threads=1).predict(clips)
    diff = max(abs(x.probabilities[k] - y.probabilities[k]) for x, y in zip(a, b) for k in x.probabilities)
    assert diff < PARITY and [x.label for x in a] == [y.label for y in b]
