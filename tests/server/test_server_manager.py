"""The session manager on its own: Hello validation, limits, closing off the caller's thread, reaping, shutdown."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from test_server_session import Sink

from starbridge.errors import (
    InvalidArgument,
    NoSession,
    Overloaded,
    ProtocolMismatch,
    ShuttingDown,
    Unauthenticated,
    UnknownScene,
)
from starbridge.protocol import engine_pb2 as pb
from starbridge.runtime.explicit import ExplicitGenerator
from starbridge.scenes.store import SceneStore
from starbridge.server.config import ServerConfig
from starbridge.server.manager import Connection, SessionManager
from starbridge.transport.defaults import MAX_SIDE
from starbridge.transport.version import PROTOCOL_MAJOR, PROTOCOL_MINOR


def _hello(**fields) -> pb.Hello:
    fields.setdefault("protocol", pb.ProtocolVersion(major=PROTOCOL_MAJOR, minor=PROTOCOL_MINOR))
    fields.setdefault("width", 64)
    fields.setdefault("height", 36)
    fields.setdefault("transport", pb.FRAME_TRANSPORT_INLINE)
    return pb.Hello(**fields)


@pytest.fixture
def manager(demo_store: Path):
    m = SessionManager(
        ServerConfig(store_root=demo_store, max_sessions=2, heartbeat_timeout_s=1.0, token=""),
        SceneStore(demo_store),
        ExplicitGenerator(),
    )
    yield m
    m.shutdown(5.0)


def test_defaults_fill_in_and_the_spec_is_kept(manager: SessionManager):
    s = manager.open(_hello(width=0, height=0, fps=0, transport=0), "engine", Sink())
    assert (s.spec.width, s.spec.height, s.spec.fps) == (512, 288, 30.0)
    assert s.spec.transport == pb.FRAME_TRANSPORT_SHARED_MEMORY and s.spec.scene_id == "demo"
    g = manager.open(_hello(transport=0), "grpc", Sink())
    assert g.spec.transport == pb.FRAME_TRANSPORT_INLINE  # gRPC clients may be remote


@pytest.mark.parametrize(
    ("fields", "error", "field"),
    [
        ({"width": 8}, InvalidArgument, "hello.width"),
        ({"height": MAX_SIDE + 1}, InvalidArgument, "hello.height"),
        ({"fps": 1000.0}, InvalidArgument, "hello.fps"),
        ({"fps": float("nan")}, InvalidArgument, "hello.fps"),
        ({"transport": 7}, InvalidArgument, "hello.transport"),
        ({"protocol": pb.ProtocolVersion(major=PROTOCOL_MAJOR + 1)}, ProtocolMismatch, "hello.protocol"),
        ({"scene_id": "nope"}, UnknownScene, "scene_id"),
    ],
)
def test_bad_hellos_name_the_field(manager: SessionManager, fields, error, field):
    with pytest.raises(error) as err:
        manager.open(_hello(**fields), "engine", Sink())
    assert err.value.field == field
    assert not manager.sessions()


def test_max_sessions_and_token(demo_store: Path):
    m = SessionManager(ServerConfig(store_root=demo_store, max_sessions=1, token="t0k"), SceneStore(demo_store),
                       ExplicitGenerator())  # fmt: skip
    try:
        with pytest.raises(Unauthenticated):
            m.open(_hello(token="wrong"), "engine", Sink())
        m.open(_hello(token="t0k"), "engine", Sink())
        with pytest.raises(Overloaded, match="max_sessions 1"):
            m.open(_hello(token="t0k"), "engine", Sink())
    finally:
        m.shutdown(5.0)


def test_close_returns_at_once_and_frees_in_the_background(manager: SessionManager):
    s = manager.open(_hello(), "engine", Sink())
    manager.close(s.session_id, "bye")
    assert s.closed
    with pytest.raises(NoSession):
        manager.get(s.session_id)  # closed sessions are not handed out
    assert manager.wait_closed(5.0)
    assert s.freed and not manager.sessions()
    with pytest.raises(NoSession):
        manager.close(s.session_id, "again")


def test_reap_closes_silent_sessions_with_a_timeout_error(manager: SessionManager):
    sink = Sink()
    s = manager.open(_hello(), "engine", sink)
    assert manager.reap(now=s.last_message + 0.5) == []
    assert manager.reap(now=s.last_message + 1.5) == [s.session_id]
    assert manager.wait_closed(5.0) and not manager.sessions()
    (msg, _), *_ = sink.of("error")
    assert msg.error.code == pb.ERROR_CODE_TIMEOUT and msg.error.fatal


def test_scene_in_use(manager: SessionManager):
    assert not manager.scene_in_use("demo")
    manager.open(_hello(), "engine", Sink())
    assert manager.scene_in_use("demo")


def test_shutdown_announces_then_refuses_then_closes_everything(manager: SessionManager):
    sinks = [Sink(), Sink()]
    sessions = [manager.open(_hello(), "engine", k) for k in sinks]
    manager.announce_shutdown()
    for k in sinks:
        (msg, _), *_ = k.of("error")
        assert msg.error.code == pb.ERROR_CODE_SHUTTING_DOWN and not msg.error.fatal
    with pytest.raises(ShuttingDown):
        manager.open(_hello(), "engine", Sink())
    t0 = time.monotonic()
    manager.shutdown(5.0)
    assert all(s.freed for s in sessions) and not manager.sessions()
    assert time.monotonic() - t0 < 5.0


def test_connection_speaks_the_protocol(manager: SessionManager):
    sink = Sink()
    conn = Connection(manager, "engine", sink)
    reply = conn.handle(pb.EngineMessage(pose=pb.CameraPose()))
    assert reply is not None and reply.error.code == pb.ERROR_CODE_NO_SESSION and reply.error.fatal
    assert conn.handle(pb.EngineMessage()).error.code == pb.ERROR_CODE_MALFORMED
    welcome = conn.handle(pb.EngineMessage(hello=_hello()))
    assert welcome is not None and welcome.welcome.session_id and conn.has_session
    bad = conn.handle(pb.EngineMessage(pose=pb.CameraPose(sequence=1)))
    assert bad is not None and bad.error.code == pb.ERROR_CODE_INVALID_ARGUMENT and not bad.error.fatal
    assert conn.handle(pb.EngineMessage(goodbye=pb.Goodbye(reason="done"))) is None
    assert not conn.has_session and manager.wait_closed(5.0) and not manager.sessions()
