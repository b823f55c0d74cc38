"""Attaching to and taking over sessions (Hello.session_id + session_secret), on a live backend.

gRPC: the lifecycle of a session made by OpenSession, as bridge.proto documents it at OpenSession and
Stream. Engine channel: a second real ZeroMQ DEALER peer can take a session over only with the secret,
and the secret never reaches the backend's log.
"""

from __future__ import annotations

import logging
import queue
import time

import grpc
import pytest
import zmq

from starbridge.protocol import bridge_pb2 as bpb
from starbridge.protocol import bridge_pb2_grpc
from starbridge.protocol import engine_pb2 as pb
from starbridge.server.app import Backend
from starbridge.transport.version import PROTOCOL_MAJOR, PROTOCOL_MINOR

# ---------------------------------------------------------------- helpers


def _hello(**fields) -> pb.Hello:
    fields.setdefault("protocol", pb.ProtocolVersion(major=PROTOCOL_MAJOR, minor=PROTOCOL_MINOR))
    fields.setdefault("width", 96)
    fields.setdefault("height", 64)
    fields.setdefault("engine_name", "pytest-attach")
    return pb.Hello(**fields)


def _pose(seq: int) -> pb.EngineMessage:
    p = pb.Pose()
    p.rotation.w = 1.0
    return pb.EngineMessage(pose=pb.CameraPose(sequence=seq, engine_time_us=seq, pose=p, vertical_fov_deg=60))


def _notice(message: pb.BackendMessage) -> bool:
    """A non-fatal OVERLOADED Error: the backend says it shares too few cores (a busy test machine)."""
    return message.WhichOneof("body") == "error" and message.error.code == pb.ERROR_CODE_OVERLOADED


