import numpy as np

from emovox.cache import FeatureCache, extractor_key, source_key


def test_cache_round_trip_and_single_compute(tmp_path, wav_file):
    cache = FeatureCache(tmp_path, extractor_key("logmel", {"n_mels": 128}))
    key = source_key(wav_file)
    calls = []

    def compute():
        calls.append(1)
        return {"feats": np.arange(12, dtype=np.float32).reshape(3, 4)}

    first = cache.get_or_compute(key, compute)
    second = cache.get_or_compute(key, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first["feats"], second["feats"])


def test_keys_change_with_params_and_file(tmp_path, wav_file):
    assert extractor_key("logmel", {"n_mels": 128}) != extractor_key("logmel", {"n_mels": 64})
    before = source_key(wav_file)
    wav_file.write_bytes(wav_file.read_bytes() + b"\0\0")
    assert source_key(wav_file) != before
    assert source_key(wav_file, 0.0, 1.0) != source_key(wav_file)


def test_corrupt_entry_is_recomputed(tmp_path):
    cache = FeatureCache(tmp_path, "x")
    cache.put("abcd", {"a": np.ones(3, np.float32)})
    cache._entry("abcd").write_bytes(b"garbage")
    assert cache.get("abcd") is None
    out = cache.get_or_compute("abcd", lambda: {"a": np.zeros(2, np.float32)})
    assert out["a"].tolist() == [0.0, 0.0]
