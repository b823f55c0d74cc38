"""The plane sweep's photo-consistency cost against one source view (step 3 of depth.py), compiled.

For every inverse-depth plane: the source's grey warped into the frame by the plane's homography (bilinear,
edges repeated; a pixel whose point falls behind the source camera or outside its image gets no cost, +inf),
then 1 - ZNCC over `window` x `window` pixels (box means with edges repeated, `noise` added to both
variances), and the plane's costs inserted into the running list of the `keep` smallest costs over the views
so far (a small sorting network: slot 0 the smallest).

Why numba: in NumPy each view was a chain of (planes, h, w) temporaries (the warp's four gathers, three box
filters, the ZNCC arithmetic), 0.35 s of CPU per frame at the 192-pixel working size of then, the depth
stage's largest cost; the compiled loop goes plane by plane through one row-sized and a few image-sized
buffers, several times faster, and releases the GIL (frames run on threads). The arithmetic follows the NumPy
version's float32 dtypes (the box sums are accumulated in float64, as SciPy's uniform filter does), so the
costs agree to float32 rounding (tests/scenes/capture/test_capture_depth_cost.py checks them against that
NumPy version). Compiled once per install (signature given, `cache=True`), as depth_upsample.py.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numba import njit
from numba import types as nt

from ...jit import JIT_OPTIONS, announce_compile

_JIT = JIT_OPTIONS
announce_compile(__file__, logging.getLogger(__name__), "the depth stage's cost loop")
_F32 = nt.float32
_IN_F32_1 = nt.Array(_F32, 1, "C", readonly=True)
_IN_F32_2 = nt.Array(_F32, 2, "C", readonly=True)
_OUT_F32_4 = nt.Array(_F32, 4, "C")


@njit(
    nt.void(
        _IN_F32_2,
        _IN_F32_2,
        _IN_F32_1,
        _IN_F32_1,
        _IN_F32_2,
        _IN_F32_2,
        _IN_F32_2,
        _F32,
        nt.int64,
        _OUT_F32_4,
        nt.int64,
    ),  # fmt: skip
    **_JIT,
)
def _view_cost_kernel(  # pragma: no cover - compiled
    source, a, b, rhos, ref, mu_r, var_r_noise, noise, window, best, filled
):
    h, w = ref.shape
    planes = rhos.shape[0]
    keep = best.shape[0]
    radius = window // 2
    inv_k = 1.0 / window
    one = np.float32(1.0)
    half = np.float32(0.5)
    zero = np.float32(0.0)
    x_max = np.float32(w - 1.001)
    y_max = np.float32(h - 1.001)
    right_edge = np.float32(w) - half
    bottom_edge = np.float32(h) - half
    warped = np.empty((h, w), np.float32)
    sq = np.empty((h, w), np.float32)
    pr = np.empty((h, w), np.float32)
    inside = np.empty((h, w), np.bool_)
    # The box means go axis by axis as SciPy's uniform filter does (down the columns, then along the rows),
    # each pass summed in float64 and stored in float32; the loops run along rows so that they vectorise.
    v1 = np.empty((h, w), np.float32)
    v2 = np.empty((h, w), np.float32)
    v3 = np.empty((h, w), np.float32)
    acc1 = np.empty(w, np.float64)
    acc2 = np.empty(w, np.float64)
    acc3 = np.empty(w, np.float64)
    pad1 = np.empty(w + 2 * radius, np.float32)
    pad2 = np.empty(w + 2 * radius, np.float32)
    pad3 = np.empty(w + 2 * radius, np.float32)
    for d in range(planes):
        rho = rhos[d]
        bx = rho * b[0]
        by = rho * b[1]
        bz = rho * b[2]
        for y in range(h):
            base = y * w
            for x in range(w):
                p = base + x
                pz = a[2, p] + bz
                front = pz > np.float32(1e-6)
                inv_z = one / pz if front else zero
                u = (a[0, p] + bx) * inv_z - half
                v = (a[1, p] + by) * inv_z - half
                inside[y, x] = front and u > -half and u < right_edge and v > -half and v < bottom_edge
                fx = min(max(u, zero), x_max)
                fy = min(max(v, zero), y_max)
                c0 = int(fx)
                r0 = int(fy)
                fx = fx - np.float32(c0)
                fy = fy - np.float32(r0)
                top = source[r0, c0]
                right = source[r0, c0 + 1] - top
                top = top + right * fx
                bottom = source[r0 + 1, c0]
                corner = source[r0 + 1, c0 + 1] - bottom
                bottom = bottom + corner * fx
                value = (bottom - top) * fy + top
                warped[y, x] = value
                sq[y, x] = value * value
                pr[y, x] = value * ref[y, x]
        for y in range(h):
            acc1[:] = 0.0
            acc2[:] = 0.0
            acc3[:] = 0.0
            for dy in range(-radius, radius + 1):
                yy = min(max(y + dy, 0), h - 1)
                for x in range(w):
                    acc1[x] += warped[yy, x]
                    acc2[x] += sq[yy, x]
                    acc3[x] += pr[yy, x]
            for x in range(w):
                v1[y, x] = acc1[x] * inv_k
                v2[y, x] = acc2[x] * inv_k
                v3[y, x] = acc3[x] * inv_k
        for y in range(h):
            for x in range(w + 2 * radius):
                xx = min(max(x - radius, 0), w - 1)
                pad1[x] = v1[y, xx]
                pad2[x] = v2[y, xx]
                pad3[x] = v3[y, xx]
            acc1[:] = 0.0
            acc2[:] = 0.0
            acc3[:] = 0.0
            for dx in range(window):
                for x in range(w):
                    acc1[x] += pad1[x + dx]
                    acc2[x] += pad2[x + dx]
                    acc3[x] += pad3[x + dx]
            for x in range(w):
                mu_w = np.float32(acc1[x] * inv_k)
                var_w = np.float32(acc2[x] * inv_k) - mu_w * mu_w
                var_w = max(var_w, zero)
                cov = np.float32(acc3[x] * inv_k) - mu_w * mu_r[y, x]
                var_w = var_w + noise
                var_w = var_w * var_r_noise[y, x]
                cost = one - cov / np.float32(math.sqrt(var_w))
                if not inside[y, x]:
                    cost = np.float32(np.inf)
                for slot in range(filled):
                    low = min(best[slot, d, y, x], cost)
                    cost = max(best[slot, d, y, x], cost)
                    best[slot, d, y, x] = low
                if filled < keep:
                    best[filled, d, y, x] = cost


def insert_view_costs(
    best: np.ndarray,
    filled: int,
    source: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    rhos: np.ndarray,
    ref: np.ndarray,
    mu_r: np.ndarray,
    var_r_noise: np.ndarray,
    noise: float,
    window: int,
) -> int:
    """Insert one source view's costs into `best` ((keep, planes, h, w) float32, in place; its first `filled`
    slots hold the smallest costs of the views so far, ascending); returns the new count of filled slots.

    `source` (h, w) float32 grey of the source view; the plane at inverse depth `rhos[d]` maps the frame's
    pixel p to the source's homogeneous pixel `a[:, p] + rhos[d] * b` ((3, h*w) and (3,) float32); `ref`,
    `mu_r` (h, w) the frame's grey and its box mean, `var_r_noise` its box variance plus `noise`."""
    f32 = np.float32
    _view_cost_kernel(
        np.ascontiguousarray(source, dtype=f32), np.ascontiguousarray(a, dtype=f32),
        np.ascontiguousarray(b, dtype=f32), np.ascontiguousarray(rhos, dtype=f32),
        np.ascontiguousarray(ref, dtype=f32), np.ascontiguousarray(mu_r, dtype=f32),
        np.ascontiguousarray(var_r_noise, dtype=f32), f32(noise), int(window), best, int(filled),
    )  # fmt: skip
    return min(filled + 1, best.shape[0])
