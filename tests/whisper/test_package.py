"""Audio-in model packages: ONNX export parity, int8, Recognizer backends, abstention, standalone use."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from emovox.audio_model import AudioModelConfig, OnnxAudioModel, read_audio_config
from emovox.errors import ModelError
from emovox.inference import Recognizer
from emovox.testing.whisper import write_tiny_package
from emovox.whisper.model import PooledHead, TorchAudioModel

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
LABELS = ["angry", "happy", "neutral", "sad"]


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced, syllable-modulated harmonic signal (not speech, but it exercises every stage)."""
    t = np.arange(int(seconds * 16000)) / 16000
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t + seed)
    phase = 2 * np.pi * np.cumsum(f0) / 16000
    x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    return (0.2 * x / np.abs(x).max()).astype(np.float32)


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio_model")
    return write_tiny_package(root, LABELS, temperature=1.5, name="tiny", uncertain_below=0.3)


def test_package_files_and_typed_config(package):
    assert {p.name for p in package.iterdir()} >= {"config.json", "head.safetensors", "model.onnx", "model.fp32.onnx"}
    cfg = read_audio_config(package)
    assert cfg.labels == LABELS and cfg.layers == [1, 2] and cfg.temperature == 1.5


def test_graphs_carry_no_stack_traces(package):
    """The exporter records each node's Python stack trace, with the exporting checkout's file
    paths: the same weights exported from two folders would differ, and a shipped graph would
    carry its builder's paths. emovox.export.dynamo_onnx drops them."""
    import onnx

    for name in ("model.fp32.onnx", "model.onnx", "head.onnx"):
        graph = onnx.load(str(package / name)).graph
        assert len(graph.node) >= 5, name
        keys = {p.key for node in graph.node for p in node.metadata_props}
        assert keys and not any(k.endswith("stack_trace") for k in keys), (name, keys)


def test_onnx_fp32_matches_torch_and_int8_agrees(package):
    cfg = read_audio_config(package)
    ref = TorchAudioModel(package, cfg)
    fp32 = OnnxAudioModel(package, graph="model.fp32.onnx")
    int8 = OnnxAudioModel(package)
    for seconds, seed in [(0.5, 0), (2.3, 1), (7.0, 2)]:
        x = speechlike(seconds, seed)
        p_ref, p32, p8 = ref(x), fp32(x), int8(x)
        assert np.abs(p32 - p_ref).max() <= 1e-4
        assert np.abs(p8 - p_ref).max() <= 0.1
        assert abs(p_ref.sum() - 1) < 1e-6


def test_recognizer_backends_agree_and_mark_uncertain(package):
    onnx = Recognizer.load(package, backend="onnx", vad=None)
    tref = Recognizer.load(package, backend="torch", vad=None)
    x = speechlike(3.0)
    a = onnx.predict(x, sample_rate=16000)
    b = tref.predict(x, sample_rate=16000)
    assert a.label in LABELS and a.label == b.label
    assert max(abs(a.probabilities[k] - b.probabilities[k]) for k in LABELS) <= 0.1
    assert a.uncertain == (max(a.probabilities.values()) < 0.3)


def test_silence_and_noise_are_no_speech(package):
    r = Recognizer.load(package)
    rng = np.random.default_rng(0)
    for wave in (np.zeros(48000, np.float32), (rng.standard_normal(48000) * 0.05).astype(np.float32)):
        p = r.predict(wave, sample_rate=16000)
        assert p.no_speech and p.label is None and p.probabilities == {} and p.ok


def test_damaged_config_is_a_model_error(tmp_path, package):
    bad = tmp_path / "bad"
    bad.mkdir()
    cfg = json.loads((package / "config.json").read_text())
    for change in ({"temperature": -1}, {"labels": []}, {"graph": "../x.onnx"}, {"bogus": 1}, {"layers": "all"}):
        (bad / "config.json").write_text(json.dumps({**cfg, **change}))
        with pytest.raises(ModelError):
            read_audio_config(bad)


