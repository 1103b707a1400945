"""nEMO and ASED loaders on generated trees (Ogg Opus, the layouts of the releases)."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest

from emovox.audio import load_audio
from emovox.corpora import label_counts, load_corpus, speaker_counts
from emovox.corpora.nemo import parse_name
from emovox.errors import ManifestError
from emovox.testing import make_ased_tree, make_emodb_tree, make_nemo_tree


def test_nemo_tree(tmp_path):
    root = make_nemo_tree(tmp_path / "nemo", speakers=("EB0", "KS0", "MP0"), sentences=2)
    utts = load_corpus("nemo", root)
    assert len(utts) == 3 * 6 * 2
    assert set(speaker_counts(utts)) == {"nemo:EB0", "nemo:KS0", "nemo:MP0"}
    assert label_counts(utts) == {lab: 6 for lab in ("angry", "fear", "happy", "neutral", "sad", "surprise")}
    u = next(x for x in utts if x.id == "KS0_surprised_2")
    assert (u.label, u.corpus, u.group, u.text) == ("surprise", "nemo", "nemo:KS0", "Zdanie numer 2.")
    assert u.extra == {"sentence": 2, "gender": "female", "normalized_text": "zdanie numer 2", "age": 21}
    x = load_audio(u.path)  # Ogg Opus decodes through emovox.audio
    assert x.dtype == np.float32 and 0.2 * 16000 < x.size < 0.3 * 16000 and np.abs(x).max() > 0.1


def test_nemo_without_tsv_and_bad_names(tmp_path):
    root = make_nemo_tree(tmp_path / "nemo", speakers=("EB0", "WR0"), sentences=1, tsv=False, ext=".wav")
    utts = load_corpus("nemo", root / "samples")  # the samples folder itself works too
    assert len(utts) == 12 and all(u.text == "" and u.extra == {"sentence": 1} for u in utts)
    assert parse_name("EB0_surprised_64") == ("EB0", "surprise", 64)
    assert parse_name("EB0_bored_1") is None and parse_name("EB0_anger") is None
    (root / "samples" / "EB0_bored_3.wav").write_bytes(b"")
    with pytest.raises(ManifestError, match="cannot parse file name .*EB0_bored_3"):
        load_corpus("nemo", root)


def test_nemo_tsv_speaker_mismatch(tmp_path):
    root = make_nemo_tree(tmp_path / "nemo", speakers=("EB0",), sentences=1)
    tsv = root / "data.tsv"
    tsv.write_text(tsv.read_text(encoding="utf-8").replace(" EB0\t", " XX9\t", 1), encoding="utf-8")
    with pytest.raises(ManifestError, match="named for speaker EB0 but .*data.tsv says 'XX9'"):
        load_corpus("nemo", root)
    root = make_nemo_tree(tmp_path / "nemo2", speakers=("EB0",), sentences=1)
    tsv = root / "data.tsv"
    tsv.write_text(tsv.read_text(encoding="utf-8").replace("EB0_anger_1.wav\tanger", "EB0_anger_1.wav\tfear"),
                   encoding="utf-8")
    with pytest.raises(ManifestError, match="named for emotion 'anger' but .*data.tsv says 'fear'"):
        load_corpus("nemo", root)


def test_ased_tree(tmp_path):
    root = make_ased_tree(tmp_path / "ased", speakers=(1, 2, 3), sentences=(1, 2))
    utts = load_corpus("ased", root)
    assert len(utts) == 3 * 5 * 2 * 2
    assert set(speaker_counts(utts)) == {"ased:01", "ased:02", "ased:03"}
    assert label_counts(utts) == {lab: 12 for lab in ("angry", "fear", "happy", "neutral", "sad")}
    u = next(x for x in utts if x.id == "f2-02-01-02-02")
    assert (u.label, u.speaker, u.corpus) == ("fear", "ased:02", "ased")
    assert u.extra == {"sentence": 2, "repetition": 1, "gender": "male", "gender_field": "male", "letter": "f"}
    assert load_audio(u.path).size > 0


def test_ased_folder_wins_and_gender_majority(tmp_path, caplog):
    root = make_ased_tree(tmp_path / "ased", speakers=(1,), sentences=(1, 2, 3), emotions="sa")
    # an upper-case letter (as in the release) and a wrong gender field on one file of speaker 01
    src = root / "04Sad" / "s4-01-01-01-01.opus"
    shutil.move(src, root / "04Sad" / "S4-01-01-01-01.opus")
    shutil.move(root / "04Sad" / "s4-02-01-01-01.opus", root / "04Sad" / "s4-02-01-02-01.opus")
    # a file whose letter says angry, filed under Sad: the folder wins, with a warning
    shutil.copy(root / "05Angry" / "a5-03-02-01-01.opus", root / "04Sad" / "a5-09-02-01-01.opus")
    with caplog.at_level(logging.WARNING, logger="emovox.corpora.ased"):
        utts = {u.id: u for u in load_corpus("ased", root)}
    assert utts["S4-01-01-01-01"].label == "sad"
    assert utts["a5-09-02-01-01"].label == "sad" and "using the folder (sad)" in caplog.text
    odd = utts["s4-02-01-02-01"]
    assert odd.extra["gender_field"] == "male" and odd.extra["gender"] == "female"


def test_ased_bad_name_and_empty_root(tmp_path):
    with pytest.raises(ManifestError, match="no emotion folders"):
        load_corpus("ased", tmp_path)
    root = make_ased_tree(tmp_path / "ased", speakers=(1,), sentences=(1,), ext=".wav")
    (root / "03Happy" / "h3-01-01.wav").write_bytes(b"")
    with pytest.raises(ManifestError, match="cannot parse file name .*h3-01-01"):
        load_corpus("ased", root)


def test_combined_speakers_are_unique(tmp_path):
    """ASED speakers 01..65 and EmoDB's 03, 08... would collide without the corpus prefix."""
    emodb = load_corpus("emodb", make_emodb_tree(tmp_path / "emodb", speakers=("03", "08"), texts=("a01",)))
    ased = load_corpus("ased", make_ased_tree(tmp_path / "ased", speakers=(3, 8), sentences=(1,)))
    nemo = load_corpus("nemo", make_nemo_tree(tmp_path / "nemo", speakers=("EB0", "IC0"), sentences=1))
    owner: dict[str, str] = {}
    for u in emodb + ased + nemo:
        assert owner.setdefault(u.speaker, u.corpus) == u.corpus
    assert len(owner) == 6


def test_presets():
    from emovox.corpora import PRESETS

    assert PRESETS["nemo6"].classes == ("angry", "fear", "happy", "neutral", "sad", "surprise")
    assert PRESETS["ased5"].classes == ("angry", "fear", "happy", "neutral", "sad")
