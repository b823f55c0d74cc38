"""One session on its own (no sockets): poses in, frames out through a sink, time control, closing."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.protocol import engine_pb2 as pb
from starbridge.runtime.explicit import ExplicitGenerator
from starbridge.runtime.generator import FrameRequest
from starbridge.scenes.store import SceneStore
from starbridge.server.fairness import FairGate
from starbridge.server.session import Session, SessionSpec


class Sink:
    """Collects what the session sends; `wait(kind, n)` blocks until n messages of that kind came."""

    wants_pixels = False

    def __init__(self) -> None:
        self.messages: list[tuple[pb.BackendMessage, np.ndarray | None]] = []
        self.closed = False
        self._cond = threading.Condition()

    def send(self, message: pb.BackendMessage, pixels: np.ndarray | None = None) -> None:
        with self._cond:
            self.messages.append((message, None if pixels is None else pixels.copy()))
            self._cond.notify_all()

    def close(self) -> None:
        self.closed = True

    def of(self, kind: str) -> list[tuple[pb.BackendMessage, np.ndarray | None]]:
        with self._cond:
            return [(m, p) for m, p in self.messages if m.WhichOneof("body") == kind]

    def wait(self, kind: str, n: int, timeout_s: float = 10.0) -> list[tuple[pb.BackendMessage, np.ndarray | None]]:
        with self._cond:
            ok = self._cond.wait_for(lambda: len(self.of(kind)) >= n, timeout_s)
        assert ok, f"got {len(self.of(kind))} {kind} messages, wanted {n}"
        return self.of(kind)


def _pose(sequence: int, z: float = 0.0, rotation=(0.0, 0.0, 0.0, 1.0), fov: float = 60.0) -> pb.CameraPose:
    p = pb.CameraPose(sequence=sequence, engine_time_us=1000 * sequence, vertical_fov_deg=fov)
    p.pose.position.z = z
    p.pose.rotation.x, p.pose.rotation.y, p.pose.rotation.z, p.pose.rotation.w = rotation
    return p


@pytest.fixture
def scene(demo_store: Path):
    return SceneStore(demo_store).get("demo")


def _session(scene, transport=pb.FRAME_TRANSPORT_INLINE, generator=None, **kw) -> tuple[Session, Sink]:
    spec = SessionSpec(
        session_id=kw.pop("session_id", "unit0000"), scene_id="demo", width=64, height=36, fps=30.0,
        transport=transport, channel="engine",
    )  # fmt: skip
    sink = Sink()
    gen = (generator or ExplicitGenerator()).open(scene, 64, 36)
    session = Session(spec, scene, gen, sink, **kw)
    session.start()
    return session, sink


def test_no_frame_before_the_first_pose_then_frames_answer_it(scene):
    session, sink = _session(scene)
    try:
        assert not session._have_pose.wait(0.2) and not sink.messages
        session.submit_pose(_pose(7, z=0.5))
        (msg, pixels), *_ = sink.wait("frame", 1)
        fr = msg.frame
        assert fr.pose_sequence == 7 and fr.engine_time_us == 7000 and fr.frame_sequence == 1
        assert (fr.width, fr.height) == (64, 36) and fr.vertical_fov_deg == pytest.approx(60.0)
        assert fr.pose.position.z == pytest.approx(0.5, abs=1e-3)  # one pose: no motion to extrapolate
        assert pixels is not None and pixels.shape == (36, 64, 4) and pixels.dtype == np.uint8
    finally:
        session.close()


def test_bad_poses_are_refused_naming_the_field(scene):
    session, _ = _session(scene)
    try:
        with pytest.raises(InvalidArgument) as err:
            session.submit_pose(_pose(1, rotation=(0.0, 0.0, 0.0, 0.0)))
        assert err.value.field == "pose.pose.rotation"
        with pytest.raises(InvalidArgument) as err:
            session.submit_pose(_pose(1, fov=0.0))
        assert err.value.field == "pose.vertical_fov_deg"
    finally:
        session.close()


def test_an_older_pose_does_not_replace_a_newer_one(scene):
    session, _ = _session(scene)
    try:
        session.submit_pose(_pose(5))
        session.submit_pose(_pose(3))
        assert session._latest is not None and session._latest.sequence == 5
        assert session.stats.poses_received == 2
    finally:
        session.close()


def test_pause_and_seek_freeze_the_scene_time(scene):
    session, sink = _session(scene)
    try:
        session.time_control(pb.TimeControl(action=pb.TimeControl.ACTION_PAUSE))
        session.time_control(pb.TimeControl(action=pb.TimeControl.ACTION_SEEK, time_s=1.5))
        seq = 0
        while len(sink.of("frame")) < 6:
            seq += 1
            session.submit_pose(_pose(seq))
            sink.wait("frame", min(6, len(sink.of("frame")) + 1))
        times = [m.frame.scene_time_s for m, _ in sink.of("frame")[-3:]]
        assert times == pytest.approx([1.5] * 3)
        with pytest.raises(InvalidArgument, match="time.action"):
            session.time_control(pb.TimeControl())
    finally:
        session.close()


def test_shared_memory_session_writes_its_ring_and_close_removes_it(scene):
    session, sink = _session(scene, transport=pb.FRAME_TRANSPORT_SHARED_MEMORY, session_id="unitring")
    assert session.ring is not None
    ring = Path(session.ring.path)
    session.submit_pose(_pose(1))
    (msg, pixels), *_ = sink.wait("frame", 1)
    assert pixels is None  # the pixels are in the ring; FrameReady names the slot
    welcome = session.welcome(10.0, "explicit-fill").welcome
    assert welcome.shared_memory.path == str(ring) and len(welcome.session_secret) == 32
    assert ring.exists()
    session.close("done")
    assert not ring.exists() and sink.closed and session.freed


def test_begin_close_does_not_wait_and_finish_close_frees_once(scene):
    release = threading.Event()
    entered = threading.Event()

    class Stuck(ExplicitGenerator):
        def open(self, scene, width, height):
            inner = super().open(scene, width, height)
            plain = inner.generate_block

            def stuck(requests: Sequence[FrameRequest]) -> list[np.ndarray]:
                entered.set()
                release.wait(30)
                return plain(requests)

            inner.generate_block = stuck  # type: ignore[method-assign]
            return inner

    session, sink = _session(scene, generator=Stuck())
    session.submit_pose(_pose(1))
    assert entered.wait(10)
    notice = pb.BackendMessage(error=pb.Error(code=pb.ERROR_CODE_TIMEOUT, fatal=True))
    assert session.begin_close("test", notice) is True  # returns while the block is still stuck
    assert session.closed and not session.freed and session.close_reason == "test"
    assert sink.of("error")[0][0].error.code == pb.ERROR_CODE_TIMEOUT
    assert session.begin_close("again") is False  # idempotent: the first reason stays
    release.set()
    session.finish_close()
    session.finish_close()
    assert session.freed and sink.closed and session.close_reason == "test"


def test_attach_moves_the_frames_to_another_sink(scene):
    session, first = _session(scene)
    try:
        second = Sink()
        session.attach(second)
        session.submit_pose(_pose(1))
        second.wait("frame", 1)
        assert not first.of("frame")
    finally:
        session.close()


def test_a_session_that_cannot_keep_its_fps_says_so_once(scene):
    """A gate held by someone else makes every block wait: the session reports overload, non-fatal, once."""

    class Slow(ExplicitGenerator):
        def open(self, scene, width, height):
            inner = super().open(scene, width, height)
            plain = inner.generate_block

            def slow(requests: Sequence[FrameRequest]) -> list[np.ndarray]:
                threading.Event().wait(0.1)  # 3 frame intervals at 30 fps
                return plain(requests)

            inner.generate_block = slow  # type: ignore[method-assign]
            return inner

    session, sink = _session(scene, generator=Slow(), gate=FairGate(1))
    session.stats.opened -= 10  # past the grace period
    try:
        seq = 0
        while not sink.of("error"):
            seq += 1
            session.submit_pose(_pose(seq))
            sink.wait("frame", len(sink.of("frame")) + 1)
        for _ in range(3):
            seq += 1
            session.submit_pose(_pose(seq))
            sink.wait("frame", len(sink.of("frame")) + 1)
        errors = [m.error for m, _ in sink.of("error")]
        assert [(e.code, e.fatal) for e in errors] == [(pb.ERROR_CODE_OVERLOADED, False)]
        assert session.overloaded and session.load > 1.0
    finally:
        session.close()
