"""Broken manifests and leaking splits: the Python API and ``emovox experiment`` both stop with a
specific error naming the manifest, the row and what to do (CLI: exit 2, no traceback)."""

from __future__ import annotations

import csv
import json
import logging
import re
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from emovox.cli import EXIT_BAD_INPUT, main
from emovox.config import recipe_from_dict
from emovox.corpora import CANONICAL, read_manifest
from emovox.errors import AudioError, ManifestError, ProtocolError
from emovox.protocols import Fold, check_fold, load_folds, make_folds, save_folds
from tests.conftest import make_tone

FIELDS = ["id", "path", "speaker", "label", "extra"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    """4 speakers x 2 emotions x 2 clips of generated audio (0.4 s)."""
    folder = tmp_path_factory.mktemp("clips")
    for s in range(4):
        for j, label in enumerate(("angry", "sad")):
            for k in range(2):
                sf.write(folder / f"s{s}_{label}_{k}.wav", make_tone(0.4, freq=150 + 40 * j, seed=10 * s + k), 16000)
    return folder


def good_rows(clips: Path) -> list[dict]:
    rows = []
    for path in sorted(clips.glob("*.wav")):
        s, label, _ = path.stem.split("_")
        split = {"s0": "train", "s1": "train", "s2": "dev", "s3": "test"}[s]
        rows.append({"id": path.stem, "path": str(path), "speaker": f"spk{s[1]}", "label": label,
                     "extra": json.dumps({"split": split})})
    return rows


def write(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, FIELDS)
        w.writeheader()
        w.writerows(rows)
    return path


def experiment(tmp_path: Path, manifest: Path, capsys, **data) -> tuple[int, str]:
    recipe = {"name": "bad-manifest", "data": {"manifest": str(manifest), "protocol": "leave_one_speaker_out", **data},
              "features": {"n_mels": 16, "cache_dir": str(tmp_path / "cache")},
              "model": {"name": "resnet18", "options": {"base_channels": 2, "embed_dim": 8}},
              "train": {"epochs": 1, "batch_size": 4, "chunk_frames": [20], "progress": False}}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    code = main(["experiment", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


# ------------------------------------------------------------------------------ bad rows
def _missing_file(rows, clips):
    rows[2]["path"] = str(clips / "gone.wav")
    return r"row 3 \(id 's0_sad_0'\): audio file not found: .*gone\.wav"


def _duplicate_id(rows, clips):
    rows[5]["id"] = rows[1]["id"]
    return r"row 6 \(id 's0_angry_1'\): duplicate id, first seen in row 2"


def _empty_speaker(rows, clips):
    rows[3]["speaker"] = "  "
    return r"row 4 \(id 's0_sad_1'\): empty 'speaker' \(speaker-independent evaluation needs a speaker"


def _empty_label(rows, clips):
    rows[0]["label"] = ""
    return r"row 1 \(id 's0_angry_0'\): empty 'label'"


def _bad_extra(rows, clips):
    rows[4]["extra"] = "{not json"
    return r"row 5: field 'extra' is not valid JSON"


BAD_ROWS = {"missing_file": _missing_file, "duplicate_id": _duplicate_id, "empty_speaker": _empty_speaker,
            "empty_label": _empty_label, "bad_extra_json": _bad_extra}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_api_names_manifest_and_row(clips, tmp_path, case):
    rows = good_rows(clips)
    pattern = BAD_ROWS[case](rows, clips)
    manifest = write(tmp_path / "m.csv", rows)
    with pytest.raises(ManifestError, match=pattern) as info:
        read_manifest(manifest)
    assert str(manifest) in str(info.value)


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_cli_exit_2_before_any_work(clips, tmp_path, capsys, case):
    rows = good_rows(clips)
    pattern = BAD_ROWS[case](rows, clips)
    code, err = experiment(tmp_path, write(tmp_path / "m.csv", rows), capsys)
    assert code == EXIT_BAD_INPUT and str(tmp_path / "m.csv") in err
    assert len(re.findall(pattern, err)) == 1
    assert not (tmp_path / "cache").exists()  # failed before computing any feature


def test_missing_manifest_and_missing_columns(clips, tmp_path, capsys):
    code, err = experiment(tmp_path, tmp_path / "nope.csv", capsys)
    assert code == EXIT_BAD_INPUT and "manifest not found" in err and "emovox prepare" in err
    (tmp_path / "m.csv").write_text("id,path,label\nx,a.wav,angry\n")
    code, err = experiment(tmp_path, tmp_path / "m.csv", capsys)
    assert code == EXIT_BAD_INPUT and "header lacks column(s) speaker" in err


def test_corrupt_audio_file_in_a_manifest_is_named(clips, tmp_path, capsys):
    rows = good_rows(clips)
    bad = tmp_path / "corrupt.wav"
    bad.write_bytes(b"RIFF" + bytes(100))
    rows[7]["path"] = str(bad)
    code, err = experiment(tmp_path, write(tmp_path / "m.csv", rows), capsys)
    assert code == EXIT_BAD_INPUT and "corrupt.wav: not a readable audio file" in err


# ---------------------------------------------------------------------------- labels
def test_unknown_label_api_lists_the_allowed_ones(clips, tmp_path):
    rows = good_rows(clips)
    rows[6]["label"] = "angyr"
    with pytest.raises(ManifestError, match=r"row 7 \(id 's1_sad_0'\): unknown label 'angyr' \(allowed: angry, "
                                            r"boredom.*map it with a label map or drop the row"):
        read_manifest(write(tmp_path / "m.csv", rows), labels=CANONICAL)


def test_unmapped_label_with_unmapped_error_cli_exit_2(clips, tmp_path, capsys):
    code, err = experiment(tmp_path, write(tmp_path / "m.csv", good_rows(clips)), capsys,
                           labels={"classes": ["angry"], "unmapped": "error"})
    assert code == EXIT_BAD_INPUT
    assert "utterance 's0_sad_0' has label 'sad' which is not mapped" in err and "add it to 'map'" in err


def test_unknown_label_in_an_experiment_is_reported(clips, tmp_path, caplog):
    """A typo ('angyr') is neither dropped silently nor turned into a class of its own."""
    from emovox.training.experiment import load_utterances

    rows = good_rows(clips)
    rows[6]["label"] = "angyr"
    manifest = write(tmp_path / "m.csv", rows)
    for labels in (None, "four_class"):
        recipe = recipe_from_dict({"data": {"manifest": str(manifest), "labels": labels}})
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            try:
                load_utterances(recipe)
            except (ManifestError, AudioError) as exc:
                assert "angyr" in str(exc) and "row 7" in str(exc)
                continue
        assert any("angyr" in r.getMessage() and r.levelno >= logging.WARNING for r in caplog.records), labels


# ------------------------------------------------------------------------ speaker leaks
def test_predefined_split_sharing_a_speaker_cli_exit_2(clips, tmp_path, capsys):
    rows = good_rows(clips)
    rows[0]["extra"] = json.dumps({"split": "test"})  # spk0 now in train and test
    code, err = experiment(tmp_path, write(tmp_path / "m.csv", rows), capsys, protocol="predefined")
    assert code == EXIT_BAD_INPUT
    assert "speaker(s) ['spk0'] in both train and test" in err and "speaker leak" in err
    assert not (tmp_path / "out" / "folds.json").exists()


def test_leaking_folds_api(clips, tmp_path):
    utts = read_manifest(write(tmp_path / "m.csv", good_rows(clips)))
    fold = make_folds(utts, "predefined")[0]
    assert {u.speaker for u in utts if u.id in fold.test} == {"spk3"}
    leak = Fold("tampered", fold.train, fold.valid, fold.test + ["s0_angry_0"])
    with pytest.raises(ProtocolError, match=r"utterance 's0_angry_0' is in both train and test"):
        check_fold(leak, utts)
    moved = Fold("moved", [i for i in fold.train if i != "s0_angry_0"], fold.valid, fold.test + ["s0_angry_0"])
    with pytest.raises(ProtocolError, match=r"speaker\(s\) \['spk0'\] in both train and test"):
        check_fold(moved, utts)
    save_folds(tmp_path / "folds.json", [moved])  # a hand-edited fold file is re-checked on load
    with pytest.raises(ProtocolError, match="speaker leak"):
        load_folds(tmp_path / "folds.json", utts)


def test_single_speaker_manifest_cannot_make_speaker_independent_folds(clips, tmp_path, capsys):
    rows = [dict(r, speaker="only") for r in good_rows(clips)]
    code, err = experiment(tmp_path, write(tmp_path / "m.csv", rows), capsys)
    assert code == EXIT_BAD_INPUT and "leave_one_speaker_out: need at least 2 groups, found ['only']" in err
