"""Engine client against a scripted ROUTER (a stand-in backend): hello, poses, frames, errors, timeouts."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import zmq

from starbridge.client.engine import RECEIVE_BUDGET_BYTES, RECEIVE_HWM, EngineClient, now_us, receive_hwm
from starbridge.errors import (
    BackendUnavailable,
    InvalidArgument,
    NoSession,
    ProtocolMismatch,
    SessionTimeout,
    StarBridgeError,
    UnknownScene,
)
from starbridge.protocol import engine_pb2 as pb
from starbridge.transport.error_codes import error_from_proto
from starbridge.transport.frame import FrameMeta
from starbridge.transport.ring import FrameRingWriter
from starbridge.transport.version import PROTOCOL_MAJOR, PROTOCOL_MINOR

W, H = 8, 6

Reply = list[bytes]
Handler = Callable[["FakeBackend", pb.EngineMessage], list[Reply]]


class FakeBackend:
    """A ROUTER in a thread: records every EngineMessage and answers with what `handler` returns."""

    def __init__(self, handler: Handler, endpoint: str = "tcp://127.0.0.1:*") -> None:
        self.handler = handler
        self.received: list[pb.EngineMessage] = []
        self.replies_sent = 0  # replies handed to ZeroMQ, counted under `_sent`
        self._sent = threading.Condition()
        self.ring: FrameRingWriter | None = None
        self.frame_sequence = 0
        self._socket = zmq.Context.instance().socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(endpoint)
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self._socket.poll(20):
                    continue
                identity, envelope = self._socket.recv_multipart()
                msg = pb.EngineMessage()
                msg.ParseFromString(envelope)
                self.received.append(msg)
                for parts in self.handler(self, msg):
                    self._socket.send_multipart([identity, *parts])
                    with self._sent:
                        self.replies_sent += 1
                        self._sent.notify_all()
        finally:
            self._socket.close(0)

    def wait_for(self, kind: str, count: int = 1, timeout_s: float = 2.0) -> list[pb.EngineMessage]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = [m for m in self.received if m.WhichOneof("body") == kind]
            if len(got) >= count:
                return got
            time.sleep(0.005)
        raise AssertionError(f"backend did not receive {count} {kind} message(s): {self.received}")

    def wait_sent(self, count: int, timeout_s: float = 2.0) -> None:
        """Until `count` replies in all have been handed to ZeroMQ (over inproc: in the client's queue)."""
        with self._sent:
            if not self._sent.wait_for(lambda: self.replies_sent >= count, timeout_s):
                raise AssertionError(f"backend sent {self.replies_sent} replies, expected {count}")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2.0)
        if self.ring is not None:
            self.ring.close()


@pytest.fixture
def backends():
    made: list[FakeBackend] = []

    def make(handler: Handler, endpoint: str = "tcp://127.0.0.1:*") -> FakeBackend:
        made.append(FakeBackend(handler, endpoint))
        return made[-1]

    yield make
    for b in made:
        b.close()


def welcome(backend: FakeBackend, hello: pb.Hello, ring_dir: Path | None = None) -> Reply:
    msg = pb.BackendMessage()
    w = msg.welcome
    w.session_id = "sess-1"
    w.protocol.major = 1
    w.width, w.height, w.fps = W, H, 30.0
    w.transport = hello.transport or pb.FRAME_TRANSPORT_SHARED_MEMORY
    if w.transport == pb.FRAME_TRANSPORT_SHARED_MEMORY:
        assert ring_dir is not None
        backend.ring = FrameRingWriter(ring_dir / "starbridge-sess-1", W, H)
        lay = backend.ring.layout()
        s = w.shared_memory
        s.path = str(lay.path)
        s.layout_version, s.header_bytes, s.slot_count = lay.layout_version, lay.header_bytes, lay.slot_count
        s.slot_bytes, s.slot_header_bytes, s.stride = lay.slot_bytes, lay.slot_header_bytes, lay.stride
        s.pixel_format, s.file_bytes = lay.pixel_format, lay.file_bytes
    w.scene_id = hello.scene_id or "demo"
    w.scene_duration_s = 8.0
    return [msg.SerializeToString()]


def pixels_for(seq: int) -> np.ndarray:
    return np.full((H, W, 4), seq % 256, np.uint8) + np.arange(W, dtype=np.uint8)[None, :, None]


