"""The plane sweep's compiled per-view cost (depth_cost.py) against the NumPy version it replaced (kept here as
the reference): the same costs to float32 rounding, the same pixels without a cost, the same running list of
the smallest costs over several views; on frames of a rendered clip with the frame's real source views."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from starbridge.scenes.capture.depth_cost import cost_volume, insert_view_costs
from starbridge.scenes.capture.depth_ops import cv_poses, grey, pixel_rays, relative, resize_rgb
from starbridge.scenes.procedural.clips import ClipConfig, render_clip


def box_mean(a: np.ndarray, k: int) -> np.ndarray:
    return ndimage.uniform_filter(a, size=(1,) * (a.ndim - 2) + (k, k), mode="nearest")


def bilinear_clamped(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = image.shape
    fx = np.clip(x, 0.0, w - 1.001)
    fy = np.clip(y, 0.0, h - 1.001)
    x0 = np.floor(fx)
    y0 = np.floor(fy)
    fx -= x0
    fy -= y0
    base = (y0 * w + x0).astype(np.intp)
    flat = image.ravel()
    top = flat.take(base)
    right = flat[1:].take(base) - top
    bottom = flat[w:].take(base)
    corner = flat[w + 1 :].take(base) - bottom
    top += right * fx
    bottom += corner * fx
    return (bottom - top) * fy + top


def reference_costs(source, a, b, rhos, ref, mu_r, var_r_noise, noise, k):
    """The NumPy per-view cost depth_sweep.py used until the compiled one: (planes, h, w), inf = no cost."""
    h, w = ref.shape
    count = len(rhos)
    pz = a[2][None, :] + rhos[:, None] * b[2]
    front = pz > 1e-6
    inv_z = np.divide(1.0, pz, out=np.zeros_like(pz), where=front)
    x = (a[0][None, :] + rhos[:, None] * b[0]) * inv_z - 0.5
    y = (a[1][None, :] + rhos[:, None] * b[1]) * inv_z - 0.5
    inside = front & (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)
    warped = bilinear_clamped(source, x, y).reshape(count, h, w)
    mu_w = box_mean(warped, k)
    var_w = np.maximum(box_mean(warped * warped, k) - mu_w * mu_w, 0.0)
    cov = box_mean(warped * ref, k) - mu_w * mu_r
    cost = 1.0 - cov / np.sqrt((var_w + noise) * var_r_noise)
    return np.where(inside.reshape(count, h, w), cost, np.float32(np.inf)).astype(np.float32)


@pytest.fixture(scope="module")
def frames():
    clip = render_clip(ClipConfig(kind="handheld", frames=24, width=160, height=90))
    intr = clip.intrinsics
    g = grey(np.stack([resize_rgb(f, (intr.height, intr.width)) for f in clip.frames]))
    return clip, g


def test_the_compiled_cost_is_the_numpy_one(frames) -> None:
    clip, g = frames
    intr = clip.intrinsics
    h, w = intr.height, intr.width
    c2w = cv_poses(clip.poses)
    kmat = intr.K
    kinv = np.linalg.inv(kmat)
    pix = kmat @ pixel_rays(intr)
    k, noise = 5, np.float32(1e-4)
    i = 12
    ref = g[i]
    mu_r = box_mean(ref, k)
    var_r_noise = np.maximum(box_mean(ref * ref, k) - mu_r * mu_r, 0.0) + noise
    rhos = (np.arange(40) * 0.02).astype(np.float32)  # infinity to 2 m: some planes behind a source (no cost)
    keep = 2
    best = np.full((keep, len(rhos), h, w), np.inf, np.float32)
    want: list[np.ndarray] = []
    filled = 0
    for j in (3, 20, 9):  # before, after, a wide one: three views into two slots
        rot, t = relative(c2w[i], c2w[j])
        a = (kmat @ rot @ kinv @ pix).astype(np.float32)
        b = (kmat @ t).astype(np.float32)
        cost = reference_costs(g[j], a, b, rhos, ref, mu_r, var_r_noise, noise, k)
        for slot in range(len(want)):
            low = np.minimum(want[slot], cost)
            cost = np.maximum(want[slot], cost)
            want[slot] = low
        if len(want) < keep:
            want.append(cost)
        filled = insert_view_costs(best, filled, g[j], a, b, rhos, ref, mu_r, var_r_noise, float(noise), k)
        assert filled == len(want)
        for slot in range(filled):
            got, exp = best[slot], want[slot]
            np.testing.assert_array_equal(np.isinf(got), np.isinf(exp))
            finite = np.isfinite(exp)
            np.testing.assert_allclose(got[finite], exp[finite], rtol=0, atol=2e-5)
    # the test means something: both slots hold costs, some pixels have none, the costs span matches and not
    assert np.isfinite(best).mean() > 0.5 and np.isinf(best[1]).any()
    finite = best[0][np.isfinite(best[0])]
    assert finite.min() < 0.2 and finite.max() > 1.0


@pytest.mark.parametrize(
    ("filled", "shift", "penalty"), [(1, 1, 0.05), (2, 1, 0.05), (3, 2, 0.05), (2, 1, 0.0), (2, 0, 0.05)]
)
def test_the_cost_volume_is_the_numpy_one_bit_for_bit(filled: int, shift: int, penalty: float) -> None:
    """`cost_volume` against the NumPy and SciPy expressions the sweep used before it (the mean of the finite
    views, float32 sums in slot order, 1 where no view has a cost; the shiftable windows' minimum filter and
    penalty), now laid out (h, w, planes): the same numbers to the bit; 21 planes (more than one block of 16)."""
    rng = np.random.default_rng(5)
    best = rng.uniform(-0.5, 2.0, (3, 21, 9, 11)).astype(np.float32)
    best[rng.random(best.shape) < 0.3] = np.inf  # views that see nothing there
    best[:, 2, 4, :] = np.inf  # a row no view sees at one plane
    total = np.zeros_like(best[0])
    used = np.zeros(best[0].shape, np.float32)
    for c in best[:filled]:
        ok = np.isfinite(c)
        total += np.where(ok, c, 0.0)
        used += ok
    want = np.where(used > 0, total / np.maximum(used, 1.0), 1.0).astype(np.float32)
    if shift > 0:
        shifted = ndimage.minimum_filter(want, size=(1, 2 * shift + 1, 2 * shift + 1), mode="nearest")
        if penalty > 0:
            shifted += np.float32(penalty)
            np.minimum(shifted, want, out=shifted)
        want = shifted
    got = cost_volume(best, filled, shift, penalty)
    assert got.shape == (9, 11, 21) and got.dtype == np.float32
    np.testing.assert_array_equal(got, np.moveaxis(want, 0, 2))
    if shift == 0:
        assert (got[4, :, 2] == 1.0).all()
