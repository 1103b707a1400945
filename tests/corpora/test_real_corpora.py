"""Counts on the real corpora in ../shared (file names only, no decoding); skipped when absent."""

from __future__ import annotations

import pytest

from emovox.corpora import label_counts, load_corpus, speaker_counts
from emovox.protocols import leave_k_speakers_out, leave_one_corpus_out, leave_one_speaker_out


def test_ravdess(corpora_dir):
    utts = load_corpus("ravdess", corpora_dir / "ravdess")
    assert len(utts) == 1440 and len(speaker_counts(utts)) == 24
    counts = label_counts(utts)
    assert counts.pop("neutral") == 96
    assert counts == {lab: 192 for lab in ("calm", "happy", "sad", "angry", "fear", "disgust", "surprise")}
    folds = leave_k_speakers_out(utts, k=4)
    assert len(folds) == 6 and all(len(f.test) == 240 for f in folds)


def test_tess(corpora_dir):
    utts = load_corpus("tess", corpora_dir / "tess")
    assert len(utts) == 2800 and set(speaker_counts(utts)) == {"OAF", "YAF"}
    assert label_counts(utts) == {lab: 400 for lab in ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")}


def test_emodb(corpora_dir):
    utts = load_corpus("emodb", corpora_dir / "emodb")
    assert len(utts) == 535 and len(speaker_counts(utts)) == 10
    assert label_counts(utts) == {"angry": 127, "boredom": 81, "neutral": 79, "happy": 71, "fear": 69,
                                  "sad": 62, "disgust": 46}
    assert len(leave_one_speaker_out(utts)) == 10


def test_librispeech_samples(corpora_dir):
    utts = load_corpus("librispeech", corpora_dir / "librispeech-samples")
    assert len(utts) == 100 and set(speaker_counts(utts).values()) == {10}
    assert {u.extra["gender"] for u in utts} == {"female", "male"}


def test_meld(shared_dir):
    utts = load_corpus("meld", shared_dir / "text" / "meld")
    splits = {s: sum(1 for u in utts if u.extra["split"] == s) for s in ("train", "dev", "test")}
    assert splits == {"train": 9989, "dev": 1109, "test": 2610}
    assert set(label_counts(utts)) == {"angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"}


@pytest.mark.shared
def test_nemo(corpora_dir):
    utts = load_corpus("nemo", corpora_dir / "nemo")
    assert len(utts) == 4481
    spk = speaker_counts(utts)
    assert len(spk) == 9 and all(s.startswith("nemo:") for s in spk) and spk["nemo:MP0"] == 256
    assert label_counts(utts) == {"angry": 749, "fear": 736, "happy": 749, "neutral": 809, "sad": 769,
                                  "surprise": 669}
    assert all(u.path.endswith(".opus") and u.text for u in utts)  # every clip has its data.tsv row
    genders = {u.speaker: u.extra["gender"] for u in utts}
    assert sorted(genders.values()).count("male") == 5


@pytest.mark.shared
def test_ased(corpora_dir):
    utts = load_corpus("ased", corpora_dir / "ased")
    assert len(utts) == 2474
    spk = speaker_counts(utts)
    assert len(spk) == 65 and set(spk) == {f"ased:{i:02d}" for i in range(1, 66)}
    assert label_counts(utts) == {"neutral": 522, "fear": 510, "happy": 486, "sad": 470, "angry": 486}
    genders = {u.speaker: u.extra["gender"] for u in utts}
    assert sorted(genders.values()).count("female") == 25  # README: 25 female, 40 male
    assert sum(u.extra["gender_field"] != u.extra["gender"] for u in utts) == 5  # the 5 unreliable fields
    assert next(u for u in utts if u.id == "S4-04-02-01-29").label == "sad"


@pytest.mark.shared
def test_five_corpora_speakers_unique(corpora_dir):
    owner: dict[str, str] = {}
    utts = []
    for name in ("ravdess", "tess", "emodb", "nemo", "ased"):
        utts += load_corpus(name, corpora_dir / name)
    for u in utts:
        assert owner.setdefault(u.speaker, u.corpus) == u.corpus, f"speaker {u.speaker} in {owner[u.speaker]} and {u.corpus}"
    assert len(owner) == 24 + 2 + 10 + 9 + 65
    folds = leave_one_corpus_out(utts)
    assert {f.info["test_corpus"]: len(f.test) for f in folds} == {"ased": 2474, "emodb": 535, "nemo": 4481,
                                                                   "ravdess": 1440, "tess": 2800}
