"""The compiled semi-global matching (depth_sgm.py) against the NumPy version it replaced (kept here as the
reference, on (D, h, w) volumes; the compiled one takes and returns (h, w, D)): the same aggregated costs, for 4
and 8 paths, on a cost volume with a depth edge and noise."""

from __future__ import annotations

import numpy as np
import pytest

from starbridge.scenes.capture.depth_config import DepthConfig
from starbridge.scenes.capture.depth_sgm import sgm


def reference_path(cost, guide, cfg, axis, reverse, shift):
    c = np.moveaxis(cost, axis, 0)
    g = guide if axis == 1 else guide.T
    n, d, m = c.shape
    p1 = np.float32(cfg.sgm_p1)
    out = np.empty_like(c)
    order = range(n - 1, -1, -1) if reverse else range(n)
    prev = prev_g = None
    pred = np.zeros((d, m), np.float32)
    pred_g = np.zeros(m, np.float32)
    lo, hi = max(shift, 0), m + min(shift, 0)
    for k in order:
        if prev is None:
            cur = c[k].copy()
        else:
            if shift:
                pred.fill(0.0)
                pred[:, lo:hi] = prev[:, lo - shift : hi - shift]
                pred_g[:] = g[k]
                pred_g[lo:hi] = prev_g[lo - shift : hi - shift]
                base = pred
            else:
                base, pred_g = prev, prev_g
            p2 = np.maximum(cfg.sgm_p2 / (1.0 + np.abs(g[k] - pred_g) / cfg.sgm_edge), 1.5 * p1).astype(np.float32)
            mn = base.min(axis=0)
            cand = np.minimum(base, mn + p2)
            np.minimum(cand[1:], base[:-1] + p1, out=cand[1:])
            np.minimum(cand[:-1], base[1:] + p1, out=cand[:-1])
            cur = c[k] + cand - mn
        out[k] = cur
        prev, prev_g = cur, g[k]
    return np.moveaxis(out, 0, axis)


def reference(cost, guide, cfg):
    total = np.zeros_like(cost)
    shifts = (0,) if cfg.sgm_paths == 4 else (-1, 0, 1)
    for axis in (1, 2):
        for reverse in (False, True):
            for shift in shifts:
                if shift and axis == 2:
                    continue
                total += reference_path(cost, guide, cfg, axis, reverse, shift)
    return total


@pytest.mark.parametrize("paths", [4, 8])
def test_the_compiled_sgm_sums_as_the_numpy_one(paths: int) -> None:
    rng = np.random.default_rng(3)
    planes, h, w = 24, 30, 41
    truth = np.where(np.arange(w)[None, :] < 20, 5, 17) + np.zeros((h, 1), int)  # a depth edge
    cost = rng.uniform(0.3, 1.5, (planes, h, w)).astype(np.float32)
    cost[truth, np.arange(h)[:, None], np.arange(w)[None, :]] = 0.1
    guide = np.where(np.arange(w)[None, :] < 20, 0.2, 0.7).astype(np.float32) + rng.normal(0, 0.01, (h, w)).astype(
        np.float32
    )
    cfg = DepthConfig(sgm_paths=paths)
    got = sgm(np.moveaxis(cost, 0, 2), guide, cfg)
    assert got.shape == (h, w, planes)
    want = reference(cost, guide, cfg)
    np.testing.assert_allclose(np.moveaxis(got, 2, 0), want, rtol=1e-6, atol=1e-5)
    # and the aggregation does its job: the winner is the true plane where the raw cost's noise hid it
    cost_noisy = cost.copy()
    cost_noisy[:, 10, 5] = rng.uniform(0.0, 0.05, planes).astype(np.float32)
    assert np.argmin(sgm(np.moveaxis(cost_noisy, 0, 2), guide, cfg)[10, 5]) == 5
