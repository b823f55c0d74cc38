"""Forward splatting against known geometry.

Wire convention: the camera looks down -Z with +Y up, image rows go down. Moving the camera by +dx (right)
shifts a fronto-parallel plane at depth Z left in the image by fx * dx / Z pixels; moving it up (+Y) shifts
the plane down; turning left (+angle about +Y) moves content right.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.geometry.camera import Intrinsics
from starbridge.geometry.conventions import pose_to_matrix, wire_to_cv
from starbridge.geometry.poses import quat_from_axis_angle
from starbridge.geometry.splat import SplatConfig, Splatter, SplatterCache, splat

INTR = Intrinsics(fx=40.0, fy=40.0, cx=32.0, cy=24.0, width=64, height=48)
H, W = INTR.height, INTR.width
IDENTITY = np.eye(4)
RED, GREEN, BLUE = (200, 0, 0), (0, 200, 0), (0, 0, 200)


def translated(x: float, y: float, z: float) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = [x, y, z]
    return m


def rotated(axis: list[float], angle_rad: float) -> np.ndarray:
    return pose_to_matrix([0.0, 0.0, 0.0], quat_from_axis_angle(axis, angle_rad))


def texture(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)


def coordinate_image() -> np.ndarray:
    """Colour that encodes the source pixel: R = 3 u, G = 4 v (exact integers)."""
    v, u = np.mgrid[0:H, 0:W]
    return np.stack([3 * u, 4 * v, np.full_like(u, 50)], axis=-1).astype(np.uint8)


def source_pixel_of_target(dst_c2w: np.ndarray, depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each target pixel centre comes from in the source (identity camera), in pixel-index units
    (pixel centres at integers), for a scene that is a fronto-parallel plane at `depth` (or inf)."""
    v, u = np.mgrid[0:H, 0:W].astype(np.float64)
    rays = np.stack([(u + 0.5 - INTR.cx) / INTR.fx, (v + 0.5 - INTR.cy) / INTR.fy, np.ones_like(u)], axis=-1)
    c2w = wire_to_cv(dst_c2w)
    dirs = rays @ c2w[:3, :3].T  # world directions (the source camera is the identity: world = source wire)
    src_cv = wire_to_cv(IDENTITY)
    dirs_src = dirs @ src_cv[:3, :3]  # into the source OpenCV frame
    if math.isinf(depth):
        pts = dirs_src
    else:  # intersect with the plane z_src = depth
        origin = src_cv[:3, :3].T @ (c2w[:3, 3] - src_cv[:3, 3])
        s = (depth - origin[2]) / dirs_src[..., 2]
        pts = origin + s[..., None] * dirs_src
    us = INTR.fx * pts[..., 0] / pts[..., 2] + INTR.cx - 0.5
    vs = INTR.fy * pts[..., 1] / pts[..., 2] + INTR.cy - 0.5
    return us, vs


# ---------------------------------------------------------------------- exact shifts


def test_identity_pose_reproduces_source() -> None:
    colour = texture()
    depth = np.random.default_rng(1).uniform(1.0, 10.0, (H, W)).astype(np.float32)
    res = splat(colour, depth, INTR, IDENTITY, INTR, IDENTITY)
    assert res.mask.all()
    np.testing.assert_array_equal(res.colour, colour)
    np.testing.assert_allclose(res.depth, depth, rtol=1e-5)


