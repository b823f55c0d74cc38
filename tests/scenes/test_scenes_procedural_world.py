"""The procedural world: the demo world's motion, orientation, scale and seeds; the camera paths over it and the
disc its layout keeps free for them; the benchmark street."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from starbridge.errors import SceneError
from starbridge.geometry.camera import Intrinsics
from starbridge.scenes.procedural import paths
from starbridge.scenes.procedural.street import STREET_GROUND_Y, render_street, street_intrinsics
from starbridge.scenes.procedural.world import CLEAR_CENTRE_XZ, CLEAR_SLOT_RADIUS_M, DemoWorld, DemoWorldConfig


def test_demo_world_moves_and_loops():
    world = DemoWorld(DemoWorldConfig(loop_s=2.0))
    intr = Intrinsics.from_fov(60.0, 96, 54)
    a0, d0 = world.render(np.eye(4), intr, 0.0)
    a1, _ = world.render(np.eye(4), intr, 0.5)
    a2, d2 = world.render(np.eye(4), intr, 2.0)  # one loop later
    assert (a0 != a1).any(axis=-1).mean() > 0.005
    assert (a0 != a2).any(axis=-1).mean() < 0.001
    np.testing.assert_allclose(d0, d2, rtol=1e-4)
    s0, s1 = world.scene_at(0.3), world.scene_at(2.3)
    for x, y in zip(s0.boxes + s0.spheres, s1.boxes + s1.spheres, strict=True):
        np.testing.assert_allclose(x.center, y.center, atol=1e-9)
    moved = [
        x.center != y.center for x, y in zip(world.scene_at(0.0).spheres, world.scene_at(0.4).spheres, strict=True)
    ]
    assert all(moved)


def test_demo_world_orientation_and_scale():
    world = DemoWorld()
    intr = Intrinsics.from_fov(60.0, 96, 54)
    rgb, depth = world.render(np.eye(4), intr, 0.0)
    assert np.isinf(depth[0]).mean() > 0.5 and np.isfinite(depth[-1]).all()  # mostly sky above, ground below
    sky = np.isinf(depth[0])
    assert (rgb[0, sky, 2].astype(int) > rgb[0, sky, 0]).all()  # and the sky is blue
    pose = paths.pose(30.0, 0.0, (1.0, 0.5, -2.0))
    _, d1 = world.render(pose, intr, 0.7)
    scaled = DemoWorld(replace(world.config, world_scale=0.25))
    pose_scaled = pose.copy()
    pose_scaled[:3, 3] *= 0.25
    _, d2 = scaled.render(pose_scaled, intr, 0.7)
    finite = np.isfinite(d1)
    assert (np.isfinite(d2) == finite).all()
    np.testing.assert_allclose(d2[finite], 0.25 * d1[finite], rtol=1e-5)


def test_seeds_give_different_worlds_and_bad_input_is_refused():
    intr = Intrinsics.from_fov(60.0, 64, 36)
    a, _ = DemoWorld(DemoWorldConfig(seed=0)).render(np.eye(4), intr, 0.0)
    b, _ = DemoWorld(DemoWorldConfig(seed=1)).render(np.eye(4), intr, 0.0)
    assert (a != b).any()
    with pytest.raises(SceneError, match="finite"):
        DemoWorld().render(np.full((4, 4), np.nan), intr, 0.0)
    with pytest.raises(SceneError, match="must be > 0"):
        DemoWorld(DemoWorldConfig(loop_s=0.0))


@pytest.mark.parametrize("seed", [0, 1, 7, 1_000_003])
def test_layout_keeps_the_camera_disc_free(seed: int):
    """No object stands in the disc the camera paths stay in, at any time of the loop."""
    world = DemoWorld(DemoWorldConfig(seed=seed))
    cx, cz = CLEAR_CENTRE_XZ
    for t in np.linspace(0.0, world.config.loop_s, 7):
        scene = world.scene_at(float(t))
        for obj in scene.boxes + scene.spheres:
            corners = obj.corners()
            # the nearest point of the footprint's bounding rectangle to the disc centre
            x = min(max(cx, corners[:, 0].min()), corners[:, 0].max())
            z = min(max(cz, corners[:, 2].min()), corners[:, 2].max())
            assert math.hypot(x - cx, z - cz) > paths.CLEAR_RADIUS_M
    assert paths.CLEAR_RADIUS_M < CLEAR_SLOT_RADIUS_M


def test_paths_are_rigid_and_start_where_they_should():
    arc = paths.arc_path(9, arc_focus_m=8.0, arc_deg=12.0, dolly_m=1.0, pan_deg=-4.0, bob_m=0.12)
    loop = paths.loop_around(16)
    np.testing.assert_array_equal(arc[0], np.eye(4))
    for p in (*arc, *loop):
        np.testing.assert_allclose(p[:3, :3] @ p[:3, :3].T, np.eye(3), atol=1e-12)
        np.testing.assert_array_equal(p[3], [0.0, 0.0, 0.0, 1.0])
    assert paths.is_clear(arc, 1.0, 1.6)
    # the loop is closed (pose n would be pose 0) and moves the camera by its stated amounts at most
    np.testing.assert_allclose(paths.loop_around(16 * 2)[::2], loop)
    assert np.abs(loop[:, :3, 3]).max(axis=0) == pytest.approx([0.4, 0.1, 0.3], abs=0.02)
    # yaw_pitch: yaw turns the view to the left, pitch up
    forward = -paths.yaw_pitch(90.0, 0.0)[:, 2]
    np.testing.assert_allclose(forward, [-1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(-paths.yaw_pitch(0.0, 90.0)[:, 2], [0.0, 1.0, 0.0], atol=1e-12)


def test_benchmark_street():
    colour, depth = render_street()
    assert colour.shape == (288, 512, 3) and colour.dtype == np.uint8 and depth.dtype == np.float32
    sky = np.isinf(depth)
    assert 0.15 < sky.mean() < 0.5 and sky[0].mean() > 0.5 and not sky[-1].any()  # sky above, street below
    # the bottom row sees the ground: its z-depth is exact
    intr = street_intrinsics()
    v = intr.height - 1
    np.testing.assert_allclose(depth[v], -STREET_GROUND_Y * intr.fy / (v + 0.5 - intr.cy), rtol=1e-5)
    # the spheres: the centre of the one at (0.4, 0.6, -13), radius 2.6, is 10.4 m away
    u, v = (intr.fx * 0.4 / 13 + intr.cx, -intr.fy * 0.6 / 13 + intr.cy)
    assert depth[int(v), int(u)] == pytest.approx(13 - 2.6, abs=0.05)
    # deterministic; the default camera is the origin camera
    again, _ = render_street(intr, np.eye(4))
    np.testing.assert_array_equal(again, colour)
