"""The ray-caster against known geometry: depths, orientation, sky, shadows."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from starbridge.geometry.camera import Intrinsics
from starbridge.scenes.procedural.raycast import (
    Box,
    Ground,
    Lighting,
    RayScene,
    Sphere,
    intersect_box,
    intersect_sphere,
    linear_to_srgb8,
    render,
    screen_rect,
)

GREY = (0.5, 0.5, 0.5)


def look(yaw_deg: float = 0.0, pitch_deg: float = 0.0, position=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Camera-to-world (wire): turned `yaw` about +Y (positive: to the left), then pitched (positive: up)."""
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    m = np.eye(4)
    m[:3, :3] = ry @ rx
    m[:3, 3] = position
    return m


def test_camera_looking_straight_down_sees_its_height_everywhere():
    h = 2.5
    intr = Intrinsics.from_fov(60.0, 64, 48)
    _, depth = render(RayScene(Ground(height=-h)), look(pitch_deg=-90.0), intr)
    np.testing.assert_allclose(depth, h, rtol=1e-6)


def test_identity_camera_sky_on_top_ground_below_with_analytic_depth():
    h, intr = 1.6, Intrinsics.from_fov(60.0, 64, 48)
    rgb, depth = render(RayScene(Ground(height=-h)), np.eye(4), intr)
    assert np.isinf(depth[: intr.height // 2]).all()  # sky in the top rows (the horizon is at the centre)
    assert np.isfinite(depth[intr.height // 2 :]).all()  # ground in the bottom rows
    v = np.arange(intr.height // 2, intr.height)
    expected = h * intr.fy / (v + 0.5 - intr.cy)  # z-depth of the ground along each row
    np.testing.assert_allclose(depth[intr.height // 2 :], np.repeat(expected[:, None], intr.width, 1), rtol=1e-5)
    sky = rgb[0].astype(int)
    assert (sky[:, 2] > sky[:, 0]).all()  # blue sky
    assert rgb.shape == (48, 64, 3) and rgb.dtype == np.uint8 and depth.dtype == np.float32


def test_box_face_gives_analytic_depth_and_appears_on_the_correct_side():
    intr = Intrinsics.from_fov(60.0, 81, 61)  # odd: the centre pixel's ray is the optical axis
    box = Box(center=(0.0, 0.0, -10.0), half=(1.0, 1.0, 1.0), albedo=GREY)
    _, depth = render(RayScene(Ground(height=-100.0), boxes=(box,)), np.eye(4), intr)
    hit = np.isfinite(depth) & (depth < 50)
    np.testing.assert_allclose(depth[hit], 9.0, rtol=1e-6)  # the front face is a plane at z = -9
    half_px = intr.fy * 1.0 / 9.0  # projected half size of the front face
    assert abs(hit.sum() - (2 * half_px) ** 2) < 4 * 2 * half_px + 4
    # Mirroring: a box at world +X (camera +X) appears in the right half of the image.
    right = Box(center=(3.0, 0.0, -10.0), half=(0.5, 0.5, 0.5), albedo=GREY)
    _, depth = render(RayScene(Ground(height=-100.0), boxes=(right,)), np.eye(4), intr)
    cols = np.nonzero((np.isfinite(depth) & (depth < 50)).any(axis=0))[0]
    assert cols.min() > intr.width // 2
    rows = np.nonzero((np.isfinite(depth) & (depth < 50)).any(axis=1))[0]
    assert rows.min() < intr.height // 2 < rows.max()  # centred vertically: not flipped


def test_rotated_box_sphere_and_turned_camera():
    intr = Intrinsics.from_fov(60.0, 81, 61)
    c = (intr.height // 2, intr.width // 2)
    diamond = Box(center=(0.0, 0.0, -10.0), half=(1.0, 1.0, 1.0), albedo=GREY, yaw=math.pi / 4)
    _, depth = render(RayScene(Ground(height=-100.0), boxes=(diamond,)), np.eye(4), intr)
    assert depth[c] == pytest.approx(10.0 - math.sqrt(2.0), rel=1e-6)  # the vertical edge faces the camera
    ball = Sphere(center=(0.0, 0.0, -10.0), radius=2.0, albedo=GREY)
    _, depth = render(RayScene(Ground(height=-100.0), spheres=(ball,)), np.eye(4), intr)
    assert depth[c] == pytest.approx(8.0, rel=1e-6)
    # A camera turned 90 degrees to the left looks down -X: a sphere there sits at the image centre.
    ball = Sphere(center=(-10.0, 0.0, 0.0), radius=2.0, albedo=GREY)
    _, depth = render(RayScene(Ground(height=-100.0), spheres=(ball,)), look(yaw_deg=90.0), intr)
    assert depth[c] == pytest.approx(8.0, rel=1e-6)


def test_intersection_primitives():
    box = Box(center=(0.0, 0.0, -5.0), half=(1.0, 2.0, 1.0), albedo=GREY)
    dirs = np.array([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.3, -1.0]])
    t = intersect_box(box, np.zeros(3), dirs)
    np.testing.assert_allclose(t, [4.0, np.inf, np.inf, 4.0], rtol=1e-6)
    inside = intersect_box(box, np.array([0.0, 0.0, -5.0]), np.array([[0.0, 0.0, -1.0]]))
    np.testing.assert_allclose(inside, [1.0])  # from inside: the exit
    ball = Sphere(center=(0.0, 0.0, -5.0), radius=1.0, albedo=GREY)
    np.testing.assert_allclose(intersect_sphere(ball, np.zeros(3), dirs[:3]), [4.0, np.inf, np.inf], rtol=1e-6)
    # Many origins, one direction (shadow rays).
    origins = np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0]])
    np.testing.assert_allclose(intersect_box(box, origins, np.array([0.0, 0.0, -1.0])), [4.0, np.inf])


def test_screen_rect_bounds_and_culls():
    intr = Intrinsics.from_fov(60.0, 64, 48)
    box = Box(center=(0.0, 0.0, -10.0), half=(1.0, 1.0, 1.0), albedo=GREY)
    rows, cols = screen_rect(box.corners(), np.eye(4), intr)
    assert 0 < cols.start < 32 < cols.stop < 64 and 0 < rows.start < 24 < rows.stop < 48
    assert screen_rect(box.corners() + [0, 0, 20.0], np.eye(4), intr) is None  # behind the camera
    straddling = Box(center=(0.0, 0.0, 0.0), half=(1.0, 1.0, 1.0), albedo=GREY).corners()
    assert screen_rect(straddling, np.eye(4), intr) == (slice(0, 48), slice(0, 64))


def test_shadows_only_darken():
    intr = Intrinsics.from_fov(60.0, 64, 48)
    box = Box(center=(0.0, 1.0, -8.0), half=(1.0, 1.0, 1.0), albedo=GREY)
    scene = RayScene(Ground(height=-1.6), Lighting(sun_dir=(0.6, 0.6, 0.529150262)), boxes=(box,))
    lit, d1 = render(replace(scene, lighting=replace(scene.lighting, shadows=False)), look(pitch_deg=-20), intr)
    shadowed, d2 = render(scene, look(pitch_deg=-20), intr)
    np.testing.assert_array_equal(d1, d2)
    darker = shadowed.astype(int).sum(-1) < lit.astype(int).sum(-1)
    assert darker.sum() > 20
    assert not (shadowed.astype(int).sum(-1) > lit.astype(int).sum(-1)).any()


def test_linear_to_srgb():
    out = linear_to_srgb8(np.array([0.0, 0.0031308, 0.5, 1.0, 2.0, -1.0]))
    assert out.tolist() == [0, 10, 188, 255, 255, 0]
