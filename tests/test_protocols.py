"""Folds: sizes per protocol, speaker-disjointness asserted, determinism, save/load."""

from __future__ import annotations

import logging

import pytest

from emovox.corpora.manifest import Utterance
from emovox.errors import ProtocolError
from emovox.protocols import (
    Fold,
    check_fold,
    leave_k_speakers_out,
    leave_one_session_out,
    leave_one_speaker_out,
    load_folds,
    make_folds,
    predefined_split,
    ratio_split,
    save_folds,
    speaker_kfold,
)

LABELS = ["angry", "happy", "neutral", "sad"]


def corpus(n_speakers: int = 10, per_speaker: int = 8, session_size: int = 2) -> list[Utterance]:
    utts = []
    for s in range(n_speakers):
        session = f"Ses{s // session_size + 1:02d}"
        for i in range(per_speaker):
            utts.append(Utterance(f"s{s}_{i}", "", f"spk{s + 1}", LABELS[i % 4], "t", session,
                                  extra={"session": session}))
    return utts


def speakers(utts, ids):
    spk = {u.id: u.speaker for u in utts}
    return {spk[i] for i in ids}


def assert_clean(utts, folds):
    for f in folds:
        assert not speakers(utts, f.train) & speakers(utts, f.test)
        assert not speakers(utts, f.valid) & speakers(utts, f.test)
        assert not speakers(utts, f.valid) & speakers(utts, f.train), "valid speaker-disjoint from train"
        assert not (set(f.train) | set(f.valid)) & set(f.test)
        assert f.valid, "every fold has a validation part"


def test_leave_one_session_out_five_folds():
    utts = corpus()
    folds = leave_one_session_out(utts)
    assert [f.name for f in folds] == [f"test-Ses0{i}" for i in range(1, 6)]
    assert_clean(utts, folds)
    for f in folds:
        assert len(speakers(utts, f.test)) == 2
        assert len(f.train) + len(f.valid) + len(f.test) == len(utts)
    # every utterance is tested exactly once
    assert sorted(i for f in folds for i in f.test) == sorted(u.id for u in utts)


def test_leave_one_speaker_out():
    utts = corpus()
    folds = leave_one_speaker_out(utts)
    assert len(folds) == 10
    assert_clean(utts, folds)
    assert folds[1].name == "test-spk2"  # natural order: spk1, spk2, ..., spk10


def test_leave_k_speakers_out_ravdess_shape():
    utts = corpus(n_speakers=24, per_speaker=4)
    folds = leave_k_speakers_out(utts, k=4)
    assert len(folds) == 6
    assert_clean(utts, folds)
    assert folds[0].info["test_speakers"] == ["spk1", "spk2", "spk3", "spk4"]
    assert len(folds[0].info["valid_speakers"]) == 2  # 10 % of 20 training speakers


def test_speaker_kfold_80_20():
    utts = corpus()
    folds = speaker_kfold(utts, n_folds=5, seed=3)
    assert len(folds) == 5
    assert_clean(utts, folds)
    assert sorted(i for f in folds for i in f.test) == sorted(u.id for u in utts)
    assert all(len(f.test) == 16 for f in folds)  # 2 of 10 equal-sized speakers = 20 %


def test_ratio_split_speaker_independent():
    utts = corpus()
    (fold,) = ratio_split(utts, (8, 1, 1), seed=1)
    assert fold.speaker_independent
    assert_clean(utts, [fold])
    assert (len(fold.train), len(fold.valid), len(fold.test)) == (64, 8, 8)


def test_speaker_dependent_split_warns_and_is_marked(caplog):
    utts = corpus()
    with caplog.at_level(logging.WARNING):
        (fold,) = ratio_split(utts, (8, 1, 1), seed=1, speaker_dependent=True)
    assert "speaker-DEPENDENT" in caplog.text
    assert not fold.speaker_independent
    assert speakers(utts, fold.train) & speakers(utts, fold.test)  # it really is dependent
    assert len(fold.test) == 8 and len(fold.valid) == 8  # 10 % of each label (2 per label x 4)


def test_leak_raises():
    utts = corpus()
    bad = Fold("bad", ["s0_0"], [], ["s0_1"])
    with pytest.raises(ProtocolError, match=r"speaker\(s\) \['spk1'\] in both train and test"):
        check_fold(bad, utts)
    with pytest.raises(ProtocolError, match="both train and test"):
        check_fold(Fold("dup", ["s0_0"], [], ["s0_0"]), utts)
    with pytest.raises(ProtocolError, match="not in the manifest"):
        check_fold(Fold("x", ["nope"], [], ["s0_0"]), utts)


def test_predefined_split_with_shared_speakers_raises_unless_allowed():
    utts = [Utterance(f"u{i}", "", "Ross", "happy", extra={"split": sp})
            for i, sp in enumerate(["train", "dev", "test"])]
    with pytest.raises(ProtocolError, match="speaker leak"):
        predefined_split(utts)
    (fold,) = make_folds(utts, "predefined", allow_speaker_overlap=True, seed=3)
    assert (fold.train, fold.valid, fold.test) == (["u0"], ["u1"], ["u2"])
    assert not fold.speaker_independent


def test_deterministic_and_seed_dependent():
    utts = corpus()
    a = [f.to_dict() for f in leave_one_session_out(utts, seed=0)]
    assert a == [f.to_dict() for f in leave_one_session_out(utts, seed=0)]
    b = [f.to_dict() for f in speaker_kfold(utts, seed=0)]
    assert b == [f.to_dict() for f in speaker_kfold(utts, seed=0)]
    assert b != [f.to_dict() for f in speaker_kfold(utts, seed=1)]


