"""Engine channel: a ZeroMQ ROUTER every engine's DEALER connects to (docs/architecture.md §4).

One thread owns the ROUTER socket (ZeroMQ sockets are not thread-safe). It reads envelopes,
hands them to the peer's `Connection`, and writes replies. Session threads never touch the
socket: they post outgoing messages to an outbox and wake the channel thread through a
socket pair the poller also watches. Inline pixels go out as a second message part straight from
the frame's buffer (zero-copy); ZeroMQ's high-water mark drops frames for a peer that lags.

The loop never blocks on a session: closing one (Goodbye) only marks it closed; its threads are
joined elsewhere. Each turn it reads everything queued and keeps only each peer's newest pose
(older ones still count as heartbeats), so a backlog can never build up behind a busy machine.
Peers without a session are not remembered, and oversized envelopes are answered, not dropped.

Stopping (after the manager posted each session's shutdown notice): the loop delivers the notices, then keeps
the socket open and reading until every engine has hung up or the shutdown grace has passed. Closing at once
would lose the notice for an engine that was slow to read it (a loaded machine, a paused process): the engine's
next pose would reach a closed port, and the TCP reset that answers it discards whatever the engine's system
had received but the engine had not read yet, the notice included — the engine would report a crash.
"""

from __future__ import annotations

import collections
import logging
import socket
import threading
import time
from dataclasses import dataclass

import numpy as np
import zmq
from zmq.utils.monitor import recv_monitor_message

from ..errors import Malformed
from ..protocol import engine_pb2 as pb
from ..transport.error_codes import error_message
from .manager import Connection, SessionManager

log = logging.getLogger(__name__)

#: Largest envelope accepted from an engine, bytes (poses are ~60 bytes; Hello a few hundred).
#: A larger one is answered with a MALFORMED Error (engine.proto documents the limit).
MAX_ENVELOPE_BYTES = 64 * 1024
#: Largest message libzmq reads at all; above it the peer is disconnected unread.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: Messages read per loop turn at most (then the outbox is flushed again).
MAX_BATCH = 4096
#: How long closing the socket may take to deliver queued messages (e.g. the shutdown notice), ms. Closing
#: returns as soon as they are out; the bound only matters for a peer that stopped reading (a loaded machine
#: can take a while to write a few messages, and a lost notice reads as a crash to the engine).
CLOSE_LINGER_MS = 2000
#: Control messages (Welcome, Error) held back while their peer is at its high-water mark, at most; frames
#: are dropped there instead (newer ones follow), control messages are retried until delivered.
HELD_MAX = 256
#: ZMTP PING interval towards engines, milliseconds (the plugins' ZMTP clients answer PONG).
HEARTBEAT_IVL_MS = 2000
#: Outgoing messages queued per peer before ZeroMQ drops (about a second of frames at 30 fps).
SEND_HWM = 32


