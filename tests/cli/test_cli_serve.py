"""`starbridge serve` as a real process: it starts, serves a flight, and shuts down cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_processes import free_ports

from starbridge.client.engine import EngineClient
from starbridge.client.fly import FlyConfig, fly
from starbridge.transport.ring import HEADER_BYTES, RingError, read_header, ring_dir


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
           "--grpc-port", str(grpc_port), "--engine-port", str(engine_port), "--viewer-port", "0"]  # fmt: skip
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
        # the banner's fly command reaches this backend (not the default port)
        assert f"starbridge fly --out demo.mp4 --endpoint tcp://127.0.0.1:{engine_port}\n" in text, text
        report = fly(FlyConfig(endpoint=f"tcp://127.0.0.1:{engine_port}", path="dolly", seconds=1.0, fps=15))
        assert report.frames >= 1 and report.errors == 0, report  # frames arrive (speed is for the benchmarks)
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


def _serve_fails(store: Path, *args: str) -> str:
    """Run `starbridge serve ARGS`; it must exit 1 at once with one line on stderr (no traceback). Returns it."""
    result = subprocess.run(
        [sys.executable, "-m", "starbridge.cli", "--store", str(store), "serve", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Press Ctrl+C" not in result.stdout
    return lines[0]


def test_ports_in_use_are_refused_in_one_line(serve, demo_store: Path):
    running = serve()
    (spare,) = free_ports(1)
    err = _serve_fails(demo_store, "--grpc-port", str(running.grpc_port), "--engine-port", str(spare))
    assert f"port {running.grpc_port} is in use" in err and "--grpc-port" in err
    err = _serve_fails(demo_store, "--grpc-port", str(spare), "--engine-port", str(running.engine_port))
    assert f"port {running.engine_port} is in use" in err and "--engine-port" in err
    # the engine channel's port given as the gRPC port, and the other way round
    assert "--grpc-port" in _serve_fails(demo_store, "--grpc-port", str(running.engine_port), "--engine-port",
                                         str(spare))  # fmt: skip
    assert "--engine-port" in _serve_fails(demo_store, "--grpc-port", str(spare), "--engine-port",
                                           str(running.grpc_port))  # fmt: skip
    assert running.proc.poll() is None  # the running backend is not disturbed


def test_bad_addresses_are_refused_in_one_line(demo_store: Path):
    a, b = free_ports(2)
    err = _serve_fails(demo_store, "--grpc-port", str(a), "--engine-port", str(a))
    assert f"--grpc-port and --engine-port are both {a}" in err
    err = _serve_fails(demo_store, "--host", "203.0.113.7", "--grpc-port", str(a), "--engine-port", str(b))
    assert "203.0.113.7 is not an address of this machine" in err and "--host" in err
    assert "--grpc-port must be a TCP port" in _serve_fails(demo_store, "--grpc-port", "70000")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--width", "5"], "--width must be in [16, 4096] pixels, got 5"),
        (["--width", "5000"], "--width must be in [16, 4096] pixels, got 5000"),
        (["--height", "8"], "--height must be in [16, 4096] pixels, got 8"),
        (["--fps", "0"], "--fps must be in (0, 120] frames per second"),
        (["--fps", "121"], "--fps must be in (0, 120] frames per second"),
        (["--heartbeat-timeout", "0"], "--heartbeat-timeout must be > 0 seconds"),
        (["--max-sessions", "0"], "--max-sessions must be >= 1"),
    ],
)
def test_bad_settings_are_refused_at_start(args: list[str], message: str, demo_store: Path, capsys):
    from starbridge.cli import main

    serve = ["--store", str(demo_store), "serve", "--grpc-port", "0", "--engine-port", "0", "--viewer-port", "0"]
    assert main([*serve, *args]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {message}") and len(captured.err.strip().splitlines()) == 1
    assert "serving" not in captured.out
