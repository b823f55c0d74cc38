"""Smoke test of bench/bench_bundle.py on a tiny clip: it runs, writes its JSON, and the numbers hang together."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_bundle  # noqa: E402


def test_bench_bundle_smoke(tmp_path: Path):
    cache = tmp_path / "clip.npz"
    result = bench_bundle.run(out_dir=tmp_path / "out", frames=4, width=64, height=36, repeat=1, cache=cache)
    assert cache.is_file()
    (written,) = (tmp_path / "out").glob("bundle-*.json")
    report = json.loads(written.read_text())
    assert report["machine"]["cpu_count"] and report["source_clip_bytes"] > 0 and json.dumps(result, default=str)
    m = report["measurements"]
    assert set(m) == {"video", "rendered", "rotation-only", "npy (format 1)"}
    assert m["rendered"]["colour_max_abs"] == 0 and m["rendered"]["depth_rel_max"] == 0
    assert m["npy (format 1)"]["colour_max_abs"] == 0 and "frames.npy" in m["npy (format 1)"]["files"]
    assert m["video"]["depth_rel_max"] <= 0.005 and m["video"]["moving_exact"] is True
    assert "depth.mkv" not in m["rotation-only"]["files"] and m["rotation-only"]["depth_inf_kept"]
    assert m["video"]["bytes"] < m["npy (format 1)"]["bytes"]
    assert set(report["targets"]["pass"]) == {"size_x_source", "load_s_at_10s_512x288", "colour_psnr_db",
                                              "depth_rel_max"}  # fmt: skip
    # a second run reuses the cached clip
    bench_bundle.run(out_dir=tmp_path / "out", frames=4, width=64, height=36, repeat=1, cache=cache)
