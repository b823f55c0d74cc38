"""Smoke test of bench/bench_capture.py at toy size: ground-truth clips imported as real ones, then checked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_capture  # noqa: E402


@pytest.mark.slow
def test_bench_capture_smoke(tmp_path: Path):
    report = bench_capture.run(out_dir=tmp_path, frames=32, width=320, height=180, kinds=("handheld", "pan"))
    on_disk = json.loads(next(tmp_path.glob("capture-*.json")).read_text())
    assert on_disk["machine"] and [c["kind"] for c in on_disk["clips"]] == ["handheld", "pan"]
    walk, pan = report["clips"]
    # the walk is tracked as free motion with its real rotations, and gets depth
    assert walk["tracking"] == "free motion" and walk["rotation_error_deg_median"] < 2.0
    assert walk["translation_error_rel"] < 0.05 and "depth_delta_1_25" in walk and walk["depth_delta_1_25"] > 0.3
    assert 0.0 <= walk["depth_absrel_path_scale"] <= 1.0 and "depth_absrel_path_scale" not in pan
    # the moving objects' own depth: the walk passes the bouncing ball, which the capture flags and stands on the
    # ground (the rotation-only pan has no depth to measure it in)
    assert 0.0 <= walk["moving_depth_absrel_path_scale"] < 0.5 and 0.5 < walk["moving_depth_ratio_median"] < 2.0
    assert "moving_depth_absrel_path_scale" not in pan
    # the error by true distance adds up to the whole, over every pixel measured
    ranges = walk["depth_by_range"]
    assert sum(g["share"] for g in ranges) == pytest.approx(1.0)
    assert sum(g["contribution"] for g in ranges) == pytest.approx(walk["depth_absrel_path_scale"], rel=1e-4)
    # the tripod pan is rotation only and covers its real 90 degrees (its rotations are right)
    assert pan["rotation_only"] and pan["rotation_error_deg_median"] < 3.0 and pan["rotation_error_deg_max"] < 6.0
    assert abs(walk["fov_deg"] - walk["fov_true_deg"]) < 6.0


@pytest.mark.slow
def test_bench_capture_films_the_world_it_is_asked_for(tmp_path: Path):
    """`--world N`: the clips, the exact scene and the novel views' truth all come from procedural world N (a
    truth rendered in another world would put the exact scene's novel views far below 25 dB), and the JSON says
    which world it was, under a name of its own (with the size, which is not the default 320x180)."""
    report = bench_capture.run(out_dir=tmp_path, frames=16, width=160, height=90, kinds=("pan",), world=2)
    assert [p.name for p in tmp_path.glob("capture-*.json")] == [
        f"capture-{bench_capture.host_tag()}-world2-160x90.json"
    ]
    assert report["settings"]["world_seed"] == 2
    (pan,) = report["clips"]
    assert pan["novel_psnr_exact"] > 25.0 and pan["rotation_only"]
    with pytest.raises(SystemExit):
        bench_capture.main(["--world", "-1"])


@pytest.mark.slow
def test_bench_capture_tracks_with_the_mapper_it_is_asked_for(tmp_path: Path):
    """`--mapper incremental`: the import's tracking uses it (a walk, so the mapper runs), the JSON says so
    under a name of its own; an unknown mapper is refused."""
    report = bench_capture.run(out_dir=tmp_path, frames=16, width=160, height=90, kinds=("handheld",),
                               mapper="incremental")  # fmt: skip
    assert [p.name for p in tmp_path.glob("capture-*.json")] == [
        f"capture-{bench_capture.host_tag()}-incremental-160x90.json"
    ]
    assert report["settings"]["mapper"] == "incremental"
    (walk,) = report["clips"]
    assert walk["tracking"] == "free motion"
    with pytest.raises(SystemExit):
        bench_capture.main(["--mapper", "sequential"])