def test_onnx_prediction_path_does_not_import_torch(package):
    code = textwrap.dedent(f"""
        import sys, numpy as np
        from emovox.inference import Recognizer
        r = Recognizer.load({str(package)!r})
        t = np.arange(48000) / 16000
        p = r.predict((0.1 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), sample_rate=16000)
        assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))[:5]
        print('ok', p.ok)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ok True" in out.stdout


def test_standalone_onnx_without_emovox(package, tmp_path):
    """`emovox export --onnx`: waves in, posteriors out, run by numpy + onnxruntime alone (issue 5, item 6)."""
    from emovox.cli import main

    x = speechlike(2.0, 3)
    np.save(tmp_path / "x.npy", x)
    expected = OnnxAudioModel(package)(x)
    graph = tmp_path / "exported.onnx"
    assert main(["export", "--onnx", "--model", str(package), "-o", str(graph)]) == 0
    code = textwrap.dedent(f"""
        import sys, json
        sys.modules['emovox'] = None  # importing emovox now fails: the check below uses none of it
        import numpy as np, onnxruntime as ort
        s = ort.InferenceSession({str(graph)!r}, providers=['CPUExecutionProvider'])
        assert s.get_modelmeta().custom_metadata_map['emovox_labels'] == {",".join(LABELS)!r}
        x = np.load({str(tmp_path / 'x.npy')!r}).astype(np.float32)
        assert 'mean away' in s.get_modelmeta().custom_metadata_map['emovox_input']
        p = s.run(None, {{'waves': (x - x.mean())[None]}})[0][0]
        print(json.dumps(p.tolist()))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert np.abs(np.array(json.loads(out.stdout)) - expected).max() <= 1e-4


def test_generated_non_speech_set_gets_no_emotion_label(package):
    """>= 100 generated non-speech clips (silence, hum, tones, noise, clicks, chords; 1-30 s): 0 labels."""
    from emovox.testing.nonspeech import nonspeech_clips

    clips = nonspeech_clips()
    assert len(clips) >= 100
    r = Recognizer.load(package)
    results = r.predict([x for _, x in clips], sample_rate=16000)
    labelled = [(name, p.label) for (name, _), p in zip(clips, results) if p.label is not None or not p.no_speech]
    assert labelled == []


def test_fp16_storage_is_lossless_and_only_where_exact(tmp_path):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from emovox.whisper.export import store_fp16_where_exact

    exact = np.random.default_rng(0).standard_normal((4, 8)).astype(np.float16).astype(np.float32)
    inexact = np.full((8, 3), 0.1, np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("MatMul", ["h", "w2"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        [numpy_helper.from_array(exact, "w1"), numpy_helper.from_array(inexact, "w2")])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    x = np.ones((1, 4), np.float32)
    before = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert store_fp16_where_exact(path, min_size=1) == 1  # w2 (0.1) is not exact in fp16
    kinds = {i.name: i.data_type for i in onnx.load(str(path)).graph.initializer}
    assert kinds == {"w1__fp16": TensorProto.FLOAT16, "w2": TensorProto.FLOAT}
    after = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    assert np.array_equal(before, after)


def test_input_loudness_makes_every_path_level_invariant(package, tmp_path):
    """A package whose config sets ``input_loudness`` scales each graph input first: the same
    answer for a clip at any recording level, on onnxruntime (whole and by frames) and torch."""
    import shutil

    folder = tmp_path / "levelled"
    shutil.copytree(package, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "input_loudness": -23.0}))
    x = speechlike(3.0, 4)
    plain, levelled = OnnxAudioModel(package), OnnxAudioModel(folder)
    torch_ref = TorchAudioModel(folder, read_audio_config(folder))
    assert np.abs(plain(0.01 * x) - plain(x)).max() > 1e-3  # the graph alone follows the level
    for gain in (0.05, 0.3, 3.0):  # within the +-30 dB the gain may take
        assert np.abs(levelled(gain * x) - levelled(x)).max() <= 1e-3
        assert np.abs(torch_ref(gain * x) - levelled(x)).max() <= 0.1
    from emovox.loudness import normalise, remove_dc

    assert np.abs(levelled(x) - plain(normalise(remove_dc(x), -23.0))).max() <= 1e-6
    import onnx

    from emovox.whisper.export import export_posteriors_graph

    meta = {p.key: p.value for p in onnx.load(str(export_posteriors_graph(folder, tmp_path / "x.onnx"))).metadata_props}
    assert meta["emovox_input_loudness"] == "-23.0" and "LUFS" in meta["emovox_input"]  # standalone users must scale too
    (folder / "config.json").write_text(json.dumps({**config, "input_loudness": "loud"}))
    with pytest.raises(ModelError, match="input_loudness"):
        read_audio_config(folder)


def test_speech_crop_feeds_the_model_the_clip_s_speech_on_every_path(package, tmp_path, example_waves):
    """A package whose config sets ``speech_crop`` was trained on clips cut to their speech (corpora
    differ in the silence around each clip: RAVDESS about 0.85 s on each side, TESS none): every
    clip scored whole is cut the same way first, on onnxruntime and torch, so silence before and
    after a clip changes nothing."""
    import shutil

    from emovox.long_inputs import crop_to_speech

    folder = tmp_path / "cropped"
    shutil.copytree(package, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "speech_crop": 0.25}))
    wave = example_waves[0]  # RAVDESS: about 1 s of room tone before and after the sentence
    padded = np.concatenate([np.zeros(32000, np.float32), wave, np.zeros(40000, np.float32)])
    crop = crop_to_speech(padded, 0.25)
    assert 1.0 < crop.size / 16000 < wave.size / 16000 - 0.5, crop.size  # the silence and most room tone are gone
    assert np.array_equal(crop_to_speech(np.zeros(48000, np.float32), 0.25), np.zeros(48000, np.float32))  # no speech: all
    plain, cropped = OnnxAudioModel(package), OnnxAudioModel(folder)
    assert np.abs(plain(padded) - plain(crop)).max() > 1e-4  # the graph alone reads the silence
    np.testing.assert_allclose(cropped(padded), plain(crop), atol=1e-6)
    torch_ref = TorchAudioModel(folder, read_audio_config(folder))
    assert np.abs(torch_ref(padded) - cropped(padded)).max() <= 0.1
    from emovox.whisper.export import export_posteriors_graph
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(export_posteriors_graph(folder, tmp_path / "x.onnx"))).metadata_props}
    assert meta["emovox_speech_crop"] == "0.25" and "cut each clip to its speech" in meta["emovox_input"]
    for bad in (-0.1, "tight", True):
        (folder / "config.json").write_text(json.dumps({**config, "speech_crop": bad}))
        with pytest.raises(ModelError, match="speech_crop"):
            read_audio_config(folder)


