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
