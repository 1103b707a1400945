"""``emovox prepare``: manifest written, summary printed, bad input -> exit 2 with a message."""

from __future__ import annotations

import pytest

from emovox.cli import EXIT_BAD_INPUT, main
from emovox.corpora import label_counts, read_manifest
from emovox.testing import make_cremad_tree, make_iemocap_tree


def test_prepare_iemocap_with_label_map(tmp_path, capsys):
    root = make_iemocap_tree(tmp_path / "iemocap")
    out = tmp_path / "m.csv"
    assert main(["prepare", "iemocap", str(root), "--labels", "iemocap_exp3", "-o", str(out), "--no-progress"]) == 0
    utts = read_manifest(out)
    assert label_counts(utts) == {"angry": 6, "happy": 9, "neutral": 8, "sad": 6}
    text = capsys.readouterr().out
    assert "29 utterances, 10 speakers" in text
    assert "happy" in text and "Ses01F" in text and f"wrote {out}" in text


def test_prepare_options_durations_and_jsonl(tmp_path, capsys):
    root = make_iemocap_tree(tmp_path / "iemocap")
    out = tmp_path / "m.jsonl"
    assert main(["prepare", "iemocap", str(root), "--option", "sessions=[2]", "--durations", "-o", str(out)]) == 0
    utts = read_manifest(out)
    assert {u.extra["session"] for u in utts} == {"Ses02"}
    assert all(abs(u.duration - 0.25) < 1e-3 for u in utts)
    assert "scan iemocap" not in capsys.readouterr().err  # no progress bar: stderr is not a terminal


def test_prepare_cremad(tmp_path, capsys):
    out = tmp_path / "c.csv"
    assert main(["prepare", "crema-d", str(make_cremad_tree(tmp_path / "c")), "-o", str(out), "--no-progress"]) == 0
    assert len(read_manifest(out)) == 48


def test_prepare_bad_input(tmp_path, capsys):
    assert main(["prepare", "nope", str(tmp_path), "-o", str(tmp_path / "m.csv")]) == EXIT_BAD_INPUT
    assert "unknown corpus 'nope'" in capsys.readouterr().err
    assert main(["prepare", "emodb", str(tmp_path), "-o", str(tmp_path / "m.csv"), "--no-progress"]) == EXIT_BAD_INPUT
    assert "no utterances found" in capsys.readouterr().err
    assert main(["prepare", "emodb", str(tmp_path), "--option", "x", "-o", str(tmp_path / "m.csv")]) == EXIT_BAD_INPUT
    assert "--option" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()


def test_help_names_every_registered_corpus(capsys):
    """The positional's help and the layout list stay in step with the registry (nemo and ased were missing)."""
    from emovox.corpora.registry import CORPORA

    with pytest.raises(SystemExit):
        main(["prepare", "--help"])
    text = capsys.readouterr().out
    usage, _, layouts = text.partition("corpora (ROOT layout):")
    for name in CORPORA:
        assert name in usage and f"\n  {name} " in layouts, name