def test_the_standalone_example_script_matches_emovox_on_a_long_clip(package, tmp_path):
    """examples/onnx_standalone.py (numpy + onnxruntime + soundfile) on an exported graph: a 35 s
    clip is cut into equal pieces as emovox cuts it, so the answers agree."""
    import soundfile as sf

    from emovox.cli import main
    from tests.conftest import REPO

    x = np.concatenate([speechlike(20.0, 5), speechlike(15.0, 6)])
    sf.write(tmp_path / "long.wav", x, 16000, subtype="FLOAT")
    graph = tmp_path / "exported.onnx"
    assert main(["export", "--onnx", "--model", str(package), "-o", str(graph)]) == 0
    out = subprocess.run([sys.executable, str(REPO / "examples" / "onnx_standalone.py"), str(graph), str(tmp_path / "long.wav")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    printed = {line.split()[0]: float(line.split()[1]) for line in out.stdout.splitlines()}
    expected = dict(zip(LABELS, OnnxAudioModel(package)(x)))
    assert set(printed) == set(LABELS) and max(abs(printed[k] - expected[k]) for k in LABELS) <= 2e-3


def test_an_ensemble_head_exports_and_every_path_agrees(tmp_path):
    """A head of 3 members (config ``members``): torch, fp32 and int8 ONNX and the head-alone graph agree."""
    from safetensors.torch import load_file

    pkg = write_tiny_package(tmp_path, LABELS, seed=1, hidden=8, members=3, std=None)
    head = PooledHead(2, 64, len(LABELS), hidden=8, members=3)
    head.load_state_dict(load_file(str(pkg / "head.safetensors")))
    cfg = read_audio_config(pkg)
    assert cfg.members == 3
    from emovox.io import normal_mode

    # a package gets the modes of plain files and folders (it was built in a private temporary)
    assert stat.S_IMODE(pkg.stat().st_mode) == normal_mode(directory=True)
    assert {stat.S_IMODE(f.stat().st_mode) for f in pkg.iterdir()} == {normal_mode()}
    ref, fp32, int8 = TorchAudioModel(pkg, cfg), OnnxAudioModel(pkg, graph="model.fp32.onnx"), OnnxAudioModel(pkg)
    x = speechlike(2.3, 3)
    assert np.abs(fp32(x) - ref(x)).max() <= 1e-4 and np.abs(int8(x) - ref(x)).max() <= 0.1
    stats = np.random.default_rng(0).normal(size=(1, 2, 64)).astype(np.float32)  # (B, L, 2d)
    with torch.inference_mode():
        expected = head(torch.from_numpy(stats).transpose(0, 1)).numpy()
    assert np.abs(int8.head_logits(stats) - expected).max() <= 0.05 * np.abs(expected).max()  # head.onnx (int8)
    single = PooledHead(2, 64, len(LABELS), hidden=8)  # the first member alone answers differently
    single.load_state_dict({k: v for k, v in head.state_dict().items() if not k.startswith("others")})
    with torch.inference_mode():
        pooled = torch.randn(2, 1, 64)
        assert not torch.allclose(single(pooled), head(pooled), atol=1e-3)
    with pytest.raises(ModelError, match="members"):
        AudioModelConfig.from_dict({**cfg.to_dict(), "members": 0})
