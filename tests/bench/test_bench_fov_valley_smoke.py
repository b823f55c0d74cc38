"""Smoke test of bench/bench_fov_valley.py at toy size: the cost valley over fixed fields of view, the free
focal length's landings and the observations against the truth are measured and written."""

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
                                  "--offsets=-2,0,2", "--seeds", "2", "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    report = json.loads(next(tmp_path.glob("fov-valley-*.json")).read_text())
    assert report["machine"] and report["settings"]["offsets"] == [-2.0, 0.0, 2.0]
    (clip,) = report["clips"]
    assert clip["kind"] == "handheld" and math.isfinite(clip["fov_estimated"])
    assert [v["fov"] for v in clip["valley"]] == pytest.approx([46.0, 48.0, 50.0])
    assert all(v["cost"] > 0 and 0 <= v["rotation_error_deg"] < 10 for v in clip["valley"])
    assert clip["free_focal_fov"] and all(20 < f < 120 for f in clip["free_focal_fov"].values())
    truth = clip["truth_errors"]
    # most observations have a true surface point; the errors are in pixels, the white-noise draws one per seed
    assert 0.5 * truth["observations"] < truth["observations_with_truth"] <= truth["observations"]
    assert truth["horizontal"]["observations"] + truth["other"]["observations"] == truth["observations_with_truth"]
    assert 0 < truth["all"]["median_px"] < 3 and truth["all"]["median_px"] <= truth["all"]["p90_px"]
    assert len(truth["free_focal_fov_white_noise"]["draws"]) == 2
    assert all(20 < truth[k] < 120 for k in ("free_focal_fov_real", "free_focal_fov_horizontal_exact"))
    assert 20 < truth["free_focal_fov_white_noise"]["mean"] < 120


def test_exact_observations_have_no_error_against_the_truth():
    """Points on the true surfaces projected through the true cameras: the truth finds them exact (the pixel
    convention, the bilinear inverse depth, the axes), and a free focal length from them lands on the truth."""
    from types import SimpleNamespace

    import numpy as np

    from starbridge.geometry.conventions import wire_to_cv
    from starbridge.scenes.capture.track_mapping import focal_of
    from starbridge.scenes.procedural.clips import ClipConfig, render_clip

    w, h = 192, 108
    clip = render_clip(ClipConfig(kind="orbit", frames=8, width=w, height=h, vertical_fov_deg=48.0))
    f = focal_of(48.0, h)
    rng = np.random.default_rng(0)
    # points: the true surface under random pixels of frame 3 (off depth edges: the 3x3 depths within 10%)
    depth = clip.depth[3].astype(np.float64)
    xs, ys = rng.uniform(4, w - 4, 600), rng.uniform(4, h - 4, 600)
    xi, yi = xs.astype(int), ys.astype(int)
    patch = np.stack([depth[yi + dy, xi + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 1)
    ok = np.all(np.isfinite(patch), 1) & (patch.max(1) < 1.1 * patch.min(1))
    z = depth[yi, xi][ok]
    cam = np.stack([(xi[ok] + 0.5 - w / 2) / f * z, (yi[ok] + 0.5 - h / 2) / f * z, z], 1)
    c2w = wire_to_cv(clip.poses[3])
    points = cam @ c2w[:3, :3].T + c2w[:3, 3]
    obs, w2c = [], {}
    for frame in range(8):
        w2c[frame] = np.linalg.inv(wire_to_cv(clip.poses[frame]))[:3]
        c = points @ w2c[frame][:, :3].T + w2c[frame][:, 3]
        uv = np.stack([f * c[:, 0] / c[:, 2] + w / 2, f * c[:, 1] / c[:, 2] + h / 2], 1)
        # seen where the point is the frame's nearest surface
        inside = (uv[:, 0] > 1) & (uv[:, 0] < w - 1) & (uv[:, 1] > 1) & (uv[:, 1] < h - 1) & (c[:, 2] > 0)
        ids = np.flatnonzero(inside)
        seen = np.abs(clip.depth[frame][uv[ids, 1].astype(int), uv[ids, 0].astype(int)] - c[ids, 2]) < 0.01 * c[ids, 2]
        obs.append((frame, uv[ids[seen]], ids[seen]))
    result = SimpleNamespace(vertical_fov_deg=50.0, points=points)
    truth = bench_fov_valley._truth_errors(clip, result, w2c, obs, (w, h), seeds=1)
    assert truth["observations_with_truth"] > 0.9 * truth["observations"] > 500
    assert truth["all"]["median_px"] < 0.01 and truth["horizontal"]["observations"] > 50
    assert truth["free_focal_fov_real"] == pytest.approx(48.0, abs=0.05)