@pytest.mark.parametrize(("dx", "dy"), [(0.2, 0.0), (0.0, 0.3), (-0.2, 0.3), (0.4, -0.1)])
def test_translated_camera_shifts_plane_by_fx_dx_over_z(dx: float, dy: float) -> None:
    """Camera right by dx: the plane moves left by fx dx / Z px; camera up by dy: the plane moves down."""
    z = 4.0
    shift_u = round(-INTR.fx * dx / z)  # +dx -> content moves left (negative u)
    shift_v = round(INTR.fy * dy / z)  # +dy (up) -> content moves down (positive v)
    colour = texture()
    depth = np.full((H, W), z, np.float32)
    res = splat(colour, depth, INTR, IDENTITY, INTR, translated(dx, dy, 0.0))
    expected_mask = np.zeros((H, W), bool)
    dst_rows = slice(max(shift_v, 0), H + min(shift_v, 0))
    dst_cols = slice(max(shift_u, 0), W + min(shift_u, 0))
    src_rows = slice(max(-shift_v, 0), H + min(-shift_v, 0))
    src_cols = slice(max(-shift_u, 0), W + min(-shift_u, 0))
    expected_mask[dst_rows, dst_cols] = True
    np.testing.assert_array_equal(res.mask, expected_mask)
    np.testing.assert_array_equal(res.colour[dst_rows, dst_cols], colour[src_rows, src_cols])
    assert (res.colour[~res.mask] == 0).all()
    np.testing.assert_allclose(res.depth[res.mask], z, rtol=1e-5)
    assert np.isinf(res.depth[~res.mask]).all()


def test_camera_moving_forward_zooms_and_stays_solid() -> None:
    """Moving 1 m towards a plane at 4 m magnifies by 4/3: no pinholes, coordinates where geometry says."""
    dst = translated(0.0, 0.0, -1.0)  # wire forward is -Z
    res = splat(coordinate_image(), np.full((H, W), 4.0, np.float32), INTR, IDENTITY, INTR, dst)
    assert res.mask.all()
    np.testing.assert_allclose(res.depth, 3.0, rtol=1e-5)
    us, vs = source_pixel_of_target(dst, 4.0)
    np.testing.assert_allclose(us[0], INTR.cx - 0.5 + (np.arange(W) + 0.5 - INTR.cx) * 0.75)  # the helper agrees
    assert np.abs(res.colour[..., 0] / 3.0 - us).max() < 0.5
    assert np.abs(res.colour[..., 1] / 4.0 - vs).max() < 0.5


def test_translation_with_subpixel_shift_matches_projection() -> None:
    dst = translated(0.13, -0.07, 0.0)
    res = splat(coordinate_image(), np.full((H, W), 4.0, np.float32), INTR, IDENTITY, INTR, dst)
    us, vs = source_pixel_of_target(dst, 4.0)
    inside = res.mask & (us >= 0) & (us <= W - 1) & (vs >= 0) & (vs <= H - 1)
    assert inside.sum() > 0.9 * H * W
    assert np.abs(res.colour[..., 0][inside] / 3.0 - us[inside]).max() < 0.5
    assert np.abs(res.colour[..., 1][inside] / 4.0 - vs[inside]).max() < 0.5


# ---------------------------------------------------------------------- directions at infinity


def test_infinite_depth_ignores_translation() -> None:
    colour = texture()
    depth = np.full((H, W), np.inf, np.float32)
    res = splat(colour, depth, INTR, IDENTITY, INTR, translated(1.0, 2.0, 3.0))
    assert res.mask.all()
    np.testing.assert_array_equal(res.colour, colour)
    assert np.isinf(res.depth).all()


def test_infinite_depth_under_yaw_moves_content_right_when_turning_left() -> None:
    dst = rotated([0.0, 1.0, 0.0], math.radians(8.0))  # +angle about +Y: the camera turns left
    res = splat(coordinate_image(), np.full((H, W), np.inf, np.float32), INTR, IDENTITY, INTR, dst)
    us, vs = source_pixel_of_target(dst, math.inf)
    assert (us < np.arange(W)).all()  # each target pixel shows what was to its left: content moved right
    inside = res.mask & (us >= 0) & (us <= W - 1) & (vs >= 0) & (vs <= H - 1)
    assert inside.sum() > 0.7 * H * W
    assert np.abs(res.colour[..., 0][inside] / 3.0 - us[inside]).max() < 0.5
    assert np.abs(res.colour[..., 1][inside] / 4.0 - vs[inside]).max() < 0.5
    assert not res.mask[:, :3].any()  # the left edge shows what the source never saw