def frame_reply(backend: FakeBackend, pose: pb.CameraPose) -> Reply:
    """FrameReady for `pose`: pixels in the ring when there is one, else inline."""
    backend.frame_sequence += 1
    seq = backend.frame_sequence
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
        scene_time_s=seq * 0.25,
        generation_latency_ms=1.5,
        width=W,
        height=H,
    )
    msg = pb.BackendMessage()
    if backend.ring is None:
        meta.to_proto(msg.frame)
        return [msg.SerializeToString(), pixels_for(seq).tobytes()]
    replace(meta, slot=backend.ring.write(pixels_for(seq), meta)).to_proto(msg.frame)
    return [msg.SerializeToString()]


def error_reply(code: int, message: str, fatal: bool, field: str = "") -> Reply:
    msg = pb.BackendMessage()
    msg.error.code, msg.error.message, msg.error.fatal, msg.error.field = code, message, fatal, field
    return [msg.SerializeToString()]


def serving(ring_dir: Path | None = None, frames_per_pose: int = 1) -> Handler:
    """A well-behaved backend: Welcome, then `frames_per_pose` frames per pose."""

    def handle(backend: FakeBackend, msg: pb.EngineMessage) -> list[Reply]:
        kind = msg.WhichOneof("body")
        if kind == "hello":
            return [welcome(backend, msg.hello, ring_dir)]
        if kind == "pose":
            return [frame_reply(backend, msg.pose) for _ in range(frames_per_pose)]
        return []

    return handle


POSE = dict(position=(-1.5, 0.25, -4.0), rotation_xyzw=(-0.5, 0.5, 0.5, 0.5), vertical_fov_deg=60.0, aspect=1.75)


def check_frame(frame, seq: int, pose_sequence: int, transport: str) -> None:
    assert frame is not None
    m = frame.meta
    assert m.frame_sequence == seq and m.pose_sequence == pose_sequence
    assert frame.transport == transport
    assert m.position == POSE["position"] and m.rotation == POSE["rotation_xyzw"]
    assert (m.vertical_fov_deg, m.aspect, m.width, m.height) == (60.0, 1.75, W, H)
    assert m.scene_time_s == seq * 0.25 and m.generation_latency_ms == 1.5
    assert frame.pixels.shape == (H, W, 4) and frame.pixels.dtype == np.uint8
    np.testing.assert_array_equal(frame.pixels, pixels_for(seq))
    assert frame.received_time_us >= m.engine_time_us


def test_inline_session(backends):
    backend = backends(serving())
    with EngineClient(backend.endpoint) as client:
        w = client.hello(scene_id="demo", width=W, height=H, fps=30, transport="inline", token="t0k")
        assert w.session_id == "sess-1" == client.session_id and w.transport == pb.FRAME_TRANSPORT_INLINE
        hello = backend.wait_for("hello")[0].hello
        assert (hello.protocol.major, hello.engine_name, hello.scene_id) == (1, "starbridge-fly", "demo")
        assert (hello.width, hello.height, hello.fps, hello.token) == (W, H, 30.0, "t0k")
        assert hello.transport == pb.FRAME_TRANSPORT_INLINE
        before = now_us()
        for seq in (1, 2):
            assert client.send_pose(2**33 + seq, **POSE)
            check_frame(client.receive(2.0), seq, 2**33 + seq, "inline")
        pose = backend.wait_for("pose", 2)[1].pose
        assert pose.engine_time_us >= before and pose.pose.rotation.w == 0.5
        assert client.send_pose(9, **POSE, engine_time_us=123)
        frame = client.receive(2.0)
        assert frame.meta.engine_time_us == 123 and not frame.pixels.flags.owndata  # a view of the message
        assert client.receive(0.05) is None
    assert backend.wait_for("goodbye")[0].goodbye.reason == "client closed"


