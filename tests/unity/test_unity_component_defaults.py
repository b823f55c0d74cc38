"""The NeuralBackdrop component's defaults, run for real: 0 asks for the backend's size and rate.

The component (StarBridge.Runtime) is compiled against the UnityEngine stubs, whose bodies do nothing, so
its settings code runs under Mono: harness/ComponentDefaults.cs makes a NeuralBackdrop with its default
serialized values and streams with the BackdropClient its CreateSettings() configures, from a real
`starbridge serve` started with a size and rate that are not the backend's built-in defaults.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import unity_toolchain as toolchain

HARNESS = Path(__file__).resolve().parent / "harness" / "ComponentDefaults.cs"


@pytest.fixture(scope="module")
def harness(mono: toolchain.Tools, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ComponentDefaults.exe beside StarBridge.Runtime, StarBridge.Core and the UnityEngine stub."""
    out = tmp_path_factory.mktemp("unity-component")
    build = toolchain.build_package(mono, "2022.3", out / "build", only={"StarBridge.Runtime"})
    run = out / "run"
    run.mkdir()
    dlls = [
        build.dlls["StarBridge.Runtime"],
        build.dlls["StarBridge.Core"],
        out / "build" / "stubs" / "UnityEngine.dll",
    ]
    for dll in dlls:
        shutil.copy(dll, run / dll.name)
    exe = run / "ComponentDefaults.exe"
    cmd = [mono.mcs, "-target:exe", "-nologo", "-warnaserror", f"-out:{exe}"]
    cmd += [f"-r:{run / dll.name}" for dll in dlls] + [str(HARNESS)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return exe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve_320x180(demo_store: Path, tmp_path: Path) -> Iterator[str]:
    """`starbridge serve --width 320 --height 180 --fps 20` (not the built-in 512x288 at 30); its endpoint."""
    port = _free_port()
    cmd = [
        sys.executable, "-m", "starbridge.cli", "--store", str(demo_store), "serve", "--grpc-port", str(_free_port()),
        "--engine-port", str(port), "--viewer-port", "0", "--width", "320", "--height", "180", "--fps", "20",
    ]  # fmt: skip
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            yield f"127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(15)


def _run(mono: toolchain.Tools, harness: Path, *args: str) -> dict:
    proc = subprocess.run(
        [mono.mono, str(harness), *args], capture_output=True, text=True, timeout=60, check=False, cwd=harness.parent
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_unity_component_defaults_take_the_backends_size_and_rate(mono, harness, serve_320x180):
    got = _run(mono, harness, serve_320x180)
    assert got["error"] == ""
    assert (got["width"], got["height"], got["fps"]) == (0, 0, 0), "Hello asks for the backend's defaults"
    assert (got["welcome_width"], got["welcome_height"], got["welcome_fps"]) == (320, 180, 20)
    assert (got["frame_width"], got["frame_height"]) == (320, 180), "the texture is sized from Welcome"


def test_unity_component_negative_resolution_is_reported_not_clamped(mono, harness):
    got = _run(mono, harness, "tcp://127.0.0.1:9", "-5x-5")
    assert (got["width"], got["height"]) == (-5, -5)
    assert "Width must be in [0, 8192]" in got["error"], got
