"""`fly` end to end against a live backend: frames through shared memory and inline, a real video written."""

from __future__ import annotations

import logging
import re
import time
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from starbridge.client import fly as fly_mod
from starbridge.client.fly import FlyConfig, FlyLimits, FlyReport, fly
from starbridge.errors import InvalidArgument, StarBridgeError
from starbridge.server.app import Backend


@pytest.mark.parametrize("inline", [False, True], ids=["shared-memory", "inline"])
def test_fly_writes_a_video(backend: Backend, tmp_path: Path, inline: bool):
    out = tmp_path / "flight.mp4"
    report = fly(
        FlyConfig(
            endpoint=backend.engine_endpoint,
            path="pan",
            seconds=1.5,
            fps=20,
            width=160,
            height=96,
            inline=inline,
            out=out,
            frames_dir=tmp_path / "frames",
        )
    )
    assert report.frames >= 10 and report.width == 160 and report.height == 96
    assert report.transport == ("inline" if inline else "shared memory")
    assert all(lat > 0 for lat in report.latencies_ms)
    assert "frames/s" in report.table() and "latency p95" in report.table()
    assert 0 < report.first_frame_s < report.last_frame_s <= report.seconds
    assert "once streaming" in report.table()
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == report.frames and decoded[0].shape == (96, 160, 3)
    png = np.asarray(Image.open(report.pngs[0]))
    assert png.shape == (96, 160, 3) and png.std() > 10
    assert not list(tmp_path.glob(".*.tmp*"))  # temp files renamed into place


def test_stream_rate_leaves_out_the_wait_for_the_first_frame():
    # 10 s of flight, the first frame after 0.5 s, then 285 more, the latest at 10.0 s: 30 frames/s once
    # streaming, 28.6 over the flight.
    report = FlyReport(frames=286, seconds=10.0, first_frame_s=0.5, last_frame_s=10.0)
    assert report.stream_fps == pytest.approx(285 / 9.5) and report.fps == pytest.approx(28.6)
    assert "30.0 (first frame after 500 ms)" in report.table()
    assert np.isnan(FlyReport(frames=1, seconds=1.0, first_frame_s=0.2, last_frame_s=0.2).stream_fps)
    assert re.search(r"^frames/s once streaming +-$", FlyReport().table(), re.M)  # no frames: no rate


def test_fly_without_backend_says_what_to_do(tmp_path: Path):
    with pytest.raises(StarBridgeError, match="starbridge serve"):
        fly(FlyConfig(endpoint="tcp://127.0.0.1:1", seconds=0.5, out=tmp_path / "x.mp4", connect_timeout_s=0.5))
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"fps": 0.0}, "fps"),
        ({"fps": float("nan")}, "fps"),
        ({"seconds": -1.0}, "seconds"),
        ({"vertical_fov_deg": 0.0}, "vertical_fov_deg"),
        ({"vertical_fov_deg": 200.0}, "vertical_fov_deg"),
        ({"width": 8}, "width"),
        ({"height": 5000}, "height"),
        ({"path": "loop"}, "path"),
        ({"endpoint": "127.0.0.1:50052"}, "endpoint"),
        ({"endpoint": "ipc:///tmp/x"}, "endpoint"),
        ({"endpoint": "tcp://127.0.0.1:99999"}, "endpoint"),
        ({"out": Path("/no/such/folder/x.mp4")}, "out"),
        ({"out": Path("x.gif")}, "out"),
        ({"frames_dir": Path("/no/such/folder/frames")}, "frames_dir"),
    ],
)
def test_fly_checks_its_settings_before_connecting(changes: dict, field: str, tmp_path: Path):
    config = replace(FlyConfig(endpoint="tcp://127.0.0.1:1", connect_timeout_s=30.0), **changes)
    started = time.monotonic()
    with pytest.raises(InvalidArgument) as info:
        fly(config)
    assert info.value.field == field and info.value.message.startswith(field)
    assert time.monotonic() - started < 1.0  # did not wait 30 s for a backend


def test_fly_settings_that_pass(tmp_path: Path):
    ok = FlyConfig(endpoint="tcp://[::1]:50052", out=tmp_path / "a.MP4", frames_dir=tmp_path / "new", width=16)
    assert ok.validate() is ok
    FlyConfig(endpoint="tcp://backend.local:1", seconds=0.0, vertical_fov_deg=178.9).validate()


def test_flight_limits_follow_the_session():
    assert FlyLimits.for_session(10.0, 30.0) == FlyLimits(first_frame_s=10.0, stall_s=3.0)
    assert FlyLimits.for_session(2.0, 30.0).first_frame_s == 5.0  # a first block may take a moment
    assert FlyLimits.for_session(60.0, 1.0).stall_s == 10.0  # ten frames at a slow rate
    assert FlyLimits.for_session(4.0, 0.5).stall_s == 5.0  # but never longer than the first-frame bound


def test_fly_counts_backend_errors_instead_of_logging_each(
    backend: Backend, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    """Non-fatal Errors are counted in the report, not logged one warning each (the CLI prints one line);
    a backend that rejects only some poses still delivers, and the flight goes on."""
    valid = fly_mod.camera_pose
    calls = iter(range(10**6))

    def every_third_pose_invalid(name: str, t: float):
        position, rotation = valid(name, t)
        return (position, (0.0, 0.0, 0.0, 0.0)) if next(calls) % 3 == 0 else (position, rotation)

    monkeypatch.setattr(fly_mod, "camera_pose", every_third_pose_invalid)
    report = FlyReport()
    with caplog.at_level(logging.WARNING):
        fly(FlyConfig(endpoint=backend.engine_endpoint, path="pan", seconds=1.5, fps=20, width=96, height=64), report)
    assert report.frames > 5 and report.errors >= 5 and not report.interrupted
    assert "pose.pose.rotation" in report.last_error and "errors from the backend" in report.table()
    assert "backend error (not fatal)" not in caplog.text
