"""Semi-global matching (step 4 of depth.py): cost aggregation along scan lines over a (D, h, w) cost volume."""

from __future__ import annotations

import numpy as np

from .depth_config import DepthConfig


def sgm(cost: np.ndarray, guide: np.ndarray, cfg: DepthConfig) -> np.ndarray:
    """Semi-global matching over (D, h, w) costs along `sgm_paths` (4 or 8) scan directions; P2 is lowered
    across grey edges."""
    total = np.zeros_like(cost)
    shifts = (0,) if cfg.sgm_paths == 4 else (-1, 0, 1)
    for axis in (1, 2):
        for reverse in (False, True):
            for shift in shifts:
                if shift and axis == 2:
                    continue  # diagonals are scanned once, along rows
                total += _sgm_path(cost, guide, cfg, axis, reverse, shift)
    return total


def _sgm_path(
    cost: np.ndarray, guide: np.ndarray, cfg: DepthConfig, axis: int, reverse: bool, shift: int
) -> np.ndarray:
    """One SGM scan: along `axis` (1: rows top-down, 2: columns left-right; `reverse` the other way), each
    pixel's predecessor `shift` pixels aside on the previous line (diagonal scans)."""
    c = np.moveaxis(cost, axis, 0)  # (L, D, M)
    g = guide if axis == 1 else guide.T  # (L, M)
    n, d, m = c.shape
    p1 = np.float32(cfg.sgm_p1)
    out = np.empty_like(c)
    order = range(n - 1, -1, -1) if reverse else range(n)
    prev: np.ndarray | None = None
    prev_g: np.ndarray | None = None
    pred = np.zeros((d, m), np.float32)
    pred_g = np.zeros(m, np.float32)
    lo, hi = max(shift, 0), m + min(shift, 0)  # columns with a predecessor
    for k in order:
        if prev is None or prev_g is None:
            cur = c[k].copy()
        else:
            if shift:
                pred.fill(0.0)
                pred[:, lo:hi] = prev[:, lo - shift : hi - shift]
                pred_g[:] = g[k]
                pred_g[lo:hi] = prev_g[lo - shift : hi - shift]
                base = pred
            else:
                base = prev
                pred_g = prev_g
            p2 = np.maximum(cfg.sgm_p2 / (1.0 + np.abs(g[k] - pred_g) / cfg.sgm_edge), 1.5 * p1).astype(np.float32)
            mn = base.min(axis=0)
            cand = np.minimum(base, mn + p2)
            np.minimum(cand[1:], base[:-1] + p1, out=cand[1:])
            np.minimum(cand[:-1], base[1:] + p1, out=cand[:-1])
            cur = c[k] + cand - mn
        out[k] = cur
        prev = cur
        prev_g = g[k]
    return np.moveaxis(out, 0, axis)
