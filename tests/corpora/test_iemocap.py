"""IEMOCAP loader on generated official-layout trees, including the seed-000 label-set counts."""

from __future__ import annotations

import pytest

from emovox.corpora import label_counts, load_corpus, speaker_counts
from emovox.corpora.iemocap import speaker_of
from emovox.errors import ManifestError
from emovox.protocols import leave_one_session_out
from emovox.testing import IEMOCAP_REAL_COUNTS, make_iemocap_tree


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory):
    return make_iemocap_tree(tmp_path_factory.mktemp("iemocap"))


def test_speaker_from_turn_id():
    assert speaker_of("Ses01F_impro01_M012") == "Ses01M"
    assert speaker_of("Ses05M_script01_1_F003") == "Ses05F"
    with pytest.raises(ValueError):
        speaker_of("Ses01F_impro01_X001")


def test_small_tree_fields(small_tree):
    utts = load_corpus("iemocap", small_tree)
    # default tree: ang 6, hap 4, exc 5, neu 8, sad 6, fru 3, xxx 3 -> xxx dropped
    assert len(utts) == 32
    assert label_counts(utts) == {"angry": 6, "happy": 4, "excited": 5, "neutral": 8, "sad": 6, "frustrated": 3}
    assert set(speaker_counts(utts)) == {f"Ses0{s}{g}" for s in range(1, 6) for g in "FM"}
    u = next(x for x in utts if x.id == "Ses01F_impro01_M000")
    assert u.speaker == "Ses01M" and u.group == "Ses01F_impro01"
    assert u.extra["session"] == "Ses01" and u.extra["improvised"] is True
    assert u.extra["vad"] == [2.5, 3.0, 2.5]
    assert u.text == "Synthetic line 1 of Ses01F_impro01."
    assert u.path.endswith("Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_M000.wav")
    scripted = [x for x in utts if "script" in x.id]
    assert scripted and all(x.extra["improvised"] is False for x in scripted)


def test_unagreed_kept_on_request_and_session_filter(small_tree):
    assert len(load_corpus("iemocap", small_tree, keep_unagreed=True)) == 35
    only = load_corpus("iemocap", small_tree, sessions=[2])
    assert {u.extra["session"] for u in only} == {"Ses02"}


def test_loso_on_tree(small_tree):
    utts = load_corpus("iemocap", small_tree, labels="iemocap_exp3")
    folds = leave_one_session_out(utts)
    assert [f.name for f in folds] == [f"test-Ses0{i}" for i in range(1, 6)]


def test_real_counts_for_the_three_experiments(tmp_path):
    counts = dict(IEMOCAP_REAL_COUNTS, fru=7, sur=2, xxx=5)
    root = make_iemocap_tree(tmp_path / "IEMOCAP_full_release", counts, seconds=0.02)
    exp1 = load_corpus("iemocap", root, labels="iemocap_exp1")
    exp2 = load_corpus("iemocap", root, labels="iemocap_exp2")
    exp3 = load_corpus("iemocap", root, labels="iemocap_exp3")
    assert len(exp1) == 4490
    assert label_counts(exp1) == {"angry": 1103, "happy": 595, "neutral": 1708, "sad": 1084}
    assert len(exp2) == 4936 and label_counts(exp2)["excited"] == 1041
    assert len(exp3) == 5531
    assert label_counts(exp3) == {"angry": 1103, "happy": 1636, "neutral": 1708, "sad": 1084}


def test_malformed_summary_line_names_file_and_line(tmp_path):
    root = make_iemocap_tree(tmp_path, {"ang": 1, "neu": 1}, sessions=1)
    ev = root / "Session1" / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt"
    ev.write_text(ev.read_text() + "[1.0 - x]\tSes01F_impro01_F009\tang\n")
    with pytest.raises(ManifestError, match=r"Ses01F_impro01\.txt, line \d+: malformed summary line"):
        load_corpus("iemocap", root)


def test_missing_wav_is_reported(tmp_path):
    root = make_iemocap_tree(tmp_path, {"ang": 2}, sessions=1)
    next((root / "Session1" / "sentences").rglob("*.wav")).unlink()
    with pytest.raises(ManifestError, match="audio file not found"):
        load_corpus("iemocap", root)


def test_wrong_root(tmp_path):
    with pytest.raises(ManifestError, match="no Session"):
        load_corpus("iemocap", tmp_path)
