"""Semi-global matching (step 4 of depth.py): cost aggregation along scan lines over an (h, w, D) cost volume
(each pixel's planes contiguous, as depth_cost.cost_volume lays it out), compiled.

Along each scan line, each pixel's aggregated cost per plane is its own cost plus the least of: its
predecessor's aggregated cost at the same plane, at a neighbouring plane plus P1, at any plane plus P2
(P2 lowered across grey edges: divided by 1 + the grey step / `sgm_edge`, at least 1.5 P1); minus the
predecessor's least aggregated cost (Hirschmueller, PAMI 2008). The paths are summed.

Why numba: in NumPy a scan is a Python loop over lines with (D, line) temporaries per step (about 14 ms a
path at the default working size, 55 ms a frame); the compiled scan walks the volume once per path and
releases the GIL. Float32 arithmetic in the NumPy version's order, so both give the same sums
(tests/scenes/capture/test_capture_depth_sgm.py checks it against that version).
"""

from __future__ import annotations

import logging

import numpy as np
from numba import njit
from numba import types as nt

from ...jit import JIT_OPTIONS, announce_compile
from .depth_config import DepthConfig

_JIT = JIT_OPTIONS
announce_compile(__file__, logging.getLogger(__name__), "the depth stage's semi-global matching")
_F32 = nt.float32


@njit(
    nt.void(
        nt.Array(_F32, 3, "C", readonly=True),
        nt.Array(_F32, 2, "C", readonly=True),
        _F32,
        _F32,
        _F32,
        nt.int64,
        nt.boolean,
        nt.int64,
        nt.Array(_F32, 3, "C"),
    ),  # fmt: skip
    **_JIT,
)
def _sgm_path_kernel(cost, guide, p1, p2, edge, axis, reverse, shift, total):  # pragma: no cover - compiled
    h, w, planes = cost.shape  # planes last: each pixel's costs are contiguous
    lines = h if axis == 1 else w
    width = w if axis == 1 else h
    prev = np.empty((width, planes), np.float32)
    cur = np.empty((width, planes), np.float32)
    p2_floor = np.float32(1.5) * p1
    one = np.float32(1.0)
    for step in range(lines):
        k = lines - 1 - step if reverse else step
        prev_k = k + 1 if reverse else k - 1
        for m in range(width):
            y, x = (k, m) if axis == 1 else (m, k)
            pm = m - shift
            if step == 0 or pm < 0 or pm >= width:
                for d in range(planes):
                    cur[m, d] = cost[y, x, d]
            else:
                py, px = (prev_k, pm) if axis == 1 else (pm, prev_k)
                step_p2 = max(p2 / (one + abs(guide[y, x] - guide[py, px]) / edge), p2_floor)
                least = prev[pm, 0]
                for d in range(1, planes):
                    least = min(least, prev[pm, d])
                jump = least + step_p2
                for d in range(planes):
                    c = min(prev[pm, d], jump)
                    if d > 0:
                        c = min(c, prev[pm, d - 1] + p1)
                    if d < planes - 1:
                        c = min(c, prev[pm, d + 1] + p1)
                    cur[m, d] = (cost[y, x, d] + c) - least
            for d in range(planes):
                total[y, x, d] += cur[m, d]
        prev, cur = cur, prev


def sgm(cost: np.ndarray, guide: np.ndarray, cfg: DepthConfig) -> np.ndarray:
    """Semi-global matching over (h, w, D) costs (each pixel's planes contiguous, as
    `depth_cost.cost_volume` makes them) along `sgm_paths` (4 or 8) scan directions; P2 is lowered across grey
    edges. Returns the (h, w, D) float32 sum of the paths."""
    cost = np.ascontiguousarray(cost, dtype=np.float32)
    guide = np.ascontiguousarray(guide, dtype=np.float32)
    total = np.zeros_like(cost)
    f32 = np.float32
    shifts = (0,) if cfg.sgm_paths == 4 else (-1, 0, 1)
    for axis in (1, 2):
        for reverse in (False, True):
            for shift in shifts:
                if shift and axis == 2:
                    continue  # diagonals are scanned once, along rows
                _sgm_path_kernel(
                    cost, guide, f32(cfg.sgm_p1), f32(cfg.sgm_p2), f32(cfg.sgm_edge), axis, reverse, shift, total
                )
    return total
