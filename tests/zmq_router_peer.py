"""A real libzmq ROUTER on loopback in a background thread: the base of the engine plugins' test peers
(tests/unity/unity_peers.py, tests/godot/godot_peers.py)."""

from __future__ import annotations

import threading

import zmq


class RouterThread:
    """Binds tcp://127.0.0.1:<free port> (`endpoint`) and calls `handle(identity, parts)` per message.

    Subclasses set socket options in `configure()` (before bind) and free resources in `cleanup()`.
    Exceptions in `handle` are collected in `errors` (a test peer must not die silently)."""

    def __init__(self, name: str) -> None:
        self.socket: zmq.Socket = zmq.Context.instance().socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.configure()
        self.socket.bind("tcp://127.0.0.1:*")
        self.endpoint: str = self.socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def configure(self) -> None:
        pass

    def handle(self, identity: bytes, parts: list[bytes]) -> None:
        raise NotImplementedError

    def cleanup(self) -> None:
        pass

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.socket.poll(20):
                    continue
                parts = self.socket.recv_multipart()
                try:
                    self.handle(parts[0], parts[1:])
                except Exception as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self.socket.close(0)
            self.cleanup()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5.0)
