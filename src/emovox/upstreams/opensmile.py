"""openSMILE functionals (eGeMAPSv02: 88, ComParE_2016: 6373 values per utterance).

Uses the PyPI ``opensmile`` package (bundled SMILExtract binary); one process, one thread.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from emovox.audio import SAMPLE_RATE
from emovox.errors import AudioError, ConfigError, DependencyError
from emovox.upstreams.base import Upstream, check_sample_rate

#: emovox name -> (opensmile FeatureSet member, number of functionals)
FEATURE_SETS = {"egemaps": ("eGeMAPSv02", 88), "compare": ("ComParE_2016", 6373)}
INSTALL = "pip install 'opensmile>=2.5'  (or: pip install 'emovox[baseline]')"


class OpenSmileFunctionals(Upstream):
    """Utterance-level openSMILE functionals; ``extract`` returns ``{"functionals": (dim,)}``."""

    def __init__(self, feature_set: str = "egemaps") -> None:
        if feature_set not in FEATURE_SETS:
            raise ConfigError(f"unknown openSMILE feature set {feature_set!r}; choose one of {sorted(FEATURE_SETS)}")
        try:
            import opensmile
        except ImportError:
            raise DependencyError("opensmile", f"the {feature_set} features", INSTALL) from None
        self.name = feature_set
        self.set_name, self.dim = FEATURE_SETS[feature_set]
        self._smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, self.set_name),
            feature_level=opensmile.FeatureLevel.Functionals,
        )
        self.feature_names: list[str] = list(self._smile.feature_names)

    def params(self) -> dict[str, Any]:
        return {"feature_set": self.set_name, "level": "functionals"}

    def extract(self, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> dict[str, np.ndarray]:
        check_sample_rate(sample_rate, self.name)
        x = np.ascontiguousarray(samples, dtype=np.float32)
        try:
            frame = self._smile.process_signal(x, sample_rate)
        except Exception as exc:  # noqa: BLE001 - third-party failures vary; re-raised as an EmovoxError
            raise AudioError("<array>", f"openSMILE {self.set_name} failed ({type(exc).__name__}: {exc})") from None
        values = frame.to_numpy(dtype=np.float32).reshape(-1)
        if values.size != self.dim:
            raise AudioError("<array>", f"openSMILE returned {values.size} values, expected {self.dim}")
        # openSMILE gives NaN for a few functionals on pathological input (e.g. pure silence).
        return {"functionals": np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)}

    def pooled(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(arrays["functionals"], dtype=np.float32)
