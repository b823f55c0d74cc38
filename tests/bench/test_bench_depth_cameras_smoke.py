"""Smoke test of bench/bench_depth_cameras.py at toy size: a real clip tracked, and the depth stage run on the
tracked and on the true cameras, compared with the truth; and the error measure itself on depths made to
measure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_depth_cameras  # noqa: E402
from bench.bench_capture import _similarity_error  # noqa: E402


def _truth() -> np.ndarray:
    rng = np.random.default_rng(0)
    depth = rng.uniform(2.0, 90.0, (2, 12, 16)).astype(np.float32)
    depth[:, 0, :] = np.inf  # sky
    return depth


def test_the_inverse_depth_offset_is_what_was_added():
    """Every inverse depth turned by the same amount (what a yaw-rate drift does to stereo) reads as that
    offset; far things take most of the relative error."""
    truth = _truth()
    est = 1.0 / (1.0 / truth - 0.004)  # 4 per km farther
    est[~np.isfinite(truth)] = np.inf
    moving = np.zeros(truth.shape, bool)
    report = bench_depth_cameras.depth_errors(est, np.ones(truth.shape, bool), truth, moving)
    assert report["inverse_offset_per_km"] == pytest.approx(-4.0, abs=1e-3)
    near, far = report["by_range"][0], report["by_range"][-1]
    assert near["median_ratio"] < 1.04 < far["median_ratio"]
    exact = bench_depth_cameras.depth_errors(truth, np.ones(truth.shape, bool), truth, moving)
    assert exact["absrel"] == 0.0 and exact["inverse_offset_per_km"] == 0.0
    # moving and unconfident pixels are left out; a depth with nothing to compare is refused
    assert bench_depth_cameras.depth_errors(est, np.zeros(truth.shape, bool), truth, moving)["offset_pixels"] == 0
    with pytest.raises(ValueError, match="no static pixel"):
        bench_depth_cameras.depth_errors(est, np.ones(truth.shape, bool), truth, np.ones(truth.shape, bool))


def test_the_path_scale_is_metres_per_tracked_unit():
    """The scale that carries the tracked depth and points to metres: the similarity's, fitted to the centres."""
    rng = np.random.default_rng(1)
    truth = np.repeat(np.eye(4)[None], 6, axis=0)
    truth[:, :3, 3] = rng.normal(size=(6, 3))
    angle = np.radians(30.0)
    turn = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    est = truth.copy()
    est[:, :3, 3] = 0.5 * (turn @ truth[:, :3, 3].T).T + [1.0, 2.0, 3.0]
    assert _similarity_error(est, truth) == pytest.approx((0.0, 2.0), abs=1e-9)
    still = np.repeat(np.eye(4)[None], 3, axis=0)
    assert _similarity_error(still, still) == (0.0, 0.0)


@pytest.mark.slow
def test_bench_depth_cameras_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "results"  # made by the run
    args = ["--clips", "w0:handheld:192x108", "--frames", "12", "--out", str(out)]
    assert bench_depth_cameras.main(args) == 0
    report = json.loads(next(out.glob("depth-cameras-*.json")).read_text())
    (row,) = report["clips"]
    assert row["clip"] == "w0:handheld:192x108" and row["frames"] == 12 and report["machine"]["cpu_count"]
    for name in ("tracked", "true"):
        run = row["runs"][name]
        assert 0.0 <= run["absrel"] < 0.5 and run["by_range"] and run["seconds"] > 0
        assert abs(sum(r["contribution"] for r in run["by_range"]) - run["absrel"]) < 1e-6
    assert "offset 1/km" in capsys.readouterr().out


def test_bench_depth_cameras_refuses_bad_arguments(tmp_path: Path):
    for args in (["--clips", "w0:pan"], ["--clips", "x0:walk"], ["--frames", "4"], ["--crf", "60"]):
        with pytest.raises(SystemExit):
            bench_depth_cameras.main([*args, "--out", str(tmp_path)])
