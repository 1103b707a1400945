"""Speaker turns: clustering (automatic and fixed count), cell labelling, turn smoothing and clipping."""

from __future__ import annotations

import numpy as np

from emovox.speaker_turns import Turn, cells_to_turns, clip_turns, cluster, label_cells, smooth_turns, speaker_at


def blobs(centres: list[np.ndarray], n: int, spread: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + spread * rng.standard_normal((n, c.size)) for c in centres])
    return x, np.repeat(np.arange(len(centres)), n)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return len(set(zip(a.tolist(), b.tolist()))) == len(set(a.tolist())) == len(set(b.tolist()))


# ------------------------------------------------------------------------------ clustering
def test_cluster_counts_speakers_automatically():
    rng = np.random.default_rng(1)
    centres = [rng.standard_normal(32) for _ in range(3)]
    x, truth = blobs(centres, 20, 0.15)
    labels = cluster(x, threshold=0.5)
    assert len(set(labels)) == 3 and same_partition(labels, truth)
    assert len(set(cluster(x[:20], threshold=0.5))) == 1  # one speaker stays one


def test_cluster_fixed_count_and_edge_sizes():
    rng = np.random.default_rng(2)
    x, truth = blobs([rng.standard_normal(16) for _ in range(2)], 10, 0.1)
    assert same_partition(cluster(x, speakers=2), truth)
    assert len(set(cluster(x, speakers=4))) == 4
    assert cluster(np.zeros((0, 16))).size == 0 and cluster(x[:1]).tolist() == [0]


def test_small_clusters_fold_into_the_nearest():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    x, _ = blobs([a, b], 10, 0.05)
    x = np.concatenate([x, (a + 0.5 * rng.standard_normal(16))[None]])  # a stray segment near a
    loose = cluster(x, threshold=0.02)
    assert len(set(loose)) > 2
    folded = cluster(x, threshold=0.02, min_weight=3.0)
    assert len(set(folded)) == 2 and folded[-1] == folded[0]


def test_subsampled_clustering_assigns_everyone():
    rng = np.random.default_rng(4)
    x, truth = blobs([rng.standard_normal(8) for _ in range(2)], 60, 0.1)
    assert same_partition(cluster(x, threshold=0.5, max_clustered=25), truth)


# ------------------------------------------------------------------------- cells and turns
def test_label_cells_puts_the_change_between_segment_centres():
    # segments 0-2 (A), 1-3 (A), 2-4 (B), 3-5 (B): the change falls at 2.5 s, halfway between centres 2 and 3
    segs = [(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (3.0, 5.0)]
    cells = label_cells(segs, [0, 0, 1, 1], [(0.0, 5.0)], 5.0, cell=0.5)
    assert cells.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    # outside speech: -1; uncovered speech takes the nearest labelled cell
    cells = label_cells([(0.0, 1.0)], [0], [(0.0, 2.0)], 3.0, cell=0.5)
    assert cells.tolist() == [0, 0, 0, 0, -1, -1]


def test_smooth_turns_gives_short_runs_to_the_longer_neighbour():
    #             A A A A B A A A B B B B B B  (0.1 s cells, -1 = pause)
    cells = np.array([0, 0, 0, 0, 1, 0, 0, 0, -1, 1, 1, 1, 1, 1, 1])
    out = smooth_turns(cells, min_turn=0.2, cell=0.1)
    assert out.tolist() == [0, 0, 0, 0, 0, 0, 0, 0, -1, 1, 1, 1, 1, 1, 1]
    assert smooth_turns(cells, min_turn=0.0, cell=0.1).tolist() == cells.tolist()
    assert smooth_turns(np.array([-1, -1]), 1.0).tolist() == [-1, -1]


def test_cells_to_turns_names_by_first_appearance():
    cells = np.array([1, 1, -1, 1, 0, 0, 0])
    turns = cells_to_turns(cells, 0.65, cell=0.1)
    assert [(t.start, t.end, t.speaker) for t in turns] == [(0.0, 0.2, "S1"), (0.3, 0.4, "S1"), (0.4, 0.65, "S2")]
    assert speaker_at(turns, 0.0, 0.65) == "S1" and speaker_at(turns, 0.3, 0.65) == "S2" and speaker_at(turns, 0.0, 0.3) == "S1"
    assert speaker_at(turns, 1.0, 2.0) is None


def test_clip_turns_cuts_turns_to_the_speech_regions():
    speech = [(0.04, 1.23), (1.5, 2.0), (2.31, 3.0)]
    cells = label_cells([(0.0, 1.6), (1.6, 3.2)], [0, 1], speech, 3.2)  # cells round regions outwards
    turns = cells_to_turns(cells, 3.2)
    assert (turns[0].start, turns[-1].end) == (0.0, 3.0)
    clipped = clip_turns(turns, speech)
    assert [(t.start, t.end, t.speaker) for t in clipped] == [(0.04, 1.23, "S1"), (1.5, 1.6, "S1"), (1.6, 2.0, "S2"),
                                                               (2.31, 3.0, "S2")]
    assert clip_turns([Turn(0.0, 5.0, "S1")], [(1.0, 2.0), (3.0, 4.0)]) == [Turn(1.0, 2.0, "S1"), Turn(3.0, 4.0, "S1")]
    assert clip_turns([Turn(1.0, 2.0, "S1")], []) == []


def test_turn_to_dict():
    assert Turn(1.0, 2.0, "S1").to_dict() == {"start": 1.0, "end": 2.0, "speaker": "S1"}


def test_two_way_share_is_small_for_one_blob_and_large_for_two():
    from emovox.speaker_turns import two_way_share

    rng = np.random.default_rng(3)
    one, _ = blobs([np.zeros(64)], 60, 1.0)
    two, _ = blobs([np.zeros(64), np.full(64, 1.5)], 30, 1.0, seed=1)
    assert two_way_share(one) < 0.1 < 0.3 < two_way_share(two)
    assert two_way_share(rng.standard_normal((2, 8))) == 0.0 and two_way_share(np.ones((10, 4))) == 0.0


def test_split_share_of_too_few_segments_is_zero_without_warnings():
    """A 0.4 s recording has no segment: no 'mean of empty slice' warning on the command line."""
    import warnings

    from emovox.speaker_turns import two_way_share

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert two_way_share(np.zeros((0, 64))) == 0.0
        assert two_way_share(np.ones((2, 64))) == 0.0
