"""The gRPC API on a real server on loopback: every RPC, with its error cases; health and reflection."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from starbridge import __version__
from starbridge.protocol import bridge_pb2 as bpb
from starbridge.protocol import bridge_pb2_grpc
from starbridge.protocol import engine_pb2 as pb
from starbridge.server.app import Backend
from starbridge.transport.version import PROTOCOL_MAJOR, PROTOCOL_MINOR


def _hello(**fields) -> pb.Hello:
    fields.setdefault("protocol", pb.ProtocolVersion(major=PROTOCOL_MAJOR, minor=PROTOCOL_MINOR))
    fields.setdefault("width", 96)
    fields.setdefault("height", 64)
    fields.setdefault("engine_name", "pytest-grpc")
    return pb.Hello(**fields)


def _pose(seq: int, rotation=(0.0, 0.0, 0.0, 1.0)) -> pb.EngineMessage:
    p = pb.Pose()
    p.rotation.x, p.rotation.y, p.rotation.z, p.rotation.w = rotation
    return pb.EngineMessage(pose=pb.CameraPose(sequence=seq, engine_time_us=seq, pose=p, vertical_fov_deg=60))


@pytest.fixture
def channel(backend: Backend):
    with grpc.insecure_channel(backend.grpc_address) as ch:
        grpc.channel_ready_future(ch).result(timeout=10)
        yield ch


@pytest.fixture
def stub(channel) -> bridge_pb2_grpc.BridgeStub:
    return bridge_pb2_grpc.BridgeStub(channel)


def _code(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        result = call()
        if hasattr(result, "__iter__") and not isinstance(result, bpb.SceneInfo):
            list(result)
    return info.value.code()


def test_server_info(stub, backend: Backend):
    info = stub.GetServerInfo(bpb.GetServerInfoRequest(), timeout=5)
    assert info.protocol.major == PROTOCOL_MAJOR and info.backend_version == __version__
    assert info.generator == "explicit-fill" and info.engine_endpoint == backend.engine_endpoint
    assert info.default_scene_id == "demo" and (info.default_width, info.default_height) == (512, 288)
    assert not info.token_required


def test_list_and_describe_scenes(stub):
    scenes = stub.ListScenes(bpb.ListScenesRequest(), timeout=5).scenes
    demo = next(s for s in scenes if s.scene_id == "demo")
    assert demo.frame_count > 0 and demo.fps > 0 and demo.duration_s == pytest.approx(demo.frame_count / demo.fps)
    assert demo.source == "demo" and demo.depth_source == "exact" and not demo.rotation_only
    assert demo.size_bytes > 0 and 1 < demo.vertical_fov_deg < 179
    assert stub.DescribeScene(bpb.DescribeSceneRequest(scene_id="demo"), timeout=5) == demo
    assert _code(lambda: stub.DescribeScene(bpb.DescribeSceneRequest(scene_id="nope"), timeout=5)) == (
        grpc.StatusCode.NOT_FOUND
    )


@pytest.fixture
def private_backend(make_backend, demo_store: Path, tmp_path: Path) -> Backend:
    """A backend with its own store (a copy of the demo), for tests that import and delete scenes."""
    store = tmp_path / "scenes"
    shutil.copytree(demo_store, store)
    # Its sessions outlive CLI subprocesses started meanwhile (seconds each on a loaded machine) with no pose.
    return make_backend(store_root=store, heartbeat_timeout_s=300.0)


def test_import_describe_delete(private_backend: Backend, sample_video: Path):
    video = str(sample_video)
    with grpc.insecure_channel(private_backend.grpc_address) as ch:
        stub = bridge_pb2_grpc.BridgeStub(ch)
        request = bpb.ImportSceneRequest(video_path=video, scene_id="bunny", max_side=96, max_frames=4)
        updates = list(stub.ImportScene(request, timeout=60))
        assert updates[-1].stage == "done" and updates[-1].scene.scene_id == "bunny"
        assert any(u.stage != "done" for u in updates)  # progress came before the end
        scene = updates[-1].scene
        assert scene.frame_count == 4 and max(scene.width, scene.height) <= 96 and scene.rotation_only
        assert stub.DescribeScene(bpb.DescribeSceneRequest(scene_id="bunny"), timeout=5) == scene
        # importing again without overwrite is refused; nothing is lost
        assert _code(lambda: stub.ImportScene(request, timeout=60)) == grpc.StatusCode.INVALID_ARGUMENT
        assert stub.DescribeScene(bpb.DescribeSceneRequest(scene_id="bunny"), timeout=5).frame_count == 4
        # a shot the clip does not have (it is one shot) is refused with the clip's shots; nothing is written
        other = bpb.ImportSceneRequest(video_path=video, scene_id="bunny-2", max_side=96, max_frames=4, shot=2)
        with pytest.raises(grpc.RpcError) as info:
            list(stub.ImportScene(other, timeout=60))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "shot 2: the clip has 1 shot (1: frames 0-3)" in info.value.details()
        assert not private_backend.store.exists("bunny-2")

        # a session on the imported scene makes frames; the scene cannot be deleted meanwhile
        welcome = stub.OpenSession(_hello(scene_id="bunny"), timeout=5)
        assert welcome.scene_id == "bunny"
        code = _code(lambda: stub.DeleteScene(bpb.DeleteSceneRequest(scene_id="bunny"), timeout=5))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        # ... nor from another process: `starbridge scene delete` and `import --overwrite` on the same store
        store = str(private_backend.store.root)
        for argv in (["scene", "delete", "bunny"], ["scene", "import", video, "--id", "bunny", "--overwrite"]):
            cli = subprocess.run([sys.executable, "-m", "starbridge.cli", *argv, "--store", store],
                                 capture_output=True, text=True, timeout=120)  # fmt: skip
            assert cli.returncode == 1 and "in use by a running backend session" in cli.stderr, cli.stderr
            assert "Traceback" not in cli.stderr
        assert stub.DescribeScene(bpb.DescribeSceneRequest(scene_id="bunny"), timeout=5).frame_count == 4
        stub.CloseSession(bpb.CloseSessionRequest(session_id=welcome.session_id), timeout=5)

        stub.DeleteScene(bpb.DeleteSceneRequest(scene_id="bunny"), timeout=5)
        ids = [s.scene_id for s in stub.ListScenes(bpb.ListScenesRequest(), timeout=5).scenes]
        assert "bunny" not in ids and "demo" in ids
        assert _code(lambda: stub.DeleteScene(bpb.DeleteSceneRequest(scene_id="bunny"), timeout=5)) == (
            grpc.StatusCode.NOT_FOUND
        )
        assert _code(lambda: stub.DeleteScene(bpb.DeleteSceneRequest(scene_id="demo"), timeout=5)) == (
            grpc.StatusCode.FAILED_PRECONDITION
        )


def test_import_errors_leave_nothing(private_backend: Backend, tmp_path: Path, sample_video: Path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"this is not a video" * 100)
    with grpc.insecure_channel(private_backend.grpc_address) as ch:
        stub = bridge_pb2_grpc.BridgeStub(ch)
        for path in (str(bad), str(tmp_path / "missing.mp4"), ""):
            req = bpb.ImportSceneRequest(video_path=path, scene_id="broken")
            assert _code(lambda req=req: stub.ImportScene(req, timeout=30)) == grpc.StatusCode.INVALID_ARGUMENT
        # a lens and a field of view together, or an impossible lens: refused before decoding
        for fov, lens in ((50.0, 26.0), (0.0, 2.0)):
            req = bpb.ImportSceneRequest(video_path=str(sample_video), scene_id="broken", vertical_fov_deg=fov,
                                         lens_mm=lens, max_frames=4, max_side=96)  # fmt: skip
            try:
                list(stub.ImportScene(req, timeout=30))
                raise AssertionError("accepted")
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "lens_mm" in exc.details(), exc.details()
        ids = [s.scene_id for s in stub.ListScenes(bpb.ListScenesRequest(), timeout=5).scenes]
        assert ids == ["demo"]
    leftovers = [p.name for p in private_backend.store.root.iterdir() if p.name != "demo"]
    assert leftovers == []


def test_sessions_open_list_stats_close(stub, backend: Backend):
    welcome = stub.OpenSession(_hello(transport=pb.FRAME_TRANSPORT_INLINE, client_label="viewer"), timeout=5)
    assert welcome.session_id and (welcome.width, welcome.height) == (96, 64)
    listed = stub.ListSessions(bpb.ListSessionsRequest(), timeout=5).sessions
    assert [s.session_id for s in listed] == [welcome.session_id]
    stats = stub.GetSessionStats(bpb.GetSessionStatsRequest(session_id=welcome.session_id), timeout=5)
    assert stats.channel == "grpc" and stats.client_label == "viewer" and stats.fps_target == 30
    assert stats.playing and stats.speed == 1.0
    stub.CloseSession(bpb.CloseSessionRequest(session_id=welcome.session_id), timeout=5)
    assert not stub.ListSessions(bpb.ListSessionsRequest(), timeout=5).sessions
    for call in (
        lambda: stub.CloseSession(bpb.CloseSessionRequest(session_id=welcome.session_id), timeout=5),
        lambda: stub.GetSessionStats(bpb.GetSessionStatsRequest(session_id="nope"), timeout=5),
    ):
        assert _code(call) == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    "hello, code",
    [
        (_hello(protocol=pb.ProtocolVersion(major=PROTOCOL_MAJOR + 1)), grpc.StatusCode.FAILED_PRECONDITION),
        (_hello(scene_id="missing"), grpc.StatusCode.NOT_FOUND),
        (_hello(width=3), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_open_session_errors(stub, hello, code):
    assert _code(lambda: stub.OpenSession(hello, timeout=5)) == code


class _Requests:
    """A request iterator the test feeds while the stream runs."""

    def __init__(self) -> None:
        import queue

        self.queue: queue.Queue = queue.Queue()

    def put(self, message) -> None:
        self.queue.put(message)

    def end(self) -> None:
        self.queue.put(None)

    def __iter__(self):
        while (m := self.queue.get()) is not None:
            yield m


def test_stream_poses_in_frames_out(stub, backend: Backend):
    requests = _Requests()
    responses = stub.Stream(iter(requests), timeout=30)
    requests.put(pb.EngineMessage(hello=_hello()))
    first = next(responses)
    assert first.message.WhichOneof("body") == "welcome" and not first.pixels
    session_id = first.message.welcome.session_id

    requests.put(_pose(1, rotation=(0.0, 0.0, 0.0, 0.5)))  # not unit: a non-fatal error
    err = next(responses)
    assert err.message.error.code == pb.ERROR_CODE_INVALID_ARGUMENT and not err.message.error.fatal

    frames = []
    seq = 1
    while len(frames) < 5:
        seq += 1
        requests.put(_pose(seq))
        item = next(responses)
        if item.message.WhichOneof("body") == "frame":
            frames.append(item)
    image = np.frombuffer(frames[-1].pixels, np.uint8).reshape(64, 96, 4)
    assert (image[..., 3] == 255).all() and image[..., :3].std() > 10
    assert frames[-1].message.frame.width == 96 and frames[-1].message.frame.pose_sequence >= 2

    stats = stub.GetSessionStats(bpb.GetSessionStatsRequest(session_id=session_id), timeout=5)
    assert stats.frames_sent >= 5 and stats.poses_received >= 5

    requests.put(pb.EngineMessage(goodbye=pb.Goodbye(reason="done")))
    rest = list(responses)  # the stream ends after Goodbye
    assert all(r.message.WhichOneof("body") == "frame" for r in rest)
    deadline = time.monotonic() + 5
    while backend.manager.sessions() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not backend.manager.sessions()


def _rest(responses) -> list:
    """Everything the call still sends, until it ends; the call must end with status OK."""
    rest = list(responses)
    assert responses.code() == grpc.StatusCode.OK, responses.details()
    return rest


def _ends_after_one_fatal(responses, code) -> pb.Error:
    """The rest of a call: frames (and non-fatal notices, e.g. OVERLOADED) at most, then exactly one fatal
    Error with `code` as the last message, then the end (OK)."""
    rest = _rest(responses)
    fatal = [r.message.error for r in rest if r.message.WhichOneof("body") == "error" and r.message.error.fatal]
    assert len(fatal) == 1 and rest[-1].message.WhichOneof("body") == "error" and rest[-1].message.error.fatal, rest
    assert fatal[0].code == code, fatal[0]
    assert all(r.message.WhichOneof("body") in ("frame", "error") for r in rest)
    return fatal[0]


def test_stream_fatal_error_ends_the_call(stub, backend: Backend):
    """A message before Hello gets one fatal NO_SESSION; the call then ends (OK) instead of answering every
    later pose with another fatal Error."""
    requests = _Requests()
    responses = stub.Stream(iter(requests), timeout=8)
    try:
        for seq in range(1, 6):  # the client keeps posing, as an engine loop would
            requests.put(_pose(seq))
        error = _ends_after_one_fatal(responses, pb.ERROR_CODE_NO_SESSION)
        assert "before Hello" in error.message
    finally:
        requests.end()
    assert not backend.manager.sessions()


def test_stream_refused_hello_ends_the_call(stub, backend: Backend):
    """A refused Hello is fatal: its Error is the call's last message, and no session is made."""
    for hello, code in (
        (_hello(protocol=pb.ProtocolVersion(major=PROTOCOL_MAJOR + 1)), pb.ERROR_CODE_PROTOCOL_MISMATCH),
        (_hello(scene_id="missing"), pb.ERROR_CODE_UNKNOWN_SCENE),
        (_hello(session_id="nope"), pb.ERROR_CODE_NO_SESSION),
    ):
        requests = _Requests()
        responses = stub.Stream(iter(requests), timeout=8)
        try:
            requests.put(pb.EngineMessage(hello=hello))
            requests.put(_pose(1))  # not answered: the call is over
            _ends_after_one_fatal(responses, code)
        finally:
            requests.end()
    assert not backend.manager.sessions()