def test_save_load_round_trip(tmp_path):
    utts = corpus()
    folds = make_folds(utts, "loso")
    path = save_folds(tmp_path / "folds.json", folds, {"protocol": "loso", "seed": 0})
    assert [f.to_dict() for f in load_folds(path, utts)] == [f.to_dict() for f in folds]
    folds[0].save(tmp_path / "one.json")
    assert Fold.load(tmp_path / "one.json") == folds[0]


def test_bad_requests():
    utts = corpus(n_speakers=3)
    with pytest.raises(ProtocolError, match="unknown protocol"):
        make_folds(utts, "random")
    with pytest.raises(ProtocolError, match="need at least 5 speakers"):
        speaker_kfold(utts, n_folds=5)
    with pytest.raises(ProtocolError, match="k=4"):
        leave_k_speakers_out(utts, k=4)
    with pytest.raises(ProtocolError, match="bad option"):
        make_folds(utts, "loso", colour="red")
    with pytest.raises(ProtocolError, match="needs at least 3 speakers"):
        ratio_split(corpus(n_speakers=2))


# ------------------------------------------------------------------------ leave one corpus out
def multi_corpus(spec: dict[str, tuple[int, tuple[str, ...]]], per_label: int = 2) -> list[Utterance]:
    """``{corpus: (n_speakers, labels)}`` -> utterances with speakers ``<corpus>:<k>``."""
    utts = []
    for name, (n_spk, labels) in spec.items():
        for s in range(n_spk):
            for lab in labels:
                for k in range(per_label):
                    utts.append(Utterance(f"{name}_{s}_{lab}_{k}", "", f"{name}:{s}", lab, name))
    return utts


FIVE = {"ravdess": (24, ("angry", "calm", "happy", "neutral", "sad")), "tess": (2, ("angry", "happy", "neutral", "sad", "surprise")),
        "emodb": (10, ("angry", "boredom", "happy", "neutral", "sad")), "nemo": (9, ("angry", "happy", "neutral", "sad")),
        "ased": (65, ("angry", "fear", "happy", "neutral", "sad"))}


def test_leave_one_corpus_out_folds():
    utts = multi_corpus(FIVE)
    corpus_of = {u.id: u.corpus for u in utts}
    spk = {u.id: u.speaker for u in utts}
    folds = make_folds(utts, "leave_one_corpus_out", valid_fraction=0.1, seed=3)
    assert [f.name for f in folds] == ["test-ased", "test-emodb", "test-nemo", "test-ravdess", "test-tess"]
    for f in folds:
        held = f.info["test_corpus"]
        assert {corpus_of[i] for i in f.test} == {held}
        assert len(f.test) == sum(1 for u in utts if u.corpus == held)
        assert held not in {corpus_of[i] for i in f.train + f.valid}
        assert len(f.train) + len(f.valid) + len(f.test) == len(utts)
        tr, va, te = ({spk[i] for i in part} for part in (f.train, f.valid, f.test))
        assert not (tr & va or tr & te or va & te)
        # validation: round(10 % of each training corpus's speakers), never TESS's 2 speakers
        expect = {"ravdess": 2, "tess": 0, "emodb": 1, "nemo": 1, "ased": 6}
        per_corpus = {c: sum(1 for s in f.info["valid_speakers"] if s.startswith(c + ":")) for c in FIVE}
        assert per_corpus == {c: (0 if c == held else n) for c, n in expect.items()}
        assert f.info["train_corpora"] == sorted(set(FIVE) - {held})
    assert folds[4].info["test_labels"] == ["angry", "happy", "neutral", "sad", "surprise"]
    again = make_folds(utts, "leave_one_corpus_out", valid_fraction=0.1, seed=3)
    assert [f.valid for f in again] == [f.valid for f in folds]
    other = make_folds(utts, "leave_one_corpus_out", valid_fraction=0.1, seed=4)
    assert [f.valid for f in other] != [f.valid for f in folds]


def test_leave_one_corpus_out_held_out_and_small_corpora():
    utts = multi_corpus({"a": (1, LABELS), "b": (2, LABELS), "c": (3, LABELS)})
    folds = make_folds(utts, "leave_one_corpus_out", held_out=["c"], valid_fraction=0.1)
    assert [f.name for f in folds] == ["test-c"]
    # 10 % of 1 or 2 speakers rounds to 0: one speaker of the largest training corpus (b) validates
    assert len(folds[0].info["valid_speakers"]) == 1 and folds[0].info["valid_speakers"][0].startswith("b:")
    assert make_folds(utts, "leave_one_corpus_out", valid_fraction=0)[0].valid == []


def test_leave_one_corpus_out_errors():
    utts = multi_corpus({"a": (2, LABELS), "b": (2, LABELS)})
    clash = utts + [Utterance("c_0", "", "a:0", "sad", "c")]  # a speaker id used by two corpora
    with pytest.raises(ProtocolError, match="speaker.*a:0.*unique across corpora"):
        make_folds(clash, "leave_one_corpus_out", valid_fraction=0)
    with pytest.raises(ProtocolError, match="at least 2 corpora"):
        make_folds([u for u in utts if u.corpus == "a"], "leave_one_corpus_out")
    with pytest.raises(ProtocolError, match="no 'corpus' field"):
        make_folds(utts + [Utterance("x", "", "x:0", "sad", "")], "leave_one_corpus_out")
    with pytest.raises(ProtocolError, match="held_out .*'z'"):
        make_folds(utts, "leave_one_corpus_out", held_out=["z"])