@dataclass
class _Incoming:
    """One message read from the ROUTER: its envelope, or the Error that answers it."""

    identity: bytes
    message: pb.EngineMessage | None
    error: pb.BackendMessage | None
    #: A newer pose from the same peer follows in the same batch: count it as a heartbeat only.
    superseded: bool = False


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
        # EAGAIN instead of a silent drop at a peer's high-water mark (and EHOSTUNREACH for a peer gone): a
        # frame is then dropped, a control message held and retried (see _send).
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._socket.setsockopt(zmq.RCVHWM, 1000)
        self._socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        # Connections open now (file descriptors), from the socket's monitor: at shutdown the loop waits for
        # the engines to hang up.
        self._monitor = self._socket.get_monitor_socket(zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        self._open_fds: set[int] = set()
        # An engine that reconnects with the routing id of a half-closed connection takes it over
        # instead of being dropped silently.
        self._socket.setsockopt(zmq.ROUTER_HANDOVER, 1)
        # ZMTP heartbeats: a peer whose TCP connection died is noticed within seconds.
        self._socket.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        self._socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3 * HEARTBEAT_IVL_MS)
        if "[" in endpoint:  # an IPv6 host (tcp://[::1]:PORT); only then, or IPv4 binds report ::ffff: addresses
            self._socket.setsockopt(zmq.IPV6, 1)
        if endpoint.endswith(":0"):
            endpoint = endpoint[:-2] + ":*"  # any free port (tests)
        self._socket.bind(endpoint)
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._outbox: collections.deque[tuple[bytes, pb.BackendMessage, np.ndarray | None]] = collections.deque()
        self._held: collections.deque[tuple[bytes, pb.BackendMessage]] = collections.deque()
        self._connections: dict[bytes, Connection] = {}
        self._outbox_flushed = False
        self._stop = threading.Event()
        self._grace_s = 0.0
        self._thread = threading.Thread(target=self._run, name="engine-channel", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """End the loop: it delivers what is queued (the shutdown notices), waits up to `timeout` seconds for
        the engines to hang up, and closes the socket. A channel never started is closed here."""
        if self._stop.is_set():
            return  # stopped already
        self._grace_s = max(0.0, timeout)
        self._stop.set()
        if self._thread.ident is None:
            self._close()
            return
        self._wake()
        self._thread.join(self._grace_s + 1.0)

    close = stop

    def _close(self) -> None:
        self._socket.disable_monitor()
        self._monitor.close(0)
        self._socket.close(CLOSE_LINGER_MS if self._outbox_flushed else 0)
        self._wake_r.close()
        self._wake_w.close()

    def post(self, identity: bytes, message: pb.BackendMessage, pixels: np.ndarray | None) -> None:
        """Queue a message for a peer; any thread. Dropped once the channel has stopped."""
        if self._stop.is_set() and self._outbox_flushed:
            return
        self._outbox.append((identity, message, pixels))
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except BlockingIOError:
            pass  # already plenty of wake-ups pending
        except OSError:
            pass  # closed meanwhile: the channel is stopping

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._wake_r.fileno(), zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                self._turn(poller, 100)
            # Stopping: deliver the notices (held ones too, once a lagging peer makes room) and let the
            # engines hang up first (see the module's docstring); Hellos meanwhile get SHUTTING_DOWN.
            self._flush_outbox()
            deadline = time.monotonic() + self._grace_s
            while (self._held or self._open_fds) and (left := deadline - time.monotonic()) > 0:
                self._turn(poller, min(50, max(1, int(left * 1000))))
            self._outbox_flushed = True
        finally:
            self._connections.clear()  # the manager closes the sessions themselves
            self._close()

    def _turn(self, poller: zmq.Poller, timeout_ms: int) -> None:
        """One pass of the loop: wait up to `timeout_ms` for anything, then act on all of it."""
        events = dict(poller.poll(timeout_ms))
        if self._wake_r.fileno() in events:
            try:
                while self._wake_r.recv(4096):
                    pass
            except BlockingIOError:
                pass
        if self._monitor in events:
            self._track_connections()
        self._flush_outbox()
        if self._socket in events:
            self._drain_inbox()
        self._forget_closed()

    def _track_connections(self) -> None:
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] == zmq.EVENT_ACCEPTED:
                self._open_fds.add(event["value"])
            elif event["event"] == zmq.EVENT_DISCONNECTED:
                self._open_fds.discard(event["value"])

    def _drain_inbox(self) -> None:
        """Read what is queued (up to MAX_BATCH messages) and act on it, each peer's poses coalesced."""
        batch: list[_Incoming] = []
        for _ in range(MAX_BATCH):
            try:
                parts = self._socket.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                break
            batch.append(self._parse(parts[0], parts[1:]))
        # Walking backwards: a pose is superseded when the same peer sent a newer pose after it
        # with nothing else (Hello, TimeControl, Goodbye) in between.
        newer_pose: dict[bytes, bool] = {}
        for item in reversed(batch):
            is_pose = item.message is not None and item.message.WhichOneof("body") == "pose"
            item.superseded = is_pose and newer_pose.get(item.identity, False)
            newer_pose[item.identity] = is_pose
        for item in batch:
            reply = self._act(item)
            if reply is not None:
                self._send(item.identity, reply, None)

    def _parse(self, identity: bytes, payload: list[bytes]) -> _Incoming:
        if len(payload) != 1:
            error = Malformed(f"expected 1 message part (the envelope), got {len(payload)}")
            return _Incoming(identity, None, error_message(error, fatal=False))
        size = len(payload[0])
        if size > MAX_ENVELOPE_BYTES:
            error = Malformed(
                f"message of {size} bytes is larger than the engine channel's limit of {MAX_ENVELOPE_BYTES} bytes "
                "per envelope (poses are ~60 bytes): it was not read"
            )
            return _Incoming(identity, None, error_message(error, fatal=False))
        message = pb.EngineMessage()
        try:
            message.ParseFromString(payload[0])
        except Exception:
            error = Malformed(f"could not parse {size} bytes as starbridge.v1.EngineMessage")
            return _Incoming(identity, None, error_message(error, fatal=False))
        return _Incoming(identity, message, None)

    def _act(self, item: _Incoming) -> pb.BackendMessage | None:
        if item.message is None:
            return item.error
        conn = self._connections.get(item.identity)
        if self.manager.shutting_down and item.message.WhichOneof("body") != "hello":
            # The shutdown notice went out; sessions closing now must not look like client faults.
            # (A Hello is still answered: SHUTTING_DOWN, so a new engine knows to retry.)
            return None
        if item.superseded:
            if conn is not None:
                conn.heartbeat()
            return None
        if conn is None:
            conn = Connection(self.manager, "engine", EngineSink(self, item.identity))
        reply = conn.handle(item.message)
        if conn.has_session:
            self._connections[item.identity] = conn
        else:
            # No session (refused Hello, Goodbye, a message before Hello): forget the peer, so
            # strangers cost nothing; it may come back with a new Hello.
            self._connections.pop(item.identity, None)
        return reply

    def _forget_closed(self) -> None:
        for identity, conn in list(self._connections.items()):
            if not conn.has_session:
                self._connections.pop(identity, None)

    @property
    def peers(self) -> int:
        """Peers the channel remembers (only those with a live session)."""
        return len(self._connections)

    def _flush_outbox(self) -> None:
        blocked: set[bytes] = set()
        for _ in range(len(self._held)):  # held control messages first, each peer's in their order
            identity, message = self._held.popleft()
            if identity in blocked or not self._try_send(identity, message, None):
                self._held.append((identity, message))
                blocked.add(identity)
        while self._outbox:
            identity, message, pixels = self._outbox.popleft()
            self._send(identity, message, pixels)

    def _send(self, identity: bytes, message: pb.BackendMessage, pixels: np.ndarray | None) -> None:
        """Send now, or: drop a frame the peer has no room for (newer ones follow); hold a Welcome or an Error
        (a shutdown notice, a fatal reason) until it fits. Nothing overtakes a held message."""
        frame = message.WhichOneof("body") == "frame"
        if any(held == identity for held, _ in self._held):
            if not frame:
                self._hold(identity, message)
            return
        if not self._try_send(identity, message, pixels) and not frame:
            self._hold(identity, message)

    def _hold(self, identity: bytes, message: pb.BackendMessage) -> None:
        if len(self._held) < HELD_MAX:
            self._held.append((identity, message))
        else:
            log.warning("engine channel: dropped a %s to %r: too many held", message.WhichOneof("body"), identity)

    def _try_send(self, identity: bytes, message: pb.BackendMessage, pixels: np.ndarray | None) -> bool:
        """False when the peer is at its high-water mark (nothing sent); True when sent or the peer is gone."""
        envelope = message.SerializeToString()
        try:
            if pixels is None:
                self._socket.send_multipart([identity, envelope], zmq.NOBLOCK)
            else:
                self._socket.send_multipart([identity, envelope, pixels], zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        except zmq.ZMQError as exc:  # EHOSTUNREACH: the peer disconnected
            log.debug("engine channel: send to %r failed: %s", identity, exc)
        return True
