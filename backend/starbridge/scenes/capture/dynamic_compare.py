"""One frame against one neighbour (steps 1-3 of dynamic.py, per pair of frames), compiled.

For every working-size pixel of frame i: unproject it with its inverse depth (0: a direction, rotated only),
move it into neighbour j's camera, project; read there the range of j's colours (its per-pixel minimum and
maximum over the tolerance window, bilinear) and j's inverse depth (nearest pixel); then decide whether j has
a say (the point lands inside j, j does not see something clearly nearer there, and, in the second pass, j's
pixel there was not flagged the first time) and whether it votes "moving" (the colour is outside j's range by
more than `photometric`, or by more than half of it where j sees clearly past the point). The votes and says
are added to the frame's counts.

Why numba: in NumPy this was a chain of full-size temporaries per pair (the two bilinear reads alone 6 ms of a
13 ms pair at 256x144), the moving stage's whole cost (a 300-frame clip: 58 s of one core); the compiled loop
does a pair in about a millisecond and releases the GIL, so frames run on threads. The arithmetic follows the
NumPy version's dtypes and order (float64 geometry, float32 colour), so the two give the same votes
(tests/scenes/capture/test_capture_dynamic_compare.py checks it against that NumPy version). Compiled once per
install (signature given, `cache=True`), as depth_upsample.py.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numba import njit
from numba import types as nt

from ...geometry.camera import Intrinsics
from ...jit import JIT_OPTIONS, announce_compile

_JIT = JIT_OPTIONS
announce_compile(__file__, logging.getLogger(__name__), "the moving masks' comparison")
_F64 = nt.float64
_IN_F32_2 = nt.Array(nt.float32, 2, "C", readonly=True)
_IN_F64_2 = nt.Array(_F64, 2, "C", readonly=True)
_IN_F64_1 = nt.Array(_F64, 1, "C", readonly=True)
_IN_U8_3 = nt.Array(nt.uint8, 3, "C", readonly=True)
_IN_B_2 = nt.Array(nt.boolean, 2, "C", readonly=True)
_OUT_I32_1 = nt.Array(nt.int32, 1, "C")


@njit(
    nt.void(
        _IN_F32_2,
        _IN_F64_2,
        _IN_F64_2,
        _IN_F64_1,
        _IN_F64_1,
        _IN_U8_3,
        _IN_U8_3,
        _IN_U8_3,
        _IN_F32_2,
        _IN_B_2,
        nt.boolean,
        _F64,
        _F64,
        _OUT_I32_1,
        _OUT_I32_1,
    ),  # fmt: skip
    **_JIT,
)
def _compare_kernel(  # pragma: no cover - compiled
    rho_i, rays, rot, t, cam, ref, lo, hi, inv_j, ignore, use_ignore, photometric, tol, votes, said
):
    h, w = rho_i.shape
    fx, fy, cx, cy = cam[0], cam[1], cam[2], cam[3]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    three = np.float32(3.0)
    inv255 = np.float32(1.0 / 255.0)
    # compared in float32, as NumPy compares a float32 array with a Python float
    threshold = np.float32(photometric)
    half_threshold = np.float32(0.5 * photometric)
    for p in range(h * w):
        r = rho_i[p // w, p % w]
        rho = np.float64(r)
        at_inf = rho <= 0.0
        rx, ry, rz = rays[0, p], rays[1, p], rays[2, p]
        if at_inf:
            px = rot[0, 0] * rx + rot[0, 1] * ry + rot[0, 2] * rz
            py = rot[1, 0] * rx + rot[1, 1] * ry + rot[1, 2] * rz
            pz = rot[2, 0] * rx + rot[2, 1] * ry + rot[2, 2] * rz
        else:
            sx, sy, sz = rx / rho, ry / rho, rz / rho
            px = rot[0, 0] * sx + rot[0, 1] * sy + rot[0, 2] * sz + t[0]
            py = rot[1, 0] * sx + rot[1, 1] * sy + rot[1, 2] * sz + t[1]
            pz = rot[2, 0] * sx + rot[2, 1] * sy + rot[2, 2] * sz + t[2]
        if not pz > 0.0:
            continue  # behind j (or NaN): no say
        x = fx * px / pz + cx - 0.5
        y = fy * py / pz + cy - 0.5
        if not (x > -0.5 and x < w - 0.5 and y > -0.5 and y < h - 0.5):
            continue
        # nearest pixel of j: its inverse depth, and whether it was flagged the first time
        col = int(math.floor(x + 0.5))
        row = int(math.floor(y + 0.5))
        if col < 0 or col >= w or row < 0 or row >= h:
            continue
        rho_j = np.float64(inv_j[row, col])
        rho_point = 0.0 if at_inf else 1.0 / pz
        if rho_j > rho_point * (1.0 + tol) + 1e-12:
            continue  # j sees something nearer there: hidden
        if use_ignore and ignore[row, col]:
            continue
        said[p] += 1
        # the colour's distance to the range of j's colours where the point lands (bilinear, edges clamped)
        xc = min(max(x, 0.0), w - 1.0)
        yc = min(max(y, 0.0), h - 1.0)
        x0 = min(int(xc), w - 2) if w > 1 else 0
        y0 = min(int(yc), h - 2) if h > 1 else 0
        x1 = x0 + 1 if w > 1 else x0
        y1 = y0 + 1 if h > 1 else y0
        wx = np.float32(xc - x0)
        wy = np.float32(yc - y0)
        pr = p // w
        pc = p % w
        total = zero
        for c in range(3):
            top = lo[y0, x0, c] * (one - wx) + lo[y0, x1, c] * wx
            bottom = lo[y1, x0, c] * (one - wx) + lo[y1, x1, c] * wx
            low = top * (one - wy) + bottom * wy
            top = hi[y0, x0, c] * (one - wx) + hi[y0, x1, c] * wx
            bottom = hi[y1, x0, c] * (one - wx) + hi[y1, x1, c] * wx
            high = top * (one - wy) + bottom * wy
            v = np.float32(ref[pr, pc, c])
            total = total + max(max(low - v, v - high), zero)
        residual = total / three * inv255
        gone = (not at_inf) and rho_j < rho_point * (1.0 - tol)
        if residual > threshold or (gone and residual > half_threshold):
            votes[p] += 1


def compare_into(
    votes: np.ndarray,
    said: np.ndarray,
    rho_i: np.ndarray,
    rays: np.ndarray,
    rot: np.ndarray,
    t: np.ndarray,
    intr: Intrinsics,
    ref: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    inv_j: np.ndarray,
    ignore: np.ndarray | None,
    photometric: float,
    depth_tolerance: float,
) -> None:
    """Add frame i's votes against neighbour j to `votes` and `said` ((h*w,) int32, in place).

    `rho_i`, `inv_j` (h, w) float32 inverse depths (0 at infinity); `rays` (3, h*w) of `pixel_rays`; (`rot`,
    `t`) map i's camera coordinates to j's; `ref` (i's colours), `lo`, `hi` (j's colour range) (h, w, 3)
    uint8; `ignore` (h, w) bool: j's pixels that have no say (None: all have)."""
    h, w = rho_i.shape
    cam = np.array([intr.fx, intr.fy, intr.cx, intr.cy], np.float64)
    skip = np.zeros((1, 1), bool) if ignore is None else np.ascontiguousarray(ignore, dtype=bool)
    _compare_kernel(
        np.ascontiguousarray(rho_i, dtype=np.float32), np.ascontiguousarray(rays, dtype=np.float64),
        np.ascontiguousarray(rot, dtype=np.float64), np.ascontiguousarray(t, dtype=np.float64), cam,
        np.ascontiguousarray(ref), np.ascontiguousarray(lo), np.ascontiguousarray(hi),
        np.ascontiguousarray(inv_j, dtype=np.float32), skip, ignore is not None, float(photometric),
        float(depth_tolerance), votes, said,
    )  # fmt: skip