def test_stream_heartbeat_timeout_ends_the_call(stub, backend: Backend):
    """The session's fatal TIMEOUT (no message for the 2 s heartbeat timeout) is the call's last message."""
    requests = _Requests()
    responses = stub.Stream(iter(requests), timeout=10)
    try:
        requests.put(pb.EngineMessage(hello=_hello()))
        assert next(responses).message.WhichOneof("body") == "welcome"
        requests.put(_pose(1))  # then silence
        error = _ends_after_one_fatal(responses, pb.ERROR_CODE_TIMEOUT)
        assert "heartbeat" in error.message
    finally:
        requests.end()


def test_stream_must_start_with_hello_and_can_attach(stub):
    welcome = stub.OpenSession(_hello(), timeout=5)
    assert len(welcome.session_secret) == 32
    # No secret, or a wrong one: refused, fatal, and the call ends; the session is not disturbed.
    for secret in ("", "0" * 32):
        requests = _Requests()
        responses = stub.Stream(iter(requests), timeout=8)
        requests.put(pb.EngineMessage(hello=_hello(session_id=welcome.session_id, session_secret=secret)))
        refused = _ends_after_one_fatal(responses, pb.ERROR_CODE_UNAUTHENTICATED)
        assert refused.field == "hello.session_secret"
        requests.end()
    requests = _Requests()
    responses = stub.Stream(iter(requests), timeout=30)
    requests.put(pb.EngineMessage(hello=_hello(session_id=welcome.session_id, session_secret=welcome.session_secret)))
    attached = next(responses)
    assert attached.message.welcome.session_id == welcome.session_id
    requests.put(_pose(2))
    while (item := next(responses)).message.WhichOneof("body") != "frame":
        pass
    assert item.pixels
    requests.end()
    _rest(responses)


def test_stream_bad_quaternion_nan(stub):
    requests = _Requests()
    responses = stub.Stream(iter(requests), timeout=30)
    requests.put(pb.EngineMessage(hello=_hello()))
    assert next(responses).message.WhichOneof("body") == "welcome"
    requests.put(_pose(1, rotation=(math.nan, 0.0, 0.0, 1.0)))
    assert next(responses).message.error.field == "pose.pose.rotation"
    requests.end()
    list(responses)


def test_health_and_reflection(channel):
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "starbridge.v1.Bridge"):
        status = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    answer = next(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in answer.list_services_response.service}
    assert {"starbridge.v1.Bridge", "grpc.health.v1.Health"} <= names
