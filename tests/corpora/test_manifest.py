"""Manifest round trips (CSV, JSONL) and validation errors that name file and row."""

from __future__ import annotations

from pathlib import Path

import pytest

from emovox.corpora.manifest import (
    Utterance,
    fill_durations,
    label_counts,
    read_manifest,
    select,
    speaker_counts,
    validate,
    write_manifest,
)
from emovox.errors import ManifestError


def _utts(wav: Path) -> list[Utterance]:
    return [
        Utterance("u1", str(wav), "spk1", "angry", "c", "g1", 0.1, 0.5, 'he said "hi", then left', None,
                  {"improvised": True}),
        Utterance("u2", str(wav), "spk2", "sad", "c", "g2"),
        Utterance("t1", "", "spk3", "happy", "meld", text="text only"),
    ]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_round_trip(tmp_path, wav_file, suffix):
    utts = _utts(wav_file)
    path = write_manifest(tmp_path / f"m{suffix}", utts)
    back = read_manifest(path)
    assert back == utts
    assert back[0].extra == {"improvised": True} and back[0].start == pytest.approx(0.1)
    assert back[1].start is None and back[1].duration is None
    assert back[0].text == 'he said "hi", then left'


def test_relative_paths_resolve_against_manifest_folder(tmp_path, wav_file):
    (tmp_path / "m.csv").write_text(f"id,path,speaker,label\nx,{wav_file.name},s,angry\n")
    (utt,) = read_manifest(tmp_path / "m.csv")
    assert Path(utt.path) == wav_file.resolve()


def test_missing_file_names_file_and_row(tmp_path, wav_file):
    m = tmp_path / "m.csv"
    m.write_text(f"id,path,speaker,label\na,{wav_file},s,angry\nb,nope.wav,s,sad\n")
    with pytest.raises(ManifestError, match=r"m\.csv, row 2 \(id 'b'\): audio file not found"):
        read_manifest(m)


@pytest.mark.parametrize("rows, match", [
    ("a,{w},s,angry\na,{w},t,sad\n", r"row 2 .*duplicate id, first seen in row 1"),
    ("a,{w},,angry\n", r"row 1 .*empty 'speaker'"),
    ("a,{w},s,\n", r"row 1 .*empty 'label'"),
    ("a,{w},s,grumpy\n", r"row 1 .*unknown label 'grumpy'"),
])
def test_validation_errors(tmp_path, wav_file, rows, match):
    m = tmp_path / "m.csv"
    m.write_text("id,path,speaker,label\n" + rows.format(w=wav_file))
    with pytest.raises(ManifestError, match=match):
        read_manifest(m, labels=["angry", "sad"])


def test_missing_column_and_bad_format(tmp_path):
    (tmp_path / "m.csv").write_text("id,path,label\n")
    with pytest.raises(ManifestError, match="lacks column.*speaker"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "m.txt").write_text("")
    with pytest.raises(ManifestError, match="unknown manifest format"):
        read_manifest(tmp_path / "m.txt")
    with pytest.raises(ManifestError, match="manifest not found"):
        read_manifest(tmp_path / "absent.csv")


def test_bad_numbers_and_json(tmp_path):
    (tmp_path / "m.csv").write_text("id,path,speaker,label,start\na,,s,angry,soon\n")
    with pytest.raises(ManifestError, match=r"row 1: field 'start' must be a number"):
        read_manifest(tmp_path / "m.csv")
    (tmp_path / "m.jsonl").write_text('{"id": "a"\n')
    with pytest.raises(ManifestError, match=r"line 1: not valid JSON"):
        read_manifest(tmp_path / "m.jsonl")


def test_start_must_precede_end(wav_file):
    with pytest.raises(ManifestError, match="start"):
        validate([Utterance("a", str(wav_file), "s", "angry", start=2.0, end=1.0)])


def test_helpers(wav_file):
    utts = _utts(wav_file)
    assert label_counts(utts) == {"angry": 1, "sad": 1, "happy": 1}
    assert speaker_counts(utts)["spk1"] == 1
    assert [u.id for u in select(utts, ["t1", "u1"])] == ["t1", "u1"]
    with pytest.raises(ManifestError, match="not in the manifest"):
        select(utts, ["zzz"])
    filled = fill_durations(utts)
    assert filled[0].duration == pytest.approx(0.4)  # end - start
    assert filled[1].duration == pytest.approx(1.0)  # the 1 s tone's header
    assert filled[2].duration is None  # text only


def test_paths_written_absolute_or_relative(tmp_path, wav_file, monkeypatch):
    monkeypatch.chdir(wav_file.parent)
    utts = [Utterance("a", wav_file.name, "s", "angry")]  # relative to the current directory
    sub = tmp_path / "elsewhere"
    (back,) = read_manifest(write_manifest(sub / "abs.csv", utts))
    assert Path(back.path) == wav_file
    assert f",{wav_file}," in (sub / "abs.csv").read_text()
    (back,) = read_manifest(write_manifest(sub / "rel.jsonl", utts, relative=True))
    assert Path(back.path).resolve() == wav_file.resolve()
    assert '"path": "../tone.wav"' in (sub / "rel.jsonl").read_text()
