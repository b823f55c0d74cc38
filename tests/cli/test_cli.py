"""The console script's commands that need no running backend."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from starbridge.cli import main


def test_scene_list_show_and_errors(demo_store: Path, tmp_path: Path, capsys):
    store = tmp_path / "store"
    shutil.copytree(demo_store, store)
    assert main(["--store", str(store), "scene", "list"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "1 scene(s)" in out
    assert main(["scene", "list", "--store", str(store)]) == 0  # after the subcommand too
    assert "1 scene(s)" in capsys.readouterr().out
    assert main(["--store", str(store), "scene", "show", "demo"]) == 0
    assert '"scene_id": "demo"' in capsys.readouterr().out
    assert main(["--store", str(store), "scene", "show", "nope"]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["--store", str(store), "scene", "delete", "demo"]) == 1  # the built-in scene stays
    assert (store / "demo" / "scene.json").exists()


def test_scene_import_and_delete(demo_store: Path, tmp_path: Path, sample_video: Path, capsys):
    store = tmp_path / "store"
    shutil.copytree(demo_store, store)
    args = ["--store", str(store), "scene", "import", str(sample_video), "--id", "clip"]
    assert main([*args, "--max-frames", "3", "--max-side", "64"]) == 0
    assert "imported scene clip" in capsys.readouterr().out
    assert main(["--store", str(store), "scene", "delete", "clip"]) == 0
    assert not (store / "clip").exists()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    assert main(["--store", str(store), "scene", "import", str(bad)]) == 1
    assert "bad.mp4" in capsys.readouterr().err
    assert sorted(p.name for p in store.iterdir()) == ["demo"]


def test_doctor_names_the_provider():
    result = subprocess.run(
        [sys.executable, "-m", "starbridge.cli", "doctor"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "ORT runs on" in result.stdout and "ExecutionProvider" in result.stdout
    assert "Failed to load" not in result.stdout + result.stderr  # no noisy provider errors


def test_help_lists_commands():
    result = subprocess.run(
        [sys.executable, "-m", "starbridge.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    for command in ("serve", "fly", "scene", "bench", "doctor"):
        assert command in result.stdout
