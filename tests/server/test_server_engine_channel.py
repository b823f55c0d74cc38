"""The engine channel, spoken by a plain pyzmq DEALER exactly as an engine would, against a live backend."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from starbridge.protocol import engine_pb2 as pb
from starbridge.server.app import Backend
from starbridge.transport.ring import FrameRingReader
from starbridge.transport.version import PROTOCOL_MAJOR, PROTOCOL_MINOR


class Engine:
    """A bare DEALER peer with helpers to speak the envelope protocol."""

    def __init__(self, endpoint: str) -> None:
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.sequence = 0
        self.notices: list[pb.BackendMessage] = []

    def send(self, message: pb.EngineMessage) -> None:
        self.socket.send(message.SerializeToString())

    def hello(self, **fields) -> pb.BackendMessage:
        fields.setdefault("protocol", pb.ProtocolVersion(major=PROTOCOL_MAJOR, minor=PROTOCOL_MINOR))
        fields.setdefault("engine_name", "pytest")
        fields.setdefault("width", 128)
        fields.setdefault("height", 72)
        fields.setdefault("fps", 30)
        self.send(pb.EngineMessage(hello=pb.Hello(**fields)))
        return self.recv()[0]

    def pose(self, position=(0.0, 0.0, 0.0), rotation=(0.0, 0.0, 0.0, 1.0), fov=60.0, aspect=0.0) -> None:
        self.sequence += 1
        p = pb.Pose(position=pb.Vec3(x=position[0], y=position[1], z=position[2]))
        p.rotation.x, p.rotation.y, p.rotation.z, p.rotation.w = rotation
        self.send(
            pb.EngineMessage(
                pose=pb.CameraPose(
                    sequence=self.sequence,
                    engine_time_us=int(time.monotonic() * 1e6),
                    pose=p,
                    vertical_fov_deg=fov,
                    aspect=aspect,
                )
            )
        )

    def recv(self, timeout_s: float = 5.0) -> tuple[pb.BackendMessage, list[zmq.Frame]]:
        if not self.socket.poll(int(timeout_s * 1000)):
            raise TimeoutError(f"no message from the backend within {timeout_s} s")
        parts = self.socket.recv_multipart(copy=False)
        msg = pb.BackendMessage()
        msg.ParseFromString(parts[0].bytes)
        return msg, parts[1:]

    def frames(self, n: int, timeout_s: float = 10.0, keep_posing: bool = True):
        """Send poses and collect `n` FrameReady messages (with any extra parts). Errors are returned too,
        except the backend's one-off, non-fatal OVERLOADED notice (a busy test machine), kept in `notices`."""
        out, errors = [], []
        deadline = time.monotonic() + timeout_s
        while len(out) < n:
            if time.monotonic() > deadline:
                raise TimeoutError(f"got {len(out)} of {n} frames; errors: {errors}")
            if keep_posing:
                self.pose()
            if self.socket.poll(30):
                msg, extra = self.recv()
                if msg.WhichOneof("body") == "frame":
                    out.append((msg.frame, extra))
                elif msg.error.code == pb.ERROR_CODE_OVERLOADED and not msg.error.fatal:
                    self.notices.append(msg)
                else:
                    errors.append(msg)
        return out, errors

    def close(self) -> None:
        self.socket.close(0)


@pytest.fixture
def engine(backend: Backend):
    e = Engine(backend.engine_endpoint)
    yield e
    e.close()


