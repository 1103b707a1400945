"""Corpus loaders on generated trees (CREMA-D, VoxCeleb, RAVDESS, EmoDB, TESS, MELD, generic CSV)."""

from __future__ import annotations

import pytest

from emovox.corpora import label_counts, load_corpus, read_manifest, speaker_counts, write_manifest
from emovox.corpora.tess import parse_name
from emovox.errors import ManifestError
from emovox.testing import (
    make_cremad_tree,
    make_emodb_tree,
    make_ravdess_tree,
    make_tess_tree,
    make_voxceleb_tree,
)


def test_cremad(tmp_path):
    root = make_cremad_tree(tmp_path)
    utts = load_corpus("crema-d", root)
    assert len(utts) == 4 * 2 * 6
    assert set(label_counts(utts)) == {"angry", "disgust", "fear", "happy", "neutral", "sad"}
    u = next(x for x in utts if x.id == "1002_IEO_ANG_HI")
    assert (u.speaker, u.label, u.text) == ("1002", "angry", "It's eleven o'clock.")
    assert u.extra == {"sentence": "IEO", "level": "high", "gender": "female"}
    (root / "AudioWAV" / "1001_DFA_XYZ_XX.wav").write_bytes(b"")
    with pytest.raises(ManifestError, match="cannot parse file name .*1001_DFA_XYZ_XX"):
        load_corpus("cremad", root)


def test_voxceleb(tmp_path):
    root = make_voxceleb_tree(tmp_path, n_speakers=3, videos_per_speaker=2, utts_per_video=2)
    utts = load_corpus("voxceleb", root)
    assert len(utts) == 12
    assert speaker_counts(utts) == {"id10001": 4, "id10002": 4, "id10003": 4}
    assert all(u.label == "" and len(u.group) == 11 for u in utts)
    assert utts[0].id.startswith("id10001/") and utts[0].id.endswith("/00001")
    assert len(load_corpus("voxceleb", root, max_per_speaker=1)) == 3
    # a root that holds the id folders directly works too
    assert len(load_corpus("voxceleb", root / "wav")) == 12


def test_ravdess_tree(tmp_path):
    utts = load_corpus("ravdess", make_ravdess_tree(tmp_path, actors=2), labels="four_class_calm")
    # per actor: neutral 1 + calm 2 (-> neutral), happy 2, sad 2, angry 2
    assert label_counts(utts) == {"neutral": 6, "happy": 4, "sad": 4, "angry": 4}
    assert {u.extra["gender"] for u in utts if u.speaker == "Actor_01"} == {"male"}


def test_emodb_tree(tmp_path):
    utts = load_corpus("emodb", make_emodb_tree(tmp_path))
    assert len(utts) == 4 * 2 * 7
    u = next(x for x in utts if x.id == "08b01Wa")
    assert (u.speaker, u.label, u.extra["gender"]) == ("08", "angry", "female")
    assert u.text.startswith("Was sind denn das")


def test_tess_tree_and_names(tmp_path):
    utts = load_corpus("tess", make_tess_tree(tmp_path))
    assert len(utts) == 2 * 7 * 3 and label_counts(utts)["surprise"] == 6
    assert parse_name("OAF_back_ps") == ("OAF", "back", "surprise")
    assert parse_name("YAF_youth_pleasant_surprised") == ("YAF", "youth", "surprise")
    assert parse_name("OAF_Fear") is None


def test_meld_csv(tmp_path):
    header = "Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,StartTime,EndTime\n"
    for split, emo in (("train", "joy"), ("dev", "anger"), ("test", "sadness")):
        (tmp_path / f"{split}_sent_emo.csv").write_text(
            header + f'1,"Oh, my God!",Rachel,{emo},positive,0,0,4,7,"00:20:57,256","00:21:00,049"\n')
    utts = load_corpus("meld", tmp_path)
    assert [(u.id, u.label, u.text, u.path) for u in utts] == [
        ("train_dia0_utt0", "happy", "Oh, my God!", ""), ("dev_dia0_utt0", "angry", "Oh, my God!", ""),
        ("test_dia0_utt0", "sad", "Oh, my God!", "")]
    assert utts[0].extra["split"] == "train" and utts[0].group == "train_dia0"
    (tmp_path / "dev_sent_emo.csv").write_text(header + '1,"x",Ross,grumpy,neutral,0,0,1,1,"",""\n')
    with pytest.raises(ManifestError, match=r"dev_sent_emo\.csv, row 1: unknown emotion 'grumpy'"):
        load_corpus("meld", tmp_path)


def test_generic_csv(tmp_path, wav_file):
    csv = tmp_path / "mine.csv"
    csv.write_text(f"path,label,speaker,mood_score\n{wav_file.name},Anger,alice,3\n{wav_file},joy,bob,1\n")
    a, b = load_corpus("generic", csv)
    assert (a.id, a.label, a.speaker, a.corpus, a.extra) == ("tone", "angry", "alice", "mine", {"mood_score": "3"})
    assert b.label == "happy" and b.id == str(wav_file.with_suffix(""))
    csv.write_text(f"path,label\n{wav_file},angry\n")
    with pytest.raises(ManifestError, match="missing column.*speaker"):
        load_corpus("generic", csv)


def test_manifest_round_trip_of_a_loaded_corpus(tmp_path):
    utts = load_corpus("cremad", make_cremad_tree(tmp_path / "c"))
    back = read_manifest(write_manifest(tmp_path / "m.jsonl", utts))
    assert back == utts and back[0].extra == utts[0].extra


def test_registry_errors(tmp_path):
    with pytest.raises(ManifestError, match="unknown corpus 'nope'"):
        load_corpus("nope", tmp_path)
    with pytest.raises(ManifestError, match="bad option"):
        load_corpus("emodb", tmp_path, colour="red")
    with pytest.raises(ManifestError, match="corpus folder not found"):
        load_corpus("ravdess", tmp_path / "absent")
    with pytest.raises(ManifestError, match="no utterances found"):
        load_corpus("ravdess", tmp_path)


def test_load_data_reads_a_manifest_or_runs_a_loader(tmp_path):
    import pytest

    from emovox.corpora import load_data, write_manifest
    from emovox.errors import ConfigError
    from emovox.testing import make_emodb_tree

    root = tmp_path / "emodb"
    make_emodb_tree(root)
    from_corpus = load_data(corpus="emodb", root=root)
    write_manifest(tmp_path / "m.csv", from_corpus)
    from_manifest = load_data(manifest=tmp_path / "m.csv")
    assert [u.id for u in from_manifest] == [u.id for u in from_corpus] and from_corpus
    with pytest.raises(ConfigError, match="data.root"):
        load_data(corpus="emodb")
    with pytest.raises(ConfigError, match="data.manifest or data.corpus"):
        load_data()
