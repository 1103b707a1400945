"""Provisional speaker labels for a live stream (``WS /v1/stream``), one per classified window.

A recording's speakers are found offline by clustering all its segments (:mod:`emovox.diarize`);
a live stream cannot wait for the end. :class:`LiveSpeakers` labels each classified window at
once: its embedding is the mean over the window's Whisper frames of the speaker projection's
hidden states (:class:`emovox.frame_speakers.SpeakerProjection`, the one the offline diariser
uses), and it joins the nearest speaker so far (cosine distance to the running mean of that
speaker's windows) when closer than the projection's threshold (leader-follower clustering). A
window far from every speaker is a *candidate*: it keeps the nearest speaker's label, and the
candidate becomes a new speaker when the next far window is close to it (so a window that
straddles a change of speaker does not open a speaker of its own; a new voice is named from its
second window on). At most ``max_speakers``; later windows take the nearest. Labels are never
revised; the full analysis after the stream (the page's upload) clusters offline. The threshold
is the offline one (docs/conversations.md, "Live stream", for how it does live). Memory: one
vector per speaker.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Speakers a stream may open; later windows go to the nearest of them.
MAX_SPEAKERS = 8
#: Shorter windows (a stream's short end) get no speaker: too little voice to tell.
MIN_SECONDS = 0.5


class LiveSpeakers:
    """Window waveform (16 kHz) -> speaker name ``S1``, ``S2``, ... (names in order of appearance)."""

    def __init__(self, engine: Any, projection: Any, threshold: float | None = None,
                 max_speakers: int = MAX_SPEAKERS) -> None:
        self.engine, self.projection = engine, projection
        self.threshold = float(projection.threshold if threshold is None else threshold)
        self.max_speakers = max_speakers
        self._sums: list[np.ndarray] = []
        self.counts: list[int] = []
        self._candidate: np.ndarray | None = None

    @classmethod
    def for_recognizer(cls, recognizer: Any) -> LiveSpeakers | None:
        """Live speakers for this recogniser (None when its model has no frames or projection)."""
        from emovox.conversation import speaker_projection

        projection = speaker_projection(recognizer)
        return None if projection is None else cls(recognizer.engine, projection)

    @property
    def speakers(self) -> list[str]:
        return [f"S{i + 1}" for i in range(len(self._sums))]

    def score(self, wave: np.ndarray, index: list[int] | None = None) -> tuple[np.ndarray, str]:
        """One window (at least :data:`MIN_SECONDS`) encoded once: its calibrated probabilities
        (over ``index``; the head on the window's own pooled frames, as the timeline scores) and
        its speaker."""
        from emovox.frame_scoring import pool_frames, pooled_probabilities

        hidden = self.engine.hidden(np.asarray(wave, np.float32))
        probs = pooled_probabilities(self.engine, pool_frames(hidden, self.engine.layers)[None], index)[0]
        return probs, self.assign(self.projection.embed_frames(hidden))

    def assign(self, embedding: np.ndarray) -> str:
        """The speaker of one embedding (updates that speaker's running mean)."""
        v = _unit(np.asarray(embedding, np.float64))
        if not self._sums:
            return self._open(v)
        dist = 1.0 - np.stack([_unit(s) for s in self._sums]) @ v
        j = int(np.argmin(dist))
        if self._candidate is not None and len(self._sums) < self.max_speakers:
            to_candidate = 1.0 - float(_unit(self._candidate) @ v)
            if to_candidate < self.threshold and to_candidate <= dist[j]:
                return self._open(self._candidate + v)
        if dist[j] >= self.threshold and len(self._sums) < self.max_speakers:
            self._candidate = v.copy()  # labelled with the nearest speaker until a second window confirms it
        self._sums[j] = self._sums[j] + v if dist[j] < self.threshold else self._sums[j]
        self.counts[j] += 1
        return f"S{j + 1}"

    def _open(self, total: np.ndarray) -> str:
        self._sums.append(total.copy())
        self.counts.append(1)
        self._candidate = None
        return f"S{len(self._sums)}"


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


__all__ = ["MAX_SPEAKERS", "MIN_SECONDS", "LiveSpeakers"]
