"""The viewer's gateway over a real WebSocket (the `websockets` client) against a live backend: the page's files,
its API, sessions through the same manager as the engine channel, typed errors, frames and their coverage mask."""

from __future__ import annotations

import http.client
import io
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from starbridge.geometry.camera import Intrinsics
from starbridge.geometry.conventions import pose_to_matrix
from starbridge.runtime.explicit import ExplicitGenerator
from starbridge.runtime.generator import FrameRequest
from starbridge.scenes.store import SceneStore
from starbridge.server.app import Backend
from starbridge.server.config import CannotBind
from starbridge.viewer.frames import unpack_frame

sys.path.insert(0, str(Path(__file__).resolve().parent))

from viewer_util import POSE, mean_abs_diff, viewer_backend  # noqa: E402


def ws_url(backend: Backend) -> str:
    return backend.viewer.url.replace("http://", "ws://") + "ws"


def recv_json(ws) -> dict:
    """The next text message; frames in between skipped, and the OVERLOADED notice a session sends once when a busy
    machine cannot keep its frame rate."""
    while True:
        message = ws.recv(timeout=30)
        if isinstance(message, str):
            parsed = json.loads(message)
            if parsed.get("code") != "OVERLOADED":
                return parsed


def recv_frame(ws, after: int = 0) -> tuple[dict, bytes, bytes]:
    """The next frame answering a pose later than sequence `after`. Text messages in between must be none but the
    OVERLOADED notice a session sends once when a busy machine cannot keep its frame rate."""
    while True:
        message = ws.recv(timeout=30)
        if isinstance(message, str):
            assert json.loads(message)["code"] == "OVERLOADED", message
            continue
        header, image, mask = unpack_frame(message)
        if header["pose_seq"] > after:
            return header, image, mask


def frame_at(ws, seq: int, rotation: list[float]) -> tuple[int, dict, bytes, bytes]:
    """Send the pose with `rotation` (sequence `seq` on) until a frame is generated for it exactly (the session
    predicts poses from their track: the first frames after a turn may show a pose on the way); (next seq, frame)."""
    for _ in range(50):
        ws.send(pose(seq, rotation=rotation))
        header, image, mask = recv_frame(ws, after=seq - 1)
        seq += 1
        if np.allclose(header["rotation"], rotation, atol=1e-6):
            return seq, header, image, mask
    raise AssertionError(f"no frame for rotation {rotation}")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url) as r:
        return json.load(r)


def pose(seq: int, **changes) -> str:
    return json.dumps({**POSE, "seq": seq, **changes})


def test_page_files_and_api(make_backend):
    backend = make_backend(viewer_port=0)
    base = backend.viewer.url
    with urllib.request.urlopen(base) as r:
        assert r.headers["Content-Type"].startswith("text/html") and b'<canvas id="view"' in r.read()
    for path in ("js/main.js", "js/camera.js", "js/link.js", "js/view.js", "js/stats.js"):
        with urllib.request.urlopen(base + path) as r:  # module scripts need a JavaScript MIME type
            assert r.headers["Content-Type"].startswith("text/javascript"), path
    info = get_json(base + "api/info")
    assert info["generators"] == [backend.generator.name] and info["default_scene"] == "demo"
    scenes = get_json(base + "api/scenes")["scenes"]
    demo = next(s for s in scenes if s["id"] == "demo")
    assert demo["summary"].startswith("scene         demo (") and demo["duration_s"] > 0 and 20 < demo["fov"] < 120
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(base + "../../etc/passwd")
    missing.value.close()
    assert missing.value.code == 404


