"""A fresh checkout runs: godot_plugin/ copied without a .godot/ folder (never opened in the editor, no
import, no global class cache) runs headless, with no editor or --import step first.

Godot only knows `class_name` scripts once the editor has built its global class cache, so the addon
reaches its internal scripts through preload() (only the user-facing NeuralBackdrop has a class name, and
no script refers to it by that name). The demo level runs against a live backend and shows frames; the
GDScript unit suites run in the same unimported copy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import godot_tool as tool  # noqa: E402

RUN_TIMEOUT_S = 90
#: What Godot prints when a script names a class it does not know (or fails to parse).
NOT_FOUND = ("Could not find type", "not declared in the current scope", "Parse Error", "SCRIPT ERROR")


@pytest.fixture
def fresh_project(tmp_path: Path) -> Path:
    project = tmp_path / "fresh"
    shutil.copytree(tool.PLUGIN_DIR, project, ignore=shutil.ignore_patterns(".godot"))
    assert not (project / ".godot").exists()
    return project


def _broken(output: str) -> list[str]:
    return [line for line in output.splitlines() if any(marker in line for marker in NOT_FOUND)]


def test_the_demo_runs_in_a_never_imported_project(godot: tool.Godot, fresh_project: Path, tmp_path: Path, serve):
    backend = serve()
    out = tmp_path / "demo.json"
    proc = tool.run_script(
        godot,
        fresh_project,
        tool.TESTS_DIR / "drivers" / "demo_driver.gd",
        [f"--endpoint={backend.endpoint}", f"--out={out}", "--frames=5"],
        timeout=RUN_TIMEOUT_S,
    )
    output = proc.stdout + proc.stderr
    assert not _broken(output), "\n".join(_broken(output))
    assert out.exists(), f"the demo driver wrote no summary (exit {proc.returncode}):\n{output[-4000:]}"
    summary = tool.read_json(out)
    assert summary["status"] == "STREAMING" and summary["frames"] >= 5, summary
    assert summary["status_text"].startswith("streaming:") and summary["hud"].startswith("streaming:"), summary
    # The demo keeps the node's defaults: the backend's size (512x288 here), the texture sized from Welcome.
    assert summary["settings"] == [0, 0, 0] and summary["welcome"] == [512, 288], summary
    assert summary["texture_size"] == [512, 288], summary
    assert not (fresh_project / ".godot" / "global_script_class_cache.cfg").exists(), "something imported it"


def test_the_main_scene_and_the_unit_suites_load_without_an_import(
    godot: tool.Godot, fresh_project: Path, tmp_path: Path
):
    # The main scene as a player starts it (nobody listens on the default port: the node just retries).
    proc = subprocess.run(
        [*godot.command, "--headless", "--path", str(fresh_project), "--quit-after", "60"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0 and not _broken(output), output[-4000:]
    # Every unit suite (they preload the addon's scripts by path, as a user's script would).
    results = tmp_path / "results.json"
    suites = sorted(str(p) for p in (tool.TESTS_DIR / "addons").rglob("test_*.gd"))
    proc = tool.run_script(
        godot, fresh_project, tool.TESTS_DIR / "run_tests.gd",
        [f"--out={results}", f"--golden={tool.GOLDEN_DIR}", f"--tmp={tmp_path}", *suites], timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert not _broken(output), "\n".join(_broken(output))
    assert results.exists(), output[-4000:]
    report = tool.read_json(results)
    failed = {f"{suite}.{name}": r["failures"] for suite, tests in report.items() for name, r in tests.items()
              if not r["passed"]}  # fmt: skip
    assert len(report) == len(suites) and not failed, failed
