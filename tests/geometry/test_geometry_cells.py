"""Points with cells (PointSplatter): a point magnified past what the bilinear footprint closes covers its cell.

The compiled kernels are checked against plain NumPy references written from the rules in their docstrings
(kernels.project_points' reach, kernels.footprint_z_test's wide footprint, kernels.accumulate's tent weights),
bit for bit; then against geometry: a plane seen closer than its source saw it is closed with cells and cracked
without them, and a depth edge between two planes stays open.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from starbridge.geometry import kernels
from starbridge.geometry.camera import Intrinsics
from starbridge.geometry.conventions import pose_to_matrix, wire_to_cv
from starbridge.geometry.poses import quat_from_axis_angle
from starbridge.geometry.splat import (
    MAX_REACH,
    SKY_KEY,
    WIDE_REACH,
    PointSplatter,
    SplatConfig,
    _Target,
    frame_points,
)

INTR = Intrinsics(fx=40.0, fy=40.0, cx=32.0, cy=24.0, width=64, height=48)
H, W = INTR.height, INTR.width
F32 = np.float32


def reference_reach(points: np.ndarray, cells: np.ndarray, proj: np.ndarray, near: float):
    """kernels.project_points' positions and reaches, in NumPy float32 with the same operations in the same
    order (no culling: every point, NaN where it is not ahead)."""
    p, c, m = points.astype(F32), cells.astype(F32), proj.astype(F32)

    def row(r: int) -> np.ndarray:  # as splat._transform: the first term, then the others whose coefficient != 0
        v = p[:, 0] * m[r, 0]
        for j in range(1, 4):
            if m[r, j] != 0:
                v = v + p[:, j] * m[r, j]
        return v

    hx, hy, hz = row(0), row(1), row(2)
    with np.errstate(divide="ignore", invalid="ignore"):
        px, py = hx / hz, hy / hz
        shifts = []
        for e in (0, 3):
            ex, ey, ez = ((m[r, 0] * c[:, e] + m[r, 1] * c[:, e + 1]) + m[r, 2] * c[:, e + 2] for r in range(3))
            z = hz + ez
            ok = z > F32(near)
            sx = np.where(ok, np.abs((hx + ex) / z - hx / hz), F32(np.inf))
            sy = np.where(ok, np.abs((hy + ey) / z - hy / hz), F32(np.inf))
            shifts.append((sx, sy))
    rx = np.minimum(F32(0.5) * (shifts[0][0] + shifts[1][0]), F32(MAX_REACH))
    ry = np.minimum(F32(0.5) * (shifts[0][1] + shifts[1][1]), F32(MAX_REACH))
    ahead = hz > F32(near)
    return np.where(ahead, px, np.nan), np.where(ahead, py, np.nan), hz, np.stack([rx, ry])


def test_reach_matches_the_numpy_reference():
    """Points with random cells seen from a camera that walked up to them: the kept points' positions, keys
    and reaches are those of the NumPy reference, bit for bit, some of them capped at MAX_REACH."""
    rng = np.random.default_rng(21)
    n = 4000
    points = np.ones((n, 4), np.float32)
    points[:, 0] = rng.uniform(-3.0, 3.0, n)
    points[:, 1] = rng.uniform(-2.0, 2.0, n)
    points[:, 2] = -rng.uniform(0.3, 8.0, n)
    cells = rng.normal(0.0, 0.05, (n, 6)).astype(np.float32)
    cells[:50] *= 40.0  # huge cells: capped
    colours = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    dst = pose_to_matrix([0.1, 0.0, -0.2], quat_from_axis_angle([0.0, 1.0, 0.0], math.radians(8.0)))
    splatter = PointSplatter(INTR, n)
    x, y, key, rgb, reach = splatter._gather([(points, colours, cells)], dst, None)
    k = splatter._target.bordered_k()
    proj = k @ np.linalg.inv(wire_to_cv(dst))[:3]
    rx_, ry_, key_, reach_ = reference_reach(points, cells, proj, SplatConfig().near)
    m = 2.0 + reach_
    kept = (key_ > SplatConfig().near) & (rx_ > -m[0]) & (rx_ < W + m[0]) & (ry_ > -m[1]) & (ry_ < H + m[1])
    assert 0.3 * n < kept.sum() < n
    np.testing.assert_array_equal(x, rx_[kept])
    np.testing.assert_array_equal(y, ry_[kept])
    np.testing.assert_array_equal(key, key_[kept])
    np.testing.assert_array_equal(rgb, colours[kept])
    np.testing.assert_array_equal(reach, reach_[:, kept])
    assert (reach == np.float32(MAX_REACH)).any() and (reach < WIDE_REACH).any()


def reference_draw_wide(x, y, key, rgb, reach, dst: Intrinsics, config: SplatConfig):
    """The splat of points with reaches by the rules of kernels.footprint_z_test and accumulate, point by point
    in NumPy (float32): bilinear footprints (corner by corner, points in order) for the points that reach no
    farther than WIDE_REACH, then the wide ones in order, each over its rows and columns."""
    h, w = dst.height, dst.width
    row = w + 2
    size = (h + 2) * row
    half, one = F32(0.5), F32(1.0)
    wide = (reach[0] > F32(WIDE_REACH)) | (reach[1] > F32(WIDE_REACH))
    small = ~wide & (x >= 0) & (x < w + 1) & (y >= 0) & (y < h + 1) & ~np.isnan(key)
    zbuf = np.full(size, np.inf, np.float32)
    sx, sy, sk, sc = x[small], y[small], key[small], rgb[small].astype(np.float32)
    x0, y0 = np.floor(sx), np.floor(sy)
    fx, fy = sx - x0, sy - y0
    weights = [(one - fx) * (one - fy), fx * (one - fy), (one - fx) * fy, fx * fy]
    base = y0.astype(np.int64) * row + x0.astype(np.int64)
    corners = [base + o for o in (0, 1, row, row + 1)]
    for wt, at in zip(weights, corners, strict=True):
        np.minimum.at(zbuf, at, np.where(wt >= F32(config.min_footprint_weight), sk, F32(np.inf)))
    footprints = []  # per wide point: its pixels (row by row) and tent weights
    for i in np.flatnonzero(wide & ~np.isnan(x) & ~np.isnan(y) & ~np.isnan(key)):
        rx, ry = reach[0, i] + F32(kernels.WIDE_SPILL), reach[1, i] + F32(kernels.WIDE_SPILL)
        c0, c1 = max(int(np.ceil(x[i] - rx)), 0), min(int(np.floor(x[i] + rx)), w + 1)
        r0, r1 = max(int(np.ceil(y[i] - ry)), 0), min(int(np.floor(y[i] + ry)), h + 1)
        if c0 > c1 or r0 > r1:
            continue
        gy, gx = np.meshgrid(np.arange(r0, r1 + 1), np.arange(c0, c1 + 1), indexing="ij")
        tx = one - np.abs(gx.astype(np.float32) - x[i]) / (rx + half)
        ty = one - np.abs(gy.astype(np.float32) - y[i]) / (ry + half)
        pix = (gy * row + gx).ravel()
        np.minimum.at(zbuf, pix, key[i])
        footprints.append((i, pix, (tx * ty).ravel()))
    inv = one / (zbuf * F32(config.depth_band))
    full = F32((1.0 + config.depth_band) / config.depth_band)
    acc = np.zeros((size, 4), np.float32)
    for wt, at in zip(weights, corners, strict=True):
        weight = np.clip(full - inv[at] * sk, 0, 1) * wt
        for c in range(3):
            np.add.at(acc[:, c], at, weight * sc[:, c])
        np.add.at(acc[:, 3], at, weight)
    for i, pix, tent in footprints:
        weight = np.clip(full - inv[pix] * key[i], 0, 1) * tent
        for c in range(3):
            np.add.at(acc[:, c], pix, weight * F32(rgb[i, c]))
        np.add.at(acc[:, 3], pix, weight)
    zbuf = zbuf.reshape(h + 2, row)[1:-1, 1:-1]
    acc = acc.reshape(h + 2, row, 4)[1:-1, 1:-1]
    mask = zbuf < np.inf
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(mask, one / acc[:, :, 3], F32(0.0))
    colour = (acc[:, :, :3] * scale[:, :, None] + half).astype(np.uint8)
    return colour, mask, np.where(zbuf >= F32(1e30), F32(np.inf), zbuf)


def test_wide_footprints_match_the_numpy_reference_bit_for_bit():
    """Crowded points, some magnified (wide footprints of up to MAX_REACH, some reaching in from outside the
    grid, some anisotropic), some not, some directions and NaN positions: the compiled draw equals the NumPy
    one bit for bit, and `draw_at` (sparse) gives the same values at its pixels, leaving the grid clean."""
    rng = np.random.default_rng(22)
    n = 6000
    x = rng.uniform(-6.0, W + 7.0, n).astype(np.float32)
    y = rng.uniform(-6.0, H + 7.0, n).astype(np.float32)
    key = rng.uniform(2.0, 2.6, n).astype(np.float32)
    key[:300] = SKY_KEY
    y[300:330] = np.float32(np.nan)
    reach = np.zeros((2, n), np.float32)
    magnified = rng.random(n) < 0.3
    reach[0, magnified] = rng.uniform(0.2, MAX_REACH, magnified.sum())
    reach[1, magnified] = rng.uniform(0.2, MAX_REACH, magnified.sum())
    reach[:, ~magnified] = rng.uniform(0.0, WIDE_REACH, (2, (~magnified).sum()))
    rgb = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    config = SplatConfig(depth_band=0.1)
    target = _Target(INTR, n, config)
    got = target.draw(x, y, key, rgb, reach)
    colour_ref, mask_ref, depth_ref = reference_draw_wide(x, y, key, rgb, reach, INTR, config)
    np.testing.assert_array_equal(got.mask, mask_ref)
    np.testing.assert_array_equal(got.colour, colour_ref)
    np.testing.assert_array_equal(got.depth, depth_ref)
    pixels = rng.choice(H * W, 400, replace=False)
    for _ in range(2):  # twice: the first sparse draw must leave zbuf clean for the next
        at = target.draw_at(x, y, key, rgb, pixels, reach)
        np.testing.assert_array_equal(at.mask, mask_ref.reshape(-1)[pixels])
        np.testing.assert_array_equal(at.colour, colour_ref.reshape(-1, 3)[pixels])
        np.testing.assert_array_equal(at.depth, depth_ref.reshape(-1)[pixels])
        assert (target._zbuf == np.inf).all()
    plain = target.draw(x, y, key, rgb)  # without reaches: the bilinear footprint everywhere, as before
    np.testing.assert_array_equal(plain.mask, reference_draw_wide(x, y, key, rgb, 0 * reach, INTR, config)[1])


def _plane(depth: float, intr: Intrinsics, c2w: np.ndarray, step: int = 2):
    """Every step-th pixel of a textured fronto-parallel plane at `depth` seen by `c2w`, as world points with
    their cells (the world vectors to the next point right and down) and colours."""
    d = np.full((intr.height // step, intr.width // step), depth, np.float32)
    coarse = intr.subsampled(step)
    points = frame_points(d, coarse, c2w)
    rot = wire_to_cv(c2w)[:3, :3]
    right, down = rot @ np.array([depth / coarse.fx, 0.0, 0.0]), rot @ np.array([0.0, depth / coarse.fy, 0.0])
    cells = np.tile(np.concatenate([right, down]).astype(np.float32), (len(points), 1))
    yy, xx = np.divmod(np.arange(len(points)), d.shape[1])
    colours = np.stack([(xx * 37) % 256, (yy * 53) % 256, ((xx + yy) * 11) % 256], axis=1).astype(np.uint8)
    return points, colours, cells


@pytest.mark.parametrize("walk", [2.5, 6.0, 7.0])
def test_a_plane_walked_up_to_stays_closed_and_an_edge_stays_open(walk: float):
    """A wall at 10 m with a panel at 3 m in front of its left part, both sampled every second pixel from the
    origin: walking `walk` m toward them magnifies the wall 10 / (10 - walk) times (up to 3.3x) and the panel
    more (it is behind the camera past 3 m). With cells the wall stays closed where the origin saw it; without
    them it parts into a grid (the check can fail). The wall's strip that the panel hid from the origin (behind
    a depth edge: a disocclusion) stays open, but for a footprint's spill at its edges."""
    wall, near, edge = 10.0, 3.0, -0.2  # depths (m) and the panel's right edge (world x, m)
    intr = Intrinsics.from_fov(60.0, 192, 128)
    origin = np.eye(4)
    wall_p, wall_c, wall_e = _plane(wall, intr, origin)
    panel_p, _, panel_e = _plane(near, intr, origin)
    panel = panel_p[:, 0] < edge
    seen_from_origin = wall_p[:, 0] >= edge * wall / near  # the wall points the panel did not hide
    sets = [
        (wall_p[seen_from_origin], wall_c[seen_from_origin], wall_e[seen_from_origin]),
        (panel_p[panel], np.full((int(panel.sum()), 3), 255, np.uint8), panel_e[panel]),
    ]
    target = pose_to_matrix([0.0, 0.0, -walk], quat_from_axis_angle([0.0, 1.0, 0.0], 0.0))
    coarse = intr.subsampled(2)
    with_cells = PointSplatter(coarse, 1).splat(sets, target)
    without = PointSplatter(coarse, 1).splat([s[:2] for s in sets], target)
    # what each target column sees (rays through pixel centres, slope a): the panel, or the wall at wall_x
    a = (np.arange(coarse.width) + 0.5 - coarse.cx) / coarse.fx
    b = (np.arange(coarse.height) + 0.5 - coarse.cy) / coarse.fy
    on_panel = (a * (near - walk) < edge) if walk < near else np.zeros(a.shape, bool)
    wall_x = a * (wall - walk)
    in_view = np.abs(wall_x / wall) < intr.cx / intr.fx * 0.98  # inside the origin's view
    hidden = ~on_panel & (wall_x < edge * wall / near) & in_view
    seen = ~on_panel & ~hidden & in_view
    spill = math.ceil(0.5 * wall / (wall - walk) + 1.0)  # pixels: half a cell and up to one more over an edge
    beside = np.convolve(np.diff(hidden.astype(int), prepend=0) != 0, np.ones(2 * spill + 1), "same") > 0
    rows = np.abs(b * wall) < wall * intr.cy / intr.fy * 0.9  # rows the origin saw the wall in, after the walk
    closed = rows[:, None] & (seen & ~beside)[None, :]
    assert closed.sum() > 1000
    assert with_cells.mask[closed].all()
    np.testing.assert_allclose(with_cells.depth[closed], wall - walk, rtol=1e-3)
    if walk > 4.0:  # 1.7x and more on the wall: the bilinear footprint parts past ~1.9x
        assert (~without.mask[closed]).mean() > 0.05
    open_ = rows[:, None] & (hidden & ~beside)[None, :]
    assert open_.sum() > 300
    assert not with_cells.mask[open_].any()
