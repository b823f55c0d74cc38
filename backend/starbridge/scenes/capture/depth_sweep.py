"""Plane sweep of one frame (steps 3-4 of depth.py): the photo-consistency cost volume over inverse-depth planes
against the frame's source views (with shiftable windows), aggregated by semi-global matching (depth_sgm.py),
winner-take-all with sub-plane refinement, and the per-pixel match confidence (texture, ZNCC at the winner)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ...geometry.camera import Intrinsics
from .depth_config import DepthConfig
from .depth_cost import cost_volume, insert_view_costs
from .depth_ops import relative
from .depth_sgm import sgm


@dataclass
class SweptFrame:
    """Per-frame sweep output at the working size."""

    rho: np.ndarray  # (h, w) float32 inverse depth (0 = infinity)
    conf: np.ndarray  # (h, w) bool: textured and matched
    std: np.ndarray  # (h, w) float32 local grey std


@dataclass
class SweepContext:
    """What every frame's sweep and finish read: the working images, cameras, source views and planes."""

    config: DepthConfig
    intr: Intrinsics  # working intrinsics
    rgb: np.ndarray  # (N, h, w, 3) float32
    grey: np.ndarray  # (N, h, w) float32
    c2w: np.ndarray  # (N, 4, 4) OpenCV camera-to-world
    rays: np.ndarray  # (3, h*w)
    sources: list[list[int]]
    near: np.ndarray  # (N,)
    step: np.ndarray  # (N,) inverse-depth plane step
    planes: np.ndarray  # (N,) plane count


def box_mean(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k windows of the last two axes (edges repeated)."""
    size = (1,) * (a.ndim - 2) + (k, k)
    return ndimage.uniform_filter(a, size=size, mode="nearest")


def sweep(ctx: SweepContext, i: int) -> SweptFrame:
    """Plane sweep, SGM and winner-take-all for frame `i` at the working size."""
    cfg = ctx.config
    h, w = ctx.intr.height, ctx.intr.width
    ref = ctx.grey[i]
    k = cfg.window
    mu_r = box_mean(ref, k)
    var_r = np.maximum(box_mean(ref * ref, k) - mu_r * mu_r, 0.0)
    std = np.sqrt(var_r)
    if not ctx.sources[i]:
        return SweptFrame(np.zeros((h, w), np.float32), np.zeros((h, w), bool), std)
    count = int(ctx.planes[i])
    rhos = (np.arange(count) * ctx.step[i]).astype(np.float32)
    kmat = ctx.intr.K
    kinv = np.linalg.inv(kmat)
    pix = kmat @ ctx.rays  # (3, P) homogeneous pixel centres
    keep = _views_kept(ctx, i)
    # the `keep` smallest costs over the views so far, ascending (inf = none), per plane and pixel
    best = np.full((keep, count, h, w), np.inf, np.float32)
    filled = 0
    var_r_noise = var_r + np.float32(cfg.zncc_noise**2)
    for j in ctx.sources[i]:
        rot, t = relative(ctx.c2w[i], ctx.c2w[j])
        a = (kmat @ rot @ kinv @ pix).astype(np.float32)  # (3, P): the pixel's ray, in the source's pixels
        b = (kmat @ t).astype(np.float32)  # (3,): plus b times the plane's inverse depth
        filled = insert_view_costs(best, filled, ctx.grey[j], a, b, rhos, ref, mu_r, var_r_noise, cfg.zncc_noise**2, k)
    # (h, w, D): the mean over the best views, with the shiftable windows
    raw = cost_volume(best, filled, cfg.cost_shift, cfg.cost_shift_penalty)
    del best
    agg = sgm(raw, ref, cfg)
    idx = np.argmin(agg, axis=2)
    rows, cols = np.indices((h, w))
    c0 = agg[rows, cols, np.maximum(idx - 1, 0)]
    c1 = agg[rows, cols, idx]
    c2 = agg[rows, cols, np.minimum(idx + 1, count - 1)]
    denom = c0 - 2.0 * c1 + c2
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(denom > 1e-9, 0.5 * (c0 - c2) / denom, 0.0)
    interior = (idx > 0) & (idx < count - 1)
    offset = np.where(interior, np.clip(offset, -0.5, 0.5), 0.0)
    rho = ((idx + offset) * ctx.step[i]).astype(np.float32)
    score = 1.0 - raw[rows, cols, idx]
    conf = (std >= cfg.min_texture) & (score >= cfg.min_zncc) & (idx < count - 1)
    if cfg.min_epipolar_texture > 0:
        conf &= epipolar_texture(ctx, i) >= cfg.min_epipolar_texture
    return SweptFrame(rho, conf, std)


def epipolar_texture(ctx: SweepContext, i: int) -> np.ndarray:
    """(h, w): the share of frame `i`'s local grey gradient energy (structure tensor over the match window)
    that lies along the epipolar line through each pixel, the most over its source views. Near 0 where the
    texture runs along the lines only (stripes parallel to the motion: every plane matches alike)."""
    cfg = ctx.config
    h, w = ctx.intr.height, ctx.intr.width
    gy, gx = np.gradient(ctx.grey[i])
    k = cfg.window
    jxx, jxy, jyy = (box_mean(a, k) for a in (gx * gx, gx * gy, gy * gy))
    total = np.maximum(jxx + jyy, 1e-12)
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    best = np.zeros((h, w))
    for j in ctx.sources[i]:
        rot, t = relative(ctx.c2w[i], ctx.c2w[j])
        e = ctx.intr.K @ (-rot.T @ t)  # source camera's centre in frame i's pixels (homogeneous): the epipole
        if abs(e[2]) > 1e-9 * max(abs(e[0]), abs(e[1]), 1e-12):
            dx, dy = u - e[0] / e[2], v - e[1] / e[2]
        else:
            dx, dy = np.full((h, w), e[0]), np.full((h, w), e[1])
        norm = np.maximum(np.hypot(dx, dy), 1e-12)
        dx, dy = dx / norm, dy / norm
        along = dx * dx * jxx + 2.0 * dx * dy * jxy + dy * dy * jyy
        best = np.maximum(best, along / total)
    return best


def _views_kept(ctx: SweepContext, i: int) -> int:
    """How many of frame `i`'s best source views make each plane's cost: `best_views`, or `forward_best_views`
    when the baselines run along the viewing direction (mean |cos| to the optical axis at least
    `forward_motion_cos`: a dolly, where the views before and after see the same occlusions)."""
    cfg = ctx.config
    cosines = []
    for j in ctx.sources[i]:
        rot, t = relative(ctx.c2w[i], ctx.c2w[j])
        base = -rot.T @ t  # source centre in frame i's camera coordinates
        norm = float(np.linalg.norm(base))
        if norm > 0:
            cosines.append(abs(float(base[2])) / norm)
    forward = bool(cosines) and float(np.mean(cosines)) >= cfg.forward_motion_cos
    return min(cfg.forward_best_views if forward else cfg.best_views, len(ctx.sources[i]))
