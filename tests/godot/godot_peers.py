"""Peers on real libzmq (pyzmq) that the GDScript ZMTP client and engine client are tested against.

- `EchoRouter`: a ROUTER that sends every message back prefixed with the routing id it saw, with
  ZMTP 3.1 heartbeats on (PING every 100 ms, a connection silent 400 ms after a PING is dropped):
  a client that does not answer PING with PONG loses its connection.
- `ScriptedBackend`: a ROUTER speaking the engine channel with the real protobuf runtime. The Hello's
  `client_label` picks the script:

  | label | behaviour |
  | --- | --- |
  | `version:M.m` | Welcome speaking protocol M.m, then one inline frame per pose |
  | `unknown-fields` | Welcome and frames with fields and bodies no .proto defines |
  | `nonfatal-then-frames` | a non-fatal INVALID_ARGUMENT Error, then frames |
  | `timeout-after:N` | after N poses a fatal TIMEOUT Error (the session is gone; Hello again) |
  | `shutdown-after:N` | after N poses the non-fatal SHUTTING_DOWN notice (protocol 1.1), then silence |

  Frames are 16 x 8 inline RGBA, every byte = frame_sequence % 251, FrameReady echoing the pose.
  Every Hello, pose and time control received is recorded in `received` (for assertions).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import zmq
from zmq_router_peer import RouterThread

from starbridge.protocol import engine_pb2 as pb

FRAME_W, FRAME_H = 16, 8
#: Fields no .proto defines: field 100 (bytes), field 101 (fixed64), field 102 (varint).
UNKNOWN = b"\xa2\x06\x03abc" + b"\xa9\x06" + bytes(8) + b"\xb0\x06\x2a"


class EchoRouter(RouterThread):
    """Echoes [routing id, *parts]; pings every 100 ms and drops a peer silent for 400 ms after one."""

    def __init__(self) -> None:
        self.identities: list[bytes] = []
        super().__init__("echo-router")

    def configure(self) -> None:
        self.socket.setsockopt(zmq.HEARTBEAT_IVL, 100)
        self.socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 400)
        self.socket.setsockopt(zmq.HEARTBEAT_TTL, 1000)

    def handle(self, identity: bytes, parts: list[bytes]) -> None:
        if identity not in self.identities:
            self.identities.append(identity)
        self.socket.send_multipart([identity, identity, *parts])


@dataclass
class _Peer:
    label: str = ""
    poses: int = 0
    frame_sequence: int = 0
    sessions: int = 0


@dataclass
class Received:
    hellos: list[pb.Hello] = field(default_factory=list)
    poses: list[pb.CameraPose] = field(default_factory=list)
    times: list[pb.TimeControl] = field(default_factory=list)
    goodbyes: list[pb.Goodbye] = field(default_factory=list)


class ScriptedBackend(RouterThread):
    """The scripted engine-channel backend described in the module docstring."""

    def __init__(self) -> None:
        self._peers: dict[bytes, _Peer] = {}
        self.received = Received()
        super().__init__("scripted-backend")

    def _send(self, identity: bytes, data: bytes, pixels: bytes | None = None) -> None:
        self.socket.send_multipart([identity, data] + ([pixels] if pixels is not None else []))

    def handle(self, identity: bytes, parts: list[bytes]) -> None:
        msg = pb.EngineMessage()
        msg.ParseFromString(parts[0])
        kind = msg.WhichOneof("body")
        peer = self._peers.setdefault(identity, _Peer())
        if kind == "hello":
            self.received.hellos.append(msg.hello)
            self._hello(identity, peer, msg.hello)
        elif kind == "pose":
            self.received.poses.append(msg.pose)
            self._pose(identity, peer, msg.pose)
        elif kind == "time":
            self.received.times.append(msg.time)
        elif kind == "goodbye":
            self.received.goodbyes.append(msg.goodbye)
            self._peers.pop(identity, None)

    def _hello(self, identity: bytes, peer: _Peer, hello: pb.Hello) -> None:
        peer.label, peer.poses, peer.frame_sequence = hello.client_label, 0, 0
        peer.sessions += 1
        msg = pb.BackendMessage()
        w = msg.welcome
        w.session_id = f"scripted-{peer.sessions}"
        w.protocol.major, w.protocol.minor = 1, 0
        if peer.label.startswith("version:"):
            major, minor = peer.label.split(":", 1)[1].split(".")
            w.protocol.major, w.protocol.minor = int(major), int(minor)
        w.width, w.height, w.fps = FRAME_W, FRAME_H, 60.0
        w.transport = pb.FRAME_TRANSPORT_INLINE
        w.scene_id, w.scene_duration_s, w.heartbeat_timeout_s = "scripted", 4.0, 2.0
        w.block_frames, w.generator, w.backend_version = 1, "scripted", "test"
        self._send(identity, self._dress(msg, peer))
        if peer.label == "nonfatal-then-frames":
            err = pb.BackendMessage()
            err.error.code = pb.ERROR_CODE_INVALID_ARGUMENT
            err.error.message = "pose.aspect must be in [0, 10], got 12 (scripted)"
            err.error.field = "pose.aspect"
            self._send(identity, err.SerializeToString())

    def _pose(self, identity: bytes, peer: _Peer, pose: pb.CameraPose) -> None:
        peer.poses += 1
        if peer.label.startswith("timeout-after:") and peer.poses > int(peer.label.split(":")[1]):
            err = pb.BackendMessage()
            err.error.code = pb.ERROR_CODE_TIMEOUT
            err.error.message = "session closed: no message for 2 s (heartbeat timeout); send Hello again"
            err.error.fatal = True
            self._send(identity, err.SerializeToString())
            peer.label = "timed-out"
            return
        if peer.label.startswith("shutdown-after:") and peer.poses > int(peer.label.split(":")[1]):
            # What a stopping backend says; the connection stays open, so only the notice ends it at once.
            err = pb.BackendMessage()
            err.error.code = pb.ERROR_CODE_SHUTTING_DOWN
            err.error.message = "the backend is shutting down (scripted)"
            self._send(identity, err.SerializeToString())
            peer.label = "timed-out"
            return
        if peer.label == "timed-out":
            return  # a session that ended sends nothing until the next Hello
        peer.frame_sequence += 1
        msg = pb.BackendMessage()
        f = msg.frame
        f.frame_sequence = peer.frame_sequence
        f.pose_sequence, f.engine_time_us = pose.sequence, pose.engine_time_us
        f.pose.CopyFrom(pose.pose)
        f.vertical_fov_deg, f.aspect = pose.vertical_fov_deg, pose.aspect
        f.scene_time_s = 0.5 * peer.frame_sequence
        f.generation_latency_ms = 1.5
        f.width, f.height = FRAME_W, FRAME_H
        pixels = np.full((FRAME_H, FRAME_W, 4), peer.frame_sequence % 251, np.uint8)
        self._send(identity, self._dress(msg, peer), pixels.tobytes())

    @staticmethod
    def _dress(message: pb.BackendMessage, peer: _Peer) -> bytes:
        """Unknown fields inside the body and beside it, and an unknown body first, when asked for."""
        if peer.label != "unknown-fields":
            return message.SerializeToString()
        kind = message.WhichOneof("body")
        number = message.DESCRIPTOR.fields_by_name[kind].number
        body = getattr(message, kind).SerializeToString() + UNKNOWN
        return b"\x4a\x02\x08\x01" + _varint(number << 3 | 2) + _varint(len(body)) + body + UNKNOWN


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)
