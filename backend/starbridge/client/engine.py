"""A Python engine client: what the Unity and Godot plugins do, for `starbridge fly`, benchmarks and tests.

It speaks the engine channel (docs/architecture.md §4, protos/starbridge/v1/engine.proto): a ZeroMQ
DEALER connected to the backend's ROUTER (default tcp://127.0.0.1:50052). Every message is one
envelope part; an inline frame adds a second part with the raw RGBA8 pixels.

Usage::

    with EngineClient() as client:
        welcome = client.hello(transport="shm")           # or "inline"
        client.send_pose(1, (0, 0, 0), (0, 0, 0, 1), vertical_fov_deg=60)
        frame = client.receive(timeout_s=1.0)             # ReceivedFrame or None
        if frame is not None:
            latency_ms = (frame.received_time_us - frame.meta.engine_time_us) / 1000

Frames come from the session's shared-memory ring (copied, seqlock-checked, into one reused
buffer) or from the inline second part (a zero-copy view of the received message). Every wait
has a timeout; nothing blocks forever. One client belongs to one thread (ZeroMQ sockets are not
thread-safe).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import numpy as np
import zmq

from .. import __version__
from ..errors import BackendUnavailable, InvalidArgument, NoSession, ProtocolMismatch
from ..protocol import engine_pb2 as pb
from ..transport.convert import pose_to_proto, protocol_version
from ..transport.defaults import DEFAULT_ENGINE_ENDPOINT
from ..transport.error_codes import error_from_proto
from ..transport.frame import Frame, FrameMeta
from ..transport.ring import FrameRingReader, RingError
from ..transport.version import CLIENT, check_peer_version

log = logging.getLogger(__name__)

#: A 3- or 4-vector: a sequence of floats or a numpy array.
Vector = Sequence[float] | np.ndarray
#: How long close() lets a queued Goodbye reach the backend, milliseconds.
LINGER_MS = 100
#: Messages the socket holds unread before it stops reading the connection (until the session starts).
RECEIVE_HWM = 32
#: Once the session's transport is known, the unread queue is sized by memory instead. libzmq 4.3.5 (pyzmq's)
#: aborts the whole process (assertion `!_io_error`, stream_engine_base.cpp) when a connection hangs up while
#: this queue is full and the client then sends: a client that fell behind (a paused or starved process) whose
#: backend died. A frame notice (shared memory) is about a hundred bytes, so the queue never fills there; an
#: inline frame carries its pixels, so at most RECEIVE_BUDGET_BYTES of them wait (about 60 s of star-tiny's
#: 256x144 frames at 30 fps; 10 s at 640x360, the backend's heartbeat timeout).
RECEIVE_BUDGET_BYTES = 256 * 1024 * 1024
RECEIVE_HWM_MAX = 100_000

TRANSPORTS = {
    "shm": pb.FRAME_TRANSPORT_SHARED_MEMORY,
    "shared_memory": pb.FRAME_TRANSPORT_SHARED_MEMORY,
    "inline": pb.FRAME_TRANSPORT_INLINE,
}
TIME_ACTIONS: dict[str, pb.TimeControl.Action] = {
    "play": pb.TimeControl.ACTION_PLAY,
    "pause": pb.TimeControl.ACTION_PAUSE,
    "seek": pb.TimeControl.ACTION_SEEK,
    "set_speed": pb.TimeControl.ACTION_SET_SPEED,
}


def now_us() -> int:
    """Monotonic clock in microseconds: the default `engine_time_us` and `received_time_us`."""
    return time.monotonic_ns() // 1000


def _poll_ms(seconds: float) -> int:
    return max(0, math.ceil(seconds * 1000.0))


@dataclass(frozen=True)
class ReceivedFrame(Frame):
    """A frame (`meta`, `pixels`), when it arrived and how.

    `meta` is what FrameReady said (shared memory: what the ring slot said, so it always describes the
    pixels); `meta.engine_time_us` echoes the pose's engine clock (see `now_us`). `pixels` is (height,
    width, 4) uint8 RGBA, sRGB, rows top to bottom. Shared memory: the client's reused buffer,
    overwritten by the next receive (copy it to keep it). Inline: a view of the received message (no copy).
    """

    #: When the FrameReady message arrived, `now_us()` clock.
    received_time_us: int
    #: "shared_memory" or "inline".
    transport: str


def receive_hwm(welcome: pb.Welcome) -> int:
    """Unread messages the socket may hold in a session (see RECEIVE_BUDGET_BYTES)."""
    message_bytes = 256  # an envelope
    if welcome.transport != pb.FRAME_TRANSPORT_SHARED_MEMORY:
        message_bytes += welcome.width * welcome.height * 4
    return max(RECEIVE_HWM, min(RECEIVE_HWM_MAX, RECEIVE_BUDGET_BYTES // message_bytes))


class EngineClient:
    """One engine-channel connection: hello, poses and time control out, frames in."""

    def __init__(
        self,
        endpoint: str = DEFAULT_ENGINE_ENDPOINT,
        *,
        context: zmq.Context | None = None,
        linger_ms: int = LINGER_MS,
        log_errors: bool = True,
    ) -> None:
        """`log_errors=False`: non-fatal Errors are only counted and kept (`error_count`, `last_error`), not
        logged one warning each (for callers that report them themselves, like `fly`)."""
        self.endpoint = endpoint
        self._log_errors = log_errors
        self._context = context or zmq.Context.instance()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, linger_ms)
        # Queue messages only to a completed connection: with no backend, sends fail at once
        # (and hello() times out with a clear message) instead of piling up.
        self._socket.setsockopt(zmq.IMMEDIATE, 1)
        self._socket.setsockopt(zmq.RCVHWM, RECEIVE_HWM)
        if "[" in endpoint:  # an IPv6 backend (tcp://[::1]:PORT)
            self._socket.setsockopt(zmq.IPV6, 1)
        self._socket.connect(endpoint)
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        self._pose_message = pb.EngineMessage()
        self.welcome: pb.Welcome | None = None
        self._ring: FrameRingReader | None = None
        self._buffer: np.ndarray | None = None
        self._last_frame_sequence = 0
        #: The latest non-fatal Error the backend sent, and how many there were.
        self.last_error: pb.Error | None = None
        self.error_count = 0
        self._closed = False

    # ------------------------------------------------------------------ session

    @property
    def session_id(self) -> str:
        return self.welcome.session_id if self.welcome is not None else ""

    def hello(
        self,
        scene_id: str = "",
        width: int = 0,
        height: int = 0,
        fps: float = 0.0,
        transport: str = "shm",
        token: str = "",
        engine_name: str = "starbridge-fly",
        *,
        engine_version: str = __version__,
        client_label: str = "",
        timeout_s: float = 5.0,
    ) -> pb.Welcome:
        """Start a session and wait for Welcome.

        0 / "" ask for the backend's defaults. `transport` is "shm" (shared-memory ring, same
        machine) or "inline" (pixels in the message). Raises the StarBridgeError subclass of the
        backend's Error when it refuses, BackendUnavailable when nobody answers in `timeout_s`.
        """
        if self._closed:
            raise NoSession("hello: the client is closed")
        if transport not in TRANSPORTS:
            raise InvalidArgument(
                f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}", field="transport"
            )
        if self.welcome is not None:
            self.goodbye("new hello")
        msg = pb.EngineMessage()
        h = msg.hello
        h.protocol.CopyFrom(protocol_version())
        h.engine_name, h.engine_version, h.client_label = engine_name, engine_version, client_label
        h.scene_id, h.width, h.height, h.fps = scene_id, width, height, fps
        h.transport = TRANSPORTS[transport]
        h.token = token
        deadline = time.monotonic() + timeout_s
        self._discard_queued()  # leftovers of an earlier session must not answer this Hello
        self._send_waiting(msg, deadline)
        while True:
            parts = self._recv(deadline)
            if parts is None:
                raise self._unavailable(timeout_s)
            reply = self._parse(parts[0])
            if reply is None:
                continue
            kind = reply.WhichOneof("body")
            if kind == "welcome":
                self._start(reply.welcome)
                return reply.welcome
            if kind == "error":
                self._on_error(reply.error)  # a refused Hello is fatal, so this raises
            # A late FrameReady of an earlier session, or garbage: skip it.

    def _start(self, welcome: pb.Welcome) -> None:
        self.welcome = welcome
        self._last_frame_sequence = 0
        self._socket.setsockopt(zmq.RCVHWM, receive_hwm(welcome))  # (applies to the open connection too)
        try:
            check_peer_version(welcome.protocol.major, welcome.protocol.minor, CLIENT, "welcome.protocol")
        except ProtocolMismatch:
            self.goodbye("protocol mismatch")
            raise
        if welcome.transport != pb.FRAME_TRANSPORT_SHARED_MEMORY:
            return
        shm = welcome.shared_memory
        try:
            self._ring = FrameRingReader(shm.path)
            lay = self._ring.layout()
            ours = (lay.slot_count, lay.slot_bytes, lay.stride, lay.file_bytes, lay.width, lay.height)
            theirs = (shm.slot_count, shm.slot_bytes, shm.stride, shm.file_bytes, welcome.width, welcome.height)
            if ours != theirs:
                raise RingError(
                    f"frame ring {shm.path} does not match Welcome: file has (slots, slot bytes, stride, file bytes, "
                    f"width, height) = {ours}, Welcome says {theirs}"
                )
        except RingError as exc:
            self.goodbye("cannot read the frame ring")
            raise RingError(
                f"{exc.message}; a backend on another machine needs transport='inline'", field=exc.field
            ) from exc
        self._buffer = self._ring.new_buffer()

    def goodbye(self, reason: str = "") -> None:
        """End the session (the backend frees it at once). Safe to call without a session."""
        if self.welcome is None:
            return
        msg = pb.EngineMessage()
        msg.goodbye.reason = reason
        self._send_now(msg)
        self._end_session()

    def _end_session(self) -> None:
        self.welcome = None
        if self._ring is not None:
            self._ring.close()
            self._ring = None
        self._buffer = None

    def close(self) -> None:
        """Say goodbye (if in a session) and close the socket. Idempotent."""
        if self._closed:
            return
        try:
            self.goodbye("client closed")
        finally:
            self._closed = True
            self._socket.close()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ engine -> backend

    def send_pose(
        self,
        sequence: int,
        position: Vector,
        rotation_xyzw: Vector,
        vertical_fov_deg: float,
        aspect: float = 0.0,
        engine_time_us: int | None = None,
    ) -> bool:
        """Send a camera pose (wire convention, camera-to-world); False if it was dropped.

        `engine_time_us` defaults to `now_us()`; the frame answering this pose echoes it. Never
        blocks: with the backend gone or lagging, the pose is dropped (the next one follows).
        """
        self._require_session("send_pose")
        msg = self._pose_message
        p = msg.pose
        p.sequence = sequence
        p.engine_time_us = now_us() if engine_time_us is None else engine_time_us
        pose_to_proto(position, rotation_xyzw, p.pose)
        p.vertical_fov_deg = vertical_fov_deg
        p.aspect = aspect
        return self._send_now(msg)

    def send_time(self, action: str | int, time_s: float = 0.0, speed: float = 0.0) -> bool:
        """Control the scene clock: "play", "pause", "seek" (to `time_s`), "set_speed" (to `speed`)."""
        self._require_session("send_time")
        if isinstance(action, str) and action in TIME_ACTIONS:
            value = TIME_ACTIONS[action]
        elif not isinstance(action, str) and action in pb.TimeControl.Action.values():
            value = cast(pb.TimeControl.Action, action)
        else:
            raise InvalidArgument(f"action must be one of {', '.join(TIME_ACTIONS)}, got {action!r}", field="action")
        msg = pb.EngineMessage()
        msg.time.action = value
        msg.time.time_s = time_s
        msg.time.speed = speed
        return self._send_now(msg)

    # ------------------------------------------------------------------ backend -> engine

    def receive(self, timeout_s: float = 1.0, *, newest: bool = False) -> ReceivedFrame | None:
        """The next frame, or None after `timeout_s` without one.

        `newest=True` skips frames already queued behind newer ones (what a plugin does each tick).
        Non-fatal Errors are logged and kept in `last_error`; a fatal one ends the session and is
        raised as its StarBridgeError subclass.
        """
        self._require_session("receive")
        deadline = time.monotonic() + timeout_s
        while True:
            pending = self._next_frame(deadline)
            if pending is None:
                return None
            if newest:
                while (more := self._next_frame(0.0)) is not None:
                    pending = more
            frame = self._materialise(*pending)
            if frame is not None:
                return frame

    def _next_frame(self, deadline: float) -> tuple[pb.FrameReady, list[zmq.Frame], int] | None:
        """(FrameReady, message parts, receive time) of the next frame message before `deadline`."""
        while True:
            parts = self._recv(deadline)
            if parts is None:
                return None
            received = now_us()
            msg = self._parse(parts[0])
            if msg is None:
                continue
            kind = msg.WhichOneof("body")
            if kind == "frame":
                return msg.frame, parts, received
            if kind == "error":
                self._on_error(msg.error)
            else:
                log.debug("engine client: ignoring unexpected %s", kind)

    def _materialise(self, fr: pb.FrameReady, parts: list[zmq.Frame], received: int) -> ReceivedFrame | None:
        if fr.frame_sequence <= self._last_frame_sequence:
            return None  # already delivered a newer frame from the ring
        if len(parts) >= 2:
            frame = self._inline_frame(fr, parts[1], received)
        elif self._ring is not None:
            frame = self._ring_frame(fr, received)
        else:
            log.warning("engine client: FrameReady %d has no pixels and there is no ring", fr.frame_sequence)
            return None
        if frame is not None:
            self._last_frame_sequence = frame.meta.frame_sequence
        return frame

    def _inline_frame(self, fr: pb.FrameReady, part: zmq.Frame, received: int) -> ReceivedFrame | None:
        expected = fr.height * fr.width * 4
        if len(part) != expected:
            log.warning(
                "engine client: inline frame %d has %d bytes, expected %dx%dx4 = %d",
                fr.frame_sequence,
                len(part),
                fr.width,
                fr.height,
                expected,
            )
            return None
        pixels = np.frombuffer(part.buffer, dtype=np.uint8).reshape(fr.height, fr.width, 4)
        return ReceivedFrame(FrameMeta.from_proto(fr), pixels, received_time_us=received, transport="inline")

    def _ring_frame(self, fr: pb.FrameReady, received: int) -> ReceivedFrame | None:
        """Read the slot FrameReady names; if it was overwritten meanwhile, the newest frame instead.

        The metadata comes from the slot header, so it always describes the pixels returned.
        """
        ring, out = self._ring, self._buffer
        assert ring is not None and out is not None
        frame = None
        if fr.slot < ring.layout().slot_count:
            frame = ring.read_slot(fr.slot, out)
        if frame is None or frame.meta.frame_sequence != fr.frame_sequence:
            frame = ring.read_latest(out, newer_than=self._last_frame_sequence)
        if frame is None:
            return None
        return ReceivedFrame(frame.meta, frame.pixels, received_time_us=received, transport="shared_memory")

    # ------------------------------------------------------------------ plumbing

    def _require_session(self, what: str) -> None:
        if self._closed:
            raise NoSession(f"{what}: the client is closed")
        if self.welcome is None:
            raise NoSession(f"{what} needs a session: call hello() first (or again, after a fatal error)")

    def _on_error(self, error: pb.Error) -> None:
        """Raise a fatal Error (ending the session); log and keep a non-fatal one."""
        if error.fatal:
            self._end_session()
            raise error_from_proto(error)
        self.last_error = error
        self.error_count += 1
        if self._log_errors:
            log.warning("backend error (not fatal): %s", error_from_proto(error))

    def _parse(self, part: zmq.Frame) -> pb.BackendMessage | None:
        msg = pb.BackendMessage()
        try:
            msg.ParseFromString(part.bytes)
        except Exception:
            log.warning("engine client: %d bytes from %s are not a BackendMessage", len(part), self.endpoint)
            return None
        return msg

    def _recv(self, deadline: float) -> list[zmq.Frame] | None:
        """The next message (zero-copy parts), or None once `deadline` (time.monotonic) passed."""
        while True:
            if not self._poller.poll(_poll_ms(deadline - time.monotonic())):
                return None
            try:
                return self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                if time.monotonic() >= deadline:
                    return None

    def _discard_queued(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            try:
                self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return

    def _send_now(self, msg: pb.EngineMessage) -> bool:
        """Send without waiting; False when ZeroMQ cannot take it now (no backend, or it lags)."""
        try:
            self._socket.send(msg.SerializeToString(), zmq.NOBLOCK)
        except zmq.Again:
            return False
        return True

    def _send_waiting(self, msg: pb.EngineMessage, deadline: float) -> None:
        """Send, waiting until `deadline` for a connection to the backend."""
        data = msg.SerializeToString()
        while True:
            try:
                self._socket.send(data, zmq.NOBLOCK)
                return
            except zmq.Again:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._unavailable(None) from None
                self._socket.poll(_poll_ms(min(remaining, 0.05)), zmq.POLLOUT)

    def _unavailable(self, timeout_s: float | None) -> BackendUnavailable:
        what = "could not connect to" if timeout_s is None else f"got no answer within {timeout_s:g} s from"
        return BackendUnavailable(
            f"{what} the StarBridge backend at {self.endpoint}: start it with `starbridge serve` "
            "(or check the address and port)",
            field="endpoint",
        )
