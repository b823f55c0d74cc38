"""Piecewise-planar refinement of filled inverse depth: by default a pass over the clip's kept depth after the
moving objects are placed (`refine_static_planes`, pipeline.py), or step 8b of depth.py, after its edge-aware
fill (`DepthConfig.planes` "fill"); `DepthConfig.planes` says what each measured.

Box faces, the ground and facades are planes, and a plane is linear in inverse depth over the image
(rho = a x + b y + c). The frame's colour is cut into superpixels by a watershed of its colour gradient
(SciPy's `ndimage.watershed_ift`: a maintained implementation already among the serving dependencies, so no
new one) from seeds that are the plain-colour regions, plus a grid of seeds where there is none; segments
follow colour edges, which is what a face's outline is. In each segment grown from a plain region (a
textured cell's unconfident pixels lie at depth edges, where the majority's plane would move the edge: the
fill is better there) a plane is fitted by RANSAC to the confident inverse depths in it (at least
`plane_min_support`; residuals within `plane_tolerance`, relative); where at least `plane_min_inliers` of
them agree, the segment's filled (not confident) pixels take the plane's value where it is within
`plane_max_change` of the fill (a surface's inside mended; where they differ more the fill is likely at an edge
the plane would move), unless the plane leaves the swept range there (at or behind infinity, nearer than the
nearest plane). Measured depths are kept as they are, and segments without a plane keep the fill: where the
plane does not fit, nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from ...errors import InvalidArgument
from .depth_config import DepthConfig
from .depth_ops import resize_nearest, resize_rgb, working_mask


def segments(rgb: np.ndarray, spacing: int, flat_step: float) -> tuple[np.ndarray, int]:
    """((h, w) int32 superpixel labels 1..K, F) of an (h, w, 3) float image in [0, 1]: a watershed of the colour
    gradient (largest Sobel magnitude over the channels, in colour units) from seeds that are the connected
    regions of flat colour (gradient below `flat_step`, at least `spacing` pixels) and, in each `spacing` x
    `spacing` cell that has none, its flattest pixel. So a plain face bounded by lines is one segment (the
    lines flood into it and the faces beside it), and textured areas are cut into cells. Labels 1..F are the
    plain regions' segments, F+1..K the cells'."""
    h, w = rgb.shape[:2]
    grad = np.zeros((h, w), np.float32)
    for c in range(3):
        gx = ndimage.sobel(rgb[..., c], axis=1, mode="nearest")
        gy = ndimage.sobel(rgb[..., c], axis=0, mode="nearest")
        np.maximum(grad, np.hypot(gx, gy) * 0.25, out=grad)  # Sobel of a unit step is 4
    level = np.clip(grad * 1000.0, 0, 65535).astype(np.uint16)
    markers, count = ndimage.label(grad < flat_step)
    sizes = np.bincount(markers.ravel(), minlength=count + 1)
    keep = sizes >= spacing
    keep[0] = False
    markers = (np.cumsum(keep) * keep).astype(np.int32)[markers]  # kept regions renumbered 1..K, the rest 0
    flat = label = int(markers.max())
    for r0 in range(0, h, spacing):
        for c0 in range(0, w, spacing):
            if markers[r0 : r0 + spacing, c0 : c0 + spacing].any():
                continue
            cell = level[r0 : r0 + spacing, c0 : c0 + spacing]
            r, c = (int(a) for a in np.unravel_index(int(np.argmin(cell)), cell.shape))
            label += 1
            markers[r0 + r, c0 + c] = label
    return ndimage.watershed_ift(level, markers).astype(np.int32), flat


def refine_planes(
    rho: np.ndarray, conf: np.ndarray, rgb: np.ndarray, rho_max: float, cfg: DepthConfig, seed: int = 0
) -> np.ndarray:
    """`rho` (h, w) filled inverse depth (0 = infinity) with its filled pixels replaced by each segment's
    RANSAC plane where one fits (module docstring); `conf` (h, w) the confident pixels, `rho_max` the
    nearest swept inverse depth."""
    h, w = rho.shape
    labels, plain = segments(rgb, cfg.plane_segment_px, cfg.plane_flat_step)
    data = conf & (rho > 0)
    flat = labels.ravel()
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(1, flat.max() + 2))
    ys, xs = np.divmod(np.arange(h * w), w)
    scale = 1.0 / max(h, w)
    rho_flat = rho.ravel()
    data_flat = data.ravel()
    out = rho_flat.copy()
    rng = np.random.default_rng(seed)
    tol = cfg.plane_tolerance
    for k in range(plain):  # the plain regions' segments (label k + 1); a textured cell's holes are at edges
        idx = order[bounds[k] : bounds[k + 1]]
        sup = idx[data_flat[idx]]
        holes = idx[~data_flat[idx]]
        if len(sup) < cfg.plane_min_support or not len(holes):
            continue
        design = np.stack([xs[sup] * scale, ys[sup] * scale, np.ones(len(sup))], 1)
        target = rho_flat[sup].astype(np.float64)
        plane = _ransac(design, target, tol, cfg.plane_iterations, rng)
        if plane is None:
            continue
        inliers = np.abs(design @ plane - target) <= tol * target
        if inliers.mean() < cfg.plane_min_inliers:
            continue
        fit = np.stack([xs[holes] * scale, ys[holes] * scale, np.ones(len(holes))], 1) @ plane
        ok = (fit > 0) & (fit <= rho_max)
        if cfg.plane_max_change > 0:
            was = rho_flat[holes]
            ok &= np.abs(fit - was) <= cfg.plane_max_change * np.maximum(was, fit)
        out[holes[ok]] = fit[ok]
    return out.reshape(h, w).astype(np.float32)


def _ransac(
    design: np.ndarray, target: np.ndarray, tol: float, iterations: int, rng: np.random.Generator
) -> np.ndarray | None:
    """Least-squares plane (3,) on the inliers of the best of `iterations` three-point samples (residual within
    `tol` times the value), or None when no sample spans a plane."""
    n = len(target)
    picks = rng.integers(0, n, size=(iterations, 3))
    a = design[picks]  # (I, 3, 3)
    b = target[picks]  # (I, 3)
    det = np.linalg.det(a)
    good = np.abs(det) > 1e-9
    if not good.any():
        return None
    planes = np.linalg.solve(a[good], b[good][..., None])[..., 0]  # (G, 3)
    resid = np.abs(design @ planes.T - target[:, None])  # (n, G)
    counts = (resid <= tol * target[:, None]).sum(0)
    best = planes[int(np.argmax(counts))]
    inl = np.abs(design @ best - target) <= tol * target
    if inl.sum() < 3:
        return None
    sol, *_ = np.linalg.lstsq(design[inl], target[inl], rcond=None)
    return sol


def refine_static_planes(
    inverse: np.ndarray,
    measured: np.ndarray,
    confident: np.ndarray,
    moving: np.ndarray,
    frames: np.ndarray,
    near: np.ndarray,
    cfg: DepthConfig,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, float]:
    """The plane refinement run on a clip's kept (working-size) inverse depth after the moving objects are
    placed (`DepthConfig.planes` "static"): `inverse` (N, h, w) the depth to mend (0 at infinity; the stereo's
    with the moving objects placed), `measured` the stereo's own (the planes are fitted to its confident static
    pixels and judged against its fill, so the placement cannot move them), `confident` and `moving` (N, H, W)
    bool at the frames' size, `frames` (N, H, W, 3) uint8, `near` (N,) the nearest swept depth per frame. Only
    the filled static pixels the placement left as the stereo had them change; returns (inverse depth, share of
    the pixels changed). `progress(done, total)` after each frame."""
    n, h, w = inverse.shape
    if measured.shape != inverse.shape or confident.shape != moving.shape or confident.shape != frames.shape[:3]:
        raise InvalidArgument(
            f"refine_static_planes: inverse {inverse.shape}, measured {measured.shape}, confident "
            f"{confident.shape}, moving {moving.shape} and frames {frames.shape} must agree",
            field="depth",
        )
    out = np.array(inverse, dtype=np.float32, copy=True)
    changed = 0
    for i in range(n):
        if np.isfinite(near[i]) and near[i] > 0:  # else a frame without stereo: nothing measured to fit
            rho = measured[i]
            sure = resize_nearest(confident[i], (h, w))
            still = ~working_mask(moving[i], (h, w))
            support = sure & still & (rho > 0)
            refined = refine_planes(rho, support, resize_rgb(frames[i], (h, w)), 1.0 / float(near[i]), cfg, seed=i)
            take = still & ~sure & (rho > 0) & (out[i] == rho) & (refined != rho)
            out[i][take] = refined[take]
            changed += int(take.sum())
        if progress is not None:
            progress(i + 1, n)
    return out, changed / max(out.size, 1)
