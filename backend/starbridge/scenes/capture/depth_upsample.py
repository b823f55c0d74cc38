"""Colour-guided upsampling of working-size inverse depth to the frame size (step 9 of depth.py), compiled.

One function serves both ends of a captured scene: multi-view stereo upsamples its working-size depth with it,
and a scene bundle that stores only the working-size depth (bundle.py, "colour-guided") redoes the same
upsampling when it is loaded, from the colour frames it decodes. So it must be fast (a 300-frame 512x288
clip at load: about 44 M pixels) and deterministic.

Per full-size pixel, its four low-resolution neighbours (pixel centres aligned, edges clamped):

* if they agree (all finite, the largest inverse depth at most (1 + `blend`) times the smallest; or all at
  infinity), their bilinear blend;
* else the neighbour whose working-size colour is nearest the pixel's own colour (sum of absolute channel
  differences, plus 0.02 per unit of bilinear distance so ties go to the nearest neighbour): no flying
  pixels across depth edges.

Inverse depth 0 is infinity; the output is z-depth, +inf there. The guide is the frame's colour and its
area-averaged working-size copy (depth_ops.resize_rgb, as the sweep's); the arithmetic is float32 in a fixed
order, so the kernel gives the same bits for the same input (tests/scenes/capture checks it against NumPy).
Why numba: in NumPy the choice per pixel is a chain of full-size temporaries (50 ms a frame at 512x288, 15 s
for a 300-frame clip); the compiled loop takes 1 ms and releases the GIL, so frames run on threads (a 300-frame
clip: about 0.35 s on two cores, with the area-averaged colour). Compiled once per install (signature given,
`cache=True`), as geometry/kernels.py.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit
from numba import types as nt

from ...errors import InvalidArgument
from ...jit import JIT_OPTIONS, announce_compile
from .depth_ops import resize_rgb

#: Name of this upsampling in a bundle's storage record (scene.json "storage.depth.upsample").
METHOD = "colour-guided"
#: Bilinear-distance penalty of the colour choice (per unit of weight lost), in colour units.
TIE_PENALTY = 0.02

_JIT = JIT_OPTIONS
announce_compile(__file__, logging.getLogger(__name__), "the depth upsampling")
_F32 = nt.float32
_IN_F32_2 = nt.Array(_F32, 2, "C", readonly=True)
_IN_F32_3 = nt.Array(_F32, 3, "C", readonly=True)
_IN_U8_3 = nt.Array(nt.uint8, 3, "C", readonly=True)
_OUT_F32_2 = nt.Array(_F32, 2, "C")


@njit(nt.float32(_F32, _F32, _F32, _F32, _F32, _F32, _F32, _F32), inline="always", **_JIT)
def _colour_distance(sr, sg, sb, r0, g0, b0, weight, pen):  # pragma: no cover - compiled
    d = abs(sr - r0) + abs(sg - g0)
    d = d + abs(sb - b0)
    return d + pen * (np.float32(1.0) - weight)


@njit(nt.void(_IN_F32_2, _IN_F32_3, _IN_U8_3, _F32, _OUT_F32_2), **_JIT)
def _upsample_kernel(rho, small, frame, blend, out):  # pragma: no cover - compiled
    h, w = rho.shape
    height, width = out.shape
    thr = np.float32(1.0) + blend
    inv255 = np.float32(1.0 / 255.0)
    pen = np.float32(TIE_PENALTY)
    one = np.float32(1.0)
    cx0 = np.empty(width, np.int64)
    cx1 = np.empty(width, np.int64)
    cfx = np.empty(width, np.float32)
    for c in range(width):
        xx = (c + 0.5) * w / width - 0.5
        x0 = min(max(int(np.floor(xx)), 0), w - 1)
        cx0[c] = x0
        cx1[c] = min(x0 + 1, w - 1)
        cfx[c] = np.float32(min(max(xx - x0, 0.0), 1.0))
    for r in range(height):
        yy = (r + 0.5) * h / height - 0.5
        y0 = min(max(int(np.floor(yy)), 0), h - 1)
        y1 = min(y0 + 1, h - 1)
        fy = np.float32(min(max(yy - y0, 0.0), 1.0))
        for c in range(width):
            x0 = cx0[c]
            x1 = cx1[c]
            fx = cfx[c]
            w00 = (one - fy) * (one - fx)
            w01 = (one - fy) * fx
            w10 = fy * (one - fx)
            w11 = fy * fx
            v00 = rho[y0, x0]
            v01 = rho[y0, x1]
            v10 = rho[y1, x0]
            v11 = rho[y1, x1]
            lo = min(min(v00, v01), min(v10, v11))
            hi = max(max(v00, v01), max(v10, v11))
            if (lo > 0 and hi <= lo * thr) or hi <= 0:
                value = w00 * v00 + w01 * v01
                value = value + w10 * v10
                value = value + w11 * v11
            else:
                r0 = frame[r, c, 0] * inv255
                g0 = frame[r, c, 1] * inv255
                b0 = frame[r, c, 2] * inv255
                value = v00
                best = _colour_distance(small[y0, x0, 0], small[y0, x0, 1], small[y0, x0, 2], r0, g0, b0, w00, pen)
                d = _colour_distance(small[y0, x1, 0], small[y0, x1, 1], small[y0, x1, 2], r0, g0, b0, w01, pen)
                if d < best:
                    best = d
                    value = v01
                d = _colour_distance(small[y1, x0, 0], small[y1, x0, 1], small[y1, x0, 2], r0, g0, b0, w10, pen)
                if d < best:
                    best = d
                    value = v10
                d = _colour_distance(small[y1, x1, 0], small[y1, x1, 1], small[y1, x1, 2], r0, g0, b0, w11, pen)
                if d < best:
                    value = v11
            out[r, c] = one / value if value > 0 else np.float32(np.inf)


def upsample(
    rho: np.ndarray, rgb_small: np.ndarray, frame: np.ndarray, blend: float, out: np.ndarray | None = None
) -> np.ndarray:
    """(H, W) float32 z-depth from working-size inverse depth `rho` (h, w) (0 = infinity), guided by `frame`
    (H, W, 3) uint8 and its working-size colour `rgb_small` (h, w, 3) float32 in [0, 1] (module docstring);
    written into `out` ((H, W) float32, C-contiguous) when given."""
    rho = np.ascontiguousarray(rho, dtype=np.float32)
    height, width = frame.shape[:2]
    if out is None:
        out = np.empty((height, width), np.float32)
    if rho.shape == (height, width):
        with np.errstate(divide="ignore"):
            np.divide(np.float32(1.0), rho, out=out)
        out[rho <= 0] = np.inf
        return out
    if rgb_small.shape != (*rho.shape, 3) or frame.ndim != 3 or frame.shape[2] != 3:
        raise InvalidArgument(
            f"upsample needs colour (h, w, 3) for inverse depth (h, w) and a frame (H, W, 3); got "
            f"{rgb_small.shape}, {rho.shape} and {frame.shape}"
        )
    _upsample_kernel(
        rho, np.ascontiguousarray(rgb_small, dtype=np.float32), np.ascontiguousarray(frame, dtype=np.uint8),
        np.float32(blend), out,
    )  # fmt: skip
    return out


def upsample_frames(
    rho: np.ndarray, frames: np.ndarray, blend: float, out: np.ndarray | None = None, workers: int = 0
) -> np.ndarray:
    """(N, H, W) float32 z-depth of every frame: `rho` (N, h, w) inverse depth upsampled under `frames`
    (N, H, W, 3) uint8, the working-size colour made here. `workers` threads (0: the CPU count, at most 4)."""
    n, h, w = rho.shape
    if frames.shape[0] != n:
        raise InvalidArgument(f"upsample_frames: {n} depth maps but {frames.shape[0]} frames")
    if out is None:
        out = np.empty((n, *frames.shape[1:3]), np.float32)

    def one(i: int) -> None:
        upsample(rho[i], resize_rgb(frames[i], (h, w)), frames[i], blend, out[i])

    workers = workers or min(4, os.cpu_count() or 1)
    if workers <= 1 or n <= 1:
        for i in range(n):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, range(n)))
    return out
