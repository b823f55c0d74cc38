"""Fixtures for the Godot plugin's tests: the engine, the imported project, a virtual screen, and
real `starbridge serve` processes.

Everything here skips (with the reason) when the engine or Xvfb is missing, so a machine without
them still runs the rest of the suite; CI has both (see godot_plugin/README.md, "Tests").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import godot_tool as tool  # noqa: E402


@pytest.fixture(scope="session")
def godot() -> tool.Godot:
    engine, reason = tool.find_godot()
    if engine is None:
        pytest.skip(reason)
    return engine


@pytest.fixture(scope="session")
def godot_project(godot: tool.Godot, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """godot_plugin/ copied and imported once per run."""
    return tool.prepare_project(godot, tmp_path_factory.mktemp("godot") / "project")


@pytest.fixture(scope="session")
def xvfb_display() -> Iterator[str]:
    """A virtual screen for rendered runs: our own Xvfb, else an existing DISPLAY."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        if os.environ.get("DISPLAY"):
            yield os.environ["DISPLAY"]
            return
        pytest.skip("Xvfb is not installed (apt-get install -y xvfb) and no DISPLAY is set")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x720x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number.isdigit():
            pytest.skip(f"Xvfb did not start (exit {proc.poll()})")
        yield f":{number}"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def serve(demo_store: Path, tmp_path: Path) -> Iterator:
    """Factory: `serve(*extra_args)` starts a backend on free ports; all are stopped at teardown."""
    started: list[tool.ServeProcess] = []

    def make(*extra: str) -> tool.ServeProcess:
        process = tool.ServeProcess(
            demo_store, tool.free_port(), tool.free_port(), tmp_path / f"serve-{len(started)}.log", *extra
        )
        started.append(process)
        return process.start()

    yield make
    for process in started:
        process.stop()
