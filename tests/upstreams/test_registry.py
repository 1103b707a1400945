"""build_upstream: names, options, errors."""

import numpy as np
import pytest

from emovox.errors import ConfigError
from emovox.upstreams import UPSTREAMS, build_upstream
from emovox.upstreams.pooling import mean, mean_std, pool


def test_registry_names():
    assert set(UPSTREAMS) == {"egemaps", "compare", "ge2e", "whisper"}


def test_unknown_name_and_option_raise_config_error():
    with pytest.raises(ConfigError, match="unknown upstream 'mfcc'"):
        build_upstream("mfcc")
    with pytest.raises(ConfigError, match="no option"):
        build_upstream("whisper", pad=True)


def test_mean_std_pooling():
    frames = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
    np.testing.assert_allclose(mean_std(frames), [2.0, 4.0, 1.0, 2.0])
    np.testing.assert_allclose(mean(frames), [2.0, 4.0])
    assert mean_std(frames[:1]).tolist() == [1.0, 2.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        mean_std(np.zeros((0, 3)))
    with pytest.raises(ConfigError):
        pool(frames, "max")
