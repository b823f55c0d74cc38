"""Depth edges snapped to colour edges (step 8b of depth.py, after the fill), at the working size.

Stereo puts a depth edge where the matching windows, SGM and the fill put it, not where the image has its edge: the
more textured side of an occluding edge takes a few of the other side's pixels (a box fattened onto the wall behind
it, a box top at the wall's depth), usually with a pixel or two of ramp between. Each such pixel has the colour of
one side and the depth of the other. Here, for every finite pixel whose (2 `snap_band` + 1)-square neighbourhood
spans more than a factor 1 + `snap_jump` of inverse depth (the band), the window of `snap_radius` pixels around it
is split at the middle of its inverse-depth range into a near and a far side, and each side gets the support of its
pixels weighted by their colour's likeness to the pixel's own (exp(-L1 distance / `snap_sigma_colour`)) and a
Gaussian of distance, band pixels (the ones in doubt) times `snap_band_weight`. A pixel on one side whose colour
support on the other side is more than `snap_margin` times its own side's takes the other side's colour-weighted
median. Not moved: windows whose middle third of the range holds more than `snap_ramp` of their values (a ramp, e.g.
the ground towards the horizon, not a step), windows whose two sides' mean colours differ by less than
`snap_contrast` (L1: no colour edge to snap to, the weights would follow the texture's noise), and infinity (the
sky's outline is the sky test's; snapping it cost 0.06 dB of novel-view PSNR on the handheld clip). Not fixed: a
plain face that took its neighbour's depth from the fill over more than the band (a box top at the wall's depth). A
thin structure keeps its depth (its own pixels are the only ones of its colour). NumPy, vectorised over the band's
pixels (a few thousand at the working size).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .depth_config import DepthConfig


def jump_band(rho: np.ndarray, jump: float, band: int) -> np.ndarray:
    """(h, w) bool: finite pixels (inverse depth > 0) whose (2 `band` + 1)-square neighbourhood spans more than
    a factor 1 + `jump` of finite inverse depth (infinity, the sky, is left out: its edges are the sky
    test's)."""
    finite = rho > 0
    hi = ndimage.maximum_filter(np.where(finite, rho, 0.0), size=2 * band + 1, mode="nearest")
    lo = ndimage.minimum_filter(np.where(finite, rho, np.inf), size=2 * band + 1, mode="nearest")
    return finite & (hi > (1.0 + jump) * lo)


def snap_edges(rho: np.ndarray, rgb: np.ndarray, cfg: DepthConfig) -> np.ndarray:
    """`rho` (h, w) inverse depth (0 = infinity) with its depth edges moved onto the colour edges of `rgb`
    (h, w, 3) in [0, 1] (module docstring). A new array."""
    out = np.asarray(rho, np.float32).copy()
    colour = np.asarray(rgb, np.float32)
    h, w = out.shape
    r = cfg.snap_radius
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    dy, dx = dy.ravel(), dx.ravel()
    spatial = np.exp(-(dy * dy + dx * dx) / (2.0 * r * r)).astype(np.float32)
    pad_c = np.pad(colour, ((r, r), (r, r), (0, 0)), mode="edge")
    inside = np.pad(np.ones((h, w), bool), r, mode="constant", constant_values=False)
    band = jump_band(out, cfg.snap_jump, cfg.snap_band)
    rows, cols = np.nonzero(band)
    if rows.size == 0:
        return out
    yy = rows[:, None] + r + dy[None, :]  # (P, K) padded coordinates of each band pixel's window
    xx = cols[:, None] + r + dx[None, :]
    values = np.pad(out, r, mode="edge")[yy, xx]
    usable = inside[yy, xx] & (values > 0)
    # Two sides: above / below the middle of the window's finite inverse-depth range. A step has two clusters
    # of values; a ramp (slanted ground, a wall at a grazing angle) fills the middle third of the range as
    # well: not an edge. (The depth-only tests first: the colour work is for the windows that pass them.)
    lo = np.where(usable, values, np.inf).min(axis=1)
    hi = np.where(usable, values, 0.0).max(axis=1)
    mid = 0.5 * (lo + hi)
    middle = usable & (np.abs(values - mid[:, None]) < (hi - lo)[:, None] / 6.0)
    step = (middle.sum(axis=1) <= cfg.snap_ramp * usable.sum(axis=1)) & (hi > (1.0 + cfg.snap_jump) * lo)
    rows, cols, yy, xx, values, usable, mid = (a[step] for a in (rows, cols, yy, xx, values, usable, mid))
    near = values >= mid[:, None]
    own_near = out[rows, cols] >= mid
    neighbours = pad_c[yy, xx]  # (P, K, 3)
    # Only where the two sides differ in colour (mean colours, L1, at least `snap_contrast`): else there is no
    # colour edge to snap to, and the colour weights are the texture's noise.
    near_w = np.where(near & usable, spatial[None, :], np.float32(0.0))
    far_w = np.where(~near & usable, spatial[None, :], np.float32(0.0))
    mean_near = np.einsum("pk,pkc->pc", near_w, neighbours) / np.maximum(near_w.sum(axis=1), 1e-6)[:, None]
    mean_far = np.einsum("pk,pkc->pc", far_w, neighbours) / np.maximum(far_w.sum(axis=1), 1e-6)[:, None]
    contrast = np.abs(mean_near - mean_far).sum(axis=1) >= cfg.snap_contrast
    dist = np.abs(neighbours - colour[rows, cols][:, None, :]).sum(axis=2)
    weight = np.exp(-dist / np.float32(cfg.snap_sigma_colour)) * spatial[None, :]
    in_band = np.pad(band, r, mode="constant", constant_values=False)[yy, xx]
    weight *= np.where(in_band, np.float32(cfg.snap_band_weight), np.float32(1.0))
    weight *= usable
    w_near = np.where(near, weight, np.float32(0.0)).sum(axis=1)
    w_far = weight.sum(axis=1) - w_near
    margin = np.float32(cfg.snap_margin)
    to_far = contrast & own_near & (w_far > margin * w_near)
    to_near = contrast & ~own_near & (w_near > margin * w_far)
    move = to_far | to_near
    keep = np.where(to_near[:, None], near, ~near)[move]
    out[rows[move], cols[move]] = _weighted_median(values[move], np.where(keep, weight[move], np.float32(0.0)))
    return out


def _weighted_median(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per row of (P, K) `values`, the lower weighted median (the value where the cumulative weight of the
    sorted values first reaches half the row's total)."""
    order = np.argsort(values, axis=1, kind="stable")
    v = np.take_along_axis(values, order, axis=1)
    cum = np.cumsum(np.take_along_axis(weight, order, axis=1), axis=1)
    half = 0.5 * cum[:, -1:]
    idx = np.argmax(cum >= half, axis=1)
    return v[np.arange(v.shape[0]), idx]