def _wait_for(predicate, timeout_s: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Stream:
    """One gRPC Stream call the test drives: requests are queued, responses read with a deadline."""

    def __init__(self, stub: bridge_pb2_grpc.BridgeStub, timeout_s: float = 15.0) -> None:
        self._requests: queue.Queue[pb.EngineMessage | None] = queue.Queue()
        self.responses = stub.Stream(self._iterate(), timeout=timeout_s)
        self.sequence = 0

    def _iterate(self):
        while (m := self._requests.get()) is not None:
            yield m

    def send(self, message: pb.EngineMessage) -> None:
        self._requests.put(message)

    def pose(self) -> None:
        self.sequence += 1
        self.send(_pose(self.sequence))

    def next_message(self) -> bpb.StreamResponse:
        """The next response that is not a frame (nor an OVERLOADED notice)."""
        while (item := next(self.responses)).message.WhichOneof("body") == "frame" or _notice(item.message):
            pass
        return item

    def hello(self, **fields) -> pb.BackendMessage:
        self.send(pb.EngineMessage(hello=_hello(**fields)))
        return self.next_message().message

    def attach(self, welcome: pb.Welcome) -> pb.Welcome:
        reply = self.hello(session_id=welcome.session_id, session_secret=welcome.session_secret)
        assert reply.WhichOneof("body") == "welcome", reply
        assert reply.welcome.session_id == welcome.session_id
        return reply.welcome

    def frames(self, n: int) -> list[bpb.StreamResponse]:
        """Pose and collect n frames; any Error fails."""
        out = []
        while len(out) < n:
            self.pose()
            item = next(self.responses)
            if _notice(item.message):
                continue
            assert item.message.WhichOneof("body") == "frame", item.message
            out.append(item)
        return out

    def goodbye(self) -> None:
        self.send(pb.EngineMessage(goodbye=pb.Goodbye(reason="pytest done")))

    def half_close(self) -> None:
        """End the requests without Goodbye (what a client does when it just stops)."""
        self._requests.put(None)

    def rest(self) -> list[bpb.StreamResponse]:
        """The remaining responses until the call ends, which it must with status OK."""
        rest = list(self.responses)
        assert self.responses.code() == grpc.StatusCode.OK, self.responses.details()
        return rest

    def ends_after_one_fatal(self, code: int) -> pb.Error:
        """The rest of the call: frames (and non-fatal notices) at most, then exactly one fatal Error with
        `code` as the last message, then the end (OK)."""
        rest = self.rest()
        fatal = [r.message.error for r in rest if r.message.WhichOneof("body") == "error" and r.message.error.fatal]
        assert len(fatal) == 1 and rest[-1].message.WhichOneof("body") == "error" and rest[-1].message.error.fatal, rest
        assert fatal[0].code == code, fatal[0]
        return fatal[0]

    def close(self) -> None:
        self._requests.put(None)
        self.responses.cancel()


@pytest.fixture
def stub(backend: Backend):
    with grpc.insecure_channel(backend.grpc_address) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield bridge_pb2_grpc.BridgeStub(ch)


@pytest.fixture
def streams(stub):
    """Factory of Stream calls; all are cancelled at teardown."""
    made: list[Stream] = []

    def make(timeout_s: float = 15.0) -> Stream:
        s = Stream(stub, timeout_s)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def _listed(stub) -> set[str]:
    return {s.session_id for s in stub.ListSessions(bpb.ListSessionsRequest(), timeout=5).sessions}


def _stats(stub, session_id: str) -> bpb.SessionStats:
    return stub.GetSessionStats(bpb.GetSessionStatsRequest(session_id=session_id), timeout=5)


# ---------------------------------------------------------------- gRPC: OpenSession + Stream


def test_open_session_nobody_attaches_is_reaped(stub, streams):
    """A session made by OpenSession is closed after the heartbeat timeout (2 s here) if no Stream attaches."""
    welcome = stub.OpenSession(_hello(), timeout=5)
    assert welcome.heartbeat_timeout_s == 2.0
    assert welcome.session_id in _listed(stub)
    assert _wait_for(lambda: welcome.session_id not in _listed(stub), timeout_s=8.0)
    with pytest.raises(grpc.RpcError) as info:
        _stats(stub, welcome.session_id)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    late = streams(timeout_s=8)
    late.send(pb.EngineMessage(hello=_hello(session_id=welcome.session_id, session_secret=welcome.session_secret)))
    late.ends_after_one_fatal(pb.ERROR_CODE_NO_SESSION)


def test_attach_later_stats_and_goodbye(stub, streams):
    """A Stream attaches to an OpenSession session, gets its frames, the stats count them, Goodbye closes it."""
    welcome = stub.OpenSession(_hello(transport=pb.FRAME_TRANSPORT_INLINE, client_label="attach"), timeout=5)
    time.sleep(0.5)  # attaching later than OpenSession, within the heartbeat timeout
    stream = streams()
    attached = stream.attach(welcome)
    assert (attached.width, attached.height) == (96, 64) and attached.session_secret == welcome.session_secret
    frames = stream.frames(6)
    assert all(len(f.pixels) == 96 * 64 * 4 for f in frames)
    stats = _stats(stub, welcome.session_id)  # while attached
    assert stats.client_label == "attach" and stats.channel == "grpc"
    assert stats.frames_sent >= 6 and stats.poses_received >= 6
    stream.goodbye()
    rest = stream.rest()
    assert all(r.message.WhichOneof("body") == "frame" for r in rest)
    assert _wait_for(lambda: welcome.session_id not in _listed(stub), timeout_s=5.0)


def test_reattach_takes_over(stub, streams, backend: Backend):
    """A second Stream with the secret takes the session over: the first one's next message gets a fatal
    NO_SESSION and its call ends, without closing the session, which keeps serving the second."""
    welcome = stub.OpenSession(_hello(), timeout=5)
    first, second = streams(), streams()
    first.attach(welcome)
    first.frames(3)
    second.attach(welcome)
    second.frames(3)
    first.pose()
    error = first.ends_after_one_fatal(pb.ERROR_CODE_NO_SESSION)
    assert "send Hello" in error.message
    time.sleep(0.3)  # the first stream's end has been handled by now
    assert welcome.session_id in _listed(stub)
    second.frames(5)
    assert _stats(stub, welcome.session_id).frames_sent >= 11  # one session all along, both streams' frames
    second.goodbye()
    second.rest()
    assert _wait_for(lambda: not backend.manager.sessions(), timeout_s=5.0)


def test_stream_end_without_goodbye(stub, streams):
    """Without Goodbye: an OpenSession session stays open for re-attach (until the heartbeat timeout);
    a session made by the Stream's own Hello is closed at once."""
    welcome = stub.OpenSession(_hello(), timeout=5)
    first = streams()
    first.attach(welcome)
    first.frames(2)
    first.half_close()  # no Goodbye
    first.rest()
    time.sleep(0.3)
    assert welcome.session_id in _listed(stub)
    second = streams()
    second.attach(welcome)  # re-attach after the first stream went away
    second.frames(3)
    second.responses.cancel()  # the client cancels: also no Goodbye
    time.sleep(0.5)
    assert welcome.session_id in _listed(stub)  # still there for re-attach...
    t0 = time.monotonic()
    assert _wait_for(lambda: welcome.session_id not in _listed(stub), timeout_s=8.0)  # ...until the timeout
    assert time.monotonic() - t0 > 0.5

    own = streams()
    reply = own.hello()
    own.frames(2)
    own.half_close()
    own.rest()
    # closed at once, well before the 2 s heartbeat timeout would reap it
    assert _wait_for(lambda: reply.welcome.session_id not in _listed(stub), timeout_s=1.5)


def test_close_session_ends_the_attached_stream(stub, streams):
    """CloseSession while a Stream is attached: the Stream gets a fatal Error naming CloseSession, then its end."""
    welcome = stub.OpenSession(_hello(), timeout=5)
    stream = streams()
    stream.attach(welcome)
    stream.frames(2)
    stub.CloseSession(bpb.CloseSessionRequest(session_id=welcome.session_id), timeout=10)
    assert welcome.session_id not in _listed(stub)  # CloseSession answers once the session is gone
    error = stream.ends_after_one_fatal(pb.ERROR_CODE_NO_SESSION)
    assert "CloseSession" in error.message and welcome.session_id in error.message

    own = streams()  # the same for a session made by the Stream's own Hello
    session_id = own.hello().welcome.session_id
    own.frames(1)
    stub.CloseSession(bpb.CloseSessionRequest(session_id=session_id), timeout=10)
    assert "CloseSession" in own.ends_after_one_fatal(pb.ERROR_CODE_NO_SESSION).message


# ---------------------------------------------------------------- engine channel: takeover


class Engine:
    """A bare ZeroMQ DEALER peer speaking the envelope protocol, as a plugin does."""

    def __init__(self, endpoint: str) -> None:
        self.socket = zmq.Context.instance().socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.sequence = 0

    def send(self, message: pb.EngineMessage) -> None:
        self.socket.send(message.SerializeToString())

    def recv(self, timeout_s: float = 5.0) -> pb.BackendMessage:
        """The next message, OVERLOADED notices skipped."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.socket.poll(max(0, int((deadline - time.monotonic()) * 1000))):
                raise TimeoutError(f"no message from the backend within {timeout_s} s")
            parts = self.socket.recv_multipart()
            msg = pb.BackendMessage()
            msg.ParseFromString(parts[0])
            if not _notice(msg):
                return msg

    def hello(self, **fields) -> pb.BackendMessage:
        fields.setdefault("transport", pb.FRAME_TRANSPORT_INLINE)
        self.send(pb.EngineMessage(hello=_hello(**fields)))
        while (reply := self.recv()).WhichOneof("body") == "frame":
            pass
        return reply

    def pose(self) -> None:
        self.sequence += 1
        self.send(_pose(self.sequence))

    def frames(self, n: int, timeout_s: float = 10.0) -> list[pb.FrameReady]:
        """Pose and collect n FrameReady; any Error fails."""
        out: list[pb.FrameReady] = []
        deadline = time.monotonic() + timeout_s
        while len(out) < n:
            assert time.monotonic() < deadline, f"got {len(out)} of {n} frames"
            self.pose()
            if self.socket.poll(30):
                msg = self.recv()
                assert msg.WhichOneof("body") == "frame", msg
                out.append(msg.frame)
        return out

    def drain(self, quiet_s: float = 0.3) -> list[pb.BackendMessage]:
        """Everything that arrives until nothing has for `quiet_s`."""
        out = []
        while self.socket.poll(int(quiet_s * 1000)):
            parts = self.socket.recv_multipart()
            msg = pb.BackendMessage()
            msg.ParseFromString(parts[0])
            out.append(msg)
        return out

    def close(self) -> None:
        self.socket.close(0)


@pytest.fixture
def engines(backend: Backend):
    made: list[Engine] = []

    def make() -> Engine:
        e = Engine(backend.engine_endpoint)
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()


def test_engine_takeover_needs_the_secret(engines, backend: Backend, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.DEBUG, logger="starbridge")
    a, b = engines(), engines()
    welcome = a.hello().welcome
    session_id, secret = welcome.session_id, welcome.session_secret
    assert len(secret) == 32
    a.frames(3)
    other = engines().hello().welcome  # another session, whose secret is not this one's
    assert other.session_secret != secret

    # B without the secret, with a wrong one, with another session's: refused, A undisturbed.
    for wrong in ("", "0" * 32, other.session_secret, secret[:-1]):
        reply = b.hello(session_id=session_id, session_secret=wrong)
        assert reply.WhichOneof("body") == "error", reply
        assert reply.error.code == pb.ERROR_CODE_UNAUTHENTICATED and reply.error.fatal
        assert reply.error.field == "hello.session_secret" and secret not in reply.error.message
        frames = a.frames(3)  # A still gets its frames, numbered on
        assert frames[-1].frame_sequence > 3
    assert not [m for m in b.drain() if m.WhichOneof("body") == "frame"]  # B got none of A's frames
    assert backend.manager.get(session_id).spec.engine_name == "pytest-attach"

    # With the right secret B takes over: frames go to B; A's next pose gets a fatal NO_SESSION.
    reply = b.hello(session_id=session_id, session_secret=secret)
    assert reply.WhichOneof("body") == "welcome" and reply.welcome.session_id == session_id
    b.frames(3)
    a.drain()  # frames A had in flight before the takeover
    a.pose()
    error = a.recv()
    assert error.WhichOneof("body") == "error", error
    assert error.error.code == pb.ERROR_CODE_NO_SESSION and error.error.fatal
    more = b.frames(3)
    assert not [m for m in a.drain() if m.WhichOneof("body") == "frame"]  # nothing more for A

    # A's Goodbye after that does not close B's session.
    a.send(pb.EngineMessage(goodbye=pb.Goodbye(reason="A leaves")))
    reply = a.recv()
    assert reply.WhichOneof("body") == "error" and reply.error.code == pb.ERROR_CODE_NO_SESSION
    time.sleep(0.3)
    assert backend.manager.get(session_id).session_id == session_id
    later = b.frames(3)
    assert later[-1].frame_sequence > more[-1].frame_sequence

    # B's own Goodbye closes it.
    b.send(pb.EngineMessage(goodbye=pb.Goodbye(reason="B leaves")))
    assert _wait_for(lambda: session_id not in {s.session_id for s in backend.manager.sessions()}, 5.0)

    # The secret never reaches the log (the capture did see the session's life).
    log_text = caplog.text
    assert f"session {session_id} opened" in log_text and f"session {session_id} closed" in log_text
    assert secret not in log_text and other.session_secret not in log_text
    for record in caplog.records:
        assert secret not in record.getMessage()
