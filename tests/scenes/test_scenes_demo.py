"""The demo scene: deterministic bytes, the documented format, and a ground-truth world that matches it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from starbridge.scenes.bundle import SCENE_MEDIAN_DEPTH_M
from starbridge.scenes.demo import (
    DEMO_SCENE_ID,
    DEMO_WORLD_FILE,
    DemoSceneConfig,
    build_demo_scene,
    reference_path,
    world_for_bundle,
)


def test_small_demo_build_is_deterministic(tmp_path: Path, small_demo: DemoSceneConfig):
    a = build_demo_scene(tmp_path / "a" / "demo", small_demo)
    b = build_demo_scene(tmp_path / "b" / "demo", small_demo)
    for name in ("colour.mp4", "depth.mkv", "moving.mkv", "poses.npy", DEMO_WORLD_FILE):
        assert (a.path / name).read_bytes() == (b.path / name).read_bytes(), name
    doc_a, doc_b = (json.loads((x.path / "scene.json").read_text()) for x in (a, b))
    doc_a.pop("created"), doc_b.pop("created")
    assert doc_a == doc_b


def test_demo_world_reproduces_the_bundle(tmp_path: Path, small_demo: DemoSceneConfig):
    bundle = build_demo_scene(tmp_path / "demo", small_demo)
    world = world_for_bundle(bundle)
    intr = bundle.meta.intrinsics
    for i in (0, bundle.meta.frame_count - 1):
        rgb, depth = world.render(bundle.poses[i], intr, i / bundle.meta.fps)
        assert (rgb != bundle.frames[i]).any(axis=-1).mean() < 0.005
        finite = np.isfinite(depth)
        assert (finite == np.isfinite(bundle.depth[i])).mean() > 0.995
        both = finite & np.isfinite(bundle.depth[i])
        assert np.median(np.abs(depth[both] - bundle.depth[i][both])) < 1e-4


def test_default_demo_scene(tmp_path: Path):
    calls: list[tuple[str, int, int]] = []
    bundle = build_demo_scene(tmp_path / DEMO_SCENE_ID, progress=lambda *a: calls.append(a))
    m = bundle.meta
    assert (m.scene_id, m.width, m.height, m.fps, m.frame_count) == ("demo", 512, 288, 24.0, 96)
    assert m.duration_s == pytest.approx(4.0)
    assert m.intrinsics.vertical_fov_deg == pytest.approx(60.0)
    assert (m.source, m.depth_source, m.rotation_only) == ("demo", "exact", False)
    assert m.median_depth_m == pytest.approx(SCENE_MEDIAN_DEPTH_M, rel=1e-3)
    np.testing.assert_array_equal(bundle.poses[0], np.eye(4))
    travel = np.linalg.norm(bundle.poses[-1][:3, 3])
    assert travel > 0.3  # the camera moves (in scene units): parallax
    yaws = [math.degrees(math.atan2(p[0, 2], p[0, 0])) for p in bundle.poses]
    assert max(yaws) > 60.0 and min(yaws) < -60.0  # and sweeps its view across the street, both ways
    assert bundle.moving is not None and 0.0 < bundle.moving.mean() < 0.1  # exact moving-object masks
    sky = np.isinf(bundle.depth)
    assert 0.05 < sky.mean() < 0.5
    assert sky[:, 0].mean() > 0.5 and not sky[:, -1].any()  # sky at the top, ground at the bottom
    assert calls[0] == ("render", 1, 96) and calls[-1] == ("write", 1, 1)
    assert (bundle.frames[0] != bundle.frames[36]).any()


def test_reference_path_starts_at_identity_and_is_rigid(small_demo: DemoSceneConfig):
    poses = reference_path(small_demo)
    np.testing.assert_array_equal(poses[0], np.eye(4))
    for p in poses:
        np.testing.assert_allclose(p[:3, :3] @ p[:3, :3].T, np.eye(3), atol=1e-12)
