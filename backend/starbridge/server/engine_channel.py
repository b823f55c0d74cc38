"""Engine channel: a ZeroMQ ROUTER every engine's DEALER connects to (DESIGN.md section 4).

One thread owns the ROUTER socket (ZeroMQ sockets are not thread-safe). It reads envelopes,
hands them to the peer's `Connection`, and writes replies. Session threads never touch the
socket: they post outgoing messages to an outbox and wake the channel thread through a
socket pair the poller also watches. Inline pixels go out as a second message part straight from
the frame's buffer (zero-copy); ZeroMQ's high-water mark drops frames for a peer that lags.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading

import numpy as np
import zmq

from ..errors import Malformed
from ..protocol import engine_pb2 as pb
from .manager import Connection, SessionManager
from .wire import error_message

log = logging.getLogger(__name__)

#: Largest envelope accepted from an engine, bytes (poses are ~60 bytes; Hello a few hundred).
MAX_ENVELOPE_BYTES = 64 * 1024
#: ZMTP PING interval towards engines, milliseconds (the plugins' ZMTP clients answer PONG).
HEARTBEAT_IVL_MS = 2000
#: Outgoing messages queued per peer before ZeroMQ drops (about a second of frames at 30 fps).
SEND_HWM = 32


class EngineSink:
    """FrameSink for one engine-channel peer: posts to the channel's outbox."""

    wants_pixels = False  # inline or ring, as the session's transport says

    def __init__(self, channel: EngineChannel, identity: bytes) -> None:
        self._channel = channel
        self._identity = identity

    def send(self, message: pb.BackendMessage, pixels: np.ndarray | None = None) -> None:
        self._channel.post(self._identity, message, pixels)

    def close(self) -> None:
        pass


class EngineChannel:
    """The ROUTER loop. `start()` binds and runs it in a thread; `stop()` ends it."""

    def __init__(self, manager: SessionManager, endpoint: str, context: zmq.Context | None = None) -> None:
        self.manager = manager
        self.endpoint = endpoint
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.SNDHWM, SEND_HWM)
        self._socket.setsockopt(zmq.RCVHWM, 1000)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_ENVELOPE_BYTES)
        # An engine that reconnects with the routing id of a half-closed connection takes it over
        # instead of being dropped silently.
        self._socket.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # ZMTP heartbeats: a peer whose TCP connection died is noticed within seconds.
        self._socket.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        self._socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * HEARTBEAT_IVL_MS)
        if endpoint.endswith(":0"):
            endpoint = endpoint[:-2] + ":*"  # any free port (tests)
        self._socket.bind(endpoint)
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._outbox: collections.deque[tuple[bytes, pb.BackendMessage, np.ndarray | None]] = collections.deque()
        self._connections: dict[bytes, Connection] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-channel", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """End the loop (it closes the socket on its way out); a channel never started is closed here."""
        self._stop.set()
        if self._thread.ident is None:
            self._close()
            return
        self._wake()
        self._thread.join(timeout)

    close = stop

    def _close(self) -> None:
        self._socket.close(0)
        self._wake_r.close()
        self._wake_w.close()

    def post(self, identity: bytes, message: pb.BackendMessage, pixels: np.ndarray | None) -> None:
        """Queue a message for a peer; any thread."""
        self._outbox.append((identity, message, pixels))
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except BlockingIOError:
            pass  # already plenty of wake-ups pending

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._wake_r.fileno(), zmq.POLLIN)
        try:
            while not self._stop.is_set():
                events = dict(poller.poll(100))
                if self._wake_r.fileno() in events:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except BlockingIOError:
                        pass
                self._flush_outbox()
                if self._socket in events:
                    self._drain_inbox()
                self._forget_closed()
        finally:
            for conn in list(self._connections.values()):
                conn.drop("backend shutting down")
            self._close()

    def _drain_inbox(self) -> None:
        for _ in range(256):  # bounded, so the outbox is not starved
            try:
                parts = self._socket.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                return
            identity, payload = parts[0], parts[1:]
            reply = self._handle(identity, payload)
            if reply is not None:
                self._send(identity, reply, None)

    def _handle(self, identity: bytes, payload: list[bytes]) -> pb.BackendMessage | None:
        if len(payload) != 1:
            return error_message(Malformed(f"expected 1 message part (the envelope), got {len(payload)}"), fatal=False)
        message = pb.EngineMessage()
        try:
            message.ParseFromString(payload[0])
        except Exception:
            return error_message(
                Malformed(f"could not parse {len(payload[0])} bytes as starbridge.v1.EngineMessage"), fatal=False
            )
        conn = self._connections.get(identity)
        if conn is None:
            conn = Connection(self.manager, "engine", EngineSink(self, identity))
            self._connections[identity] = conn
        reply = conn.handle(message)
        if conn.session is None and message.WhichOneof("body") in ("goodbye", "hello"):
            # Goodbye, or a refused Hello: forget the peer (it may come back with a new Hello).
            self._connections.pop(identity, None)
        return reply

    def _forget_closed(self) -> None:
        for identity, conn in list(self._connections.items()):
            if conn.session is not None and conn.session.closed:
                self._connections.pop(identity, None)

    def _flush_outbox(self) -> None:
        while self._outbox:
            identity, message, pixels = self._outbox.popleft()
            self._send(identity, message, pixels)

    def _send(self, identity: bytes, message: pb.BackendMessage, pixels: np.ndarray | None) -> None:
        envelope = message.SerializeToString()
        try:
            if pixels is None:
                self._socket.send_multipart([identity, envelope], zmq.NOBLOCK)
            else:
                self._socket.send_multipart([identity, envelope, pixels], zmq.NOBLOCK, copy=False)
        except zmq.Again:
            pass  # the peer lags behind its high-water mark: drop, newer frames follow
        except zmq.ZMQError as exc:
            log.debug("engine channel: send to %r failed: %s", identity, exc)
