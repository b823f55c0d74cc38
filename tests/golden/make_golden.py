"""Build the golden byte vectors of every engine-channel message (docs/architecture.md §4).

The Unity C# and Godot GDScript plugins carry small hand-written protobuf codecs; their tests
compare them byte for byte with these files, made by the real protobuf runtime:

- `<name>.bin`: one serialised envelope (`EngineMessage` or `BackendMessage`), deterministic;
- `golden.json`: for every vector its name, envelope, direction, a description, the fields in the
  proto3 JSON mapping (`MessageToDict`, proto field names: 64-bit integers are JSON strings, enums
  are names, fields at their default value are absent), the size, and the bytes in hex.

Values are chosen to cover the codecs' edge cases: multi-byte and 10-byte varints (sequence
numbers above 2^32 and up to 2^64 - 1), negative floats, floats and doubles that are exact
binary fractions (so every language prints and compares them exactly), empty sub-messages,
non-ASCII UTF-8 strings, and every enum value the engine sends.

Run after any change to protos/starbridge/v1/engine.proto: `python tests/golden/make_golden.py`.
tests/test_protocol_golden.py fails until the files match the protocol again.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format

from starbridge.protocol import engine_pb2 as pb

GOLDEN_DIR = Path(__file__).resolve().parent
MANIFEST = "golden.json"

#: Sequence numbers and clocks above 2^32, so 64-bit varints are exercised.
BIG_SEQUENCE = 2**32 + 5  # 4294967301
ENGINE_TIME_US = 1_700_000_000_123_456  # about 2^50.6
#: A non-trivial unit quaternion with exact float32 components: 120 degrees about (-1, 1, 1)/sqrt(3).
ROTATION = (-0.5, 0.5, 0.5, 0.5)
POSITION = (-1.5, 0.25, -4.0)
#: Frame ring of a 512x288 session with 3 slots (see backend/starbridge/transport/ring.py):
#: slot_bytes = round_up(128 + 2048 * 288, 4096), file_bytes = 4096 + 3 * slot_bytes.
RING_SLOT_BYTES = 593_920
RING_FILE_BYTES = 1_785_856


@dataclass(frozen=True)
class Golden:
    name: str
    description: str
    message: pb.EngineMessage | pb.BackendMessage

    @property
    def envelope(self) -> str:
        return type(self.message).DESCRIPTOR.name

    @property
    def direction(self) -> str:
        return "engine_to_backend" if isinstance(self.message, pb.EngineMessage) else "backend_to_engine"

    def serialize(self) -> bytes:
        return self.message.SerializeToString(deterministic=True)

    def fields(self) -> dict:
        return json_format.MessageToDict(self.message, preserving_proto_field_name=True)


def _set_pose(pose: pb.Pose, position: tuple[float, ...], rotation: tuple[float, ...]) -> None:
    pose.position.x, pose.position.y, pose.position.z = position
    pose.rotation.x, pose.rotation.y, pose.rotation.z, pose.rotation.w = rotation


# ---------------------------------------------------------------- engine -> backend


def hello_full() -> pb.EngineMessage:
    m = pb.EngineMessage()
    h = m.hello
    h.protocol.major, h.protocol.minor = 1, 1
    h.engine_name = "Unity"
    h.engine_version = "6000.0.23f1"
    h.scene_id = "demo"
    h.width, h.height = 1280, 720
    h.fps = 30.0
    h.transport = pb.FRAME_TRANSPORT_INLINE
    h.token = "s3cret-token"
    h.client_label = "Main Camera — level 1"  # em dash: 3 bytes of UTF-8
    h.session_id = "a1b2c3"  # gRPC only; engines leave it empty, codecs must still carry it
    return m


def hello_minimal() -> pb.EngineMessage:
    """Protocol 1.0 with every other field at its default (minor 0 is absent on the wire)."""
    m = pb.EngineMessage()
    m.hello.protocol.major = 1
    return m


def hello_shared_memory() -> pb.EngineMessage:
    m = pb.EngineMessage()
    h = m.hello
    h.protocol.major, h.protocol.minor = 1, 1
    h.engine_name = "Godot"
    h.engine_version = "4.6.stable"
    h.width, h.height = 512, 288
    h.fps = 24.0
    h.transport = pb.FRAME_TRANSPORT_SHARED_MEMORY
    return m


def pose() -> pb.EngineMessage:
    m = pb.EngineMessage()
    p = m.pose
    p.sequence = BIG_SEQUENCE
    p.engine_time_us = ENGINE_TIME_US
    _set_pose(p.pose, POSITION, ROTATION)
    p.vertical_fov_deg = 60.0
    p.aspect = 1.75
    return m


def pose_origin() -> pb.EngineMessage:
    """The identity pose: position all zeros is an empty (but present) Vec3, rotation only w."""
    m = pb.EngineMessage()
    p = m.pose
    p.sequence = 128  # the smallest two-byte varint
    p.pose.position.SetInParent()
    p.pose.rotation.w = 1.0
    p.vertical_fov_deg = 45.0
    return m


def pose_varint_edges() -> pb.EngineMessage:
    """Largest uint64 (a 10-byte varint) and 2^63 (the top bit alone); powers of two as floats."""
    m = pb.EngineMessage()
    p = m.pose
    p.sequence = 2**64 - 1
    p.engine_time_us = 2**63
    _set_pose(p.pose, (-1024.5, -0.0078125, 3.0e6), (0.0, -1.0, 0.0, 0.0))
    p.vertical_fov_deg = 127.0
    p.aspect = 0.5
    return m


def _time(action: int, time_s: float = 0.0, speed: float = 0.0) -> Callable[[], pb.EngineMessage]:
    def build() -> pb.EngineMessage:
        m = pb.EngineMessage()
        m.time.action = action
        m.time.time_s = time_s
        m.time.speed = speed
        return m

    return build


def goodbye() -> pb.EngineMessage:
    m = pb.EngineMessage()
    m.goodbye.reason = "editor stopped playing"
    return m


def goodbye_empty() -> pb.EngineMessage:
    m = pb.EngineMessage()
    m.goodbye.SetInParent()
    return m


# ---------------------------------------------------------------- backend -> engine


def welcome_shared_memory() -> pb.BackendMessage:
    m = pb.BackendMessage()
    w = m.welcome
    w.session_id = "9f1c2d3e4b5a"
    w.protocol.major, w.protocol.minor = 1, 0
    w.width, w.height, w.fps = 512, 288, 30.0
    w.transport = pb.FRAME_TRANSPORT_SHARED_MEMORY
    s = w.shared_memory
    s.path = "/dev/shm/starbridge-9f1c2d3e4b5a"
    s.layout_version = 1
    s.header_bytes = 4096
    s.slot_count = 3
    s.slot_bytes = RING_SLOT_BYTES
    s.slot_header_bytes = 128
    s.stride = 512 * 4
    s.pixel_format = pb.PIXEL_FORMAT_RGBA8_SRGB
    s.file_bytes = RING_FILE_BYTES
    w.scene_id = "demo"
    w.scene_duration_s = 8.0
    w.heartbeat_timeout_s = 10.0
    w.block_frames = 3
    w.generator = "explicit-fill"
    w.backend_version = "0.1.0"
    return m


def welcome_inline() -> pb.BackendMessage:
    m = pb.BackendMessage()
    w = m.welcome
    w.session_id = "s-2"
    w.protocol.major, w.protocol.minor = 1, 3
    w.width, w.height, w.fps = 1280, 720, 60.0
    w.transport = pb.FRAME_TRANSPORT_INLINE
    w.scene_id = "harbour"
    w.scene_duration_s = 12.375
    w.heartbeat_timeout_s = 2.5
    w.block_frames = 1
    w.generator = "star-tiny"
    w.backend_version = "0.1.0"
    return m


def welcome_session_secret() -> pb.BackendMessage:
    """A protocol 1.1 Welcome: session_secret (field 14, for re-attaching) after every 1.0 field."""
    m = pb.BackendMessage()
    w = m.welcome
    w.session_id = "7d41e0c2"
    w.protocol.major, w.protocol.minor = 1, 1
    w.width, w.height, w.fps = 320, 180, 20.0
    w.transport = pb.FRAME_TRANSPORT_INLINE
    w.scene_id = "demo"
    w.scene_duration_s = 8.0
    w.heartbeat_timeout_s = 10.0
    w.block_frames = 3
    w.generator = "explicit-fill"
    w.backend_version = "0.2.0"
    w.session_secret = "k3Y-9fQx_2b7Ws0pLr4TzA"
    return m


def frame_ready() -> pb.BackendMessage:
    m = pb.BackendMessage()
    f = m.frame
    f.frame_sequence = 2**32 + 7
    f.slot = 2
    f.pose_sequence = BIG_SEQUENCE
    f.engine_time_us = ENGINE_TIME_US
    _set_pose(f.pose, POSITION, ROTATION)
    f.vertical_fov_deg = 60.0
    f.aspect = 1.75
    f.scene_time_s = 3.25
    f.generation_latency_ms = 12.5
    f.width, f.height = 512, 288
    return m


def frame_ready_inline() -> pb.BackendMessage:
    """Slot 0 (the default) is absent on the wire; inline frames carry pixels as a second part."""
    m = pb.BackendMessage()
    f = m.frame
    f.frame_sequence = 1
    f.pose_sequence = 1
    _set_pose(f.pose, (0.0, 1.5, 0.0), (0.0, 0.0, 0.0, 1.0))
    f.vertical_fov_deg = 45.0
    f.scene_time_s = 0.0
    f.generation_latency_ms = 0.75
    f.width, f.height = 64, 36
    return m


def error_fatal() -> pb.BackendMessage:
    m = pb.BackendMessage()
    e = m.error
    e.code = pb.ERROR_CODE_PROTOCOL_MISMATCH
    e.message = (
        "protocol mismatch: the backend speaks 1.0, the peer sent 2.0; "
        "update the plugin or the backend so the major versions match"
    )
    e.fatal = True
    e.field = "hello.protocol"
    return m


def error_nonfatal() -> pb.BackendMessage:
    m = pb.BackendMessage()
    e = m.error
    e.code = pb.ERROR_CODE_INVALID_ARGUMENT
    e.message = "pose.pose.rotation must be a unit quaternion: |q| = 2.000000, allowed 1 ± 0.001"
    e.field = "pose.pose.rotation"
    return m


def error_shutting_down() -> pb.BackendMessage:
    m = pb.BackendMessage()
    e = m.error
    e.code = pb.ERROR_CODE_SHUTTING_DOWN
    e.message = "the backend is shutting down; keep the last frame and reconnect (it may be restarting)"
    return m


_BUILDERS: tuple[tuple[str, str, Callable[[], pb.EngineMessage | pb.BackendMessage]], ...] = (
    ("hello_full", "Hello with every field set, inline transport, non-ASCII client label", hello_full),
    ("hello_minimal", "Hello with only the protocol major (everything else default)", hello_minimal),
    ("hello_shared_memory", "Hello as the Godot plugin sends it, shared-memory transport", hello_shared_memory),
    ("pose", "CameraPose: sequence and clock above 2^32, negative coordinates, 120-degree rotation", pose),
    ("pose_origin", "CameraPose at the origin: empty Vec3, rotation only w, sequence 128, no clock", pose_origin),
    ("pose_varint_edges", "CameraPose with sequence 2^64-1 (10-byte varint) and clock 2^63", pose_varint_edges),
    ("time_play", "TimeControl ACTION_PLAY", _time(pb.TimeControl.ACTION_PLAY)),
    ("time_pause", "TimeControl ACTION_PAUSE", _time(pb.TimeControl.ACTION_PAUSE)),
    ("time_seek", "TimeControl ACTION_SEEK to 12.625 s (a double)", _time(pb.TimeControl.ACTION_SEEK, time_s=12.625)),
    ("time_set_speed", "TimeControl ACTION_SET_SPEED 0.5", _time(pb.TimeControl.ACTION_SET_SPEED, speed=0.5)),
    ("goodbye", "Goodbye with a reason", goodbye),
    ("goodbye_empty", "Goodbye with no reason: an empty but present sub-message", goodbye_empty),
    (
        "welcome_shared_memory",
        "Welcome for a 512x288 shared-memory session, ring layout filled in",
        welcome_shared_memory,
    ),
    ("welcome_inline", "Welcome for an inline session (no ring), newer protocol minor", welcome_inline),
    (
        "welcome_session_secret",
        "Welcome of protocol 1.1 carrying session_secret (field 14), inline 320x180",
        welcome_session_secret,
    ),
    ("frame_ready", "FrameReady in ring slot 2, sequence above 2^32", frame_ready),
    ("frame_ready_inline", "FrameReady of an inline frame (slot 0 omitted)", frame_ready_inline),
    ("error_fatal", "Error PROTOCOL_MISMATCH, fatal, with the field", error_fatal),
    ("error_nonfatal", "Error INVALID_ARGUMENT, not fatal", error_nonfatal),
    (
        "error_shutting_down",
        "Error SHUTTING_DOWN, not fatal: the backend is stopping, reconnect (protocol 1.1)",
        error_shutting_down,
    ),
)


def build() -> list[Golden]:
    """Every golden message, in manifest order."""
    return [Golden(name, description, make()) for name, description, make in _BUILDERS]


def manifest(goldens: list[Golden]) -> dict:
    data = [g.serialize() for g in goldens]
    return {
        "about": (
            "Golden byte vectors of the StarBridge engine channel (protos/starbridge/v1/engine.proto), made by "
            "tests/golden/make_golden.py with the real protobuf runtime. `fields` uses the proto3 JSON mapping: "
            "64-bit integers are strings, enums are names, fields holding their default value are absent."
        ),
        "protobuf_package": "starbridge.v1",
        "messages": [
            {
                "name": g.name,
                "envelope": g.envelope,
                "direction": g.direction,
                "description": g.description,
                "fields": g.fields(),
                "size": len(raw),
                "hex": raw.hex(),
            }
            for g, raw in zip(goldens, data, strict=True)
        ],
    }


def manifest_text(goldens: list[Golden]) -> str:
    return json.dumps(manifest(goldens), indent=2, ensure_ascii=False) + "\n"


def write(directory: Path = GOLDEN_DIR) -> list[Path]:
    """Write every `<name>.bin` and golden.json into `directory` (removing .bin files of vectors
    that no longer exist); returns the paths written."""
    goldens = build()
    names = {f"{g.name}.bin" for g in goldens}
    for stale in directory.glob("*.bin"):
        if stale.name not in names:
            stale.unlink()
    written = []
    for g in goldens:
        path = directory / f"{g.name}.bin"
        path.write_bytes(g.serialize())
        written.append(path)
    path = directory / MANIFEST
    path.write_text(manifest_text(goldens), encoding="utf-8")
    written.append(path)
    return written


def main() -> int:
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else GOLDEN_DIR
    for path in write(directory):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
