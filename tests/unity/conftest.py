"""Fixtures for the Unity package's tests: the Mono toolchain, the builds, the peers, and one NUnit run.

The C# tests run once per pytest session in a single `nunit-console` process (starting Mono is the
slow part); pytest then reports each NUnit fixture as its own test. The peers the C# tests talk to run
here and reach them through environment variables (see unity_plugin/Tests/TestSupport.cs):

- a live backend (the real `Backend`, demo scene, heartbeat timeout 2 s) on free loopback ports;
- a pyzmq echo ROUTER with ZMTP heartbeats, and a scripted pyzmq backend (unity_peers.py);
- the Python interpreter and a demo scene store, for the test that runs, kills and restarts
  `starbridge serve` itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import unity_toolchain as toolchain  # noqa: E402
from unity_peers import EchoRouter, FakeBackend  # noqa: E402

GOLDEN_DIR = HERE.parent / "golden"
#: The whole NUnit run may take this long (it normally takes well under a minute).
NUNIT_TIMEOUT_S = 300


@pytest.fixture(scope="session")
def mono() -> toolchain.Tools:
    tools, reason = toolchain.find_tools()
    if tools is None:
        pytest.skip(reason)
    return tools


@pytest.fixture(scope="session")
def test_build(mono: toolchain.Tools, tmp_path_factory: pytest.TempPathFactory) -> toolchain.Build:
    """StarBridge.Core (with its test-only allocation counters) and StarBridge.Tests, built by mcs."""
    out = tmp_path_factory.mktemp("unity-test-build")
    return toolchain.build_package(mono, "2022.3", out, diagnostics=True, only={"StarBridge.Tests"})


@dataclass
class NUnitCase:
    fixture: str
    name: str
    result: str
    message: str = ""
    seconds: float = 0.0


@dataclass
class NUnitRun:
    cases: list[NUnitCase] = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0

    def fixture(self, name: str) -> list[NUnitCase]:
        return [c for c in self.cases if c.fixture == name]


def _parse_nunit2(xml_path: Path) -> list[NUnitCase]:
    cases = []
    for case in ET.parse(xml_path).getroot().iter("test-case"):
        full = case.get("name", "")
        # StarBridge.Tests.<Fixture>.<Method>[(args)]
        head = full.split("(", 1)[0]
        parts = head.split(".")
        fixture = parts[2] if len(parts) > 3 else parts[-2]
        message = "".join(m.text or "" for m in case.iter("message"))
        stack = "".join(s.text or "" for s in case.iter("stack-trace"))
        if stack:
            message += "\n" + stack
        executed = case.get("executed") == "True"
        result = case.get("result", "Unknown") if executed else "NotRun:" + case.get("result", "")
        cases.append(NUnitCase(fixture, full, result, message.strip(), float(case.get("time", "0") or 0)))
    return cases


@pytest.fixture(scope="session")
def nunit_run(
    mono: toolchain.Tools, test_build: toolchain.Build, demo_store: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[NUnitRun]:
    from starbridge.server.app import Backend
    from starbridge.server.config import ServerConfig

    work = tmp_path_factory.mktemp("nunit")
    backend = Backend(
        ServerConfig(grpc_port=0, engine_port=0, viewer_port=0, store_root=demo_store, heartbeat_timeout_s=2.0)
    ).start()
    echo, fake = EchoRouter(), FakeBackend()
    env = dict(os.environ)
    env.update(
        STARBRIDGE_TEST_GOLDEN_DIR=str(GOLDEN_DIR),
        STARBRIDGE_TEST_ENDPOINT=backend.engine_endpoint,
        STARBRIDGE_TEST_ECHO_ENDPOINT=echo.endpoint,
        STARBRIDGE_TEST_FAKE_ENDPOINT=fake.endpoint,
        STARBRIDGE_TEST_PYTHON=sys.executable,
        STARBRIDGE_TEST_STORE=str(demo_store),
    )
    xml = work / "TestResult.xml"
    cmd = [mono.nunit_console, "-nologo", "-labels", f"-xml={xml}", str(test_build.dlls["StarBridge.Tests"])]
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=NUNIT_TIMEOUT_S)
    finally:
        echo.close()
        fake.close()
        backend.stop()
    run = NUnitRun(output=proc.stdout + proc.stderr, seconds=time.monotonic() - start)
    assert xml.exists(), f"nunit-console wrote no results (exit {proc.returncode}):\n{run.output[-4000:]}"
    run.cases = _parse_nunit2(xml)
    assert not echo.errors and not fake.errors, f"test peers failed: {echo.errors + fake.errors}"
    yield run
