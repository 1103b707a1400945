"""The recipe's robust section: defaults, switches and a clear error for every bad entry."""

from __future__ import annotations

import pytest

from emovox.errors import ConfigError
from emovox.robust_config import CODECS, COLORS, RobustConfig, robust_config


def test_defaults_are_off_and_switches_parse():
    assert not RobustConfig().enabled
    cfg = robust_config({"speed": 0.3, "noise": True, "codec": {"p": 0.2, "codecs": ["opus"], "kbps": [8, 16]}})
    assert cfg.enabled and cfg.speed.p == 0.3 and cfg.noise.p == 1.0
    assert cfg.codec.codecs == ("opus",) and cfg.codec.kbps == (8.0, 16.0)
    assert cfg.noise.colors == tuple(COLORS) and set(cfg.codec.codecs) <= set(CODECS)
    assert robust_config(None) == robust_config({}) == RobustConfig()


@pytest.mark.parametrize("raw, match", [
    ({"echo": 0.5}, "unknown effect"),
    ({"noise": {"p": 0.5, "snr": [0, 20]}}, r"unknown key\(s\) \['snr'\]"),
    ({"noise": {"snr_db": [20, 0]}}, "low <= high"),
    ({"speed": 1.5}, "probability"),
    ({"codec": {"codecs": ["aac"]}}, "from"),
    ({"reverb": {"method": "convolution"}}, "one of"),
    ({"reverb": {"n_rirs": 0}}, "positive integer"),
    ([0.5], "mapping"),
])
def test_bad_configs(raw, match):
    with pytest.raises(ConfigError, match=match):
        robust_config(raw)
