"""Smoke test of bench/bench_import_time.py at toy size: a real import in a fresh process, timed by stage, and
the side-by-side comparison (here against this same tree: the same scene, a ratio near one)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_import_time  # noqa: E402


@pytest.mark.slow
def test_bench_import_time_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    args = ["--frames", "24", "--width", "192", "--height", "108", "--fov", "48", "--compare", str(REPO_ROOT)]
    assert bench_import_time.main([*args, "--out", str(tmp_path)]) == 0
    report = json.loads(next(tmp_path.glob("import-time-*.json")).read_text())
    assert report["machine"]["cpu_count"] and len(report["runs"]) == 2
    for run in report["runs"]:
        stages = run["stage_s"]
        assert set(bench_import_time.STAGES) <= set(stages) and stages["depth"] > 0 and stages["tracking"] > 0
        assert run["wall_s"] >= stages["total"] > 0 and run["cpu_s"] > 0 and run["frames"] == 24
        assert run["commit"] is None or len(run["commit"].rstrip("+")) >= 7  # which code was timed
        # the import process's own peak memory (numpy, scipy, pycolmap and the frames: well over 100 MiB)
        assert 0.1 < run["peak_rss_gib"] < 24
    # the same code twice makes the same scene
    assert report["same_scene"] == {"depth_pixels_differing": 0.0, "mask_pixels_differing": 0.0}
    assert "tracking s" in capsys.readouterr().out


@pytest.mark.slow
def test_a_given_clip_is_described_by_what_its_import_kept(tmp_path: Path):
    """With --clip the report's clip is the file's (its frames and size), not the unused --frames / --width /
    --height defaults (300 frames at 512x288)."""
    from starbridge.scenes.procedural.clips import ClipConfig, render_clip

    clip = render_clip(ClipConfig(kind="handheld", frames=16, width=160, height=90, vertical_fov_deg=48.0))
    mp4 = clip.write_mp4(tmp_path / "given.mp4")
    assert bench_import_time.main(["--clip", str(mp4), "--fov", "48", "--out", str(tmp_path / "out")]) == 0
    report = json.loads(next((tmp_path / "out").glob("import-time-*.json")).read_text())
    assert report["clip"]["frames"] == 16 and report["clip"]["size"] == [160, 90]
    assert report["clip"]["path"] == str(mp4) and report["clip"]["kind"] is None
    assert report["runs"][0]["scene_frames"] == 16 and report["runs"][0]["frames"] == 16


def test_bench_import_time_refuses_a_tree_that_is_not_ours(tmp_path: Path):
    with pytest.raises(SystemExit, match="not a StarBridge source tree"):
        bench_import_time.main(["--compare", str(tmp_path), "--out", str(tmp_path)])
