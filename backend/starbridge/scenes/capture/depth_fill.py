"""After the sweep (steps 5 and 7-8 of depth.py): geometric consistency between views and fusion with them
(`check`), then infinity and sky, the edge-aware fill of what is not confident and the edge snapping (`fill`;
between the two, depth_fuse.py fuses the checked depths across frames); and the nearest-neighbour upsampling
of the confidence mask (the colour-guided upsampling of the depth, step 9, is depth_upsample.py)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .depth_config import DepthConfig
from .depth_ops import domain_transform, image_rays, nearest, project, relative
from .depth_planes import refine_planes
from .depth_regions import choose_regions
from .depth_snap import snap_edges
from .depth_sweep import SweepContext, SweptFrame


def check(ctx: SweepContext, swept: list[SweptFrame], i: int) -> tuple[np.ndarray, np.ndarray]:
    """Geometric consistency with the source views, and their fusion: (inverse depth (h, w), 0 where not
    confident or at infinity; confident (h, w))."""
    cfg = ctx.config
    h, w = ctx.intr.height, ctx.intr.width
    cur = swept[i]
    if not ctx.sources[i]:
        return np.zeros((h, w), np.float32), np.zeros((h, w), bool)
    far = cfg.far_planes * ctx.step[i]
    votes = np.zeros(h * w, np.int32)
    rho = cur.rho.ravel().astype(np.float64)
    fused = rho.copy()
    fused_count = np.ones(h * w)
    at_inf = rho <= far
    rays = ctx.rays
    for j in ctx.sources[i]:
        rot, t = relative(ctx.c2w[i], ctx.c2w[j])
        # Finite points: into j, read j's inverse depth at the nearest pixel, back into i.
        safe = np.maximum(rho, 1e-12)
        pts_j = rot @ (rays / safe) + t[:, None]
        dirs_j = rot @ rays
        pts_j = np.where(at_inf, dirs_j, pts_j)
        xj, yj, zj = project(pts_j, ctx.intr)
        rho_j, inside = nearest(swept[j].rho, xj, yj, fill=0.0)
        inside &= zj > 0
        colj = np.floor(xj + 0.5)
        rowj = np.floor(yj + 0.5)
        ray_j = image_rays(ctx.intr, colj + 0.5, rowj + 0.5)
        far_j = rho_j <= cfg.far_planes * ctx.step[j] if ctx.step[j] > 0 else np.ones_like(inside)
        back = rot.T @ (ray_j / np.maximum(rho_j, 1e-12) - t[:, None])
        xi, yi, zi = project(back, ctx.intr)
        col = np.arange(h * w) % w
        row = np.arange(h * w) // w
        with np.errstate(invalid="ignore"):
            err_px = np.hypot(xi - col, yi - row)
            err_z = np.abs(zi * rho - 1.0)
            finite_ok = ~at_inf & ~far_j & (err_px <= cfg.consistency_px) & (err_z <= cfg.consistency_depth)
        votes += (inside & (finite_ok | (at_inf & far_j))).astype(np.int32)
        if cfg.fuse:
            agree = inside & finite_ok
            fused[agree] += 1.0 / zi[agree]
            fused_count += agree
    conf = cur.conf & (votes.reshape(h, w) >= min(cfg.min_consistent_views, len(ctx.sources[i])))
    rho_fused = (fused / fused_count).reshape(h, w)
    return np.where(conf & (cur.rho > far), rho_fused, 0.0).astype(np.float32), conf


def fill(ctx: SweepContext, i: int, rho: np.ndarray, conf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sky, fill and edge snapping of frame `i`'s checked (and fused) inverse depth `rho` (0 where not
    confident): (inverse depth (h, w) with 0 at infinity, confident (h, w))."""
    cfg = ctx.config
    h, w = ctx.intr.height, ctx.intr.width
    if not ctx.sources[i]:
        return np.zeros((h, w), np.float32), np.zeros((h, w), bool)
    conf = erode_near_edges(rho, conf, cfg.edge_erode_px, cfg.edge_erode_jump)
    out = np.where(conf, rho, 0.0).astype(np.float32)
    sky = _sky(ctx.rgb[i], conf, out, cfg)
    conf &= ~sky
    holes = ~conf & ~sky
    if holes.any() and conf.any():
        out = _fill(out, conf, holes, ctx.rgb[i], cfg)
        if cfg.planes == "fill":
            rho_max = float(ctx.step[i] * (ctx.planes[i] - 1))
            out = np.where(holes, refine_planes(out, conf, ctx.rgb[i], rho_max, cfg, seed=i), out)
    elif not conf.any():
        out[:] = 0.0  # no confident pixel at all: nothing to fill from
    out[sky] = 0.0
    if cfg.snap and conf.any():
        out = snap_edges(out, ctx.rgb[i], cfg)
    if cfg.regions == "fill":
        out, _ = choose_regions(ctx, i, out, conf)
    return out, conf


