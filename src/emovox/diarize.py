"""Who speaks when: speaker diarisation of a recording's speech (speaker embeddings + clustering).

How it works (:class:`Diarizer`, :func:`diarize`):

1. The recording arrives as consecutive 16 kHz blocks, with the VAD's speech regions (the
   timeline's ``speech``). Fixed *segments* of ``segment`` s (default 1.6 s, GE2E's partial
   length) every ``hop`` s (default 0.8 s) are cut from the stream; a segment at least
   ``min_speech`` (default 50 %) inside speech gets a speaker embedding. Only the embeddings
   are kept (256 floats per segment), so memory is O(block) + 1 KB per segment.
2. Embeddings: the frozen GE2E encoder of :mod:`emovox.upstreams.ge2e` (resemblyzer's
   weights; volume-normalised 40-band mel power, final LSTM state -> 256-d, L2-normalised), or
   any span embedder (``embed_spans``: :mod:`emovox.frame_speakers` pools the timeline's
   Whisper frames, the default diariser with the default model).
3. Clustering: scikit-learn agglomerative clustering, cosine distance, average linkage.
   The speaker count is automatic (clusters closer than ``threshold`` are merged; the default
   :data:`THRESHOLD` was chosen on LibriSpeech + corpus speakers that are not in the
   evaluation set, see docs/conversations.md) or fixed (``speakers=N``). Clusters covering less
   than ``min_cluster`` s of segments are folded into the nearest larger one (segments
   straddling a speaker change otherwise form spurious tiny "speakers"). More than
   :data:`MAX_CLUSTERED` segments: a uniform subsample is clustered and the rest assigned to the
   nearest centroid (bounded memory for hour-long recordings). :data:`REFINE` nearest-centroid
   passes follow (k-means steps from the agglomerative result).
4. Resolution: speech is labelled on a 0.1 s grid; each cell takes the speaker with the most
   weight among the segments covering it (triangular weights, peak at a segment's centre), so
   a change point falls between the centres of two differently labelled segments.
5. Smoothing: speaker runs (over speech, ignoring pauses) shorter than ``min_turn`` s (default
   1.0 s) are given to a neighbour, shortest first; then *turns* are the maximal speech
   intervals with one speaker, cut to the VAD's speech regions (:func:`clip_turns`).

Speakers are named ``S1``, ``S2``, ... in order of first appearance.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from emovox.audio import SAMPLE_RATE
from emovox.errors import ConfigError
from emovox.speaker_turns import (MIN_TURN, THRESHOLD, Turn, cells_to_turns, clip_turns, cluster, label_cells,
                                  smooth_turns, speaker_at, two_way_share, unit_length)
from emovox.upstreams.ge2e import GE2EEmbedder

if TYPE_CHECKING:
    from emovox.timeline import Timeline

SEGMENT, HOP, MIN_SPEECH, MIN_CLUSTER = 1.6, 0.8, 0.5, 3.0
#: Nearest-centroid passes after the agglomerative clustering (mends average-linkage chaining).
REFINE = 2
#: A few segments of one voice split in two explain a large share of their scatter by chance (on the
#: calibration speakers' one-voice recordings, up to about 1 / sqrt(n) for n segments of the Whisper
#: projection), so the split share must also reach SPLIT_SHARE_SCALE / sqrt(n): short voice notes
#: were counted as two speakers (docs/conversations.md, "Short recordings").
SPLIT_SHARE_SCALE = 1.0
#: Cut segments are shortened to a multiple of this many samples (0.1 s) so they batch by length.
BUCKET = SAMPLE_RATE // 10
#: (B, N) float32 equal-length 16 kHz segments -> (B, D) L2-normalised speaker embeddings.
EmbedFn = Callable[[np.ndarray], np.ndarray]
#: [(start s, end s), ...] spans of the recording -> (B, D) speaker embeddings (from frames kept elsewhere).
SpanEmbedFn = Callable[[list[tuple[float, float]]], np.ndarray]


def check_options(speakers: int | None, threshold: float, min_turn: float) -> None:
    """Raise ConfigError for impossible diarisation settings."""
    if speakers is not None and (not isinstance(speakers, int) or isinstance(speakers, bool)
                                 or not 1 <= speakers <= 20):
        raise ConfigError(f"speakers must be an integer between 1 and 20 (or None for automatic), got {speakers!r}")
    if not (isinstance(threshold, (int, float)) and 0 < threshold < 2):
        raise ConfigError(f"the speaker threshold is a cosine distance between 0 and 2, got {threshold!r}")
    if not (isinstance(min_turn, (int, float)) and 0 <= min_turn <= 30):
        raise ConfigError(f"min_turn must be between 0 and 30 seconds, got {min_turn!r}")


class Diarizer:
    """Streaming diarisation: :meth:`feed` blocks as they are read, :meth:`finish` for the turns."""

    def __init__(self, embed: EmbedFn | None = None, *, speakers: int | None = None, threshold: float = THRESHOLD,
                 segment: float = SEGMENT, hop: float = HOP, min_speech: float = MIN_SPEECH,
                 min_turn: float = MIN_TURN, min_cluster: float = MIN_CLUSTER, batch_size: int = 64,
                 embed_spans: SpanEmbedFn | None = None, centre_known_count: bool = False,
                 split_share: float | None = None) -> None:
        """``embed`` embeds the segments' audio (default GE2E); ``embed_spans`` instead embeds their
        time spans (frames held by the caller: each :meth:`feed` then embeds its segments at once).
        ``centre_known_count``: with a given number of speakers, cluster the embeddings minus their
        mean over the recording, after scaling each to unit length (what every speaker of the
        recording shares: channel, language, what is said; see docs/conversations.md).
        ``split_share``: when the automatic count finds one speaker but the best split in two explains
        at least this share of the embeddings' scatter (:func:`two_way_share`), and at least
        :data:`SPLIT_SHARE_SCALE` / sqrt(segments), the recording gets two speakers (clustered as a
        given count); None: never."""
        check_options(speakers, threshold, min_turn)
        if not (0 < hop <= segment <= 10):
            raise ConfigError(f"diarisation needs 0 < hop <= segment <= 10 s, got hop={hop!r}, segment={segment!r}")
        self.embed_spans = embed_spans
        self.centre_known_count = centre_known_count
        if split_share is not None and not (isinstance(split_share, (int, float)) and 0 < split_share < 1):
            raise ConfigError(f"split_share is a share of the embeddings' scatter between 0 and 1, got {split_share!r}")
        self.split_share = split_share
        self.embed = embed if embed is not None or embed_spans is not None else GE2EEmbedder()
        self.speakers, self.threshold, self.min_turn = speakers, float(threshold), float(min_turn)
        self.min_speech, self.min_cluster, self.batch_size = float(min_speech), float(min_cluster), batch_size
        self.seg_n, self.hop_n = int(round(segment * SAMPLE_RATE)), int(round(hop * SAMPLE_RATE))
        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0  # sample index of _buf[0]
        self._next = 0  # sample index of the next segment's start
        self._seen = 0
        self._pending: list[tuple[float, float, np.ndarray]] = []
        self.segments: list[tuple[float, float]] = []
        self._emb: list[np.ndarray] = []

    def feed(self, block: np.ndarray, speech: Sequence[tuple[float, float]]) -> None:
        """Add the next block; ``speech`` = the VAD regions known so far (absolute seconds)."""
        block = np.asarray(block, dtype=np.float32).reshape(-1)
        self._buf = np.concatenate([self._buf, block])
        self._seen += block.size
        while self._next + self.seg_n <= self._seen:
            a = self._next - self._buf_start
            self._offer(self._next, self._buf[a:a + self.seg_n], speech)
            self._next += self.hop_n
        keep_from = max(0, min(self._next, self._seen - self.seg_n))  # the tail segment may need them
        if keep_from > self._buf_start:
            self._buf = self._buf[keep_from - self._buf_start:]
            self._buf_start = keep_from
        if self.embed_spans is not None:
            self._flush()

    @property
    def needs_from(self) -> float:
        """Seconds: segments offered later start here or after (frames before it are no longer needed)."""
        return max(0, min(self._next, self._seen - self.seg_n)) / SAMPLE_RATE

    def _offer(self, start_n: int, wave: np.ndarray, speech: Sequence[tuple[float, float]]) -> None:
        """Queue the segment for embedding, cut to the speech region it overlaps most.

        Cutting to one region keeps a pause-separated speaker change out of a segment; a cut
        segment shorter than ``min_speech`` of the segment length is skipped.
        """
        s, e = start_n / SAMPLE_RATE, (start_n + wave.size) / SAMPLE_RATE
        best, span = 0.0, (s, e)
        for a, b in reversed(speech):
            if b <= s:
                break
            inside = min(b, e) - max(a, s)
            if inside > best:
                best, span = inside, (max(a, s), min(b, e))
        if best < self.min_speech * self.seg_n / SAMPLE_RATE:
            return
        i, j = int(round((span[0] - s) * SAMPLE_RATE)), int(round((span[1] - s) * SAMPLE_RATE))
        j = i + (j - i) // BUCKET * BUCKET  # a few lengths only, so segments batch well (drops < 0.1 s)
        self._pending.append((span[0], span[0] + (j - i) / SAMPLE_RATE, wave[i:j].copy()))
        if len(self._pending) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        groups: dict[int, list[tuple[float, float, np.ndarray]]] = {}
        for item in self._pending:
            groups.setdefault(item[2].size, []).append(item)
        for items in groups.values():
            if self.embed_spans is not None:
                emb = self.embed_spans([(s, e) for s, e, _ in items])
            else:
                assert self.embed is not None
                emb = self.embed(np.stack([w for _, _, w in items]))
            self._emb.append(np.asarray(emb, dtype=np.float32))
            self.segments.extend((round(s, 3), round(e, 3)) for s, e, _ in items)
        self._pending.clear()

    def finish(self, speech: Sequence[tuple[float, float]]) -> list[Turn]:
        """Cluster the embeddings and return the smoothed speaker turns over ``speech``."""
        tail = self._seen - self._next
        if self._seen >= self.seg_n and 0 < tail < self.seg_n and tail > self.hop_n // 2:
            # the stream's end after the last full segment: one more segment ending at the end
            self._offer(self._seen - self.seg_n, self._buf[-self.seg_n:], speech)
        elif self._seen < self.seg_n and self._seen >= SAMPLE_RATE // 2:
            self._offer(0, self._buf[:self._seen], speech)
        self._flush()
        return self.turns(speech)

    @property
    def duration(self) -> float:
        return self._seen / SAMPLE_RATE

    def embeddings(self) -> np.ndarray:
        """(n, D) embeddings of :attr:`segments` (sorted by start)."""
        emb = np.concatenate(self._emb) if self._emb else np.zeros((0, 1), np.float32)
        order = np.argsort([s for s, _ in self.segments], kind="stable")
        self.segments, self._emb = [self.segments[i] for i in order], [emb[order] if len(emb) else emb]
        return self._emb[0]

    def turns(self, speech: Sequence[tuple[float, float]], *, speakers: int | None | str = "same",
              threshold: float | None = None) -> list[Turn]:
        """Cluster the stored embeddings (other ``speakers``/``threshold`` may be given) -> turns."""
        speakers = self.speakers if speakers == "same" else speakers
        threshold = self.threshold if threshold is None else threshold
        emb = self.embeddings()
        labels = self._labels(emb, speakers, threshold)  # type: ignore[arg-type]
        if speakers is None and self.split_share is not None and labels.max(initial=0) == 0 \
                and splits_in_two(emb, self.split_share):
            labels = self._labels(emb, 2, threshold)
        cells = label_cells(self.segments, labels, speech, self.duration)
        return clip_turns(cells_to_turns(smooth_turns(cells, self.min_turn), self.duration), speech)

    def _labels(self, emb: np.ndarray, speakers: int | None, threshold: float) -> np.ndarray:
        if self.centre_known_count and speakers is not None and len(emb) > 1:
            emb = unit_length(emb.astype(np.float64))  # unit length first: no segment weighs more in the mean
            emb = emb - emb.mean(axis=0)
        return cluster(emb, speakers, threshold, weights=np.full(len(emb), self.hop_n / SAMPLE_RATE),
                       min_weight=self.min_cluster, refine=REFINE)


def splits_in_two(embeddings: np.ndarray, split_share: float) -> bool:
    """Whether a recording the threshold left with one speaker gets two: the best split of its
    segment embeddings explains at least ``split_share`` of their scatter and at least
    :data:`SPLIT_SHARE_SCALE` / sqrt(segments) (what a few segments of one voice reach by chance)."""
    return two_way_share(embeddings) >= max(split_share, SPLIT_SHARE_SCALE / np.sqrt(max(len(embeddings), 1)))


def diarize(blocks: Iterable[np.ndarray], speech: Sequence[tuple[float, float]], embed: EmbedFn | None = None,
            **options) -> list[Turn]:
    """Turns of a recording given as 16 kHz blocks and its (already known) speech regions."""
    d = Diarizer(embed, **options)
    for block in blocks:
        d.feed(block, speech)
    return d.finish(speech)


def add_speakers(timeline: Timeline, recording: str | os.PathLike | np.ndarray, *,
                 block_seconds: float = 60.0, embed: EmbedFn | None = None, **options) -> Timeline:
    """Diarise ``recording`` (the file or 16 kHz array the timeline was made from) over the
    timeline's speech regions and attach the speakers to its windows (second read of a file)."""
    from emovox.audio import iter_blocks

    if isinstance(recording, np.ndarray):
        step = int(block_seconds * SAMPLE_RATE)
        blocks: Iterable[np.ndarray] = (recording[i:i + step] for i in range(0, recording.size, step))
    else:
        blocks = iter_blocks(recording, block_seconds)
    return timeline.attach_speakers(diarize(blocks, timeline.speech, embed, **options))


__all__ = [
    "THRESHOLD",
    "Diarizer",
    "GE2EEmbedder",
    "Turn",
    "add_speakers",
    "cells_to_turns",
    "clip_turns",
    "cluster",
    "diarize",
    "label_cells",
    "smooth_turns",
    "speaker_at",
]
