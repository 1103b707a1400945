"""The emovox command itself: help, version, discovery, exit codes."""

import subprocess
import sys

from emovox import __version__
from emovox.cli import EXIT_BAD_INPUT, build_parser, main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == EXIT_BAD_INPUT
    assert "usage: emovox" in capsys.readouterr().out


def test_every_subcommand_has_help():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert sub.choices, "no subcommands discovered"
    for name, p in sub.choices.items():
        assert p.format_help().strip(), name
        assert p.get_default("func") is not None, f"{name} has no func"


def test_help_does_not_import_torch():
    code = "import sys; from emovox.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
