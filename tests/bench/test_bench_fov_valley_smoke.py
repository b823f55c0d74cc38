"""Smoke test of bench/bench_fov_valley.py at toy size: the cost valley over fixed fields of view and the
free focal length's landings are measured and written."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_fov_valley  # noqa: E402


@pytest.mark.slow
def test_bench_fov_valley_smoke(tmp_path: Path):
    code = bench_fov_valley.main(["--kinds", "handheld", "--frames", "16", "--width", "192", "--height", "108",
                                  "--offsets=-2,0,2", "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    report = json.loads(next(tmp_path.glob("fov-valley-*.json")).read_text())
    assert report["machine"] and report["settings"]["offsets"] == [-2.0, 0.0, 2.0]
    (clip,) = report["clips"]
    assert clip["kind"] == "handheld" and math.isfinite(clip["fov_estimated"])
    assert [v["fov"] for v in clip["valley"]] == pytest.approx([46.0, 48.0, 50.0])
    assert all(v["cost"] > 0 and 0 <= v["rotation_error_deg"] < 10 for v in clip["valley"])
    assert clip["free_focal_fov"] and all(20 < f < 120 for f in clip["free_focal_fov"].values())
