"""The regions' compiled per-view score (depth_region_score.py) against the NumPy version it replaced (kept here
as the reference): the same sums to the bit, for pixels inside, outside, behind the camera, projected to NaN,
and landing on the view's moving pixels."""

from __future__ import annotations

import numpy as np
import pytest

from starbridge.scenes.capture.depth_ops import bilinear, nearest
from starbridge.scenes.capture.depth_region_score import view_scores


def _reference(x, y, z, image, colours, moving, index, regions):
    """depth_regions._scores's per-view body before it was compiled (session 51's tree)."""
    count = x.shape[0]
    slot = (np.arange(count)[:, None] * regions + index[None]).ravel()
    diff = np.abs(bilinear(image, x, y) - colours[None]).sum(axis=2)
    inside = np.isfinite(diff) & (z > 0)
    if moving is not None:
        on_moving, _ = nearest(moving, x, y, fill=0.0)
        inside &= on_moving == 0
    hits = np.bincount(slot, weights=inside.ravel(), minlength=count * regions).reshape(count, regions)
    total = np.bincount(slot, weights=np.where(inside, diff, 0.0).ravel(), minlength=count * regions)
    return hits, total.reshape(count, regions)


def _case(seed: int, h: int = 45, w: int = 80, count: int = 5, pixels: int = 3000, regions: int = 17):
    rng = np.random.default_rng(seed)
    image = rng.random((h, w, 3), dtype=np.float32)
    colours = rng.random((pixels, 3), dtype=np.float32)
    # coordinates mostly inside, some outside by a little or a lot, some exactly on the half-pixel rim
    x = rng.uniform(-3.0, w + 2.0, (count, pixels))
    y = rng.uniform(-3.0, h + 2.0, (count, pixels))
    x[:, :20] = -0.5
    y[:, 20:40] = h - 0.5
    x[:, 40:60] = w - 0.5 - 1e-9
    z = rng.uniform(-0.5, 5.0, (count, pixels))  # some behind the camera
    x[0, 60:80] = np.nan  # a point at the camera's centre projects to NaN
    z[0, 60:80] = 0.0
    moving = rng.random((h, w)) < 0.2
    index = rng.integers(0, regions, pixels)
    return x, y, z, image, colours, moving, index, regions


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("with_moving", [True, False])
def test_the_compiled_region_score_is_the_numpy_one_to_the_bit(seed: int, with_moving: bool):
    x, y, z, image, colours, moving, index, regions = _case(seed)
    mask = moving if with_moving else None
    hits, total = view_scores(x, y, z, image, colours, mask, index, regions)
    want_hits, want_total = _reference(x, y, z, image, colours, mask, index, regions)
    np.testing.assert_array_equal(hits, want_hits)
    np.testing.assert_array_equal(total, want_total)
    # the case exercises every branch: pixels counted, and pixels refused for each reason
    assert 0 < hits.sum() < x.size
    if with_moving:
        assert hits.sum() < _reference(x, y, z, image, colours, None, index, regions)[0].sum()


def test_a_point_within_half_an_ulp_of_the_rim_finds_no_moving_pixel_beyond_the_view():
    """x just under w - 0.5 is inside, but x + 0.5 can round to w (on a view one pixel wide, x = 0.5 - 2**-54:
    x + 0.5 rounds to 1.0): no pixel there, so not a moving one (the NumPy version's answer), and no read beyond
    the mask."""
    image = np.full((1, 1, 3), 0.5, np.float32)
    x = np.array([[0.5 - 2.0**-54, 0.0]])
    y = np.array([[0.5 - 2.0**-54, 0.0]])
    assert x[0, 0] < 0.5 and x[0, 0] + 0.5 == 1.0
    z = np.ones((1, 2))
    colours = np.zeros((2, 3), np.float32)
    moving = np.ones((1, 1), bool)  # the view's only pixel moves
    index = np.array([0, 1])
    got = view_scores(x, y, z, image, colours, moving, index, 2)
    want = _reference(x, y, z, image, colours, moving, index, 2)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert got[0].tolist() == [[1.0, 0.0]]  # the rim point counts, the centre one lands on the moving pixel


def test_a_one_pixel_wide_view_repeats_its_edge():
    """The bilinear's edge case: a view one pixel wide or high samples its only column or row."""
    rng = np.random.default_rng(5)
    image = rng.random((6, 1, 3), dtype=np.float32)
    x = np.full((2, 50), 0.2)
    y = rng.uniform(-0.4, 5.4, (2, 50))
    z = np.ones((2, 50))
    colours = rng.random((50, 3), dtype=np.float32)
    index = rng.integers(0, 4, 50)
    got = view_scores(x, y, z, image, colours, None, index, 4)
    want = _reference(x, y, z, image, colours, None, index, 4)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
