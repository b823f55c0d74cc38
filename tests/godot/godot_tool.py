"""Finding, preparing and running the real Godot 4 the plugin is tested in.

The engine is `<repo>/../shared/tools/godot4` (it sets itself up on first use: about a minute and a
half, as root) or whatever the GODOT4 environment variable names. The addon is imported once per
test run into a copy of `godot_plugin/`, as opening it in the editor would (the import checks that
everything compiles and writes a `.godot/` cache we keep out of the checkout);
test_godot_fresh_checkout.py runs a copy that was never imported. GDScript test suites and drivers
live here in tests/godot, reach the addon's scripts with preload() (no global class names, so they
run in either copy) and are run with `--script <absolute path>`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent
ROOT = TESTS_DIR.parents[1]
PLUGIN_DIR = ROOT / "godot_plugin"
GOLDEN_DIR = ROOT / "tests" / "golden"
DEFAULT_TOOL = ROOT.parent / "shared" / "tools" / "godot4"
#: First use of the shared tool builds a private Debian root; allow for a slow mirror.
SETUP_TIMEOUT_S = 900
IMPORT_TIMEOUT_S = 180
#: The oldest engine the tests run on (the GDScript test runner uses Logger, new in 4.5).
MIN_VERSION = (4, 5)
#: Frame rate cap of headless runs.
HEADLESS_MAX_FPS = 120
#: How long `starbridge serve` may take to listen.
SERVE_START_TIMEOUT_S = 30.0
#: Lines Godot prints that mean a script or shader broke.
ERROR_MARKERS = ("SCRIPT ERROR", "SHADER ERROR", "Parse Error")


@dataclass(frozen=True)
class Godot:
    command: tuple[str, ...]
    version: str


def find_godot() -> tuple[Godot | None, str]:
    """The engine, or None and why not (for pytest.skip)."""
    named = os.environ.get("GODOT4")
    path = Path(named) if named else DEFAULT_TOOL
    if not path.exists():
        return None, (
            f"no Godot 4 here: {path} does not exist (CI runs in a clone with ../shared beside it; "
            "elsewhere set GODOT4 to a Godot 4.5+ binary)"
        )
    try:
        proc = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=SETUP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"Godot could not be started or set up ({path}): {exc}"
    lines = [line for line in proc.stdout.splitlines() if re.match(r"^\d+\.\d+", line.strip())]
    if proc.returncode != 0 or not lines:
        tail = (proc.stdout + proc.stderr).strip()[-600:]
        return None, f"Godot could not be set up ({path} --version exited {proc.returncode}): {tail}"
    version = lines[-1].strip()
    major, minor = (int(v) for v in version.split(".")[:2])
    if (major, minor) < MIN_VERSION:
        return None, f"Godot {version} is too old for these tests (need {MIN_VERSION[0]}.{MIN_VERSION[1]}+)"
    return Godot((str(path),), version), ""


def prepare_project(godot: Godot, dest: Path) -> Path:
    """A copy of godot_plugin/ at `dest`, imported (class cache and .uid files made)."""
    shutil.copytree(PLUGIN_DIR, dest, ignore=shutil.ignore_patterns(".godot"))
    proc = subprocess.run(
        [*godot.command, "--headless", "--path", str(dest), "--import"],
        capture_output=True,
        text=True,
        timeout=IMPORT_TIMEOUT_S,
        check=False,
    )
    cache = dest / ".godot" / "global_script_class_cache.cfg"
    output = proc.stdout + proc.stderr
    if not cache.exists() or "NeuralBackdrop" not in cache.read_text(encoding="utf-8"):
        raise RuntimeError(f"importing the Godot project failed (exit {proc.returncode}):\n{output[-4000:]}")
    broken = [line for line in output.splitlines() if any(m in line for m in ERROR_MARKERS)]
    if broken:
        raise RuntimeError("the addon does not compile in Godot:\n" + "\n".join(broken) + "\n" + output[-4000:])
    return dest


def script_command(
    godot: Godot, project: Path, script: Path, args: list[str], *, rendered: bool = False, resolution: str = ""
) -> list[str]:
    """The command line that runs a SceneTree script from tests/godot in the project."""
    cmd = [*godot.command]
    if rendered:
        cmd += ["--rendering-driver", "opengl3", "--audio-driver", "Dummy"]
        if resolution:
            cmd += ["--resolution", resolution]
    else:
        # Headless, the main loop would spin as fast as it can; a real game's rate is fairer to the backend.
        cmd += ["--headless", "--max-fps", str(HEADLESS_MAX_FPS)]
    return [*cmd, "--path", str(project), "--script", str(script), "--", *args]


def run_script(
    godot: Godot,
    project: Path,
    script: Path,
    args: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    rendered: bool = False,
    resolution: str = "",
) -> subprocess.CompletedProcess[str]:
    cmd = script_command(godot, project, script, args, rendered=rendered, resolution=resolution)
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, env=env or dict(os.environ), check=False
    )


def errors_in(output: str) -> list[str]:
    """Lines of Godot's output saying a script or shader failed."""
    return [line for line in output.splitlines() if any(m in line for m in ERROR_MARKERS)]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_until(predicate, timeout_s: float, period_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(period_s)
    return bool(predicate())


class ServeProcess:
    """`python -m starbridge.cli --store STORE serve` on given ports; restartable."""

    def __init__(self, store: Path, engine_port: int, grpc_port: int, log_path: Path, *extra: str) -> None:
        self.store = store
        self.engine_port = engine_port
        self.grpc_port = grpc_port
        self.log_path = log_path
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.engine_port}"

    def start(self) -> ServeProcess:
        cmd = [
            sys.executable, "-m", "starbridge.cli", "--store", str(self.store), "serve",
            "--grpc-port", str(self.grpc_port), "--engine-port", str(self.engine_port),
            "--viewer-port", "0", "--heartbeat-timeout", "2", *self.extra,
        ]  # fmt: skip
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        if not wait_for_port(self.engine_port, SERVE_START_TIMEOUT_S):
            self.stop()
            raise RuntimeError(f"starbridge serve did not listen on {self.endpoint}: {self.log()[-3000:]}")
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye, no cleanup (a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        self._reap()

    def terminate(self) -> None:
        """SIGTERM, as a service manager stops it; returns at once (the backend says SHUTTING_DOWN first)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout_s: float = 15.0) -> bool:
        """Whether the process exited within `timeout_s` (then it is reaped)."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return False
        self._reap()
        return True

    def stop(self) -> None:
        """Ctrl+C, as a user stops it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._reap()

    def _reap(self) -> None:
        if self.proc is not None:
            self.proc.wait()
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