def test_infinite_depth_under_pitch_moves_content_down_when_looking_up() -> None:
    dst = rotated([1.0, 0.0, 0.0], math.radians(6.0))  # +angle about +X: the camera looks up
    res = splat(coordinate_image(), np.full((H, W), np.inf, np.float32), INTR, IDENTITY, INTR, dst)
    us, vs = source_pixel_of_target(dst, math.inf)
    assert (vs < np.arange(H)[:, None]).all()  # content moved down
    inside = res.mask & (us >= 0) & (us <= W - 1) & (vs >= 0) & (vs <= H - 1)
    assert np.abs(res.colour[..., 1][inside] / 4.0 - vs[inside]).max() < 0.5
    assert not res.mask[:3].any()


def test_infinite_depth_under_half_turn_roll_flips_the_image_exactly() -> None:
    colour = texture()
    res = splat(colour, np.full((H, W), np.inf, np.float32), INTR, IDENTITY, INTR, rotated([0, 0, 1.0], math.pi))
    assert res.mask.all()
    np.testing.assert_array_equal(res.colour, colour[::-1, ::-1])


def test_nothing_behind_the_camera_is_drawn() -> None:
    colour = texture()
    half_turn = rotated([0.0, 1.0, 0.0], math.pi)
    for depth in (np.full((H, W), 4.0, np.float32), np.full((H, W), np.inf, np.float32)):
        res = splat(colour, depth, INTR, IDENTITY, INTR, half_turn)
        assert not res.mask.any()
        assert (res.colour == 0).all()
        assert np.isinf(res.depth).all()


# ---------------------------------------------------------------------- occlusion


def square_scene(background_depth: float) -> tuple[np.ndarray, np.ndarray]:
    """Red background at `background_depth`, a blue square at 2 m: rows 16..32, columns 24..40."""
    colour = np.empty((H, W, 3), np.uint8)
    colour[:] = GREEN if math.isinf(background_depth) else RED
    colour[16:32, 24:40] = BLUE
    depth = np.full((H, W), background_depth, np.float32)
    depth[16:32, 24:40] = 2.0
    return colour, depth


def test_near_square_occludes_far_plane_and_disocclusion_is_masked() -> None:
    """Camera right by 0.4 m: the square (2 m) moves 8 px left, the background (8 m) 2 px."""
    colour, depth = square_scene(8.0)
    res = splat(colour, depth, INTR, IDENTITY, INTR, translated(0.4, 0.0, 0.0))
    rows = slice(16, 32)
    assert (res.colour[rows, 16:32] == BLUE).all()  # background points land here too: the square wins
    np.testing.assert_allclose(res.depth[rows, 16:32], 2.0, rtol=1e-5)
    assert not res.mask[rows, 32:38].any()  # background that hid behind the square: disoccluded
    assert (res.colour[rows, 38:62] == RED).all() and res.mask[rows, 38:62].all()
    assert (res.colour[rows, 0:16] == RED).all() and res.mask[rows, 0:16].all()
    assert (res.colour[:16, :62] == RED).all() and (res.colour[32:, :62] == RED).all()
    np.testing.assert_allclose(res.depth[:16, :62], 8.0, rtol=1e-5)
    assert not res.mask[:, 62:].any()  # outside the source view
    assert res.mask.sum() == H * 62 - 16 * 6


def test_directions_at_infinity_lose_against_any_surface() -> None:
    colour, depth = square_scene(math.inf)
    res = splat(colour, depth, INTR, IDENTITY, INTR, translated(0.4, 0.0, 0.0))
    rows = slice(16, 32)
    assert (res.colour[rows, 16:32] == BLUE).all()  # unmoved sky lands under the square too
    assert not res.mask[rows, 32:40].any()  # sky the square hid
    outside = np.ones((H, W), bool)
    outside[rows, 16:40] = False
    assert res.mask[outside].all() and (res.colour[outside] == GREEN).all()
    assert np.isinf(res.depth[outside]).all()


