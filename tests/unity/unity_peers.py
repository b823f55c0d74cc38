"""Peers the Unity C# core is tested against, on real libzmq (pyzmq), each in a thread.

- `EchoRouter`: a ROUTER that sends every message back, prefixed with the routing id it saw, with
  ZMTP heartbeats on (so the C# client must answer PING with PONG or be dropped).
- `FakeBackend`: a scripted ROUTER speaking the engine channel. The Hello's `client_label` picks the
  script, so one endpoint serves every C# test:

  | label | behaviour |
  | --- | --- |
  | `serve` (or empty) | Welcome (inline, or shared memory through a real FrameRingWriter), one frame per pose |
  | `version:M.m` | Welcome speaking protocol M.m |
  | `refuse:CODE` | a fatal Error with ERROR_CODE_<CODE> |
  | `silent` | never answers |
  | `ring-missing` | a shared-memory Welcome naming a file that does not exist; inline Hellos are served |
  | `unknown-fields` | Welcome and FrameReady carrying fields and bodies no proto defines |
  | `nonfatal-error` | a non-fatal INVALID_ARGUMENT Error before the first frame |
  | `timeout-after:N` | after N poses, a fatal TIMEOUT Error (the client must reconnect) |
  | `shutdown-after:N` | after N poses, the non-fatal SHUTTING_DOWN notice (protocol 1.1), then silence |

  Welcome echoes the Hello back in `generator` ("hello:<engine>|<version>|<scene>|<w>x<h>@<fps>|
  <transport>|<token>"); FrameReady echoes the pose (sequence, clock, pose, fov, aspect) and reports
  the clock commands received so far in `scene_time_s` (their actions as decimal digits, e.g. 24.0 for
  PAUSE then SET_SPEED) and the last speed in `generation_latency_ms`. Frame pixels: every byte of
  frame n is n % 251, except that byte 4 * x + 1 of each row is x % 256 (so a row flip or a wrong
  stride shows).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import zmq
from zmq_router_peer import RouterThread

from starbridge.protocol import engine_pb2 as pb
from starbridge.transport.frame import FrameMeta
from starbridge.transport.ring import FrameRingWriter

FAKE_W, FAKE_H = 64, 36


def fake_pixels(seq: int, width: int = FAKE_W, height: int = FAKE_H) -> np.ndarray:
    img = np.full((height, width, 4), seq % 251, np.uint8)
    img[:, :, 1] = (np.arange(width) % 256).astype(np.uint8)[None, :]
    return img


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


#: Fields and a body no .proto defines: field 100 (bytes), field 101 (fixed64), field 102 (varint).
UNKNOWN = b"\xa2\x06\x03abc" + b"\xa9\x06" + bytes(8) + b"\xb0\x06\x2a"


def _with_unknown(message: pb.BackendMessage) -> bytes:
    """The envelope with unknown fields inside its body and beside it, and an unknown body (field 9) first."""
    kind = message.WhichOneof("body")
    number = message.DESCRIPTOR.fields_by_name[kind].number
    body = getattr(message, kind).SerializeToString() + UNKNOWN
    unknown_body = b"\x4a\x02\x08\x01"  # BackendMessage field 9 (LEN): a body from a newer backend
    return unknown_body + _varint(number << 3 | 2) + _varint(len(body)) + body + UNKNOWN


@dataclass
class _Peer:
    label: str = ""
    transport: int = pb.FRAME_TRANSPORT_INLINE
    poses: int = 0
    frame_sequence: int = 0
    actions: list[int] = field(default_factory=list)
    speed: float = 0.0
    ring: FrameRingWriter | None = None
    hellos: int = 0

    def close_ring(self) -> None:
        if self.ring is not None:
            self.ring.close()
            self.ring = None


class EchoRouter(RouterThread):
    """Sends [routing id, *parts] back for every message; pings every 100 ms (ZMTP 3.1 heartbeats)."""

    def __init__(self) -> None:
        super().__init__("echo-router")

    def configure(self) -> None:
        self.socket.setsockopt(zmq.HEARTBEAT_IVL, 100)
        self.socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 400)
        self.socket.setsockopt(zmq.HEARTBEAT_TTL, 1000)

    def handle(self, identity: bytes, parts: list[bytes]) -> None:
        self.socket.send_multipart([identity, identity, *parts])


class FakeBackend(RouterThread):
    """The scripted engine-channel backend described in the module docstring."""

    def __init__(self) -> None:
        self._peers: dict[bytes, _Peer] = {}
        self._ring_dir = Path(tempfile.mkdtemp(prefix="starbridge-fake-rings-"))
        super().__init__("fake-backend")

    def cleanup(self) -> None:
        for peer in self._peers.values():
            peer.close_ring()

    def _send(self, identity: bytes, message: pb.BackendMessage | bytes, pixels: np.ndarray | None = None) -> None:
        data = message if isinstance(message, bytes) else message.SerializeToString()
        parts = [identity, data] + ([pixels.tobytes()] if pixels is not None else [])
        self.socket.send_multipart(parts)

    def _error(self, identity: bytes, code: int, text: str, fatal: bool, field_path: str = "") -> None:
        msg = pb.BackendMessage()
        msg.error.code = pb.ErrorCode.ValueType(code)
        msg.error.message, msg.error.fatal, msg.error.field = text, fatal, field_path
        self._send(identity, msg)

    def handle(self, identity: bytes, parts: list[bytes]) -> None:
        msg = pb.EngineMessage()
        msg.ParseFromString(parts[0])
        kind = msg.WhichOneof("body")
        peer = self._peers.setdefault(identity, _Peer())
        if kind == "hello":
            self._hello(identity, peer, msg.hello)
        elif kind == "pose":
            self._pose(identity, peer, msg.pose)
        elif kind == "time":
            peer.actions.append(msg.time.action)
            if msg.time.action == pb.TimeControl.ACTION_SET_SPEED:
                peer.speed = msg.time.speed
        elif kind == "goodbye":
            peer.close_ring()
            self._peers.pop(identity, None)

    def _hello(self, identity: bytes, peer: _Peer, hello: pb.Hello) -> None:
        peer.close_ring()
        peer.label, peer.poses, peer.frame_sequence, peer.actions, peer.speed = hello.client_label, 0, 0, [], 0.0
        peer.hellos += 1
        label = peer.label
        if label == "silent":
            return
        if label.startswith("refuse:"):
            code = pb.ErrorCode.Value("ERROR_CODE_" + label.split(":", 1)[1])
            self._error(identity, code, f"refused by the fake backend: {label}", True, "hello")
            return
        msg = pb.BackendMessage()
        w = msg.welcome
        w.session_id = f"fake-{identity.hex()}-{peer.hellos}"
        w.protocol.major, w.protocol.minor = 1, 0
        if label.startswith("version:"):
            major, minor = label.split(":", 1)[1].split(".")
            w.protocol.major, w.protocol.minor = int(major), int(minor)
        w.width, w.height, w.fps = FAKE_W, FAKE_H, 30.0
        transport = hello.transport or pb.FRAME_TRANSPORT_SHARED_MEMORY
        w.transport = peer.transport = transport
        if transport == pb.FRAME_TRANSPORT_SHARED_MEMORY:
            path = self._ring_dir / f"starbridge-{w.session_id}"
            if label == "ring-missing":
                lay_path, slots, slot_bytes, file_bytes = path, 3, 12288, 4096 + 3 * 12288
            else:
                peer.ring = FrameRingWriter(path, FAKE_W, FAKE_H)
                lay = peer.ring.layout()
                lay_path, slots, slot_bytes, file_bytes = lay.path, lay.slot_count, lay.slot_bytes, lay.file_bytes
            s = w.shared_memory
            s.path, s.layout_version, s.header_bytes, s.slot_count = str(lay_path), 1, 4096, slots
            s.slot_bytes, s.slot_header_bytes, s.stride = slot_bytes, 128, FAKE_W * 4
            s.pixel_format = pb.PIXEL_FORMAT_RGBA8_SRGB
            s.file_bytes = file_bytes
        w.scene_id = hello.scene_id or "fake-scene"
        w.scene_duration_s = 8.0
        w.heartbeat_timeout_s = 2.0
        w.block_frames = 1
        transport_name = pb.FrameTransport.Name(hello.transport)
        w.generator = (
            f"hello:{hello.engine_name}|{hello.engine_version}|{hello.scene_id}|{hello.width}x{hello.height}"
            f"@{hello.fps:g}|{transport_name}|{hello.token}|{hello.protocol.major}.{hello.protocol.minor}"
        )
        w.backend_version = "fake"
        self._send(identity, _with_unknown(msg) if label == "unknown-fields" else msg)

    def _pose(self, identity: bytes, peer: _Peer, pose: pb.CameraPose) -> None:
        if not peer.label and peer.hellos == 0:
            self._error(identity, pb.ERROR_CODE_NO_SESSION, "pose before hello", True)
            return
        peer.poses += 1
        label = peer.label
        if label.startswith("timeout-after:") and peer.poses > int(label.split(":", 1)[1]):
            self._error(identity, pb.ERROR_CODE_TIMEOUT, "closed for silence (scripted)", True)
            peer.label = "silent"
            return
        if label.startswith("shutdown-after:") and peer.poses > int(label.split(":", 1)[1]):
            # What a stopping backend says; the connection stays open, so only the notice can end it at once.
            self._error(identity, pb.ERROR_CODE_SHUTTING_DOWN, "the backend is shutting down (scripted)", False)
            peer.label = "silent"
            return
        if label == "silent":
            return
        if label == "nonfatal-error" and peer.poses == 1:
            self._error(
                identity,
                pb.ERROR_CODE_INVALID_ARGUMENT,
                "pose.pose.rotation is not unit (scripted)",
                False,
                "pose.pose.rotation",
            )
        peer.frame_sequence += 1
        seq = peer.frame_sequence
        p, q = pose.pose.position, pose.pose.rotation
        meta = FrameMeta(
            frame_sequence=seq,
            slot=0,
            pose_sequence=pose.sequence,
            engine_time_us=pose.engine_time_us,
            position=(p.x, p.y, p.z),
            rotation=(q.x, q.y, q.z, q.w),
            vertical_fov_deg=pose.vertical_fov_deg,
            aspect=pose.aspect,
            scene_time_s=float(int("".join(str(a) for a in peer.actions) or "0")),
            generation_latency_ms=peer.speed,
            width=FAKE_W,
            height=FAKE_H,
        )
        pixels = fake_pixels(seq)
        if peer.ring is not None:
            meta = replace(meta, slot=peer.ring.write(pixels, meta))
        msg = pb.BackendMessage()
        meta.to_proto(msg.frame)
        if peer.ring is not None:
            self._send(identity, msg)
        else:
            data = _with_unknown(msg) if label == "unknown-fields" else msg
            self._send(identity, data, pixels)
