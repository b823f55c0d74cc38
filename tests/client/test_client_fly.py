"""`fly` end to end against a live backend: frames through shared memory and inline, a real video written."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from starbridge.client.fly import FlyConfig, fly
from starbridge.errors import StarBridgeError
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
    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == report.frames and decoded[0].shape == (96, 160, 3)
    png = np.asarray(Image.open(report.pngs[0]))
    assert png.shape == (96, 160, 3) and png.std() > 10
    assert not list(tmp_path.glob(".*.tmp*"))  # temp files renamed into place


def test_fly_without_backend_says_what_to_do(tmp_path: Path):
    with pytest.raises(StarBridgeError, match="starbridge serve"):
        fly(FlyConfig(endpoint="tcp://127.0.0.1:1", seconds=0.5, out=tmp_path / "x.mp4", connect_timeout_s=0.5))
    assert not (tmp_path / "x.mp4").exists()