def test_a_session_through_the_gateway_gives_the_backends_frame(make_backend, demo_store):
    backend = make_backend(viewer_port=0, default_width=160, default_height=96)
    with connect(ws_url(backend)) as ws:
        ws.send(json.dumps({"type": "hello", "coverage": True}))
        welcome = recv_json(ws)
        assert welcome["type"] == "welcome" and (welcome["width"], welcome["height"]) == (160, 96)
        assert welcome["generator"] == "explicit-fill" and welcome["scene"] == "demo"
        assert [s.spec.client_label for s in backend.manager.sessions()] == ["viewer"]  # the same manager
        ws.send(json.dumps({"type": "time", "action": "pause"}))
        ws.send(json.dumps({"type": "time", "action": "seek", "time_s": 1.0}))
        ws.send(pose(1))
        header, image, mask = recv_frame(ws)
    assert header["encoding"] == "raw" and header["scene_time_s"] == pytest.approx(1.0, abs=1e-3)
    pixels = np.frombuffer(image, np.uint8).reshape(96, 160, 4)
    # The same frame the generator makes for that pose and time (a fresh session: no memory yet; the clip's own
    # camera sees nearly everything, so memory could not differ by much).
    scene = SceneStore(demo_store).get("demo")
    session = ExplicitGenerator().open(scene, 160, 96)
    c2w = pose_to_matrix(header["position"], header["rotation"])
    reference = session.render(FrameRequest(c2w, Intrinsics.from_fov(header["fov"], 160, 96), header["scene_time_s"]))
    assert mean_abs_diff(pixels[..., :3], reference[..., :3]) < 2.0
    observed = np.unpackbits(np.frombuffer(mask, np.uint8))[: 160 * 96].reshape(96, 160).astype(bool)
    assert np.array_equal(observed, session.observed)


def test_coverage_mask_marks_what_no_reference_frame_saw(make_backend):
    backend = make_backend(viewer_port=0, default_width=160, default_height=96)
    turned = [0.0, np.sin(np.radians(60)), 0.0, np.cos(np.radians(60))]  # 120° to the left: behind the clip
    with connect(ws_url(backend)) as ws:
        ws.send(json.dumps({"type": "hello", "coverage": True}))
        assert recv_json(ws)["type"] == "welcome"
        seq, _, _, ahead = frame_at(ws, 1, POSE["rotation"])
        seq, _, _, behind = frame_at(ws, seq, turned)
        ws.send(json.dumps({"type": "options", "coverage": False}))
        _, header, _, none = frame_at(ws, seq, POSE["rotation"])

    def seen(mask: bytes) -> float:
        return float(np.unpackbits(np.frombuffer(mask, np.uint8))[: 160 * 96].mean())

    assert seen(ahead) > 0.95 and seen(behind) < seen(ahead) - 0.2
    assert header["mask_bytes"] == 0 and none == b""


def test_compressed_frames_when_asked(make_backend):
    backend = make_backend(viewer_port=0, default_width=160, default_height=96)
    with connect(ws_url(backend)) as ws:
        ws.send(json.dumps({"type": "hello", "encoding": "raw"}))
        assert recv_json(ws)["type"] == "welcome"
        ws.send(json.dumps({"type": "time", "action": "pause"}))
        ws.send(pose(1))
        _, raw, _ = recv_frame(ws)
        expected = np.frombuffer(raw, np.uint8).reshape(96, 160, 4)[..., :3]
        for seq, encoding in ((2, "jpeg"), (3, "webp")):
            ws.send(json.dumps({"type": "options", "encoding": encoding}))
            ws.send(pose(seq))
            header, image, _ = recv_frame(ws, after=seq - 1)
            assert header["encoding"] == encoding and len(image) < len(raw) / 3
            decoded = np.asarray(Image.open(io.BytesIO(image)).convert("RGB"))
            assert mean_abs_diff(decoded, expected) < 6.0, encoding


