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

Session 56 made it faster with the same numbers (the rendered clips' depth stage output identical to the bit;
the reference test as before): the box filter's first pass slides down the columns (the row entering added,
the row leaving taken away, in float64: exact where the window's values lie within 2^29 of each other, as sums
of a few float32 values then are; else off in the 16th digit, far below the float32 it is stored in) rather
than summing the window's rows again for every row, the second pass runs row by row straight after it, and the
ZNCC is a loop of its own that vectorises apart from the insertion into the running list: 0.143 -> 0.100 s a
view at the 512x288 walk's 320x180 working size (96 planes; one thread, `python -m cProfile` of
`estimate_depth`).
`cost_volume` then makes the volume the aggregation scans from those lists (the views' mean, the shiftable
windows) in one compiled pass, laid out as SGM reads it (each pixel's planes contiguous): it replaces a chain
of NumPy and SciPy passes over (planes, h, w) temporaries and the transposes into and out of depth_sgm.py
(together about 0.3 s a frame; now 0.07).
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
    acc1 = np.empty(w, np.float64)  # the columns' running sums down the image (the first pass)
    acc2 = np.empty(w, np.float64)
    acc3 = np.empty(w, np.float64)
    row1 = np.empty(w, np.float64)  # one row's sums along it (the second pass)
    row2 = np.empty(w, np.float64)
    row3 = np.empty(w, np.float64)
    pad1 = np.empty(w + 2 * radius, np.float32)
    pad2 = np.empty(w + 2 * radius, np.float32)
    pad3 = np.empty(w + 2 * radius, np.float32)
    costs = np.empty(w, np.float32)
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
            if y == 0:
                acc1[:] = 0.0
                acc2[:] = 0.0
                acc3[:] = 0.0
                for dy in range(-radius, radius + 1):
                    yy = min(max(dy, 0), h - 1)
                    for x in range(w):
                        acc1[x] += warped[yy, x]
                        acc2[x] += sq[yy, x]
                        acc3[x] += pr[yy, x]
            else:  # the window slides down a row: the row entering added, the row leaving taken away
                y_in = min(y + radius, h - 1)
                y_out = max(y - radius - 1, 0)
                for x in range(w):
                    acc1[x] += np.float64(warped[y_in, x]) - np.float64(warped[y_out, x])
                    acc2[x] += np.float64(sq[y_in, x]) - np.float64(sq[y_out, x])
                    acc3[x] += np.float64(pr[y_in, x]) - np.float64(pr[y_out, x])
            # the column means of row y (stored in float32, as the filter's first pass), edges repeated
            for x in range(w):
                pad1[x + radius] = acc1[x] * inv_k
                pad2[x + radius] = acc2[x] * inv_k
                pad3[x + radius] = acc3[x] * inv_k
            for x in range(radius):
                pad1[x] = pad1[radius]
                pad2[x] = pad2[radius]
                pad3[x] = pad3[radius]
                pad1[w + radius + x] = pad1[w + radius - 1]
                pad2[w + radius + x] = pad2[w + radius - 1]
                pad3[w + radius + x] = pad3[w + radius - 1]
            row1[:] = 0.0
            row2[:] = 0.0
            row3[:] = 0.0
            for dx in range(window):
                for x in range(w):
                    row1[x] += pad1[x + dx]
                    row2[x] += pad2[x + dx]
                    row3[x] += pad3[x + dx]
            # (a loop of its own so that it vectorises; a float32 square root is the float64 one rounded)
            for x in range(w):
                mu_w = np.float32(row1[x] * inv_k)
                var_w = np.float32(row2[x] * inv_k) - mu_w * mu_w
                var_w = max(var_w, zero)
                cov = np.float32(row3[x] * inv_k) - mu_w * mu_r[y, x]
                var_w = var_w + noise
                var_w = var_w * var_r_noise[y, x]
                costs[x] = one - cov / np.sqrt(var_w)
            for x in range(w):
                cost = costs[x] if inside[y, x] else np.float32(np.inf)
                for slot in range(filled):
                    low = min(best[slot, d, y, x], cost)
                    cost = max(best[slot, d, y, x], cost)
                    best[slot, d, y, x] = low
                if filled < keep:
                    best[filled, d, y, x] = cost


@njit(nt.void(nt.Array(_F32, 4, "C", readonly=True), nt.int64, nt.int64, _F32, nt.Array(_F32, 3, "C")), **_JIT)
def _volume_kernel(best, filled, shift, penalty, out):  # pragma: no cover - compiled
    planes, h, w = best.shape[1], best.shape[2], best.shape[3]
    one = np.float32(1.0)
    block = 16  # planes at a time, so that each pixel's 16 planes go out as one contiguous run
    raw = np.empty((block, h, w), np.float32)
    rows = np.empty((h, w), np.float32)
    least = np.empty((block, h, w), np.float32)
    for d0 in range(0, planes, block):
        nb = min(block, planes - d0)
        for b in range(nb):
            d = d0 + b
            for y in range(h):
                for x in range(w):
                    total = np.float32(0.0)
                    used = np.float32(0.0)
                    for slot in range(filled):
                        c = best[slot, d, y, x]
                        if math.isfinite(c):
                            total += c
                            used += one
                    raw[b, y, x] = total / max(used, one) if used > 0 else one
            if shift <= 0:
                least[b] = raw[b]
                continue
            for y in range(h):  # the least over the windows within `shift`: along the rows, then down the columns
                for x in range(w):
                    m = raw[b, y, x]
                    for k in range(1, shift + 1):
                        m = min(m, raw[b, y, max(x - k, 0)], raw[b, y, min(x + k, w - 1)])
                    rows[y, x] = m
            for y in range(h):
                for x in range(w):
                    m = rows[y, x]
                    for k in range(1, shift + 1):
                        m = min(m, rows[max(y - k, 0), x], rows[min(y + k, h - 1), x])
                    if penalty > 0:
                        m = min(m + penalty, raw[b, y, x])
                    least[b, y, x] = m
        for y in range(h):
            for x in range(w):
                for b in range(nb):
                    out[y, x, d0 + b] = least[b, y, x]


def cost_volume(best: np.ndarray, filled: int, shift: int, penalty: float) -> np.ndarray:
    """The cost volume the aggregation scans (depth_sgm.py), (h, w, planes) float32, each pixel's planes
    contiguous: per plane and pixel the mean of the first `filled` slots of `best` ((keep, planes, h, w) float32,
    as `insert_view_costs` leaves it) that are finite, 1 (no match) where none is; then the shiftable windows
    (`shift` > 0): the least of that over the pixels within `shift` (edges repeated), plus `penalty` unless the
    pixel's own is lower (`penalty` 0: the least alone). The same float32 numbers as the NumPy and SciPy
    expressions it replaced (the mean's sums in slot order, SciPy's minimum filter), in one pass over the
    volume without their volume-sized temporaries or the transpose after them."""
    _, planes, h, w = best.shape
    out = np.empty((h, w, planes), np.float32)
    _volume_kernel(best, int(filled), int(shift), np.float32(penalty), out)
    return out


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
