"""Whisper foundation: CTranslate2 reader, log-mel, hidden states, truncation, parity."""

from __future__ import annotations

import glob
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from emovox.errors import ConfigError, ModelError
from emovox.testing.whisper import write_tiny_whisper
from emovox.whisper.ct2 import read_ct2, read_ct2_files, write_ct2
from emovox.whisper.encoder import WhisperLayers, load_encoder
from emovox.whisper.mel import log_mel, torch_log_mel_module

EXAMPLES = sorted(glob.glob(str(Path(__file__).resolve().parents[2] / "examples" / "*.flac")))


def test_ct2_roundtrip_and_int8_dequantisation(tmp_path):
    a = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    q = np.round(a * 100).astype(np.int8)
    write_ct2(tmp_path / "m.bin", {"x": a.astype(np.float16), "q": q, "q_scale": np.full(3, 100, np.float32),
                                   "n": np.array(7, np.int16)})
    out = read_ct2_files([tmp_path / "m.bin"])
    assert set(out) == {"x", "q", "n"}
    np.testing.assert_allclose(out["x"], a, atol=1e-3)
    np.testing.assert_allclose(out["q"], a, atol=0.006)
    assert out["n"].ndim == 0 and int(out["n"]) == 7


def test_ct2_truncated_file_is_a_model_error(tmp_path):
    write_ct2(tmp_path / "m.bin", {"x": np.ones((10, 10), np.float32)})
    data = (tmp_path / "m.bin").read_bytes()
    with pytest.raises(ModelError, match="truncated"):
        read_ct2(data[:-50])


def test_numpy_and_torch_log_mel_match_the_librosa_reference():
    librosa = pytest.importorskip("librosa")

    def reference(samples: np.ndarray) -> np.ndarray:  # openai/whisper's definition: torch.stft + librosa filters
        stft = torch.stft(torch.from_numpy(samples), 400, 160, window=torch.hann_window(400), return_complex=True)
        mel = torch.from_numpy(librosa.filters.mel(sr=16000, n_fft=400, n_mels=80)) @ (stft[..., :-1].abs() ** 2)
        log_spec = torch.clamp(mel, min=1e-10).log10()
        return ((torch.maximum(log_spec, log_spec.max() - 8.0) + 4.0) / 4.0).numpy()

    x = (np.random.default_rng(0).standard_normal(16000 * 3 + 77) * 0.1).astype(np.float32)
    ref = reference(x)
    ours = log_mel(x)
    graph = torch_log_mel_module()(torch.from_numpy(x)[None])[0].numpy()
    assert ours.shape == ref.shape == graph.shape == (80, len(x) // 160)
    assert np.abs(ours - ref).max() < 1e-4 and np.abs(graph - ref).max() < 1e-4


@pytest.mark.parametrize("dtype", ["float16", "float32", "int8"])
def test_hidden_states_and_truncation(tmp_path, dtype):
    folder = write_tiny_whisper(tmp_path / "w", n_layers=3, dtype=dtype)
    encoder, dims = load_encoder(str(folder))
    assert (dims.d_model, dims.n_layers, dims.n_heads) == (32, 3, 2)
    mel = torch.from_numpy(log_mel(np.random.default_rng(1).standard_normal(8000).astype(np.float32) * 0.1))[None]
    full = WhisperLayers(encoder, dims, range(4))
    cut = WhisperLayers(encoder, dims, [1, 2])
    assert len(cut.blocks) == 2 and cut.final_norm is None and len(full.blocks) == 3
    with torch.no_grad():
        a, b = full(mel), cut(mel)
    assert a.shape == (4, 1, 25, 32) and b.shape == (2, 1, 25, 32)
    torch.testing.assert_close(a[1:3], b)
    with pytest.raises(ConfigError):
        WhisperLayers(encoder, dims, [4])


def test_unknown_model_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="CTranslate2"):
        load_encoder(str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tiny.en", "base"])
def test_last_layer_matches_ctranslate2(name, tmp_path):
    ct2 = pytest.importorskip("ctranslate2")
    from emovox.whisper.packaged import PACKAGED, source_files

    if any(importlib.util.find_spec(p) is None for p in PACKAGED[name].packages):
        pytest.skip(f"the packaged Whisper {name} weights are not installed ({PACKAGED[name].install})")
    src = source_files(name)
    folder = tmp_path / "ct2"
    folder.mkdir()
    (folder / "model.bin").write_bytes(b"".join(p.read_bytes() for p in src))
    for extra in ("config.json", "vocabulary.txt", "tokenizer.json"):
        if (src[0].parent / extra).is_file():
            (folder / extra).write_bytes((src[0].parent / extra).read_bytes())
    model = ct2.models.Whisper(str(folder), device="cpu", compute_type="float32", intra_threads=1)
    encoder, dims = load_encoder(name)
    layers = WhisperLayers(encoder, dims, [dims.n_layers])
    assert EXAMPLES, "examples/*.flac missing"
    for path in EXAMPLES[:2]:
        x, sr = sf.read(path, dtype="float32")
        mel = log_mel(x)
        ref = np.asarray(model.encode(ct2.StorageView.from_array(mel[None]), to_cpu=True))[0]
        with torch.no_grad():
            ours = layers(torch.from_numpy(mel)[None])[0, 0].numpy()
        assert ours.shape == ref.shape
        assert np.abs(ours - ref).max() / np.abs(ref).max() <= 1e-4