@pytest.mark.parametrize(("far", "blended"), [(4.1, True), (8.0, False)])
def test_depth_band_blends_close_surfaces_only(far: float, blended: bool) -> None:
    """Columns alternate near (4 m, grey 100) and far; a half-size target gathers both into each pixel."""
    colour = np.full((H, W, 3), 100, np.uint8)
    colour[:, 1::2] = 200
    depth = np.full((H, W), 4.0, np.float32)
    depth[:, 1::2] = far
    small = INTR.scaled(W // 2, H // 2)
    res = splat(colour, depth, INTR, IDENTITY, small, IDENTITY)
    assert res.mask.all()
    values = res.colour[1:-1, 1:-1, 0]
    if blended:  # 2.5 % behind with a 5 % band: half weight
        assert (values > 100).all() and (values < 150).all()
    else:
        assert (values == 100).all()
    np.testing.assert_allclose(res.depth, 4.0, rtol=1e-5)


def test_invalid_depth_is_dropped() -> None:
    colour = texture()
    depth = np.full((H, W), 4.0, np.float32)
    depth[:, 10] = np.nan
    depth[:, 20] = 0.0
    depth[:, 30] = -1.0
    depth[5, :] = -np.inf
    res = splat(colour, depth, INTR, IDENTITY, INTR, IDENTITY)
    expected = np.ones((H, W), bool)
    expected[:, [10, 20, 30]] = False
    expected[5, :] = False
    np.testing.assert_array_equal(res.mask, expected)
    np.testing.assert_array_equal(res.colour[expected], colour[expected])


# ---------------------------------------------------------------------- API


def test_other_target_intrinsics() -> None:
    colour = np.full((H, W, 3), 77, np.uint8)
    depth = np.full((H, W), 3.0, np.float32)
    wide = Intrinsics.from_fov(90.0, 80, 40)
    res = splat(colour, depth, INTR, IDENTITY, wide, IDENTITY)
    assert res.colour.shape == (40, 80, 3) and res.mask.shape == (40, 80) and res.depth.shape == (40, 80)
    assert (res.colour[res.mask] == 77).all()
    assert res.mask[20, 40] and not res.mask[20, 0]  # the wider view sees past the source's edges


def test_splatter_reuse_matches_function() -> None:
    colour, depth = square_scene(8.0)
    splatter = Splatter(INTR, INTR)
    first = splatter(colour, depth, IDENTITY, translated(0.1, 0.05, -0.2))
    other = splatter(texture(), np.full((H, W), 1.0, np.float32), IDENTITY, rotated([0, 1.0, 0], 0.3))
    again = splatter(colour, depth, IDENTITY, translated(0.1, 0.05, -0.2))
    plain = splat(colour, depth, INTR, IDENTITY, INTR, translated(0.1, 0.05, -0.2))
    for res in (again, plain):
        np.testing.assert_array_equal(res.colour, first.colour)
        np.testing.assert_array_equal(res.mask, first.mask)
        np.testing.assert_array_equal(res.depth, first.depth)
    assert not np.array_equal(other.colour, first.colour)


@pytest.mark.parametrize(
    ("colour", "depth", "dst", "field"),
    [
        (np.zeros((H, W, 4), np.uint8), np.ones((H, W), np.float32), IDENTITY, "colour"),
        (np.zeros((H, W, 3), np.float32), np.ones((H, W), np.float32), IDENTITY, "colour"),
        (np.zeros((H + 1, W, 3), np.uint8), np.ones((H, W), np.float32), IDENTITY, "colour"),
        (np.zeros((H, W, 3), np.uint8), np.ones((H, W - 1), np.float32), IDENTITY, "depth"),
        (np.zeros((H, W, 3), np.uint8), np.ones((H, W), np.float32), np.full((4, 4), np.nan), "dst_c2w_wire"),
        (np.zeros((H, W, 3), np.uint8), np.ones((H, W), np.float32), np.eye(3), "dst_c2w_wire"),
    ],
)
def test_bad_input_names_the_field(colour: np.ndarray, depth: np.ndarray, dst: np.ndarray, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        splat(colour, depth, INTR, IDENTITY, INTR, dst)
    assert info.value.field == field
    assert field in str(info.value)


@pytest.mark.parametrize(
    "kwargs", [{"depth_band": 0.0}, {"min_footprint_weight": 0.0}, {"min_footprint_weight": 0.5}, {"near": -1.0}]
)
def test_config_validation(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidArgument):
        SplatConfig(**kwargs)


def test_splatter_cache_keeps_the_most_recently_used():
    src = Intrinsics.from_fov(60.0, 64, 36)
    cache = SplatterCache(src, capacity=2)
    a, b, c = (Intrinsics.from_fov(fov, 64, 36) for fov in (50.0, 60.0, 70.0))
    sa = cache.get(a)
    assert cache.get(a) is sa  # reused
    cache.get(b)
    cache.get(a)  # a is now the most recent
    cache.get(c)  # evicts b, not a
    assert len(cache) == 2 and cache.get(a) is sa
    assert cache.get(b) is not None and len(cache) == 2
    cache.clear()
    assert len(cache) == 0


def test_point_splatter_matches_the_frame_splatter():
    """A frame's pixels as world points splat to the same image as the frame itself."""
    from starbridge.geometry.splat import PointSplatter, frame_points

    intr = Intrinsics.from_fov(60.0, 64, 36)
    rng = np.random.default_rng(3)
    colour = rng.integers(0, 256, (36, 64, 3), dtype=np.uint8)
    depth = rng.uniform(2.0, 9.0, (36, 64)).astype(np.float32)
    depth[:8] = np.inf  # sky rows: directions at infinity
    src = pose_to_matrix([0.3, 0.1, -0.2], quat_from_axis_angle([0.0, 1.0, 0.0], math.radians(10.0)))
    dst = pose_to_matrix([0.6, 0.0, -0.5], quat_from_axis_angle([0.0, 1.0, 0.0], math.radians(-5.0)))
    frame = Splatter(intr, intr)(colour, depth, src, dst)
    points = frame_points(depth, intr, src)
    assert points.shape == (36 * 64, 4) and (points[: 8 * 64, 3] == 0).all() and (points[8 * 64 :, 3] == 1).all()
    result = PointSplatter(intr, capacity=10)(points, colour.reshape(-1, 3), dst)  # grows past its capacity
    np.testing.assert_array_equal(result.mask, frame.mask)
    assert np.abs(result.colour.astype(int) - frame.colour.astype(int)).max() <= 1
    np.testing.assert_allclose(result.depth, frame.depth, rtol=1e-4)


def test_point_splatter_culls_what_the_camera_cannot_see():
    from starbridge.geometry.splat import PointSplatter

    intr = Intrinsics.from_fov(60.0, 32, 18)
    behind = np.array([[0.0, 0.0, 5.0, 1.0], [0.0, 0.0, 1.0, 0.0]], np.float32)  # +Z is behind a wire camera
    ahead = np.array([[0.0, 0.0, -5.0, 1.0]], np.float32)
    colours = np.full((3, 3), 200, np.uint8)
    out = PointSplatter(intr, 3)(np.concatenate([behind, ahead]), colours, np.eye(4))
    assert out.mask.sum() >= 1 and out.depth[out.mask].min() == pytest.approx(5.0)
    assert not PointSplatter(intr, 3)(behind, colours[:2], np.eye(4)).mask.any()


def _scattered_world(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """Random points 2-12 m in front of the origin camera, spread over +-60 degrees, and some directions."""
    rng = np.random.default_rng(seed)
    angle = rng.uniform(-1.0, 1.0, n)
    dist = rng.uniform(2.0, 12.0, n)
    pts = np.stack([dist * np.sin(angle), rng.uniform(-1.5, 1.5, n), -dist * np.cos(angle), np.ones(n)], axis=1)
    pts[: n // 10, 3] = 0.0  # directions at infinity
    return pts.astype(np.float32), rng.integers(0, 256, (n, 3), dtype=np.uint8)


def test_sampling_at_some_pixels_gives_what_the_full_splat_gives_there():
    """PointSplatter.sample: the same values as splat(only=those pixels), bit for bit, without the full image."""
    from starbridge.geometry.splat import PointSplatter

    intr = Intrinsics.from_fov(60.0, 64, 36)
    points, colours = _scattered_world(5)
    dst = rotated([0.0, 1.0, 0.0], math.radians(12.0))
    rng = np.random.default_rng(6)
    pixels = np.unique(rng.integers(0, 64 * 36, 300))
    only = np.zeros(64 * 36, bool)
    only[pixels] = True
    full = PointSplatter(intr, 10).splat([(points, colours)], dst, only=only.reshape(36, 64))
    part = PointSplatter(intr, 10).sample([(points, colours)], dst, pixels)
    np.testing.assert_array_equal(part.mask, full.mask.reshape(-1)[pixels])
    np.testing.assert_array_equal(part.colour, full.colour.reshape(-1, 3)[pixels])
    np.testing.assert_array_equal(part.depth, full.depth.reshape(-1)[pixels])
    assert part.mask.mean() > 0.3  # the check sees drawn pixels, not only empty ones


def test_pixel_points_are_the_frame_points_of_those_pixels():
    from starbridge.geometry.splat import frame_points, pixel_points

    intr = Intrinsics.from_fov(60.0, 32, 18)
    depth = np.random.default_rng(2).uniform(1.0, 9.0, (18, 32)).astype(np.float32)
    depth[:4] = np.inf
    c2w = pose_to_matrix([0.4, -0.2, 1.0], quat_from_axis_angle([0.3, 1.0, 0.1], math.radians(25.0)))
    where = np.random.default_rng(3).random((18, 32)) < 0.3
    flat = np.flatnonzero(where)
    np.testing.assert_array_equal(pixel_points(flat, depth.reshape(-1)[flat], intr, c2w),
                                  frame_points(depth, intr, c2w, where=where))  # fmt: skip


def test_bounding_boxes_cull_exactly_the_sets_that_cannot_draw_on_the_pixels():
    """boxes_in_view never drops a point set that draws on the pixels, and does drop sets off to the side or
    behind the camera (directions included)."""
    from starbridge.geometry.splat import PointSplatter, bounding_boxes, boxes_in_view

    intr = Intrinsics.from_fov(60.0, 64, 36)
    points, colours = _scattered_world(7, 4000)
    by_angle = np.argsort(np.arctan2(points[:, 0], -points[:, 2]))
    sets = np.array_split(by_angle, 40)  # 40 sets, each a narrow slice of the field, left to right
    boxes = [bounding_boxes(points[s]) for s in sets]
    assert all(len(b) in (1, 2) for b in boxes) and len(bounding_boxes(points[:0])) == 0
    pixels = np.flatnonzero(np.pad(np.ones((8, 10), bool), ((10, 18), (40, 14))))  # a block right of centre
    splatter = PointSplatter(intr, 10)
    for yaw in (0.0, 30.0, 180.0):
        dst = rotated([0.0, 1.0, 0.0], math.radians(yaw))
        shown = boxes_in_view(boxes, intr, dst, pixels)
        drawn = np.array([splatter.sample([(points[s], colours[s])], dst, pixels).mask.any() for s in sets])
        assert not (drawn & ~shown).any()  # exact: nothing that draws there is culled
        if yaw == 0.0:
            assert drawn.any() and (~shown).sum() >= 10  # and it does cull
        if yaw == 180.0:
            assert not drawn.any() and (~shown).sum() >= 36  # (nearly) everything is behind


# ---------------------------------------------------------------------- the NumPy reference (bit for bit)


def reference_project(depth: np.ndarray, src: Intrinsics, dst: Intrinsics, rel: np.ndarray, near: float):
    """The frame splatter's projection as NumPy did it before the compiled kernels: positions x, y in the
    bordered target grid (NaN: undrawable) and z-test keys, all float32."""
    k = np.array([[dst.fx, 0.0, dst.cx + 0.5], [0.0, dst.fy, dst.cy + 0.5], [0.0, 0.0, 1.0]])
    m, kt = (k @ rel[:3, :3]).astype(np.float32), (k @ rel[:3, 3]).astype(np.float32)
    a = ((np.arange(src.width) + 0.5 - src.cx) / src.fx).astype(np.float32)
    b = ((np.arange(src.height) + 0.5 - src.cy) / src.fy).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        inv_d = np.float32(1.0) / depth
        hx, hy, hz = (inv_d * kt[i] + np.add.outer(m[i, 1] * b + m[i, 2], m[i, 0] * a) for i in range(3))
        drawable = (depth > 0) & (hz > np.float32(near) * inv_d)
        x, y = np.where(drawable, hx / hz, np.nan), np.where(drawable, hy / hz, np.nan)
        key = np.minimum(hz * depth, np.float32(1e30))
    return x.ravel().astype(np.float32), y.ravel().astype(np.float32), key.ravel()


def reference_draw(x, y, key, rgb, dst: Intrinsics, config: SplatConfig):
    """The splat of points as NumPy did it with ufunc.at (the module docstring's rules): positions clipped onto
    the border, NaN ones into a trash area; returns (colour, mask, depth) of the image."""
    h, w = dst.height, dst.width
    row, trash = w + 2, (h + 2) * (w + 2)
    x, y = np.clip(x, 0.0, w + 1.0), np.clip(y, 0.0, h + 1.0)
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    base = np.where(np.isnan(x0 + y0), trash, y0.astype(np.float64) * row + x0).astype(np.intp)
    weights = [(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy]
    corners = [base + offset for offset in (0, 1, row, row + 1)]
    zbuf = np.full(trash + row + 2, np.inf, np.float32)
    for wt, at in zip(weights, corners, strict=True):
        np.minimum.at(zbuf, at, np.where(wt >= np.float32(config.min_footprint_weight), key, np.float32(np.inf)))
    band = np.float32(config.depth_band)
    inv = np.float32(1.0) / (zbuf * band)
    acc = np.zeros((len(zbuf), 4), np.float32)
    for wt, at in zip(weights, corners, strict=True):  # corner by corner, points in order
        weight = np.clip(np.float32((1.0 + config.depth_band) / config.depth_band) - inv[at] * key, 0, 1) * wt
        for c in range(3):
            np.add.at(acc[:, c], at, weight * rgb[:, c].astype(np.float32))
        np.add.at(acc[:, 3], at, weight)
    zbuf = zbuf[:trash].reshape(h + 2, row)[1:-1, 1:-1]
    acc = acc[:trash].reshape(h + 2, row, 4)[1:-1, 1:-1]
    mask = zbuf < np.inf
    with np.errstate(divide="ignore"):
        scale = np.where(mask, np.float32(1.0) / acc[:, :, 3], np.float32(0.0))
    colour = (acc[:, :, :3] * scale[:, :, None] + np.float32(0.5)).astype(np.uint8)
    return colour, mask, np.where(zbuf >= np.float32(1e30), np.float32(np.inf), zbuf)


@pytest.mark.parametrize(
    ("position", "yaw_deg"),
    [([0.0, 0.0, 0.0], 0.0), ([0.3, -0.1, -0.6], 4.0), ([-0.4, 0.2, 0.5], -10.0), ([0.2, 0.0, 0.1], 35.0)],
)
def test_frame_splatter_matches_the_numpy_reference_bit_for_bit(position: list[float], yaw_deg: float):
    """The compiled kernels give the very images the ufunc.at implementation gave: same float32 arithmetic in
    the same order. Includes a turned camera (many points land outside: skipped now, clipped onto the border
    then), a camera that came closer (magnified), sky, and pixels without depth."""
    colour, depth = texture(8), np.random.default_rng(9).uniform(2.0, 8.0, (H, W)).astype(np.float32)
    depth[:6] = np.inf
    depth[20, 5:9] = np.nan
    depth[30, 10:12] = 0.0
    dst = pose_to_matrix(position, quat_from_axis_angle([0.0, 1.0, 0.0], math.radians(yaw_deg)))
    got = Splatter(INTR, INTR)(colour, depth, IDENTITY, dst)
    rel = np.linalg.inv(wire_to_cv(dst)) @ wire_to_cv(IDENTITY)
    x, y, key = reference_project(depth, INTR, INTR, rel, SplatConfig().near)
    if yaw_deg == 35.0:
        inside = (x >= 0) & (x < W + 1) & (y >= 0) & (y < H + 1)
        assert 0.2 < 1 - inside.mean() < 0.8  # many points only reach the border
    colour_ref, mask_ref, depth_ref = reference_draw(x, y, key, colour.reshape(-1, 3), INTR, SplatConfig())
    np.testing.assert_array_equal(got.mask, mask_ref)
    np.testing.assert_array_equal(got.colour, colour_ref)
    np.testing.assert_array_equal(got.depth, depth_ref)


def test_point_drawing_matches_the_numpy_reference_on_crowded_points():
    """Many points per pixel (collisions in the scatter), positions on pixel centres, on the border, outside,
    NaN, and keys at SKY_KEY: the compiled draw equals the ufunc.at one bit for bit, also when it uses fewer
    points than its capacity, and `draw_at` gives the same values at the pixels it resolves."""
    from starbridge.geometry.splat import SKY_KEY, _Target

    rng = np.random.default_rng(12)
    n = 20000
    x = rng.uniform(-2.0, W + 3.0, n).astype(np.float32)
    y = rng.uniform(-2.0, H + 3.0, n).astype(np.float32)
    x[:500] = np.round(x[:500])  # exactly on pixel centres: one footprint pixel only
    x[500:600] = np.float32(W + 1.0)  # on the far border
    y[600:700] = np.float32(np.nan)
    key = rng.uniform(1.0, 1.3, n).astype(np.float32)  # within and beyond the depth band of each other
    key[700:2000] = SKY_KEY  # directions among the surfaces: they lose
    key[x < W / 4] = SKY_KEY  # and only directions on the left: sky there
    rgb = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    config = SplatConfig(depth_band=0.1)
    target = _Target(INTR, 2 * n, config)
    got = target.draw(x, y, key, rgb)
    colour_ref, mask_ref, depth_ref = reference_draw(x, y, key, rgb, INTR, config)
    assert mask_ref.all() and (depth_ref == np.inf).any() and (depth_ref < 2.0).any()
    np.testing.assert_array_equal(got.mask, mask_ref)
    np.testing.assert_array_equal(got.colour, colour_ref)
    np.testing.assert_array_equal(got.depth, depth_ref)
    pixels = rng.choice(H * W, 300, replace=False)
    at = target.draw_at(x, y, key, rgb, pixels)
    np.testing.assert_array_equal(at.colour, colour_ref.reshape(-1, 3)[pixels])
    np.testing.assert_array_equal(at.depth, depth_ref.reshape(-1)[pixels])
