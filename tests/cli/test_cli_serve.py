"""`starbridge serve` as a real process: it starts, serves a flight, and shuts down cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from starbridge.client.engine import EngineClient
from starbridge.client.fly import FlyConfig, fly
from starbridge.server.ring import HEADER_BYTES, RingError, read_header, ring_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rings_owned_by(pid: int) -> list[Path]:
    owned = []
    for path in ring_dir().glob("starbridge-*"):
        try:
            _, owner = read_header(path.read_bytes()[:HEADER_BYTES], path)
        except (OSError, RingError):
            continue
        if owner == pid:
            owned.append(path)
    return owned


def test_serve_process_lifecycle(demo_store: Path, tmp_path: Path):
    grpc_port, engine_port = _free_port(), _free_port()
    cmd = [sys.executable, "-m", "starbridge.cli", "--store", str(demo_store), "serve",
           "--grpc-port", str(grpc_port), "--engine-port", str(engine_port)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "Press Ctrl+C" in line or proc.poll() is not None:
                break
        text = "".join(lines)
        assert f"127.0.0.1:{grpc_port}" in text and f"tcp://127.0.0.1:{engine_port}" in text, text
        report = fly(FlyConfig(endpoint=f"tcp://127.0.0.1:{engine_port}", path="dolly", seconds=1.0, fps=15))
        assert report.frames >= 5
        client = EngineClient(f"tcp://127.0.0.1:{engine_port}")
        try:
            client.hello()  # a live session with a ring file when the signal comes
            assert _rings_owned_by(proc.pid)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
        finally:
            client.close()
        assert not _rings_owned_by(proc.pid)  # its ring files are gone
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        proc.stdout.close()
