"""Smoke test of bench/bench_render.py: it runs and writes its JSON report (no assertion on speed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_render  # noqa: E402


def test_bench_render_smoke(tmp_path: Path):
    result = bench_render.run(out_dir=tmp_path, seconds=0.05)
    files = list(tmp_path.glob("render-*.json"))
    assert len(files) == 1
    on_disk = json.loads(files[0].read_text())
    assert on_disk["machine"] and json.dumps(result, default=str)
    for stage in ("splat", "splat_uncached", "fill", "splat_fill", "generator"):
        m = on_disk["measurements"][stage]
        assert m["n"] >= bench_render.MIN_FRAMES and 0 < m["p50_ms"] <= m["p95_ms"] and m["fps"] > 0
        assert m["cpu_mean_ms"] > 0
    before, after = on_disk["measurements"]["splat_fill"], on_disk["measurements"]["generator"]
    assert before["n"] == after["n"]  # timed side by side, frame for frame
    scene = on_disk["scene"]
    # the street has sky, near and far surfaces, and every pose of the loop opens holes to fill
    assert 0.05 < scene["sky_fraction"] < 0.6 and scene["depth_range_m"][0] < 5 < scene["depth_range_m"][1]
    assert 0 < scene["hole_fraction_mean"] <= scene["hole_fraction_max"] < 0.5
    target = on_disk["target"]
    assert target["fps"] == bench_render.TARGET_FPS
    assert target["pass"] == (target["measured_fps"] >= target["fps"])
    assert target["measured_fps"] == on_disk["measurements"]["splat_fill"]["fps"]
    assert target["generator_over_splat_fill_cpu"] == after["cpu_mean_ms"] / before["cpu_mean_ms"]
    assert "demo_generator" not in on_disk["measurements"]  # only with --demo (it builds the demo scene)
