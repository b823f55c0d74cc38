"""The NeuralBackdrop node, headless in the real engine, against a real `starbridge serve`:
handshake, poses in and frames out through shared memory and inline (pixels checked against the
backend's own renderer for the pose the frame names), a protocol version mismatch, and a backend
that dies and comes back while the game runs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import godot_expect as expect  # noqa: E402
import godot_tool as tool  # noqa: E402

DRIVER = tool.TESTS_DIR / "drivers" / "backdrop_driver.gd"
RUN_TIMEOUT_S = 60
YAW_DEG = 20.0


def _run_driver(godot, project, tmp_path, endpoint, *args) -> tuple[dict, list[dict], str]:
    out, events = tmp_path / "summary.json", tmp_path / "events.jsonl"
    proc = tool.run_script(
        godot,
        project,
        DRIVER,
        [f"--endpoint={endpoint}", f"--out={out}", f"--events={events}", *args],
        timeout=RUN_TIMEOUT_S,
    )
    output = proc.stdout + proc.stderr
    assert out.exists(), f"the driver wrote no summary (exit {proc.returncode}):\n{output[-4000:]}"
    return tool.read_json(out), _events(events), output


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


@pytest.mark.parametrize("transport", ["shm", "inline"])
def test_poses_in_frames_out(godot, godot_project, tmp_path, serve, demo_store, transport):
    backend = serve()
    summary, events, output = _run_driver(
        godot, godot_project, tmp_path, backend.endpoint, f"--transport={transport}", "--size=128x72",
        f"--yaw={YAW_DEG}", "--pause", "--frames=12", f"--dump={tmp_path}",
    )  # fmt: skip
    assert not tool.errors_in(output), tool.errors_in(output)
    welcome = next(e for e in events if e["event"] == "welcome")
    frames = [e for e in events if e["event"] == "frame"]
    assert welcome["protocol"] == "1.1" and (welcome["width"], welcome["height"]) == (128, 72)
    if transport == "shm":
        assert welcome["transport"] == "SHARED_MEMORY" and welcome["ring"].endswith(welcome["session_id"])
    else:
        assert welcome["transport"] == "INLINE" and welcome["ring"] == ""
    assert len(frames) >= 12 and summary["status"] == "STREAMING", summary
    assert all(f["transport"] == welcome["transport"] and f["bytes"] == 128 * 72 * 4 for f in frames)
    sequences = [f["frame_sequence"] for f in frames]
    assert sequences == sorted(set(sequences))
    # Poses went in: frames name the poses they answer, and were generated for the camera's yaw.
    assert frames[-1]["pose_sequence"] > 0 and summary["poses_sent"] >= frames[-1]["pose_sequence"]
    want = expect.yaw_pitch_quat(YAW_DEG, 0.0)
    assert abs(float(np.dot(frames[-1]["rotation"], want))) == pytest.approx(1.0, abs=1e-5)
    assert 0 < summary["latency_p50_ms"] < 2000 and summary["fps"] > 0
    # One texture for every frame; the sky shows it.
    assert summary["textures_made"] == 1 and summary["uploads"] == len(frames)
    assert summary["has_frame"] and summary["environment_sky"]
    # The pixels are the backend's frame for that pose, upright and not mirrored.
    meta, pixels = expect.load_dump(tmp_path / f"frame-{welcome['session_id']}")
    reference = expect.backend_frame(demo_store, meta)
    error = expect.mean_abs(pixels, reference)
    assert error < 2.0, f"frame differs from the backend's render by {error:.2f} levels"
    assert expect.mean_abs(pixels, reference[::-1]) > 5 * max(error, 1.0), "upside down?"
    assert expect.mean_abs(pixels, reference[:, ::-1]) > 5 * max(error, 1.0), "mirrored?"
    if transport == "shm":
        # The driver said Goodbye: the backend ends the session and removes the ring file.
        assert tool.wait_until(lambda: not Path(welcome["ring"]).exists(), 5.0), "ring file left behind"


def test_protocol_mismatch_is_shown_with_both_versions(godot, godot_project, tmp_path, serve):
    backend = serve()
    summary, events, output = _run_driver(
        godot, godot_project, tmp_path, backend.endpoint, "--protocol=2.0", "--until-error", "--seconds=20"
    )
    errors = [e for e in events if e["event"] == "error"]
    assert errors and errors[0]["code"] == "PROTOCOL_MISMATCH" and errors[0]["fatal"], events
    assert errors[0]["field"] == "hello.protocol"
    assert summary["status"] == "ERROR" and summary["sessions"] == 0
    text = summary["status_text"]
    assert "1.1" in text and "2.0" in text and "PROTOCOL_MISMATCH" in text, text  # the backend's 1.1, our 2.0
    assert "PROTOCOL_MISMATCH" in output  # also an engine error (the editor's Errors tab)


def test_reconnects_by_itself_after_the_backend_restarts(godot, godot_project, tmp_path, serve):
    backend = serve()
    out, events_path = tmp_path / "summary.json", tmp_path / "events.jsonl"
    args = [
        f"--endpoint={backend.endpoint}", f"--out={out}", f"--events={events_path}", "--size=96x54",
        "--sessions=2", "--frames=5", "--seconds=50", "--transport=shm",
    ]  # fmt: skip
    cmd = tool.script_command(godot, godot_project, DRIVER, args)
    log = (tmp_path / "godot.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:

        def frames_in(session: int) -> int:
            events = _events(events_path)
            welcomes = [i for i, e in enumerate(events) if e["event"] == "welcome"]
            if len(welcomes) < session:
                return 0
            return sum(1 for e in events[welcomes[session - 1] :] if e["event"] == "frame")

        assert tool.wait_until(lambda: frames_in(1) >= 5, 30), _events(events_path)
        backend.kill()  # a crash: no goodbye, the ring file left behind
        killed_at = len(_events(events_path))
        assert tool.wait_until(
            lambda: any(e.get("status") == "RECONNECTING" for e in _events(events_path)[killed_at:]), 10
        ), _events(events_path)[killed_at:]
        backend.start()  # same ports, a new process
        proc.wait(RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    output = (tmp_path / "godot.log").read_text()
    assert out.exists(), output[-4000:]
    summary, events = tool.read_json(out), _events(events_path)
    welcomes = [e for e in events if e["event"] == "welcome"]
    assert len(welcomes) == 2 and welcomes[0]["session_id"] != welcomes[1]["session_id"], welcomes
    lost = next(e for e in events if e.get("status") == "RECONNECTING")
    assert "closed" in lost["message"] or "connect" in lost["message"], lost
    assert "last frame stays on screen" in lost["message"], lost
    assert summary["status"] == "STREAMING" and summary["has_frame"] and summary["sessions"] == 2
    second = events.index(welcomes[1])
    assert sum(1 for e in events[second:] if e["event"] == "frame") >= 5
    # The first session's frames kept the texture: uploads never went back, one texture throughout.
    uploads = [e["uploads"] for e in events if e["event"] == "frame"]
    assert uploads == sorted(uploads) and summary["textures_made"] == 1
    gap_s = (welcomes[1]["t_ms"] - lost["t_ms"]) / 1000
    assert gap_s < 20, f"reconnecting took {gap_s:.1f} s"
    assert math.isfinite(summary["latency_p50_ms"])


def test_default_settings_take_the_size_and_rate_the_backend_was_started_with(godot, godot_project, tmp_path, serve):
    """width, height and fps default to 0: the backend's own size and rate (starbridge serve --width ...),
    and the texture takes the size Welcome agreed."""
    backend = serve("--width", "320", "--height", "180", "--fps", "20")
    summary, events, output = _run_driver(
        godot, godot_project, tmp_path, backend.endpoint, "--transport=inline", "--frames=3"
    )
    assert not tool.errors_in(output), tool.errors_in(output)
    assert summary["settings"] == [0, 0, 0], summary
    welcome = next(e for e in events if e["event"] == "welcome")
    assert (welcome["width"], welcome["height"], welcome["fps"]) == (320, 180, 20), welcome
    frames = [e for e in events if e["event"] == "frame"]
    assert frames and all(f["bytes"] == 320 * 180 * 4 for f in frames)
    assert summary["texture_size"] == [320, 180] and summary["status"] == "STREAMING", summary


def test_a_stopping_backend_says_so_and_the_node_reconnects_when_it_is_back(godot, godot_project, tmp_path, serve):
    """SIGTERM: the backend sends SHUTTING_DOWN (protocol 1.1, server/app.py) before it stops. The status
    says so (reconnecting, not an error), the last frame stays, and a restart on the same port is picked
    up by itself."""
    backend = serve()
    out, events_path = tmp_path / "summary.json", tmp_path / "events.jsonl"
    args = [
        f"--endpoint={backend.endpoint}", f"--out={out}", f"--events={events_path}", "--size=96x54",
        "--sessions=2", "--frames=5", "--seconds=50", "--transport=shm",
    ]  # fmt: skip
    cmd = tool.script_command(godot, godot_project, DRIVER, args)
    log = (tmp_path / "godot.log").open("w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert tool.wait_until(lambda: sum(e["event"] == "frame" for e in _events(events_path)) >= 5, 30)
        stopped_at = len(_events(events_path))
        backend.terminate()

        def leaving() -> list[dict]:
            return [e for e in _events(events_path)[stopped_at:] if e.get("status") == "RECONNECTING"]

        assert tool.wait_until(lambda: bool(leaving()), 10), _events(events_path)[stopped_at:]
        assert backend.wait_stopped(15), "starbridge serve did not exit on SIGTERM"
        backend.start()  # same ports, a new process
        proc.wait(RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    output = (tmp_path / "godot.log").read_text()
    assert out.exists(), output[-4000:]
    summary, events = tool.read_json(out), _events(events_path)
    after = events[stopped_at:]
    notice = next(e for e in after if e.get("status") == "RECONNECTING")
    # Needs the backend's side of protocol 1.1: without the notice this reads "the connection ... was closed".
    assert notice["message"].startswith("backend shutting down - reconnecting"), notice
    assert "last frame stays on screen" in notice["message"], notice
    assert not [e for e in after if e["event"] == "error"], "a stopping backend is not a backend error"
    assert not any(e.get("status") == "ERROR" for e in after), after
    welcomes = [e for e in events if e["event"] == "welcome"]
    assert len(welcomes) == 2 and welcomes[0]["session_id"] != welcomes[1]["session_id"], welcomes
    assert summary["status"] == "STREAMING" and summary["has_frame"] and summary["sessions"] == 2
    uploads = [e["uploads"] for e in events if e["event"] == "frame"]
    assert uploads == sorted(uploads) and summary["textures_made"] == 1, "the last frame stayed meanwhile"
    assert not tool.errors_in(output), tool.errors_in(output)
