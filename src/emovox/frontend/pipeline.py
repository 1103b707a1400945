"""The one feature pipeline: front-end -> VAD (drop non-speech frames) -> normalisation.

:class:`FeaturePipeline` runs a :class:`emovox.pipeline.PipelineConfig`. Training caches what
:meth:`FeaturePipeline.extractors` compute per utterance (the front-end's features, or the
upstream's own arrays, plus the VAD mask) and rebuilds each utterance's input with
:meth:`FeaturePipeline.from_arrays`; :class:`emovox.Recognizer` calls :meth:`frames` and
:meth:`speech_only` on clips; the torch engine, the training data and the exported ONNX graph
all normalise with :meth:`normalise`. The same saved description thus gives the same features
in every place.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from emovox.cache import Extractor, extractor_key
from emovox.errors import ConfigError
from emovox.frontend import build_frontend
from emovox.frontend.normalize import conversation_mvn, mvn
from emovox.pipeline import UPSTREAM, PipelineConfig
from emovox.upstreams import upstream_options
from emovox.vad import HOP_LENGTH, SohnVAD, drop_nonspeech


class FeaturePipeline:
    """16 kHz samples -> the (T, F) input of a model, as ``config`` describes it.

    ``threads`` sets the intra-op threads of an upstream encoder that takes them (a runtime
    setting, not part of the description). ConfigError for a front-end or option that cannot be
    built, or a VAD on a front-end without 10 ms frames.
    """

    def __init__(self, config: PipelineConfig, threads: int | None = None) -> None:
        if config.takes_waves:
            raise ConfigError("the 'waves' front-end has no feature pipeline: the model's graph takes the samples")
        self.config = config
        frontend: Any = self._build(config, threads).eval()  # duck-typed: hop_length, n_features, upstream
        self.frontend = frontend
        self.hop_length, self.n_features = int(frontend.hop_length), int(frontend.n_features)
        if config.vad and self.hop_length != HOP_LENGTH:
            raise ConfigError(f"features.vad: VAD works at 10 ms frames; front-end {config.frontend!r} "
                              f"({config.upstream or 'frames'}) has another rate")
        self.vad = SohnVAD() if config.vad else None

    @staticmethod
    def _build(config: PipelineConfig, threads: int | None) -> torch.nn.Module:
        options = dict(config.options)
        if config.frontend == UPSTREAM and threads and "threads" in upstream_options(str(options["upstream"])):
            options["options"] = {"threads": threads, **options.get("options", {})}
        return build_frontend(config.frontend, **options)

    # ------------------------------------------------------------------------ training cache
    @property
    def cache_key(self) -> str:
        """Feature-cache folder of the front-end's arrays (an upstream's own, shared with the baselines)."""
        if self.config.frontend == UPSTREAM:
            return str(self.frontend.upstream.key)
        return extractor_key(self.config.frontend, self.config.options)

    @property
    def field(self) -> str:
        """Name of the (T, F) array in the cached entry."""
        return "frames" if self.config.frontend == UPSTREAM else "features"

    def extract(self, samples: np.ndarray) -> dict[str, np.ndarray]:
        """The cached arrays of one utterance's samples (raw: before VAD and normalisation)."""
        if self.config.frontend == UPSTREAM:
            return self.frontend.upstream.extract(samples)
        with torch.no_grad():
            return {"features": self.frontend(torch.from_numpy(samples)).numpy().astype(np.float32)}

    def extractors(self) -> list[tuple[str, Extractor]]:
        """``(cache key, extractor)`` pairs: the front-end's arrays, then the VAD mask (when used)."""
        out: list[tuple[str, Extractor]] = [(self.cache_key, self.extract)]
        if self.vad is not None:
            vad = self.vad
            out.append((extractor_key("vad-sohn", {}), lambda x: {"mask": vad.frame_mask(x).astype(np.uint8)}))
        return out

    def from_arrays(self, arrays: Sequence[dict[str, np.ndarray]]) -> torch.Tensor:
        """One utterance's (T, F) features from its cached :meth:`extractors` arrays, speech frames
        only when the pipeline has a VAD (not normalised: see :meth:`normalise_all`)."""
        feats = torch.from_numpy(np.asarray(arrays[0][self.field], dtype=np.float32))
        return drop_nonspeech(feats, arrays[1]["mask"]) if self.vad is not None else feats

    # ------------------------------------------------------------------------ prediction
    def frames(self, waves: np.ndarray) -> torch.Tensor:
        """(B, N) equal-length waves -> (B, T, F) front-end features (raw)."""
        with torch.inference_mode():
            return self.frontend(torch.from_numpy(np.ascontiguousarray(waves, dtype=np.float32)))

    def speech_only(self, feats: torch.Tensor, wave: np.ndarray) -> torch.Tensor:
        """(T, F) features of ``wave`` without its non-speech frames (unchanged without a VAD)."""
        return drop_nonspeech(feats, self.vad.frame_mask(wave)) if self.vad is not None else feats

    # ------------------------------------------------------------------------ normalisation
    def normalise(self, feats: torch.Tensor) -> torch.Tensor:
        """(T, F) or (B, T, F) features, each clip normalised on its own (``segment``) or as they are."""
        if self.config.normalize == "segment":
            return mvn(feats)
        if self.config.normalize == "speaker":
            raise ConfigError("normalize 'speaker' needs all of a speaker's clips: use normalise_all")
        return feats

    def normalise_all(self, feats: list[torch.Tensor], speakers: Sequence[str]) -> list[torch.Tensor]:
        """Every utterance's features normalised: per clip, or (``speaker``) over all clips of a
        speaker (uses the test speaker's unlabelled audio: always labelled in reports)."""
        if self.config.normalize == "speaker":
            return conversation_mvn(feats, groups=list(speakers))
        return [self.normalise(f) for f in feats] if self.config.normalize == "segment" else feats


__all__ = ["FeaturePipeline"]
