"""Install layout: a clone's folder never shadows the installed package (src layout)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import emovox


def test_package_lives_under_src():
    assert Path(emovox.__file__).resolve().parent.parent.name == "src"


def test_running_from_the_folder_above_a_clone_imports_the_installed_package(tmp_path):
    clone = tmp_path / "emovox"  # what `git clone .../emovox` leaves next to a user's script
    (clone / "examples").mkdir(parents=True)
    (clone / "README.md").write_text("a clone\n")
    out = subprocess.run([sys.executable, "-c", "from emovox import Recognizer; print(Recognizer.__module__)"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-1000:]
    assert out.stdout.strip() == "emovox.inference"