def test_errors_are_the_engine_protocols_typed_errors(make_backend):
    backend = make_backend(viewer_port=0, token="s3cret")
    with connect(ws_url(backend)) as ws:
        ws.send("not json")
        assert recv_json(ws) == {"type": "error", "code": "MALFORMED", "message": "could not parse the message as JSON",
                                 "field": "", "fatal": False}  # fmt: skip
        ws.send(pose(1))
        error = recv_json(ws)
        assert (error["code"], error["fatal"]) == ("NO_SESSION", True)
        ws.send(json.dumps({"type": "hello"}))
        error = recv_json(ws)
        assert (error["code"], error["field"], error["fatal"]) == ("UNAUTHENTICATED", "token", True)
        ws.send(json.dumps({"type": "hello", "token": "s3cret", "scene": "nope"}))
        assert recv_json(ws)["code"] == "UNKNOWN_SCENE"
        ws.send(json.dumps({"type": "hello", "token": "s3cret", "generator": "other"}))
        error = recv_json(ws)
        assert (error["code"], error["field"]) == ("INVALID_ARGUMENT", "generator")
        ws.send(json.dumps({"type": "hello", "token": "s3cret", "width": 8}))
        assert recv_json(ws)["field"] == "hello.width"
        ws.send(json.dumps({"type": "hello", "token": "s3cret"}))
        assert recv_json(ws)["type"] == "welcome"
        ws.send(pose(1, rotation=[0, 0, 0, 2]))
        error = recv_json(ws)
        assert (error["code"], error["field"], error["fatal"]) == ("INVALID_ARGUMENT", "pose.pose.rotation", False)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(backend.viewer.url + "api/scenes")
    refused.value.close()
    assert refused.value.code == 401
    assert get_json(backend.viewer.url + "api/scenes?token=s3cret")["scenes"]


def test_pages_of_another_origin_are_refused(make_backend):
    backend = make_backend(viewer_port=0)
    with pytest.raises(InvalidStatus) as refused:
        with connect(ws_url(backend), origin="http://evil.example"):
            pass
    assert refused.value.response.status_code == 403


def test_a_rebound_host_name_is_refused_without_a_token(make_backend):
    """DNS rebinding: a page of evil.example re-pointed at 127.0.0.1 sends Host/Origin evil.example (same origin)."""
    backend = make_backend(viewer_port=0)
    port = urlsplit(backend.viewer.url).port
    for path in ("/api/scenes", "/ws"):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path, headers={"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"})
            response = conn.getresponse()
            assert response.status == 403, (path, response.status)
            assert b"127.0.0.1" in response.read()
        finally:
            conn.close()
    with connect(ws_url(backend)) as ws:  # the page of this machine still works
        ws.send(json.dumps({"type": "hello"}))
        assert recv_json(ws)["type"] == "welcome"


def test_shutdown_notice_reaches_the_page_then_the_connection_closes(demo_store):
    backend = viewer_backend(demo_store, default_width=160, default_height=96)
    with connect(ws_url(backend)) as ws:
        ws.send(json.dumps({"type": "hello"}))
        assert recv_json(ws)["type"] == "welcome"
        ws.send(pose(1))
        recv_frame(ws)
        backend.stop()
        notice = recv_json(ws)
        assert (notice["code"], notice["fatal"]) == ("SHUTTING_DOWN", False)
        with pytest.raises(Exception) as closed:
            while True:
                ws.recv(timeout=10)
        assert type(closed.value).__name__.startswith("ConnectionClosed")


def test_viewer_port_in_use_names_the_flag(make_backend, demo_store):
    running = make_backend(viewer_port=0)
    with pytest.raises(CannotBind) as taken:
        viewer_backend(demo_store, viewer_port=running.viewer.address.port)
    assert taken.value.field == "viewer_port" and "is in use" in taken.value.message


def test_no_viewer(make_backend):
    assert make_backend(viewer=False).viewer is None


