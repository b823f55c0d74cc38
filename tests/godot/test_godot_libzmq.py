"""The GDScript ZMTP client and engine client against real libzmq (pyzmq ROUTER peers), driven by
headless Godot scripts: framing and heartbeats byte-compatible with libzmq, and the client's
handling of what a backend may send (other protocol versions, unknown fields, errors)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import godot_tool as tool  # noqa: E402
from godot_peers import EchoRouter, ScriptedBackend  # noqa: E402

DRIVERS = tool.TESTS_DIR / "drivers"
RUN_TIMEOUT_S = 60


def test_framing_heartbeats_and_identity_against_libzmq(godot: tool.Godot, godot_project: Path, tmp_path: Path):
    echo = EchoRouter()
    out = tmp_path / "echo.json"
    try:
        proc = tool.run_script(
            godot, godot_project, DRIVERS / "zmtp_echo_driver.gd",
            [f"--endpoint={echo.endpoint}", f"--out={out}"], timeout=RUN_TIMEOUT_S,
        )  # fmt: skip
    finally:
        echo.close()
    output = proc.stdout + proc.stderr
    assert out.exists(), output[-4000:]
    report = tool.read_json(out)
    assert report["opened"], report
    assert report["peer_socket_type"] == "ROUTER" and report["peer_version"].startswith("3."), report
    # Empty, short, 255 (last short frame), 256 (first long frame), 64 KiB and 600 KB bodies.
    assert report["echoes"] == [True] * len(report["sizes"]), report
    # 1.5 s silent with PINGs every 100 ms and a 400 ms timeout: only PONGs kept us connected.
    assert report["open_after_idle"] and report["echo_after_idle"], report
    # libzmq routed by the Identity our READY declared.
    assert echo.identities == [bytes.fromhex(report["identity"])]
    assert not echo.errors and not tool.errors_in(output), echo.errors + tool.errors_in(output)


def _drive(
    godot: tool.Godot, project: Path, tmp_path: Path, endpoint: str, *args: str, timeout: float = RUN_TIMEOUT_S
) -> tuple[dict, list[dict], str]:
    out, events = tmp_path / "summary.json", tmp_path / "events.jsonl"
    proc = tool.run_script(
        godot, project, DRIVERS / "backdrop_driver.gd",
        [f"--endpoint={endpoint}", f"--out={out}", f"--events={events}", *args], timeout=timeout,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert out.exists(), f"the driver wrote no summary (exit {proc.returncode}):\n{output[-4000:]}"
    lines = [tool.json.loads(line) for line in events.read_text().splitlines() if line]
    return tool.read_json(out), lines, output


@pytest.fixture
def scripted():
    backend = ScriptedBackend()
    yield backend
    backend.close()
    assert not backend.errors, backend.errors


def test_other_protocol_major_in_welcome_is_refused(godot, godot_project, tmp_path, scripted):
    summary, events, output = _drive(
        godot, godot_project, tmp_path, scripted.endpoint, "--label=version:2.3", "--until-error",
        "--seconds=15",
    )  # fmt: skip
    assert summary["status"] == "ERROR", summary
    message = summary["status_message"]
    assert "protocol mismatch" in message and "1.1" in message and "2.3" in message, message
    assert summary["frames"] == 0 and summary["sessions"] == 0
    # It said Goodbye so the backend frees the session, and the error was reported, not only printed.
    assert tool.wait_until(lambda: len(scripted.received.goodbyes) >= 1, 3.0)
    assert scripted.received.goodbyes[0].reason == "protocol mismatch"
    assert "protocol mismatch" in output  # push_error: in the editor's Errors tab too


def test_newer_minor_and_unknown_fields_are_accepted(godot, godot_project, tmp_path, scripted):
    for label in ("version:1.7", "unknown-fields"):
        summary, events, _ = _drive(
            godot, godot_project, tmp_path, scripted.endpoint, f"--label={label}", "--frames=5",
            "--transport=inline", "--seconds=15",
        )  # fmt: skip
        frames = [e for e in events if e["event"] == "frame"]
        assert summary["status"] == "STREAMING" and len(frames) >= 5, (label, summary)
        assert all(f["bytes"] == 16 * 8 * 4 and f["first_byte"] == f["frame_sequence"] % 251 for f in frames)


def test_poses_go_out_at_the_frame_rate_in_the_wire_convention(godot, godot_project, tmp_path, scripted):
    summary, events, _ = _drive(
        godot, godot_project, tmp_path, scripted.endpoint, "--label=serve", "--frames=20", "--yaw=30",
        "--transport=inline", "--fps=20", "--seconds=15",
    )  # fmt: skip
    poses = scripted.received.poses
    hello = scripted.received.hellos[-1]
    assert hello.engine_name == "Godot" and hello.engine_version.startswith("4.")
    assert (hello.protocol.major, hello.protocol.minor) == (1, 1) and hello.fps == 20.0 and hello.transport == 2
    # The node's default size is 0 x 0: the backend's own (starbridge serve --width/--height).
    assert (hello.width, hello.height) == (0, 0) and hello.client_label == "serve"
    assert len(poses) >= 20
    sequences = [p.sequence for p in poses]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
    times = [p.engine_time_us for p in poses]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    # Not faster than the backend's fps needs (the scripted Welcome says 60 fps: >= 15 ms apart).
    assert min(b - a for a, b in zip(times, times[1:], strict=False)) >= 0.9e6 / 60 - 1
    p = poses[-1]
    q = (p.pose.rotation.x, p.pose.rotation.y, p.pose.rotation.z, p.pose.rotation.w)
    half = math.radians(30) / 2
    assert q == pytest.approx((0.0, math.sin(half), 0.0, math.cos(half)), abs=1e-6)
    assert (p.pose.position.x, p.pose.position.y, p.pose.position.z) == pytest.approx((0, 0, 0), abs=1e-6)
    assert p.vertical_fov_deg == pytest.approx(60.0)
    assert p.aspect == pytest.approx(summary["viewport_aspect"], rel=1e-6)  # the viewport's, width / height
    # FrameReady echoed the pose: the plugin measured pose-to-frame latency on its own clock.
    assert summary["latency_p50_ms"] > 0 and summary["textures_made"] == 1


def test_nonfatal_error_is_reported_and_frames_continue(godot, godot_project, tmp_path, scripted):
    summary, events, output = _drive(
        godot, godot_project, tmp_path, scripted.endpoint, "--label=nonfatal-then-frames", "--frames=5",
        "--transport=inline", "--seconds=15",
    )  # fmt: skip
    errors = [e for e in events if e["event"] == "error"]
    assert errors and errors[0]["code"] == "INVALID_ARGUMENT" and not errors[0]["fatal"]
    assert errors[0]["field"] == "pose.aspect"
    assert summary["status"] == "STREAMING" and summary["frames"] >= 5


def test_session_timeout_starts_a_new_session(godot, godot_project, tmp_path, scripted):
    summary, events, _ = _drive(
        godot, godot_project, tmp_path, scripted.endpoint, "--label=timeout-after:5", "--sessions=2",
        "--frames=3", "--transport=inline", "--seconds=20",
    )  # fmt: skip
    welcomes = [e["session_id"] for e in events if e["event"] == "welcome"]
    assert welcomes[:2] == ["scripted-1", "scripted-2"], events
    assert any(e["event"] == "error" and e["code"] == "TIMEOUT" and e["fatal"] for e in events)
    assert summary["sessions"] >= 2 and summary["status"] == "STREAMING"
    assert len(scripted.received.hellos) >= 2


def test_shutdown_notice_reconnects_at_once_and_is_not_an_error(godot, godot_project, tmp_path, scripted):
    """Protocol 1.1: SHUTTING_DOWN (not fatal) drops the connection and reconnects with backoff at once;
    the connection stays open and silent after it, so nothing else could end the session this soon."""
    summary, events, output = _drive(
        godot, godot_project, tmp_path, scripted.endpoint, "--label=shutdown-after:5", "--sessions=2",
        "--frames=3", "--transport=inline", "--seconds=20",
    )  # fmt: skip
    welcomes = [e for e in events if e["event"] == "welcome"]
    assert len(welcomes) >= 2, events  # the second on a new connection (a new peer to the scripted backend)
    lost = next(e for e in events if e["event"] == "status" and e["status"] == "RECONNECTING")
    assert lost["message"].startswith("backend shutting down - reconnecting to tcp://"), lost
    assert "last frame stays on screen" in lost["message"], lost
    # Reconnected within the first backoff steps, not after a silence timeout (3 s at least).
    assert (welcomes[1]["t_ms"] - lost["t_ms"]) / 1000 < 2.0, (lost, welcomes[1])
    # Not surfaced as a backend error: no backend_error signal, no warning, no ERROR status.
    assert not [e for e in events if e["event"] == "error"], events
    assert not any(e["event"] == "status" and e["status"] == "ERROR" for e in events), events
    assert summary["errors"] == [] and "SHUTTING_DOWN" not in output, output[-2000:]
    assert summary["status"] == "STREAMING" and summary["sessions"] >= 2
    assert not tool.errors_in(output), tool.errors_in(output)