def _wait_for(predicate, timeout_s: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_shared_memory_handshake_and_frames(engine: Engine, backend: Backend):
    reply = engine.hello(transport=pb.FRAME_TRANSPORT_SHARED_MEMORY)
    assert reply.WhichOneof("body") == "welcome", reply
    w = reply.welcome
    assert (w.width, w.height, w.fps) == (128, 72, 30)
    assert w.protocol.major == PROTOCOL_MAJOR
    assert w.scene_id == "demo" and w.scene_duration_s > 0
    assert w.generator == "explicit-fill"
    shm = w.shared_memory
    assert Path(shm.path).exists() and shm.slot_count >= 3 and shm.stride == 128 * 4
    assert Path(shm.path).stat().st_size == shm.file_bytes

    frames, errors = engine.frames(5)
    assert not errors
    with FrameRingReader(shm.path) as reader:
        fr, extra = frames[-1]
        assert not extra  # shared memory: no pixel part
        info = reader.read_slot(fr.slot, out := reader.new_buffer())
        # the writer may have moved on to newer frames; the slot then holds a newer one
        assert info is None or info.meta.frame_sequence >= fr.frame_sequence
        latest = reader.read_latest(out)
    assert latest is not None and latest.meta.frame_sequence >= fr.frame_sequence
    assert out.shape == (72, 128, 4) and (out[..., 3] == 255).all()
    assert out[..., :3].std() > 10  # a real picture, not a flat fill
    seqs = [f.frame_sequence for f, _ in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert frames[-1][0].pose_sequence <= engine.sequence
    assert frames[-1][0].engine_time_us > 0


def test_inline_frames_come_as_a_second_part(engine: Engine):
    reply = engine.hello(transport=pb.FRAME_TRANSPORT_INLINE)
    assert reply.welcome.transport == pb.FRAME_TRANSPORT_INLINE
    assert not reply.welcome.HasField("shared_memory")
    frames, errors = engine.frames(3)
    assert not errors
    fr, extra = frames[-1]
    assert len(extra) == 1 and len(extra[0].bytes) == 72 * 128 * 4
    image = np.frombuffer(extra[0].buffer, np.uint8).reshape(72, 128, 4)
    # sky at the top (blue-ish, bright), ground lower: the demo's reference view is upright
    top, bottom = image[:10, :, :3].mean(axis=(0, 1)), image[-10:, :, :3].mean(axis=(0, 1))
    assert top[2] > top[0] and top.mean() > bottom.mean()


def test_newer_minor_is_accepted(engine: Engine):
    reply = engine.hello(protocol=pb.ProtocolVersion(major=PROTOCOL_MAJOR, minor=PROTOCOL_MINOR + 7))
    assert reply.WhichOneof("body") == "welcome"


@pytest.mark.parametrize("major", [PROTOCOL_MAJOR + 1, 0])
def test_other_major_is_refused_with_both_versions(engine: Engine, major: int):
    reply = engine.hello(protocol=pb.ProtocolVersion(major=major, minor=3))
    assert reply.error.code == pb.ERROR_CODE_PROTOCOL_MISMATCH and reply.error.fatal
    assert f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}" in reply.error.message
    if major:
        assert f"{major}.3" in reply.error.message


def test_unknown_scene(engine: Engine):
    reply = engine.hello(scene_id="no-such-scene")
    assert reply.error.code == pb.ERROR_CODE_UNKNOWN_SCENE and reply.error.fatal
    assert "no-such-scene" in reply.error.message


@pytest.mark.parametrize(
    "fields, field",
    [({"width": 5}, "hello.width"), ({"height": 100000}, "hello.height"), ({"fps": -1}, "hello.fps")],
)
def test_bad_hello_fields_are_named(engine: Engine, fields, field):
    reply = engine.hello(**fields)
    assert reply.error.code == pb.ERROR_CODE_INVALID_ARGUMENT and reply.error.field == field


@pytest.mark.parametrize(
    "pose, field",
    [
        ({"rotation": (0.0, 0.0, 0.0, 0.5)}, "pose.pose.rotation"),
        ({"rotation": (math.nan, 0.0, 0.0, 1.0)}, "pose.pose.rotation"),
        ({"position": (0.0, math.inf, 0.0)}, "pose.pose.position"),
        ({"fov": 0.0}, "pose.vertical_fov_deg"),
        ({"aspect": -2.0}, "pose.aspect"),
    ],
)
def test_bad_pose_is_refused_and_session_lives_on(engine: Engine, pose, field):
    assert engine.hello().WhichOneof("body") == "welcome"
    engine.pose(**pose)
    reply, _ = engine.recv()
    assert reply.error.code == pb.ERROR_CODE_INVALID_ARGUMENT and not reply.error.fatal
    assert reply.error.field == field and field.split(".")[-1] in reply.error.message
    frames, _ = engine.frames(2)  # good poses still make frames
    assert len(frames) == 2


def test_garbage_and_bad_multipart(engine: Engine):
    engine.socket.send(b"\xff\xfe garbage \x00\x01")
    reply, _ = engine.recv()
    assert reply.error.code == pb.ERROR_CODE_MALFORMED and not reply.error.fatal
    engine.socket.send_multipart([b"a", b"b"])
    reply, _ = engine.recv()
    assert reply.error.code == pb.ERROR_CODE_MALFORMED
    engine.send(pb.EngineMessage())
    reply, _ = engine.recv()
    assert reply.error.code == pb.ERROR_CODE_MALFORMED


def test_pose_before_hello(engine: Engine):
    engine.pose()
    reply, _ = engine.recv()
    assert reply.error.code == pb.ERROR_CODE_NO_SESSION and reply.error.fatal


def test_goodbye_frees_the_session(engine: Engine, backend: Backend):
    shm = engine.hello().welcome.shared_memory.path
    engine.frames(1)
    engine.send(pb.EngineMessage(goodbye=pb.Goodbye(reason="test done")))
    assert _wait_for(lambda: not backend.manager.sessions())
    assert not Path(shm).exists()


def test_a_vanished_client_is_reaped(backend: Backend):
    engine = Engine(backend.engine_endpoint)
    shm = engine.hello().welcome.shared_memory.path
    engine.frames(1)
    engine.close()  # no Goodbye: the engine crashed
    assert Path(shm).exists()
    assert _wait_for(lambda: not backend.manager.sessions(), timeout_s=backend.config.heartbeat_timeout_s + 5)
    assert not Path(shm).exists()


def test_a_silent_client_gets_a_timeout_error(backend: Backend):
    engine = Engine(backend.engine_endpoint)
    try:
        engine.hello()
        reply, _ = engine.recv(timeout_s=backend.config.heartbeat_timeout_s + 5)
        assert reply.error.code == pb.ERROR_CODE_TIMEOUT and reply.error.fatal
    finally:
        engine.close()


def test_a_misbehaving_session_does_not_disturb_another(backend: Backend):
    good, bad = Engine(backend.engine_endpoint), Engine(backend.engine_endpoint)
    try:
        assert good.hello(transport=pb.FRAME_TRANSPORT_INLINE).WhichOneof("body") == "welcome"
        assert bad.hello().WhichOneof("body") == "welcome"
        good.frames(2)
        t0 = time.monotonic()
        for i in range(40):
            bad.socket.send(bytes(np.random.default_rng(i).integers(0, 256, 50, dtype=np.uint8)))
            bad.pose(rotation=(math.nan, 0.0, 0.0, 1.0))
            bad.socket.send_multipart([b"x", b"y", b"z"])
        frames, errors = good.frames(20)
        assert not errors and len(frames) == 20
        assert time.monotonic() - t0 < 10
        assert len(backend.manager.sessions()) == 2
    finally:
        good.close()
        bad.close()


def test_time_control_pause_seek_speed(engine: Engine):
    engine.hello(fps=30)
    engine.send(pb.EngineMessage(time=pb.TimeControl(action=pb.TimeControl.ACTION_PAUSE)))
    engine.send(pb.EngineMessage(time=pb.TimeControl(action=pb.TimeControl.ACTION_SEEK, time_s=1.25)))
    engine.frames(3)  # let frames scheduled before the seek pass
    frames, _ = engine.frames(4)
    times = [f.scene_time_s for f, _ in frames]
    assert times == pytest.approx([1.25] * 4)
    engine.send(pb.EngineMessage(time=pb.TimeControl(action=pb.TimeControl.ACTION_SET_SPEED, speed=100.0)))
    reply, _ = engine.recv()
    assert reply.error.code == pb.ERROR_CODE_INVALID_ARGUMENT and reply.error.field == "time.speed"
    engine.send(pb.EngineMessage(time=pb.TimeControl(action=pb.TimeControl.ACTION_PLAY)))
    engine.frames(3)
    frames, _ = engine.frames(6)
    assert frames[-1][0].scene_time_s != pytest.approx(1.25)


def test_token_is_required_when_set(make_backend):
    e = Engine(make_backend(token="s3cret").engine_endpoint)
    try:
        reply = e.hello()
        assert reply.error.code == pb.ERROR_CODE_UNAUTHENTICATED and reply.error.fatal
        assert e.hello(token="s3cret").WhichOneof("body") == "welcome"
    finally:
        e.close()


def test_hello_again_replaces_the_session(engine: Engine, backend: Backend):
    first = engine.hello().welcome.session_id
    second = engine.hello().welcome.session_id
    assert first != second
    assert _wait_for(lambda: [s.session_id for s in backend.manager.sessions()] == [second])


def _has_ipv6_loopback() -> bool:
    import socket

    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_an_ipv6_host_serves_both_endpoints(make_backend):
    """`--host ::1`: the engine channel is tcp://[::1]:PORT and gRPC [::1]:PORT; a client gets frames over it."""
    import grpc

    from starbridge.client.engine import EngineClient
    from starbridge.protocol import bridge_pb2, bridge_pb2_grpc

    backend = make_backend(host="::1", viewer=False)
    assert backend.engine_endpoint.startswith("tcp://[::1]:") and backend.grpc_address.startswith("[::1]:")
    with EngineClient(backend.engine_endpoint) as client:
        client.hello(width=64, height=36, transport="inline")
        client.send_pose(1, position=(0.0, 1.6, 0.0), rotation_xyzw=(0.0, 0.0, 0.0, 1.0), vertical_fov_deg=60.0)
        frame = client.receive(10.0)
        assert frame is not None and frame.pixels.shape == (36, 64, 4)
    with grpc.insecure_channel(backend.grpc_address) as ch:
        info = bridge_pb2_grpc.BridgeStub(ch).GetServerInfo(bridge_pb2.GetServerInfoRequest(), timeout=10)
        assert info.backend_version and info.engine_endpoint.startswith("tcp://[::1]:")


def test_an_ipv4_host_reports_its_own_address(backend: Backend):
    """IPv6 is switched on only for IPv6 hosts: an IPv4 bind reports tcp://127.0.0.1:PORT (with it on, ZeroMQ
    reports the IPv4-mapped tcp://[::ffff:127.0.0.1]:PORT, which the banner would show and plugins could not use)."""
    assert backend.engine_endpoint.startswith("tcp://127.0.0.1:")
