"""Label maps: presets, merging, dropping vs error, config parsing."""

from __future__ import annotations

import pytest

from emovox.corpora.labels import PRESETS, LabelMap, apply_labels, label_map_from_config, normalize_label
from emovox.corpora.manifest import Utterance
from emovox.errors import ConfigError

UTTS = [Utterance(f"u{i}", "", "s", lab) for i, lab in enumerate(
    ["angry", "happy", "excited", "neutral", "sad", "frustrated", "calm"])]


def test_iemocap_presets():
    assert [u.label for u in apply_labels(UTTS, "iemocap_exp1")] == ["angry", "happy", "neutral", "sad"]
    assert [u.label for u in apply_labels(UTTS, "iemocap_exp2")] == ["angry", "excited", "neutral", "sad"]
    assert [u.label for u in apply_labels(UTTS, "iemocap_exp3")] == ["angry", "happy", "happy", "neutral", "sad"]
    assert PRESETS["iemocap_exp3"].classes == ("angry", "happy", "neutral", "sad")


def test_calm_to_neutral_optional():
    assert "calm" not in [u.label for u in apply_labels(UTTS, "four_class")]
    assert [u.label for u in apply_labels(UTTS, "four_class_calm")][-1] == "neutral"


def test_config_dict_and_error_mode():
    lm = label_map_from_config({"classes": ["angry", "happy"], "map": {"excited": "happy"}, "unmapped": "error"})
    assert lm.index("happy") == 1
    with pytest.raises(ConfigError, match="'neutral' which is not mapped"):
        lm.apply(UTTS)
    assert apply_labels(UTTS, None) == UTTS


@pytest.mark.parametrize("spec, match", [
    ("exp9", "unknown label map"),
    ({"classes": []}, "'classes' is empty"),
    ({"classes": ["a", "a"]}, "duplicate class"),
    ({"classes": ["a"], "map": {"b": "c"}}, "not among classes"),
    ({"classes": ["a"], "unmapped": "keep"}, "unmapped must be"),
    ({"classes": ["a"], "colour": 1}, "unknown key"),
    (3, "preset name or a mapping"),
])
def test_bad_configs(spec, match):
    with pytest.raises(ConfigError, match=match):
        label_map_from_config(spec)


def test_normalize_label():
    assert [normalize_label(x) for x in ("Anger", "JOY", "fearful", "ps", "Pleasant Surprise", "calm")] == [
        "angry", "happy", "fear", "surprise", "surprise", "calm"]
    assert isinstance(PRESETS["emodb7"], LabelMap)
