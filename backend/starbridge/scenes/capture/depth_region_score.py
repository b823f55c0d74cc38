"""The regions' photo score against one source view (depth_regions.py's `_scores`), compiled.

For every hypothesis and every scored pixel, already projected into the source view (array coordinates x, y
and depth z): whether it lands inside the view (within the pixel centres' hull widened by half a pixel, in
front of the camera, and not on one of the view's moving pixels, nearest pixel), and there the L1 colour
difference between the view's colour (bilinear) and the pixel's own; summed per (hypothesis, region) with the
count of pixels inside.

Why numba: in NumPy this was a chain of (hypotheses, pixels, 3) temporaries (the bilinear's four gathers, the
difference, two weighted bincounts) that held the interpreter lock for much of its time: measured on a 40-frame
512x288 clip (the depth stage's finish, per-call time summed over the frames), `choose_regions` took 6.5 s on
one worker and 13.0 s summed over two (it did not run in parallel at all), while the sweep's compiled cost ran
2.0x faster on two. The loop here releases the lock and makes no temporaries. Its arithmetic is the NumPy
version's, operation for operation (the colours' bilinear weights and differences in float32, the sums in
float64 in the pixels' order, as `np.bincount` adds them), so the scores are the same to the bit
(tests/scenes/capture/test_capture_region_score.py checks that against the NumPy version).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numba import njit
from numba import types as nt

from ...jit import JIT_OPTIONS, announce_compile

announce_compile(__file__, logging.getLogger(__name__), "the depth stage's region score loop")
_F64_2 = nt.Array(nt.float64, 2, "C", readonly=True)
_F32_2 = nt.Array(nt.float32, 2, "C", readonly=True)
_F32_3 = nt.Array(nt.float32, 3, "C", readonly=True)
_B_2 = nt.Array(nt.boolean, 2, "C", readonly=True)
_I64_1 = nt.Array(nt.int64, 1, "C", readonly=True)
_OUT_F64_2 = nt.Array(nt.float64, 2, "C")


@njit(nt.void(_F64_2, _F64_2, _F64_2, _F32_3, _F32_2, _B_2, nt.boolean, _I64_1, _OUT_F64_2, _OUT_F64_2), **JIT_OPTIONS)
def _score_kernel(x, y, z, image, colours, moving, use_moving, index, hits, total):  # pragma: no cover - compiled
    count, m_pixels = x.shape
    h, w, channels = image.shape
    one = np.float32(1.0)
    x_top = w - 0.5
    y_top = h - 0.5
    x_max = w - 1.0
    y_max = h - 1.0
    dx = 1 if w > 1 else 0
    dy = 1 if h > 1 else 0
    for k in range(count):
        for m in range(m_pixels):
            xv = x[k, m]
            yv = y[k, m]
            # inside the view (NaN fails every comparison) and in front of its camera
            if not (xv > -0.5 and xv < x_top and yv > -0.5 and yv < y_top and z[k, m] > 0.0):
                continue
            if use_moving:
                # the nearest pixel; x + 0.5 can round up to w itself just inside the rim (x within half an ulp
                # of w - 0.5), where NumPy's version finds no pixel and so no moving one
                col = int(math.floor(xv + 0.5))
                row = int(math.floor(yv + 0.5))
                if col < w and row < h and moving[row, col]:
                    continue
            xc = min(max(xv, 0.0), x_max)
            yc = min(max(yv, 0.0), y_max)
            x0 = min(int(xc), w - 2) if w > 1 else 0
            y0 = min(int(yc), h - 2) if h > 1 else 0
            fx = np.float32(xc - x0)
            fy = np.float32(yc - y0)
            diff = np.float32(0.0)
            for c in range(channels):
                top = image[y0, x0, c] * (one - fx) + image[y0, x0 + dx, c] * fx
                bottom = image[y0 + dy, x0, c] * (one - fx) + image[y0 + dy, x0 + dx, c] * fx
                value = top * (one - fy) + bottom * fy
                diff += abs(value - colours[m, c])
            r = index[m]
            hits[k, r] += 1.0
            total[k, r] += np.float64(diff)


def view_scores(
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    image: np.ndarray,
    colours: np.ndarray,
    moving: np.ndarray | None,
    index: np.ndarray,
    regions: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(hits, total), each (H, R) float64: per hypothesis and region, the count of its pixels that land inside
    the source view and the sum of their L1 colour differences there. `x`, `y`, `z` (H, M) the pixels projected
    into the view (array coordinates, depth; depth_ops.project); `image` (h, w, 3) float32 the view's colour;
    `colours` (M, 3) float32 the pixels' own; `moving` (h, w) bool the view's moving pixels (a pixel landing on
    one does not count) or None; `index` (M,) each pixel's region in 0..R-1."""
    count = x.shape[0]
    hits = np.zeros((count, regions), np.float64)
    total = np.zeros((count, regions), np.float64)
    f64, f32 = np.float64, np.float32
    mask = np.zeros((1, 1), bool) if moving is None else np.ascontiguousarray(moving, dtype=bool)
    _score_kernel(
        np.ascontiguousarray(x, dtype=f64), np.ascontiguousarray(y, dtype=f64), np.ascontiguousarray(z, dtype=f64),
        np.ascontiguousarray(image, dtype=f32), np.ascontiguousarray(colours, dtype=f32), mask, moving is not None,
        np.ascontiguousarray(index, dtype=np.int64), hits, total,
    )  # fmt: skip
    return hits, total