def test_shared_memory_session(backends, tmp_path: Path):
    backend = backends(serving(tmp_path))
    with EngineClient(backend.endpoint) as client:
        w = client.hello(transport="shm")
        assert w.transport == pb.FRAME_TRANSPORT_SHARED_MEMORY and w.shared_memory.slot_count == 3
        buffers = set()
        for seq in range(1, 6):
            client.send_pose(seq, **POSE)
            frame = client.receive(2.0)
            check_frame(frame, seq, seq, "shared_memory")
            assert frame.meta.slot == (seq - 1) % 3
            buffers.add(id(frame.pixels))
        assert len(buffers) == 1  # one reused buffer, no per-frame allocation
        client.goodbye("done")
        assert client.session_id == ""
        with pytest.raises(NoSession):
            client.send_pose(7, **POSE)
    assert backend.wait_for("goodbye")[0].goodbye.reason == "done"


def test_overwritten_slot_falls_back_to_the_newest_frame(backends, tmp_path: Path):
    """Four frames into three slots before the client reads: slot 0 holds frame 4 by then."""
    backend = backends(serving(tmp_path, frames_per_pose=4))
    with EngineClient(backend.endpoint) as client:
        client.hello()
        client.send_pose(1, **POSE)
        backend.wait_sent(1 + 4)  # Welcome, then the four frames: all four are in the ring now
        frame = client.receive(2.0)
        check_frame(frame, 4, 1, "shared_memory")
        assert frame.meta.slot == 0
        assert client.receive(0.1) is None  # FrameReady 2, 3, 4: already delivered


def test_newest_skips_queued_frames(backends):
    # Over inproc a reply is in the client's queue once the backend has sent it: all three are queued here.
    backend = backends(serving(frames_per_pose=3), endpoint=f"inproc://newest-{id(backends)}")
    with EngineClient(backend.endpoint) as client:
        client.hello(transport="inline")
        client.send_pose(1, **POSE)
        backend.wait_sent(1 + 3)
        check_frame(client.receive(2.0, newest=True), 3, 1, "inline")
        assert client.receive(0.05) is None


@pytest.mark.parametrize(
    ("code", "cls"),
    [(pb.ERROR_CODE_PROTOCOL_MISMATCH, ProtocolMismatch), (pb.ERROR_CODE_UNKNOWN_SCENE, UnknownScene)],
)
def test_refused_hello_raises_the_mapped_error(backends, code: int, cls: type):
    backend = backends(lambda b, m: [error_reply(code, "refused: see the field", True, "hello.protocol")])
    with EngineClient(backend.endpoint) as client:
        with pytest.raises(cls, match="refused: see the field") as err:
            client.hello(timeout_s=2.0)
        assert err.value.field == "hello.protocol"
        assert client.welcome is None


@pytest.mark.parametrize(("major", "minor", "ok"), [(1, 0, True), (1, 7, True), (2, 0, False), (0, 0, False)])
def test_welcome_protocol_versions(backends, major: int, minor: int, ok: bool):
    def handle(backend: FakeBackend, msg: pb.EngineMessage) -> list[Reply]:
        if msg.WhichOneof("body") != "hello":
            return []
        reply = pb.BackendMessage()
        reply.ParseFromString(welcome(backend, msg.hello)[0])
        reply.welcome.protocol.major, reply.welcome.protocol.minor = major, minor
        return [[reply.SerializeToString()]]

    backend = backends(handle)
    with EngineClient(backend.endpoint) as client:
        if ok:
            assert client.hello(transport="inline").protocol.minor == minor
        else:
            ours = f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}"
            with pytest.raises(ProtocolMismatch, match=f"client speaks {ours}, the backend {major}.{minor}"):
                client.hello(transport="inline")
            assert client.welcome is None
            assert backend.wait_for("goodbye")[0].goodbye.reason == "protocol mismatch"


def test_errors_during_a_session(backends, caplog):
    def handle(backend: FakeBackend, msg: pb.EngineMessage) -> list[Reply]:
        if msg.WhichOneof("body") == "hello":
            return [welcome(backend, msg.hello)]
        if msg.pose.sequence == 1:
            return [error_reply(pb.ERROR_CODE_INVALID_ARGUMENT, "pose.pose.rotation is not unit", False)]
        if msg.pose.sequence == 2:
            return [frame_reply(backend, msg.pose)]
        return [error_reply(pb.ERROR_CODE_TIMEOUT, "closed for silence", True)]

    backend = backends(handle)
    with EngineClient(backend.endpoint) as client:
        client.hello(transport="inline")
        client.send_pose(1, **POSE)
        client.send_pose(2, **POSE)
        check_frame(client.receive(2.0), 1, 2, "inline")  # the non-fatal error did not end anything
        assert client.error_count == 1 and client.last_error.code == pb.ERROR_CODE_INVALID_ARGUMENT
        assert "rotation is not unit" in caplog.text
        client.send_pose(3, **POSE)
        with pytest.raises(SessionTimeout, match="closed for silence"):
            client.receive(2.0)
        assert client.welcome is None
        with pytest.raises(NoSession, match="hello"):
            client.receive(0.01)


