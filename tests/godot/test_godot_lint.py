"""Every GDScript file of the addon, the demo and these tests passes gdparse and gdlint (gdtoolkit)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import godot_tool as tool  # noqa: E402

GD_FILES = sorted([*tool.PLUGIN_DIR.rglob("*.gd"), *tool.TESTS_DIR.rglob("*.gd")])


def _gdtool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]' brings gdtoolkit)")
    return path


def test_there_is_gdscript_to_check():
    names = {p.name for p in GD_FILES}
    assert {"neural_backdrop.gd", "zmtp_connection.gd", "run_tests.gd"} <= names


def test_gdparse():
    gdparse = _gdtool("gdparse")
    result = subprocess.run([gdparse, *map(str, GD_FILES)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gdlint():
    gdlint = _gdtool("gdlint")
    result = subprocess.run([gdlint, *map(str, GD_FILES)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
