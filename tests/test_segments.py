"""Segmentation (counts, padding, overlap, labels) and segment -> clip aggregation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emovox.corpora.manifest import Utterance
from emovox.errors import ConfigError, ModelError
from emovox.segments import (
    AGGREGATIONS,
    PAPER_AGGREGATION,
    SegmentSpec,
    aggregate,
    aggregate_by_clip,
    count_table,
    decide,
    format_count_table,
    iter_windows,
    segment_array,
    segment_bounds,
    segment_counts,
)
from tests.conftest import make_tone

SR = 16000
NON = SegmentSpec.non_overlapping()
OVL = SegmentSpec.overlapping()


@pytest.mark.parametrize("seconds, n_non, n_ovl", [
    (0.3, 1, 1), (1.0, 1, 1), (1.2, 2, 2), (1.5, 2, 2), (1.6, 2, 3), (2.0, 2, 3), (4.3, 5, 8), (5.0, 5, 9),
])
def test_counts_match_the_cover_rule(seconds, n_non, n_ovl):
    n = int(round(seconds * SR))
    assert NON.count(n) == n_non == max(1, math.ceil(seconds - 1e-9))
    assert OVL.count(n) == n_ovl
    assert len(segment_array(np.zeros(n, np.float32), OVL)) == n_ovl


def test_non_overlapping_segments_tile_the_clip_and_pad_the_last():
    wave = make_tone(2.5)
    segs = segment_array(wave, NON)
    assert segs.shape == (3, SR)
    np.testing.assert_array_equal(segs[:2].reshape(-1), wave[: 2 * SR])
    np.testing.assert_array_equal(segs[2, : SR // 2], wave[2 * SR:])
    assert not segs[2, SR // 2:].any()  # zero padding


def test_overlapping_segments_share_half_a_second():
    wave = np.arange(int(2.2 * SR), dtype=np.float32)
    segs = segment_array(wave, OVL)
    assert len(segs) == 4  # starts 0, 0.5, 1.0, 1.5 s; the last reaches 2.2 s
    np.testing.assert_array_equal(segs[0, SR // 2:], segs[1, : SR // 2])
    np.testing.assert_array_equal(segs[1], wave[SR // 2: SR // 2 + SR])
    assert segs[3, int(0.7 * SR) - 1] == wave[-1] and not segs[3, int(0.7 * SR):].any()


def test_bounds_and_general_window_hop():
    spec = SegmentSpec(window=0.25, hop=0.1)
    b = segment_bounds(SR, spec)
    assert b[0].tolist() == [0, 4000] and b[-1, 1] == SR and b[-2, 1] < SR
    assert len(b) == 1 + math.ceil((SR - 4000) / 1600)


@pytest.mark.parametrize("bad", [dict(window=0), dict(window=1, hop=2), dict(window=-1, hop=-1),
                                 dict(window=float("nan"))])
def test_bad_specs_raise_config_error(bad):
    with pytest.raises(ConfigError):
        SegmentSpec(**bad)


def test_two_dimensional_wave_is_rejected():
    with pytest.raises(ConfigError, match="1-D"):
        segment_array(np.zeros((10, 2)), NON)


def test_counts_per_class_like_table_1():
    utts = [Utterance("a", "", "s1", "angry", duration=2.5), Utterance("b", "", "s1", "sad", duration=0.8),
            Utterance("c", "", "s2", "sad", start=1.0, end=4.0), Utterance("d", "", "s2", "fear", duration=1.0)]
    assert segment_counts(utts, NON) == {"angry": 3, "sad": 4, "fear": 1}
    assert segment_counts(utts, OVL) == {"angry": 4, "sad": 6, "fear": 1}
    rows = count_table(utts, {"non": NON, "ovl": OVL}, labels=["angry", "sad"])
    table = {r["row"]: r for r in rows}
    assert table["Total"] == {"row": "Total", "clips": 4, "non": 8, "ovl": 11}
    assert table["Relevant"]["non"] == 7 and table["Rel. Frac."]["ovl"] == pytest.approx(10 / 11)
    assert table["sad"]["ovl"] == (6, pytest.approx(0.6))
    text = format_count_table(rows)
    assert "| sad | 2 (66.67%) | 4 (57.14%) | 6 (60.00%) |" in text


def test_count_without_duration_says_how_to_fix():
    with pytest.raises(ConfigError, match="fill_durations"):
        segment_counts([Utterance("a", "x.wav", "s1", "sad")], NON)


# ------------------------------------------------------------------------------- aggregation
def _logp(rows):
    return np.log(np.asarray(rows, dtype=np.float64))


def test_aggregations_hand_computed():
    # 3 segments, 3 classes
    p = [[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.5, 0.4, 0.1]]
    np.testing.assert_allclose(aggregate(_logp(p), "mean_posteriors"), [0.4, 0.5, 0.1])
    geo = np.exp(np.log(p).mean(axis=0))
    np.testing.assert_allclose(aggregate(_logp(p), "mean_log_posteriors"), geo / geo.sum())
    np.testing.assert_allclose(aggregate(_logp(p), "majority_vote"), [2 / 3, 1 / 3, 0])
    assert decide(_logp(p), "mean_posteriors") == 1
    assert decide(_logp(p), "majority_vote") == 0
    # geometric means: (0.03)^(1/3)=.311, (0.096)^(1/3)=.458, 0.1 -> class 1
    assert decide(_logp(p), "mean_log_posteriors") == 1


def test_rules_can_disagree():
    # class 0 wins 2 of 3 votes, but one confident segment makes class 1 win the averages
    p = [[0.51, 0.49], [0.51, 0.49], [0.01, 0.99]]
    assert decide(_logp(p), "majority_vote") == 0
    assert decide(_logp(p), "mean_posteriors") == 1
    assert decide(_logp(p), "mean_log_posteriors") == 1


def test_paper_rule_equals_average_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(7, 4)) * 3
    assert PAPER_AGGREGATION == "mean_log_posteriors"
    assert decide(logits, PAPER_AGGREGATION) == int(logits.mean(axis=0).argmax())


def test_majority_vote_tie_is_broken_by_mean_posterior():
    p = [[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.45, 0.45], [0.6, 0.35, 0.05]]
    # votes: class 0 twice, class 1 twice -> mean posterior 0.45 vs 0.3875 -> 0
    assert decide(_logp(p), "majority_vote") == 0
    q = [[0.55, 0.45], [0.05, 0.95]]
    assert decide(_logp(q), "majority_vote") == 1


def test_aggregate_by_clip_groups_in_first_appearance_order():
    p = _logp([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    ids, posts, dec = aggregate_by_clip(p, ["b", "a", "a", "b"], "mean_posteriors")
    assert ids == ["b", "a"]
    np.testing.assert_allclose(posts, [[0.75, 0.25], [0.25, 0.75]])
    assert dec.tolist() == [0, 1]


def test_bad_scores_and_methods_raise():
    with pytest.raises(ConfigError, match="unknown aggregation"):
        aggregate(np.zeros((2, 2)), "median")
    with pytest.raises(ModelError, match="NaN"):
        aggregate(np.array([[0.0, np.nan]]))
    with pytest.raises(ModelError, match="shape"):
        aggregate(np.zeros((0, 3)))
    with pytest.raises(ModelError):
        aggregate_by_clip(np.zeros((3, 2)), ["a", "b"])


# ------------------------------------------------------------------------------ long streams
@pytest.mark.parametrize("spec", [NON, OVL, SegmentSpec(0.3, 0.2)])
@pytest.mark.parametrize("block", [1000, 7999, 16000, 40000])
def test_stream_windows_equal_whole_array_windows(spec, block):
    wave = np.arange(int(3.37 * SR), dtype=np.float32)
    blocks = [wave[i:i + block] for i in range(0, wave.size, block)]
    windows = list(iter_windows(blocks, spec, offset=5.0))
    whole = segment_array(wave, spec)
    assert len(windows) == len(whole)
    np.testing.assert_array_equal(np.stack([w for _, _, w in windows]), whole)
    bounds = segment_bounds(wave.size, spec)
    got = np.array([(a, b) for a, b, _ in windows])
    np.testing.assert_allclose(got, 5 + bounds / SR)


def test_stream_of_exact_multiple_has_no_extra_window_and_empty_stream_none():
    assert len(list(iter_windows([np.zeros(2 * SR)], NON))) == 2
    assert list(iter_windows([], NON)) == []


def test_aggregations_listed():
    assert set(AGGREGATIONS) == {"mean_posteriors", "mean_log_posteriors", "majority_vote"}
