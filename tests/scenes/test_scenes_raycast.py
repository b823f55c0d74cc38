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
    box_albedo,
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


def test_box_patterns_are_averaged_over_the_pixel_footprint():
    """A camera integrates light over a pixel: the stripes' value is their exact mean over the footprint
    (checked against dense sampling), full contrast where a stripe spans many pixels, and the face's mean
    where a pixel spans many stripes (point-sampled they alias into moire that moves unlike the surface)."""
    box = Box(center=(0.0, 0.0, 0.0), half=(2.0, 2.0, 2.0), albedo=(1.0, 1.0, 1.0), pattern="stripes")
    rng = np.random.default_rng(0)
    m = 200
    y = rng.uniform(0.1, 3.9, m).astype(np.float32)
    hit = np.stack([np.full(m, 0.3), y - 2.0, np.full(m, 2.0)], 1).astype(np.float32)  # front face (+z)
    facing = np.tile(np.float32([0.0, 0.0, -1.0]), (m, 1))  # a ray straight at it
    width = rng.uniform(0.01, 1.5, m).astype(np.float32)
    got, normal = box_albedo(box, hit, width, facing)
    np.testing.assert_array_equal(normal, np.tile([0.0, 0.0, 1.0], (m, 1)))
    offsets = (np.arange(4001) / 4000.0 - 0.5)[None, :] * width[:, None]  # dense samples over each footprint
    sampled = 0.8 + 0.2 * (np.floor((y[:, None] + offsets) / 0.4) % 2)
    np.testing.assert_allclose(got[:, 0], sampled.mean(1), atol=2e-3)
    point, _ = box_albedo(box, hit)  # no footprint: sampled at the point
    np.testing.assert_allclose(point[:, 0], 0.8 + 0.2 * (np.floor(y / 0.4) % 2), atol=1e-6)
    wide, _ = box_albedo(box, hit, np.full(m, 40.0, np.float32), facing)  # 100 stripes a pixel: their mean
    np.testing.assert_allclose(wide[:, 0], 0.9, atol=0.004)
    # A grazing view stretches the footprint along the face: 0.1 m across the ray at 84 degrees is ~1 m on it.
    grazing = np.tile(np.float32([0.0, 0.0, -math.cos(math.radians(84.0))]), (m, 1))
    grazing[:, 0] = math.sin(math.radians(84.0))
    slanted, _ = box_albedo(box, hit, np.full(m, 0.1, np.float32), grazing)
    assert np.ptp(slanted[:, 0]) < 0.5 * np.ptp(point[:, 0])


def test_far_stripes_render_as_their_mean_and_near_ones_at_full_contrast():
    intr = Intrinsics.from_fov(48.0, 160, 90)  # fy 101 px
    lighting = Lighting(fog_distance_m=0.0)
    for distance, lo, hi in ((8.0, 0.08, 1.0), (150.0, 0.0, 0.02)):
        box = Box(center=(0.0, 0.0, -distance), half=(0.3 * distance, 0.3 * distance, 0.5), albedo=GREY,
                  pattern="stripes")  # fmt: skip
        rgb, depth = render(RayScene(Ground(height=-1000.0), lighting, boxes=(box,)), np.eye(4), intr)
        face = np.isfinite(depth) & (depth < 2 * distance)
        face[:, : intr.width // 2 - 20] = face[:, intr.width // 2 + 20 :] = False  # the middle columns
        column = rgb[..., 1].astype(float)[face]
        contrast = (np.percentile(column, 95) - np.percentile(column, 5)) / max(column.mean(), 1.0)
        # 8 m: a 0.4 m stripe is 5 px tall (full contrast); 150 m: 0.27 px, averaged to the face's mean
        assert lo <= contrast <= hi, (distance, contrast)
