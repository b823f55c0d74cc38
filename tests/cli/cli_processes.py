"""`starbridge serve` as a real process on free loopback ports, and other helpers of the CLI tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

#: How long a backend may take to print its banner (the demo scene is already built).
START_TIMEOUT_S = 60.0


def free_ports(n: int) -> list[int]:
    """`n` distinct free TCP ports on 127.0.0.1 (held open together, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def starbridge(*args: str) -> list[str]:
    return [sys.executable, "-m", "starbridge.cli", *args]


class ServeProcess:
    """`starbridge serve` in a child process: started, banner read, output drained in the background."""

    def __init__(self, store: Path, *extra: str) -> None:
        self.grpc_port, self.engine_port = free_ports(2)
        cmd = starbridge("--store", str(store), "serve", "--grpc-port", str(self.grpc_port),
                         "--engine-port", str(self.engine_port), "--viewer-port", "0", *extra)  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT_S
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            self.lines.append(line)
            if "Press Ctrl+C" in line or not line:
                break
        assert "Press Ctrl+C" in self.banner, self.banner
        # keep reading, so a chatty backend never blocks on a full pipe
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _read_rest(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def banner(self) -> str:
        return "".join(self.lines)

    @property
    def endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.engine_port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # in case a test stopped it
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self._drain.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