def this_machines_lan_address() -> str | None:
    """A non-loopback IPv4 address of this machine (the one a route out would use), or None."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("203.0.113.1", 9))  # no packet is sent: this only picks the outgoing interface
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def test_a_page_on_another_address_needs_the_token_and_gets_jpeg(demo_store):
    address = this_machines_lan_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    # A connection from this machine's own LAN address is not loopback: the gateway treats it as another machine.
    open_backend = viewer_backend(demo_store, host=address, default_width=160, default_height=96)
    try:
        with connect(ws_url(open_backend)) as ws:
            ws.send(json.dumps({"type": "hello"}))
            error = recv_json(ws)
            assert (error["code"], error["fatal"]) == ("UNAUTHENTICATED", True) and "--token" in error["message"]
    finally:
        open_backend.stop()
    backend = viewer_backend(demo_store, host=address, token="t0k", default_width=160, default_height=96)
    try:
        with connect(ws_url(backend)) as ws:
            ws.send(json.dumps({"type": "hello", "token": "t0k"}))
            assert recv_json(ws)["type"] == "welcome"
            ws.send(pose(1))
            header, image, _ = recv_frame(ws)
        assert header["encoding"] == "jpeg" and image[:2] == b"\xff\xd8"
    finally:
        backend.stop()


def test_a_gateway_never_started_stops_at_once(make_backend):
    from starbridge.viewer.gateway import ViewerGateway

    backend = make_backend(viewer=False)
    gateway = ViewerGateway(backend.manager, backend.store, "127.0.0.1", 0, ["explicit-fill"])
    port = gateway.address.port
    gateway.stop()  # e.g. the backend failed to start after binding it: returns, and the port is free again
    again = ViewerGateway(backend.manager, backend.store, "127.0.0.1", port, ["explicit-fill"])
    again.stop()


def test_serve_prints_the_viewer_and_sigterm_with_a_page_open_exits_0(demo_store):
    """`starbridge serve` as a process: the banner's viewer line, a page with a live session, SIGTERM: the page gets
    the shutdown notice and a closed connection, the process exits 0."""
    import re
    import signal
    import subprocess

    cmd = [sys.executable, "-m", "starbridge.cli", "--store", str(demo_store), "serve", "--grpc-port", "0",
           "--engine-port", "0", "--viewer-port", "0", "--width", "160", "--height", "96"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        banner = ""
        for line in proc.stdout:
            banner += line
            if "Press Ctrl+C" in line:
                break
        found = re.search(r"^  viewer: +(http://127\.0\.0\.1:(\d+)/)   \(open it in a browser\)$", banner, re.M)
        assert found, banner
        with urllib.request.urlopen(found[1]) as r:
            assert b"<canvas" in r.read()
        with connect(f"ws://127.0.0.1:{found[2]}/ws") as ws:
            ws.send(json.dumps({"type": "hello"}))
            assert recv_json(ws)["type"] == "welcome"
            ws.send(pose(1))
            recv_frame(ws)
            proc.send_signal(signal.SIGTERM)
            assert recv_json(ws)["code"] == "SHUTTING_DOWN"
            with pytest.raises(Exception) as closed:
                while True:
                    ws.recv(timeout=30)
            assert type(closed.value).__name__.startswith("ConnectionClosed")
        assert proc.wait(30) == 0
        proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def test_viewer_settings_are_checked_at_start(demo_store, capsys):
    from starbridge.cli import main
    from starbridge.errors import InvalidArgument
    from starbridge.server.config import ServerConfig

    with pytest.raises(InvalidArgument) as same:
        ServerConfig(grpc_port=50000, engine_port=50001, viewer_port=50000).validate()
    assert same.value.field == "viewer_port" and "grpc_port" in same.value.message
    ServerConfig(grpc_port=50000, engine_port=50001, viewer_port=50000, viewer=False).validate()  # off: no clash
    serve = ["--store", str(demo_store), "serve", "--grpc-port", "0", "--engine-port", "0"]
    assert main([*serve, "--viewer-port", "70000"]) == 1
    assert capsys.readouterr().err.startswith("error: --viewer-port must be a TCP port in [0, 65535]")
