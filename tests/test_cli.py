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


def test_a_reader_that_leaves_is_no_traceback(tmp_path):
    """`emovox predict FOLDER | head -1`: the reader may leave before emovox prints; it stops quietly."""
    import soundfile as sf

    from tests.conftest import make_voice

    for i in range(40):
        sf.write(tmp_path / f"c{i:02d}.wav", make_voice(0.5, seed=i), 16000)
    code = "import sys; from emovox.cli import main; sys.exit(main())"
    cmd = f"{sys.executable!r} -c {code!r} predict {str(tmp_path)!r} --model fast --threads 1 | true"
    proc = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.returncode == 1  # the listing was cut short


def test_signal_handlers_are_the_callers_again_after_a_command(tmp_path, capsys):
    """main() turns SIGTERM into a clean stop (exit 143) while a command runs; in-process callers
    (tests, notebooks) get their own handlers back."""
    import signal

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert main(["predict", str(tmp_path / "missing.wav")]) == EXIT_BAD_INPUT
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    capsys.readouterr()


def test_progress_bars_only_on_a_terminal(monkeypatch):
    """In a log file every redraw of a tqdm bar was one more line (emovox baseline: 529 of them)."""
    import io

    from emovox.cli._options import show_progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert show_progress(False) is False
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert show_progress(False) is True and show_progress(True) is False


def test_a_second_command_on_a_run_folder_in_use_is_refused(tmp_path, capsys):
    """The same experiment started twice trained the same folds side by side into one folder."""
    from pathlib import Path

    from emovox.errors import ConfigError
    from emovox.io import run_folder_lock

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "run"
    with run_folder_lock(out):
        try:
            with run_folder_lock(out):
                raise AssertionError("the folder was locked twice")
        except ConfigError as exc:
            assert "another emovox command is running in this folder now" in str(exc)
        for argv in (["experiment", str(repo / "recipes/emodb/loso_whisper_head.yaml")],
                     ["baseline", str(repo / "recipes/baseline/emodb_loso.yaml")]):
            assert main([*argv, "-o", str(out)]) == EXIT_BAD_INPUT
            assert "another emovox command is running in this folder" in capsys.readouterr().err
    with run_folder_lock(out):  # released when the first command ends
        pass
    assert not out.exists()  # a command that wrote nothing leaves no folder behind
