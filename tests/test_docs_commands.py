"""Every `emovox …` command shown in README.md, docs/*.md, recipe READMEs and `--help` epilogs
parses exactly as written, every repository path it names exists, and the cheap ones run."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from emovox.cli import build_parser, main

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "recipes").glob("*/README.md"))]


def _commands_in(text: str) -> list[str]:
    found = []
    for block in re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, flags=re.S):
        block = re.sub(r"\\\n\s*", " ", block)  # join continued lines
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            line = re.sub(r"^(\$ |\.venv/bin/)", "", line)
            if line.startswith("emovox ") or line == "emovox":
                found.append(line)
    return found


def _epilog_commands() -> list[str]:
    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = []
    for sub in subs.choices.values():
        for line in re.sub(r"\\\n\s*", " ", sub.epilog or "").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("emovox "):
                out.append(line)
    return out


DOC_COMMANDS = sorted({c for doc in DOCS if doc.is_file() for c in _commands_in(doc.read_text())})
HELP_COMMANDS = sorted(set(_epilog_commands()))


def test_there_are_commands_to_check():
    assert len(DOC_COMMANDS) >= 10 and len(HELP_COMMANDS) >= 5


@pytest.mark.parametrize("command", DOC_COMMANDS + HELP_COMMANDS)
def test_command_parses_and_its_repository_paths_exist(command):
    argv = shlex.split(command)[1:]
    parser = build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on unrecognized or missing arguments
        pytest.fail(f"`{command}` does not parse (exit {exc.code})")
    for arg in argv:
        if re.match(r"^(recipes|examples|benchmarks|docs)/", arg) and not any(ch in arg for ch in "*?$"):
            assert (REPO / arg).exists(), f"`{command}` names {arg}, which does not exist"


def test_the_first_readme_commands_run(tmp_path, monkeypatch, capsys):
    """`emovox predict examples/` (what `make run` runs) and the ONNX export, exactly as written."""
    monkeypatch.chdir(REPO)
    assert "emovox predict examples/" in DOC_COMMANDS
    assert main(["predict", "examples/"]) == 0
    out = capsys.readouterr().out
    assert out.count(".flac") == 6
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--onnx", "-o", "model.onnx"]) == 0
    assert (tmp_path / "model.onnx").stat().st_size > 1_000_000