def test_time_control_and_goodbye(backends):
    backend = backends(serving())
    with EngineClient(backend.endpoint) as client:
        client.hello(transport="inline")
        assert client.send_time("play")
        assert client.send_time("pause")
        assert client.send_time("seek", time_s=12.625)
        assert client.send_time(pb.TimeControl.ACTION_SET_SPEED, speed=0.5)
        with pytest.raises(InvalidArgument, match="action"):
            client.send_time("rewind")
        times = [m.time for m in backend.wait_for("time", 4)]
        assert [t.action for t in times] == [1, 2, 3, 4]
        assert times[2].time_s == 12.625 and times[3].speed == 0.5
    client.close()  # idempotent
    with pytest.raises(NoSession, match="closed"):
        client.send_pose(1, **POSE)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_receive_queue_is_sized_by_memory():
    """Frame notices never fill it; inline frames up to the memory budget, never fewer than before the session
    (a full queue and a hang-up abort libzmq 4.3.5: tests/cli/test_cli_fly.py has the process-level test)."""
    shm = pb.Welcome(transport=pb.FRAME_TRANSPORT_SHARED_MEMORY, width=1920, height=1080)
    assert receive_hwm(shm) == 100_000
    inline = pb.Welcome(transport=pb.FRAME_TRANSPORT_INLINE, width=256, height=144)
    assert receive_hwm(inline) == RECEIVE_BUDGET_BYTES // (256 * 144 * 4 + 256) > 30 * 30
    huge = pb.Welcome(transport=pb.FRAME_TRANSPORT_INLINE, width=7680, height=4320)
    assert receive_hwm(huge) == RECEIVE_HWM


def test_no_backend_times_out_with_a_hint():
    endpoint = f"tcp://127.0.0.1:{_free_port()}"
    with EngineClient(endpoint) as client:
        start = time.monotonic()
        with pytest.raises(BackendUnavailable) as err:
            client.hello(timeout_s=0.3)
        assert time.monotonic() - start < 2.0
        assert endpoint in str(err.value) and "starbridge serve" in str(err.value)
        with pytest.raises(NoSession):
            client.send_pose(1, **POSE)


def test_silent_backend_times_out(backends):
    backend = backends(lambda b, m: [])
    with EngineClient(backend.endpoint) as client:
        with pytest.raises(BackendUnavailable, match="no answer within 0.2 s"):
            client.hello(timeout_s=0.2)


def test_bad_arguments_and_error_mapping(backends, tmp_path: Path):
    backend = backends(serving())
    with EngineClient(backend.endpoint) as client:
        with pytest.raises(InvalidArgument, match="transport"):
            client.hello(transport="carrier-pigeon")
        with pytest.raises(NoSession):
            client.receive(0.01)
    err = pb.Error(code=pb.ERROR_CODE_OVERLOADED, message="too many sessions", fatal=True)
    exc = error_from_proto(err)
    assert type(exc).__name__ == "Overloaded" and "too many sessions" in exc.message
    assert type(error_from_proto(pb.Error(code=999, message="future"))) is StarBridgeError


def test_missing_ring_file_is_a_clear_error(backends, tmp_path: Path):
    def handle(backend: FakeBackend, msg: pb.EngineMessage) -> list[Reply]:
        if msg.WhichOneof("body") == "hello":
            reply = welcome(backend, msg.hello, tmp_path)
            backend.ring.close()  # the file is gone, as with a backend on another machine
            return [reply]
        return []

    backend = backends(handle)
    with EngineClient(backend.endpoint) as client:
        with pytest.raises(StarBridgeError, match="does not exist.*transport='inline'"):
            client.hello()
        assert client.welcome is None
    assert backend.wait_for("goodbye")[0].goodbye.reason == "cannot read the frame ring"
