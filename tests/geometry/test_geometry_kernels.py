"""The compiled kernels (geometry/kernels.py) against plain NumPy references of what they compute."""

from __future__ import annotations

import numpy as np
import pytest

from starbridge.geometry import kernels
from starbridge.geometry.fill import push_pull_fill, push_pull_fill_holes, push_pull_fill_values


def reference_wide_holes(holes: np.ndarray, radius: int) -> np.ndarray:
    """Erosion with the plus-shaped element (outside the image counts as a hole), `radius` dilations back."""
    core = holes.copy()
    core[1:] &= holes[:-1]
    core[:-1] &= holes[1:]
    core[:, 1:] &= holes[:, :-1]
    core[:, :-1] &= holes[:, 1:]
    for _ in range(radius):
        grown = core.copy()
        grown[1:] |= core[:-1]
        grown[:-1] |= core[1:]
        grown[:, 1:] |= core[:, :-1]
        grown[:, :-1] |= core[:, 1:]
        core = grown
    return core & holes


@pytest.mark.parametrize(("h", "w"), [(288, 512), (37, 23), (1, 9), (9, 1), (1, 1), (6, 7)])
@pytest.mark.parametrize("fraction", [0.2, 0.6, 0.9])
def test_wide_holes_is_an_opening_with_a_margin(h: int, w: int, fraction: float):
    rng = np.random.default_rng(h * w)
    holes = rng.random((h, w)) < fraction
    holes[h // 3 : h // 3 + 5, w // 4 : w // 4 + 6] = True  # one wide hole at least (where it fits)
    for radius in (0, 1, 4):
        out = np.empty_like(holes)
        kernels.wide_holes(holes, radius, out)
        np.testing.assert_array_equal(out, reference_wide_holes(holes, radius))


def test_wide_holes_keeps_wide_holes_and_drops_cracks():
    holes = np.zeros((40, 60), bool)
    holes[10:20, 10:30] = True  # wide
    holes[30, 5:50] = True  # a one-pixel crack
    holes[5:7, 40:58] = True  # a two-pixel crack
    holes[20, 10:30] = True  # a crack along the wide hole: within its margin
    out = np.empty_like(holes)
    kernels.wide_holes(holes, 4, out)
    assert out[10:21, 10:30].all() and not out[30].any() and not out[5:7].any()


def reference_push_pull(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Push-pull as NumPy did it before the compiled kernels (fill.py's rules, the same float32 operations):
    the filled values (n, C) float32 at the holes, row-major. Needs a valid pixel."""

    def pull(v: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = valid.shape
        v = np.pad(np.where(valid[..., None], v, 0), ((0, h % 2), (0, w % 2), (0, 0))).astype(np.float32)
        valid = np.pad(valid, ((0, h % 2), (0, w % 2)))
        sums = (v[0::2, 0::2] + v[1::2, 0::2]) + (v[0::2, 1::2] + v[1::2, 1::2])
        counts = valid[0::2, 0::2].astype(np.int64) + valid[1::2, 0::2] + valid[0::2, 1::2] + valid[1::2, 1::2]
        return sums / np.maximum(counts, 1)[..., None].astype(np.float32), counts > 0

    def upsample(coarse: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        hc, wc = coarse.shape[:2]
        y0, x0 = y >> 1, x >> 1
        y1, x1 = np.clip(y0 + 2 * (y & 1) - 1, 0, hc - 1), np.clip(x0 + 2 * (x & 1) - 1, 0, wc - 1)
        near, far = np.float32(0.75), np.float32(0.25)
        top = near * coarse[y0, x0] + far * coarse[y0, x1]
        bottom = near * coarse[y1, x0] + far * coarse[y1, x1]
        return near * top + far * bottom

    levels = [pull(values, mask)]
    while levels[-1][1].size > 1:
        levels.append(pull(*levels[-1]))
    filled = levels[-1][0]
    for mean, valid in reversed(levels[:-1]):
        y, x = np.nonzero(~valid)
        mean[y, x] = upsample(filled, y, x)
        filled = mean
    y, x = np.nonzero(~mask)
    return upsample(filled, y, x)


@pytest.mark.parametrize(("h", "w"), [(288, 512), (37, 23), (1, 9), (2, 1), (5, 5), (3, 64)])
def test_fill_matches_the_numpy_reference_bit_for_bit(h: int, w: int):
    """Colour (uint8 sums, exact) and float values with one and four channels, odd sizes padded."""
    rng = np.random.default_rng(h + w)
    mask = rng.random((h, w)) > 0.4
    mask[h // 2 :, w // 3 :] = False  # and a large hole
    mask.flat[0] = True
    colour = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    holes = ~mask
    expected = np.clip(reference_push_pull(colour, mask) + 0.5, 0.0, 255.0).astype(np.uint8)
    np.testing.assert_array_equal(push_pull_fill(colour, mask)[holes], expected)
    for channels in (1, 4):
        values = rng.uniform(0.0, 2.0, (h, w, channels)).astype(np.float32)
        expected = reference_push_pull(values, mask)
        np.testing.assert_array_equal(push_pull_fill_values(values, mask)[holes], expected)
        at, got = push_pull_fill_holes(values, mask)
        np.testing.assert_array_equal(at, np.flatnonzero(holes))
        np.testing.assert_array_equal(got, expected)


def reference_in_view(boxes: list[np.ndarray], intrinsics, c2w: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """SetBounds.in_view as NumPy computed it before the compiled kernel (float64, the same operations)."""
    from starbridge.geometry.conventions import wire_to_cv

    owner = np.repeat(np.arange(len(boxes)), [len(b) for b in boxes])
    corners = np.concatenate(boxes).reshape(-1, 4).astype(np.float64)
    rows, cols = np.divmod(pixels, intrinsics.width)
    x0, x1 = cols.min() - 2.0, cols.max() + 1 + 2.0
    y0, y1 = rows.min() - 2.0, rows.max() + 1 + 2.0
    k = np.array([[intrinsics.fx, 0.0, intrinsics.cx], [0.0, intrinsics.fy, intrinsics.cy], [0.0, 0.0, 1.0]])
    proj = k @ np.linalg.inv(wire_to_cv(c2w))[:3]
    h = []
    for i in range(3):  # as splat._transform: the first term, then the others whose coefficient is not 0
        row = corners[:, 0] * proj[i, 0]
        for j in range(1, 4):
            if proj[i, j] != 0:
                row += corners[:, j] * proj[i, j]
        h.append(row)
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = (h[0] / h[2]).reshape(-1, 8), (h[1] / h[2]).reshape(-1, 8)
    ahead = (h[2] > 1e-9).reshape(-1, 8)
    beside = (u < x0).all(1) | (u > x1).all(1) | (v < y0).all(1) | (v > y1).all(1)
    shown = np.zeros(len(boxes), bool)
    shown[owner[ahead.any(1) & ~(ahead.all(1) & beside)]] = True
    return shown


def test_set_bounds_match_the_numpy_reference():
    """Many small boxes all around a camera (behind, beside, straddling the image plane, directions), seen
    through a few pixel blocks from a few poses: the compiled test culls exactly the same sets."""
    import math

    from starbridge.geometry.camera import Intrinsics
    from starbridge.geometry.conventions import pose_to_matrix
    from starbridge.geometry.poses import quat_from_axis_angle
    from starbridge.geometry.splat import SetBounds, bounding_boxes

    rng = np.random.default_rng(5)
    intr = Intrinsics.from_fov(60.0, 64, 36)
    boxes = []
    for _ in range(300):
        centre, size = rng.uniform(-8.0, 8.0, 3), rng.uniform(0.05, 2.0, 3)
        points = np.ones((20, 4), np.float32)
        points[:, :3] = centre + rng.uniform(-0.5, 0.5, (20, 3)) * size
        points[rng.random(20) < 0.1, 3] = 0.0  # some directions
        boxes.append(bounding_boxes(points))
    bounds = SetBounds(boxes)
    blocks = [np.flatnonzero(np.pad(np.ones((6, 9), bool), ((10, 20), (40, 15)))), np.array([0]), np.arange(64 * 36)]
    shown_any = 0
    for yaw, pitch in [(0.0, 0.0), (40.0, -10.0), (170.0, 20.0)]:
        q = quat_from_axis_angle([0.0, 1.0, 0.0], math.radians(yaw))
        c2w = pose_to_matrix([0.3, -0.2, 0.5], q) @ pose_to_matrix(
            [0, 0, 0], quat_from_axis_angle([1, 0, 0], math.radians(pitch))
        )
        for pixels in blocks:
            got = bounds.in_view(intr, c2w, pixels)
            np.testing.assert_array_equal(got, reference_in_view(boxes, intr, c2w, pixels))
            shown_any += int(got.sum())
    assert 0 < shown_any < 9 * len(boxes)  # it culls some and keeps some


# ---------------------------------------------------------------------- the hole work of runtime/holes.py


def reference_near(mask: np.ndarray, r: int) -> np.ndarray:
    """Dilation by a (2r + 1)-square, one shift at a time."""
    out = mask.copy()
    for axis in (0, 1):
        grown = out.copy()
        for k in range(1, r + 1):
            if axis == 0:
                grown[k:] |= out[:-k]
                grown[:-k] |= out[k:]
            else:
                grown[:, k:] |= out[:, :-k]
                grown[:, :-k] |= out[:, k:]
        out = grown
    return out


def reference_surroundings(mask, depth, moving, at, radius):
    """The rays as whole-array gathers: (n, 4 rays, radius) indices, the first covered pixel along each."""
    h, w = mask.shape
    rows, cols = np.divmod(at, w)
    rays = np.array([(0, 1), (1, 0), (0, -1), (-1, 0)])
    steps = np.arange(1, radius + 1)
    y = rows[:, None, None] + rays[None, :, 0, None] * steps
    x = cols[:, None, None] + rays[None, :, 1, None] * steps
    inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
    index = np.where(inside, y * w + x, 0)
    covered = inside & mask.reshape(-1)[index]
    first = np.argmax(covered, axis=2)[..., None]
    met = np.take_along_axis(covered, first, axis=2)[..., 0]
    index = np.take_along_axis(index, first, axis=2)[..., 0]
    closed = (met[:, 0] & met[:, 2]) | (met[:, 1] & met[:, 3])
    far = np.where(met, depth.reshape(-1)[index], np.float32(-1.0)).max(axis=1)
    limit = np.where(closed, far, np.float32(-1.0))
    dynamic = closed & (moving.reshape(-1)[index] | ~met).all(axis=1)
    return limit, dynamic


def _hole_scene(h: int, w: int, fraction: float):
    rng = np.random.default_rng(h * w + int(100 * fraction))
    mask = rng.random((h, w)) >= fraction
    mask[h // 3 : h // 3 + 9, w // 4 : w // 4 + 12] = False  # a wide hole (where it fits)
    depth = rng.uniform(1.0, 50.0, (h, w)).astype(np.float32)
    depth[rng.random((h, w)) < 0.1] = np.inf  # sky
    moving = rng.random((h, w)) < 0.5
    moving[: h // 2] = True  # regions where all that closes a hole moves
    return rng, mask, depth, moving


@pytest.mark.parametrize(("h", "w"), [(288, 512), (37, 23), (1, 9), (9, 1), (1, 1), (6, 7)])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_near_and_surroundings_match_the_numpy_reference(h: int, w: int, fraction: float):
    rng, mask, depth, moving = _hole_scene(h, w, fraction)
    for r in (0, 1, 3, 8):
        rows, out = np.empty_like(mask), np.empty_like(mask)
        kernels.near(mask, r, rows, out)
        np.testing.assert_array_equal(out, reference_near(mask, r))
    at = np.flatnonzero(~mask)
    for radius in (1, 4):
        limit, dynamic = np.empty(at.size, np.float32), np.empty(at.size, bool)
        kernels.surroundings(mask, depth, moving, at, radius, limit, dynamic)
        want_limit, want_dynamic = reference_surroundings(mask, depth, moving, at, radius)
        np.testing.assert_array_equal(limit, want_limit)
        np.testing.assert_array_equal(dynamic, want_dynamic)
        shuffled = rng.permutation(at.size)  # the same per pixel in any order (sorted pixels are only faster)
        kernels.surroundings(mask, depth, moving, at[shuffled], radius, limit, dynamic)
        np.testing.assert_array_equal(limit, want_limit[shuffled])
        np.testing.assert_array_equal(dynamic, want_dynamic[shuffled])
    if (h, w) == (288, 512):
        assert (limit >= 0).any() and (limit < 0).any() and dynamic.any() and not dynamic.all()  # all cases met


@pytest.mark.parametrize(("h", "w"), [(288, 512), (37, 23), (1, 9), (9, 1)])
@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_source_values_and_row_mean_match_the_numpy_reference(h: int, w: int, fraction: float):
    rng, sources, depth, _ = _hole_scene(h, w, fraction)
    sources[h // 2] = False  # a row without sources: the fallback
    colour = rng.integers(0, 256, (h, w, 3), np.uint8)
    values = np.empty((h, w, 4), np.float32)
    kernels.colour_inverse_depth(colour, depth, sources, values)
    want = np.zeros((h, w, 4), np.float32)
    want[..., :3] = colour
    np.divide(np.float32(1.0), depth, out=want[..., 3], where=sources)
    np.testing.assert_array_equal(values, want)

    at = np.flatnonzero(~sources)
    fallback = rng.uniform(0, 255, (at.size, 4)).astype(np.float32)
    mean, dist = np.empty((at.size, 3), np.float32), np.empty(at.size, np.float32)
    kernels.row_mean(values, sources, at, fallback, mean, dist)
    # The NumPy reference: einsum sums, accumulated nearest sources.
    rows, x = np.divmod(at, w)
    used, row = np.unique(rows, return_inverse=True)
    src = sources[used]
    counts = src.sum(axis=1)
    sums = np.einsum("hwc,hw->hc", values[used, :, :3], src.astype(np.float32))
    want_mean = sums[row] / np.maximum(counts[row], 1)[:, None].astype(np.float32)
    none = counts[row] == 0
    want_mean[none] = fallback[none, :3]
    cols = np.arange(w)
    left = np.maximum.accumulate(np.where(src, cols, -(2 * w)), axis=1)[row, x]
    right = np.minimum.accumulate(np.where(src, cols, 3 * w)[:, ::-1], axis=1)[:, ::-1][row, x]
    want_dist = np.minimum(x - left, right - x).astype(np.float32)
    want_dist[none] = np.inf
    np.testing.assert_array_equal(mean, want_mean)
    np.testing.assert_array_equal(dist, want_dist)
    assert none.any()


@pytest.mark.parametrize(("h", "w", "step"), [(288, 512, 2), (37, 23, 3), (5, 1, 4)])
def test_coarse_pixels_match_the_numpy_reference(h: int, w: int, step: int):
    rng = np.random.default_rng(h + w)
    at = np.flatnonzero(rng.random((h, w)) < 0.4)
    coarse = (-(-h // step), -(-w // step))
    for order in (at, rng.permutation(at)):
        block, blocks = np.empty(order.size, np.int64), np.ones(coarse, bool)
        kernels.coarse_pixels(order, w, step, block, blocks)
        rows, cols = np.divmod(order, w)
        want = (rows // step) * coarse[1] + cols // step
        want_blocks = np.zeros(coarse, bool)
        want_blocks.reshape(-1)[want] = True
        np.testing.assert_array_equal(block, want)
        np.testing.assert_array_equal(blocks, want_blocks)


def test_opaque_adds_alpha():
    rgb = np.random.default_rng(3).integers(0, 256, (7, 5, 3), np.uint8)
    out = np.zeros((7, 5, 4), np.uint8)
    kernels.opaque(rgb, out)
    np.testing.assert_array_equal(out[..., :3], rgb)
    assert (out[..., 3] == 255).all()


def test_around_marks_the_pixels_and_their_neighbours():
    rng = np.random.default_rng(5)
    h, w = 37, 23
    only = rng.random((h, w)) < 0.05
    only[0, 0] = only[h - 1, w - 1] = only[0, w - 1] = True  # corners
    want = only.copy()  # the 3x3 dilation, as PointSplatter grows `only`
    want[1:] |= only[:-1]
    want[:-1] |= only[1:]
    want[:, 1:] |= want[:, :-1].copy()
    want[:, :-1] |= want[:, 1:].copy()
    out = np.zeros((h, w), bool)
    kernels.around(np.flatnonzero(only), out)
    np.testing.assert_array_equal(out, want)


def test_sparse_draws_give_what_a_full_draw_gives_at_their_pixels():
    """`_Target.draw_at` sets the grid buffers at the drawn footprints only and puts zbuf back to +inf: one
    sparse draw after another (and after a full draw) resolves exactly as a fresh full draw of its points."""
    from starbridge.geometry.camera import Intrinsics
    from starbridge.geometry.splat import SKY_KEY, SplatConfig, _Target

    intr = Intrinsics.from_fov(60.0, 64, 36)
    h, w = intr.height, intr.width
    rng = np.random.default_rng(8)
    target = _Target(intr, 4000, SplatConfig())
    for k in range(4):
        n = int(rng.integers(50, 4000))
        x = rng.uniform(-1.0, w + 2.0, n).astype(np.float32)
        y = rng.uniform(-1.0, h + 2.0, n).astype(np.float32)
        key = rng.uniform(1.0, 1.2, n).astype(np.float32)
        key[: n // 5] = SKY_KEY
        rgb = rng.integers(0, 256, (n, 3), dtype=np.uint8)
        want = _Target(intr, n, SplatConfig()).draw(x, y, key, rgb)
        if k == 2:
            target.draw(x[::-1], y[::-1], key[::-1], rgb[::-1])  # a full draw in between
        pixels = rng.choice(h * w, 200, replace=False)
        got = target.draw_at(x, y, key, rgb, pixels)
        np.testing.assert_array_equal(got.mask, want.mask.reshape(-1)[pixels])
        np.testing.assert_array_equal(got.colour, want.colour.reshape(-1, 3)[pixels])
        np.testing.assert_array_equal(got.depth, want.depth.reshape(-1)[pixels])
        assert (target._zbuf == np.inf).all()  # left clean for the next sparse draw


@pytest.mark.parametrize("use_src", [True, False])
def test_take_layer_matches_the_numpy_reference(use_src: bool):
    rng = np.random.default_rng(9)
    h, w, m = 20, 30, 150
    colour = rng.integers(0, 256, (m, 3), dtype=np.uint8)
    mask = rng.random(m) < 0.7
    depth = rng.uniform(1.0, 3.0, m).astype(np.float32)
    depth[:10] = np.inf
    at = np.sort(rng.choice(h * w, m if not use_src else 200, replace=False))
    src = rng.integers(0, m, at.size) if use_src else np.arange(at.size)
    limit = rng.uniform(-1.0, 3.0, at.size).astype(np.float32)
    limit[limit < 0] = -1.0
    tol = np.float32(1.05)
    image = rng.integers(0, 256, (h * w, 3), dtype=np.uint8)
    cover = rng.random(h * w) < 0.5
    zbuf = rng.uniform(1.0, 3.0, h * w).astype(np.float32)
    got = (limit < 0) | (depth[src] <= limit * tol)  # runtime/holes.py in_front
    got &= mask[src]
    want_image, want_cover, want_z = image.copy(), cover.copy(), zbuf.copy()
    want_image[at[got]], want_cover[at[got]], want_z[at[got]] = colour[src[got]], True, depth[src[got]]
    left, left_limit = np.empty(at.size, np.int64), np.empty(at.size, np.float32)
    n = kernels.take_layer(colour, mask, depth, src, use_src, at, limit, tol, image, cover, zbuf, left, left_limit)
    assert 0 < n < at.size
    np.testing.assert_array_equal(left[:n], at[~got])
    np.testing.assert_array_equal(left_limit[:n], limit[~got])
    np.testing.assert_array_equal(image, want_image)
    np.testing.assert_array_equal(cover, want_cover)
    np.testing.assert_array_equal(zbuf, want_z)
