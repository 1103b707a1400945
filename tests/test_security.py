"""Security properties as tests: no pickle loading anywhere in the package, model files are
safetensors + JSON, the service binds 127.0.0.1 by default, caps upload size, and never turns
request data (file names, fields, parameters) into file-system paths."""

from __future__ import annotations

import ast
import builtins
import io
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import emovox
from tests.conftest import make_tone

PACKAGE = Path(emovox.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))
TREES = {path: ast.parse(path.read_text(encoding="utf-8")) for path in SOURCES}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def _kw(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_sources_parse_and_are_found():
    assert len(SOURCES) > 40 and PACKAGE / "audio.py" in SOURCES


def test_every_torch_load_uses_weights_only_true():
    found, unsafe = [], []
    for path in SOURCES:
        for call, name in _calls(TREES[path]):
            if name == "torch.load":
                found.append(f"{path.name}:{call.lineno}")
                flag = _kw(call, "weights_only")
                if not (isinstance(flag, ast.Constant) and flag.value is True):
                    unsafe.append(f"{path.relative_to(PACKAGE)}:{call.lineno}: {ast.unparse(call)}")
    assert found, "the scan found no torch.load call at all (is it still looking at the package?)"
    assert unsafe == []


def test_no_pickle_based_loading_in_the_package():
    banned = {"pickle.load", "pickle.loads", "cPickle.load", "joblib.load", "dill.load", "torch.jit.load",
              "yaml.load", "yaml.unsafe_load", "marshal.load", "marshal.loads", "eval", "exec"}
    bad = []
    for path in SOURCES:
        tree = TREES[path]
        for call, name in _calls(tree):
            if name in banned:
                bad.append(f"{path.relative_to(PACKAGE)}:{call.lineno}: {name}")
            if name in ("np.load", "numpy.load"):
                flag = _kw(call, "allow_pickle")
                if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                    bad.append(f"{path.relative_to(PACKAGE)}:{call.lineno}: np.load(allow_pickle=...)")
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if any(n and n.split(".")[0] in ("pickle", "cPickle", "dill", "joblib", "marshal") for n in names):
                    bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: imports {names}")
    assert bad == []


def test_a_pickled_model_file_is_refused_without_being_unpickled(tmp_path, monkeypatch):
    import pickle

    import torch

    from emovox.errors import ModelError
    from emovox.inference import Recognizer

    class Boom:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(Boom()))
    (folder / "model.pt").write_bytes(pickle.dumps(Boom()))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called on a model folder"))
    with pytest.raises(ModelError, match="config.json"):
        Recognizer.load(folder)
    (folder / "config.json").write_text('{"format": "emovox-model/1", "frontend": {"name": "logmel"}, '
                                        '"labels": ["a", "b"], "model": {"name": "resnet18", "kwargs": {}}}')
    with pytest.raises(ModelError, match="model.safetensors"):
        Recognizer.load(folder)
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------------------------- service
def test_service_defaults_bind_localhost_and_cap_uploads():
    import inspect

    pytest.importorskip("fastapi")
    from emovox.cli import build_parser
    from emovox.service.app import create_app

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.max_upload_mb == 25.0 and args.decode_timeout == 30.0
    defaults = {k: p.default for k, p in inspect.signature(create_app).parameters.items()}
    assert defaults["max_upload_bytes"] == 25 * 1024 * 1024 and defaults["decode_timeout"] == 30.0
    assert defaults["max_seconds"] == 600.0
    wildcard = re.compile(r"(default|host)\s*=\s*[\"'](0\.0\.0\.0|::)[\"']")
    assert [p.name for p in SOURCES if wildcard.search(p.read_text(encoding="utf-8"))] == []


def test_request_data_never_becomes_a_path(tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from emovox.inference import Recognizer
    from emovox.service.app import create_app
    from tests.product_fixtures import make_tiny_model

    recognizer = Recognizer.load(make_tiny_model(tmp_path / "model"), threads=1)
    secret = tmp_path / "secret.wav"
    sf.write(secret, make_tone(1.0), 16000)
    buf = io.BytesIO()
    sf.write(buf, make_tone(1.0, freq=300), 16000, format="WAV")
    clip = buf.getvalue()

    opened: list[str] = []  # paths given to open() while requests run
    decoded: list[str] = []  # what soundfile was asked to read
    real_open, real_sf = builtins.open, sf.SoundFile

    def spy_open(file, *a, **k):
        opened.append(str(file))
        return real_open(file, *a, **k)

    class SpySoundFile(real_sf):
        def __init__(self, file, *a, **k):
            decoded.append(file if isinstance(file, (str, os.PathLike)) else type(file).__name__)
            super().__init__(file, *a, **k)

    with TestClient(create_app(recognizer, max_upload_bytes=1_000_000), base_url="http://127.0.0.1") as client:
        monkeypatch.setattr(builtins, "open", spy_open)
        monkeypatch.setattr(sf, "SoundFile", SpySoundFile)
        for name in (str(secret), "../../" + secret.name, secret.name, "file://" + str(secret)):
            resp = client.post("/v1/predict", files={"file": (name, clip, "audio/wav")},
                               params={"labels": "angry,sad"}, data={"path": str(secret)})
            assert resp.status_code == 200, resp.text
            assert "/" not in resp.json()["source"]  # the name is a sanitised label
            resp = client.post("/v1/timeline", files={"file": (name, clip, "audio/wav")}, params={"vad": "none"})
            assert resp.status_code == 200
        resp = client.post("/v1/predict", files={"file": ("x.wav", str(secret).encode(), "text/plain")})
        assert resp.status_code == 415  # a path sent as the file's content is just bytes
        resp = client.post("/v1/predict", params={"labels": str(secret)}, files={"file": ("x.wav", clip, "audio/wav")})
        assert resp.status_code == 400  # an unknown label, not a file to read
        for url in ("/static/../app.py", "/static/..%2f..%2fapp.py", "/static/%2e%2e/uploads.py"):
            assert client.get(url).status_code == 404
    monkeypatch.undo()
    assert len(decoded) >= 8 and set(decoded) == {"BytesIO"}  # uploads are decoded from memory only
    assert not [o for o in opened if secret.name in o or str(tmp_path) in o]


def test_uploads_never_touch_the_disk(monkeypatch):
    """decode_bytes reads from memory only: the temp-file machinery is never used."""
    import tempfile

    from emovox.audio import decode_bytes

    monkeypatch.setattr(tempfile, "mkstemp", lambda *a, **k: pytest.fail("a temporary file was created"))
    monkeypatch.setattr(tempfile, "NamedTemporaryFile", lambda *a, **k: pytest.fail("a temporary file was created"))
    buf = io.BytesIO()
    sf.write(buf, np.zeros(8000, np.float32), 16000, format="FLAC")
    assert decode_bytes(buf.getvalue(), "/etc/passwd").shape == (8000,)
