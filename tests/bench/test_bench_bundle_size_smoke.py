"""Smoke test of bench/bench_bundle_size.py on a short ground-truth clip: it imports, writes every layout, loads
them in fresh processes, renders the novel views, writes its JSON; the numbers hang together."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_bundle_size  # noqa: E402


@pytest.mark.slow
def test_bench_bundle_size_smoke(tmp_path: Path):
    cache = tmp_path / "cache"
    args = dict(frames=16, width=256, height=144, kinds=("handheld",), real=(), cache=cache, repeat=1)
    bench_bundle_size.run(tmp_path / "out", **args)
    (written,) = (tmp_path / "out").glob("bundle-size-*.json")
    report = json.loads(written.read_text())
    assert report["machine"]["cpu_count"] and report["versions"]["format_version"] == 3
    (clip,) = report["clips"]
    layouts = clip["layouts"]
    assert set(layouts) == set(bench_bundle_size.LAYOUTS) and clip["working_size"] == [108, 192]
    full, compact = layouts["full 0.05%"], layouts["now"]
    assert compact["files"]["depth.mkv"] < full["files"]["depth.mkv"] / 2
    assert compact["depth_storage"]["size"] == [192, 108] and "size" not in full["depth_storage"]
    assert full["depth_within_step"] == 1.0 and compact["depth_within_step"] > 0.9
    for e in layouts.values():
        assert e["load"]["wall_s"] > 0 and e["bytes"] == sum(e["files"].values())
        assert 10.0 < e["novel_psnr"] < 60.0
    assert abs(compact["novel_psnr"] - full["novel_psnr"]) < 0.5 and clip["novel_psnr_exact"] > 10.0
    assert clip["import_s"] > 0 and set(clip["pass"]) == {"size", "load", "psnr"}
    # a second run takes the capture from the cache
    assert len(list(cache.glob("capture-*.npz"))) == 1
    bench_bundle_size.run(tmp_path / "out2", **args)
    again = json.loads(next((tmp_path / "out2").glob("bundle-size-*.json")).read_text())["clips"][0]
    assert again["layouts"]["now"]["bytes"] == compact["bytes"]
