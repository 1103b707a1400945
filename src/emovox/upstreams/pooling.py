"""Frame features ``(T, F)`` -> one fixed vector, in numpy (the SVM path).

The torch statistics-pooling layer used by trainable heads lives in :mod:`emovox.models.pooling`;
this is its numpy counterpart for frozen features and must stay numerically the same
(population standard deviation, mean first).
"""

from __future__ import annotations

import numpy as np


def mean_std(frames: np.ndarray) -> np.ndarray:
    """Mean ‖ standard deviation over time: ``(T, F)`` -> ``(2F,)`` float32 (std of one frame is 0)."""
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected frame features of shape (T, F) with T >= 1, got {x.shape}")
    return np.concatenate([x.mean(axis=0), x.std(axis=0)]).astype(np.float32)


def mean(frames: np.ndarray) -> np.ndarray:
    """Mean over time: ``(T, F)`` -> ``(F,)`` float32."""
    x = np.asarray(frames, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"expected frame features of shape (T, F) with T >= 1, got {x.shape}")
    return x.mean(axis=0).astype(np.float32)


POOLINGS = {"mean_std": mean_std, "mean": mean}


def pool(frames: np.ndarray, method: str = "mean_std") -> np.ndarray:
    """Pool with a method named by string (``mean_std`` | ``mean``)."""
    try:
        fn = POOLINGS[method]
    except KeyError:
        from emovox.errors import ConfigError

        raise ConfigError(f"unknown pooling {method!r}; choose one of {sorted(POOLINGS)}") from None
    return fn(frames)