def erode_near_edges(rho: np.ndarray, conf: np.ndarray, radius: int, jump: float) -> np.ndarray:
    """The confident mask without the near side's outermost `radius` pixels at every depth edge the confident
    matches show: a confident pixel is dropped where a confident neighbour within `radius` (square window) is
    farther by more than `jump` in relative inverse depth (a confident pixel at infinity, `rho` 0, is the
    farthest). Those are where the plane sweep fattens a near surface over what lies behind it (a window
    straddling the edge matches the near side's texture); the fill and the edge snapping then give the pixel
    the side its colour belongs to. `radius` 0: the mask unchanged."""
    if radius <= 0 or not conf.any():
        return conf.copy()
    far = ndimage.minimum_filter(np.where(conf, rho, np.inf), size=2 * radius + 1, mode="nearest")
    return conf & ~((rho > 0) & (far < (1.0 - jump) * rho))


def _sky(rgb: np.ndarray, conf: np.ndarray, rho: np.ndarray, cfg: DepthConfig) -> np.ndarray:
    """Sky: regions of flat colour (every channel's local std below `sky_texture`) touching the top border,
    grown by a few pixels into neighbours of nearly the same colour (the flat-colour test fails within half
    a window of an edge), whose confident surroundings are far (their `sky_ring_percentile` inverse depth at
    most `sky_far_ratio` times the frame's median)."""
    h, w = conf.shape
    k = cfg.window
    mean = ndimage.uniform_filter(rgb, size=(k, k, 1), mode="nearest")
    var = ndimage.uniform_filter(rgb * rgb, size=(k, k, 1), mode="nearest") - mean * mean
    flat = np.sqrt(np.maximum(var, 0.0)).max(axis=2) < cfg.sky_texture
    labels, count = ndimage.label(flat)
    top = np.unique(labels[0][labels[0] > 0])
    if top.size == 0:
        return np.zeros((h, w), bool)
    near_conf = conf & (rho > 0)
    median_rho = float(np.median(rho[near_conf])) if near_conf.any() else 0.0
    sky = np.zeros((h, w), bool)
    links = _colour_links(rgb, cfg.sky_grow_colour)
    for lab in top:
        region = _grow(labels == lab, links, k // 2 + 1)
        ring = ndimage.binary_dilation(region, iterations=k // 2 + 1) & ~region & conf
        if not ring.any():
            sky |= region
            continue
        ring_rho = float(np.percentile(rho[ring], cfg.sky_ring_percentile))
        if ring_rho <= cfg.sky_far_ratio * median_rho and not _wall(region, near_conf, rho, ring_rho, cfg):
            sky |= region
    return sky


def _wall(region: np.ndarray, finite: np.ndarray, rho: np.ndarray, ring_rho: float, cfg: DepthConfig) -> bool:
    """A flat region that encloses confident finite depth (at least `sky_wall_inner` of its area) as far as
    its own surroundings (median inverse depth at most `sky_wall_agree` times the ring's) is a wall with
    windows, not sky; a near object floating in the sky (far surroundings) does not make it one."""
    inner = ndimage.binary_fill_holes(region) & ~region & finite
    if inner.sum() < max(1.0, cfg.sky_wall_inner * region.sum()):
        return False
    return bool(np.median(rho[inner]) <= cfg.sky_wall_agree * ring_rho)


#: The four 4-neighbour shifts (axis, shift) that `_colour_links` and `_grow` step through.
_SHIFTS = ((0, 1), (0, -1), (1, 1), (1, -1))


def _colour_links(rgb: np.ndarray, tolerance: float) -> list[np.ndarray]:
    """Per 4-neighbour shift (`_SHIFTS`), (h, w) bool: the pixel's neighbour on that side exists and its colour
    differs from the pixel's by at most `tolerance` (max over channels). Made once per frame: every region's
    growth reads the same links (computing them per region and step was 40% of the fill's time at 320x180)."""
    links = []
    for axis, shift in _SHIFTS:
        close = np.abs(np.roll(rgb, shift, axis=axis) - rgb).max(axis=2) <= tolerance
        if axis == 0:
            close[0 if shift == 1 else -1, :] = False
        else:
            close[:, 0 if shift == 1 else -1] = False
        links.append(close)
    return links


def _grow(region: np.ndarray, links: list[np.ndarray], steps: int) -> np.ndarray:
    """Grow `region` by up to `steps` pixels into 4-neighbours whose colour is close to the region pixel next to
    them (`links`, from `_colour_links`)."""
    region = region.copy()
    for _ in range(steps):
        add = np.zeros_like(region)
        for (axis, shift), close in zip(_SHIFTS, links, strict=True):
            add |= np.roll(region, shift, axis=axis) & close
        add &= ~region
        if not add.any():
            break
        region |= add
    return region


def _fill(rho: np.ndarray, conf: np.ndarray, holes: np.ndarray, rgb: np.ndarray, cfg: DepthConfig) -> np.ndarray:
    """Edge-aware normalised convolution of the confident inverse depths into the holes."""
    h, w = rho.shape
    weight = conf.astype(np.float32)
    values = rho * weight
    finite = conf & (rho > 0)
    sigma_s = cfg.fill_sigma_s * max(h, w)
    if cfg.fill_linear:
        filled = _linear_fill(values, weight, rgb, sigma_s, cfg.fill_sigma_r, cfg.fill_ridge)
        if finite.any():
            filled = np.clip(filled, 0.0, 1.25 * float(rho[finite].max()))
    else:
        smooth = domain_transform(np.stack([values, weight], axis=2), rgb, sigma_s, cfg.fill_sigma_r)
        support = smooth[..., 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            filled = np.where(support > 1e-4, smooth[..., 0] / support, np.nan)
    missing = holes & ~np.isfinite(filled)
    if missing.any():
        _, (ri, ci) = ndimage.distance_transform_edt(~conf, return_indices=True)
        filled = np.where(missing, rho[ri, ci], filled)
    out = rho.copy()
    out[holes] = np.maximum(filled[holes], 0.0)
    return out


def _linear_fill(
    values: np.ndarray, weight: np.ndarray, rgb: np.ndarray, sigma_s: float, sigma_r: float, ridge: float
) -> np.ndarray:
    """First-order normalised convolution: at every pixel, the plane rho = a x + b y + c fitted by weighted least
    squares to the data (`values` = weight * rho) with the edge-aware weights of the domain transform. Inverse
    depth is linear in the image on a planar surface, so slanted ground and walls are interpolated, not
    flattened. `ridge` (in squared normalised image units) pulls ill-supported slopes towards zero. NaN where
    there is no support."""
    h, w = values.shape
    scale = 1.0 / max(h, w)
    y, x = np.mgrid[0:h, 0:w] * scale
    chans = [
        weight,
        weight * x,
        weight * y,
        weight * x * x,
        weight * x * y,
        weight * y * y,
        values,
        values * x,
        values * y,
    ]
    m = domain_transform(np.stack(chans, axis=2), rgb, sigma_s, sigma_r)
    s0, sx, sy, sxx, sxy, syy, r0, rx, ry = (m[..., k] for k in range(9))
    # Moments about the pixel itself, so that the fitted value there is the intercept c.
    cx_ = sx - x * s0
    cy_ = sy - y * s0
    cxx = sxx - 2 * x * sx + x * x * s0 + ridge * s0
    cxy = sxy - x * sy - y * sx + x * y * s0
    cyy = syy - 2 * y * sy + y * y * s0 + ridge * s0
    crx = rx - x * r0
    cry = ry - y * r0
    a = np.stack([np.stack([cxx, cxy, cx_], -1), np.stack([cxy, cyy, cy_], -1), np.stack([cx_, cy_, s0], -1)], -2)
    rhs = np.stack([crx, cry, r0], -1)
    ok = s0 > 1e-4
    out = np.full((h, w), np.nan)
    sol = np.linalg.solve(a[ok], rhs[ok][..., None])[..., 0]
    out[ok] = sol[:, 2]
    return out
