"""Front-ends: 16 kHz waveform -> time-major (T, F) / (B, T, F) float32 features.

=============  ==============================  =========================================
name           class                           what (paper)
=============  ==============================  =========================================
``logmel``     :class:`LogMel`                 128 log-mel, 25/10 ms (000, 001)
``mulaw_spec`` :class:`MuLawSpectrogram`       μ-law magnitude spectrogram, 400 bins (003)
``vggish``     :class:`VGGishLogMel`           64 log-mel 125–7500 Hz, 96-frame patches (002)
``upstream``   :class:`UpstreamFrames`         frames of a frozen :mod:`emovox.upstreams`
                                               encoder (``upstream: whisper`` 50 Hz x 384,
                                               ``ge2e``); not a torch graph
=============  ==============================  =========================================

Every front-end is a ``torch.nn.Module`` with ``hop_length`` (samples), ``n_features`` (F) and
``num_frames(num_samples)``. Normalisation lives in :mod:`emovox.frontend.normalize`; the whole
path (front-end, VAD, normalisation) a model uses is :mod:`emovox.frontend.pipeline`, described
by :class:`emovox.pipeline.PipelineConfig` (whose alias table still reads old names such as
``whisper_encoder``).
"""

from __future__ import annotations

import inspect

from torch import nn

from emovox.errors import ConfigError
from emovox.frontend.logmel import LogMel
from emovox.frontend.spectrogram import MuLawSpectrogram
from emovox.frontend.upstream_frames import UpstreamFrames
from emovox.frontend.vggish_input import VGGishLogMel, to_patches

FRONTENDS: dict[str, type[nn.Module]] = {
    "logmel": LogMel,
    "mulaw_spec": MuLawSpectrogram,
    "vggish": VGGishLogMel,
    "upstream": UpstreamFrames,
}


def build_frontend(name: str, **kwargs) -> nn.Module:
    """Instantiate a front-end by registry name; unknown names/options raise ConfigError."""
    if name not in FRONTENDS:
        raise ConfigError(f"unknown front-end {name!r}; choose one of {', '.join(FRONTENDS)}")
    cls = FRONTENDS[name]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(f"front-end {name!r} has no option(s) {', '.join(unknown)}; "
                          f"valid options: {', '.join(sorted(accepted))}")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"front-end {name!r}: {exc}") from None


__all__ = ["FRONTENDS", "build_frontend", "LogMel", "MuLawSpectrogram", "VGGishLogMel", "UpstreamFrames", "to_patches"]
