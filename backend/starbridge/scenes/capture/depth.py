"""Dense depth for every frame of a tracked video, by multi-view stereo on the CPU; and alignment of a user's
monocular depth to the tracked scale.

`estimate_depth(frames, intrinsics, poses_c2w)` works in a downscaled copy of the video (long side
`DepthConfig.max_side`, 192 px by default) and returns z-depth at the frames' size, in the poses' units
(whatever scale the tracking chose: nothing here assumes metres), +inf for what is at infinity (sky, very far
surfaces): the renderer treats +inf as a direction. Per frame:

1. **Source views.** `source_views` (4) other frames: for each target parallax (`parallax_px`, working pixels
   of baseline at the frame's typical depth) the frame nearest to it before and after in time, among those
   within `max_view_angle_deg` of the viewing direction that see the middle of the frame (and, with
   `keyframes`, only keyframes).
2. **Depth range.** From the sparse points when given (their depths in the frame: the `near_percentile`
   divided by `near_margin`, and the median as the typical depth), else from the camera baseline (the clip's
   camera extent times `fallback_near_extent` / `fallback_typical_extent`). The far end is always infinity.
3. **Plane sweep** over inverse depth from 0 (infinity) to 1 / near, planes `plane_step_px` of disparity apart
   in the widest source view (between `min_planes` and `max_planes`). Cost: 1 - ZNCC over `window` x `window`
   pixels of grey (with `zncc_noise` added to both variances, so flat windows score ~0 rather than matching
   compression noise), each source warped by the plane's homography (bilinear); per plane the mean of the
   `best_views` best views (robust to occlusion).
4. **Aggregation** by semi-global matching (`sgm_paths` scan directions, penalties P1/P2, P2 lowered across
   grey edges), winner-take-all, and a parabola through the neighbouring planes (sub-plane refinement).
5. **Confidence**: texture (local grey std >= `min_texture`), the raw ZNCC at the winner (>= `min_zncc`),
   and geometric consistency with `min_consistent_views` source views (project into the source, read its
   depth there, project back: within `consistency_px` pixels and `consistency_depth` relative depth); a
   confident depth is averaged with those of its consistent views (`fuse`). `DepthResult.coverage` is the
   confident fraction of each frame, before filling.
6. **Infinity.** Confident inverse depths within `far_planes` plane steps of zero are at infinity. Sky: flat
   colour (every channel's local std below `sky_texture`) touching the top border, grown a few pixels into
   neighbours of nearly the same colour, whose confident surroundings are far (their `sky_ring_percentile`
   inverse depth at most `sky_far_ratio` times the frame's median): +inf.
7. **Fill** the rest by first-order normalised convolution: a plane in inverse depth (linear in the image on
   any planar surface, so slanted ground is not flattened) fitted at every pixel to the confident inverse
   depths with the edge-aware weights of the domain transform's recursive filter, guided by the colour;
   the nearest confident value where there is no support.
8. **Upsample** to the frame size: bilinear in inverse depth where the four low-resolution neighbours agree
   within `upsample_blend`, else the neighbour whose colour is nearest the full-resolution pixel's (no
   flying pixels across depth edges).

Rotation-only input (no camera translation, or less than `min_parallax_px` of parallax at the sparse points'
depth between any two frames) gives +inf everywhere at once, with a note. Speed: about 0.3 s of CPU per frame
at the default size with sparse points (about 50 planes; 0.5-0.65 s measured on a busy 2-core VM); frames run
on `workers` threads (NumPy and SciPy release the GIL).

Limits: surfaces with no texture but lines along the direction of motion (the aperture problem) get their depth
from the fill, i.e. from their edges; hazy far buildings whose only texture is that may take the depth of the
nearer surfaces around them; foreground edges fatten by up to half a window on the background.

`align_depth(mono_depth, observations)` fits each frame's scale and shift of a monocular (relative) depth or
inverse depth map to the tracked sparse points seen in that frame (RANSAC, then Huber IRLS on relative
residuals); `observations_from_points` makes its input from the tracker's points and observations.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from .depth_ops import (
    bilinear,
    cv_poses,
    domain_transform,
    grey,
    nearest,
    pixel_rays,
    project,
    relative,
    resize_rgb,
    working_size,
)

#: progress(stage, done, total), as the importer's.
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DepthConfig:
    """Settings of `estimate_depth`. Pixel quantities are at the working size (long side `max_side`)."""

    #: Long side of the working images, pixels (the frames are downscaled by area averaging).
    max_side: int = 192
    #: Source views per frame, and how many of the best of them make each plane's cost.
    source_views: int = 4
    best_views: int = 2
    #: Target parallaxes of the source views at the frame's typical depth, working pixels.
    parallax_px: tuple[float, ...] = (6.0, 18.0)
    #: A source view needs at least this parallax (below it, the frame has no stereo: +inf).
    min_parallax_px: float = 1.0
    #: Largest angle between the viewing directions of a frame and a source view, degrees.
    max_view_angle_deg: float = 40.0
    #: ZNCC window side, pixels (odd).
    window: int = 5
    #: Plane spacing, pixels of disparity in the widest source view, and the most planes.
    plane_step_px: float = 1.0
    max_planes: int = 96
    min_planes: int = 24
    #: Semi-global matching penalties (cost units: 1 - ZNCC, in [0, 2]) and the grey step that halves P2.
    sgm_p1: float = 0.3
    sgm_p2: float = 2.0
    sgm_edge: float = 0.05
    sgm_paths: int = 4
    #: Grey std (in [0, 1]) added to both windows' variance in the ZNCC, so that flat windows (noise only)
    #: score near 0 instead of matching compression noise.
    zncc_noise: float = 0.01
    #: Confident needs a ZNCC of at least `min_zncc` at the winning plane, a local grey std of at least
    #: `min_texture` (grey in [0, 1]), and geometric consistency with `min_consistent_views` source views:
    #: reprojected within `consistency_px` pixels and `consistency_depth` relative depth.
    min_zncc: float = 0.5
    min_texture: float = 0.008
    min_consistent_views: int = 1
    consistency_px: float = 1.0
    consistency_depth: float = 0.05
    #: Average each confident inverse depth with those of the consistent source views (less noise).
    fuse: bool = True
    #: Confident inverse depths below this many plane steps are at infinity.
    far_planes: float = 0.35
    #: Sky: regions of flat colour (local std of every channel below `sky_texture`) touching the top border,
    #: grown into neighbours within `sky_grow_colour`, whose confident surroundings are far: the
    #: `sky_ring_percentile` of their inverse depths at most `sky_far_ratio` times the frame's median.
    sky_texture: float = 0.012
    sky_grow_colour: float = 0.03
    sky_ring_percentile: float = 25.0
    sky_far_ratio: float = 0.9
    #: Edge-aware fill: spatial sigma as a fraction of the working long side; range sigma in colour [0, 1];
    #: a plane per pixel (`fill_linear`, slopes pulled to zero by `fill_ridge` in squared image units where
    #: the support is thin) or a weighted mean.
    fill_sigma_s: float = 0.15
    fill_sigma_r: float = 0.08
    fill_linear: bool = True
    fill_ridge: float = 1e-4
    #: Upsampling: four neighbours within this relative inverse-depth spread are blended bilinearly.
    upsample_blend: float = 0.1
    #: Depth range from sparse points: near = this percentile of their depths / `near_margin`.
    near_percentile: float = 2.0
    near_margin: float = 1.5
    #: Without sparse points: near and typical depth as multiples of the clip's camera extent.
    fallback_near_extent: float = 0.5
    fallback_typical_extent: float = 4.0
    #: Threads over frames (0: min(4, CPU count)).
    workers: int = 0

    def __post_init__(self) -> None:
        checks = [
            (16 <= self.max_side <= 4096, "max_side must be in [16, 4096]"),
            (1 <= self.best_views <= self.source_views <= 8, "need 1 <= best_views <= source_views <= 8"),
            (self.window >= 3 and self.window % 2 == 1, "window must be odd and >= 3"),
            (2 <= self.min_planes <= self.max_planes <= 512, "need 2 <= min_planes <= max_planes <= 512"),
            (self.plane_step_px > 0 and self.min_parallax_px > 0, "plane_step_px and min_parallax_px must be > 0"),
            (len(self.parallax_px) > 0 and min(self.parallax_px) > 0, "parallax_px must be positive"),
            (self.near_margin >= 1.0 and 0 <= self.near_percentile < 50, "near_margin >= 1, near_percentile < 50"),
            (self.workers >= 0, "workers must be >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise InvalidArgument(f"DepthConfig: {message}", field="depth_config")


@dataclass(frozen=True)
class DepthResult:
    """Dense depth of every frame. Depth units are the poses' units (the tracking's scale)."""

    #: (N, H, W) float32 z-depth at the frames' size; +inf at infinity (sky, very far). Never NaN or <= 0.
    depth: np.ndarray = field(repr=False)
    #: (N, H, W) bool: the depth came from a confident, geometrically consistent match (not filled).
    confident: np.ndarray = field(repr=False)
    #: (N,) fraction of each frame's pixels with a confident depth before filling (at the working size).
    coverage: np.ndarray
    #: (N,) fraction of each frame's pixels set to +inf (sky and very far).
    infinite: np.ndarray
    #: (N, V) the source frames each frame was matched against (-1: none).
    sources: np.ndarray = field(repr=False)
    #: (N,) nearest depth swept per frame (poses' units); +inf for a frame without stereo.
    near: np.ndarray = field(repr=False)
    #: (height, width) of the working images.
    working_size: tuple[int, int]
    #: Wall time, seconds.
    seconds: float
    #: What the caller should know (rotation-only input, frames without stereo).
    notes: tuple[str, ...] = ()

    @property
    def rotation_only(self) -> bool:
        return bool(np.all(self.sources < 0))


# ---------------------------------------------------------------------------------------------- estimate_depth


@dataclass
class _Frame:
    """Per-frame sweep output at the working size."""

    rho: np.ndarray  # (h, w) float32 inverse depth (0 = infinity)
    conf: np.ndarray  # (h, w) bool: textured and matched
    std: np.ndarray  # (h, w) float32 local grey std


@dataclass
class _Context:
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


def estimate_depth(
    frames: np.ndarray,
    intrinsics: Intrinsics,
    poses_c2w: np.ndarray,
    *,
    keyframes: Sequence[int] | None = None,
    sparse_points: np.ndarray | None = None,
    progress: ProgressFn | None = None,
    config: DepthConfig = DepthConfig(),  # noqa: B008 (frozen dataclass: immutable default)
) -> DepthResult:
    """Dense z-depth of every frame by multi-view stereo (module docstring).

    `frames` (N, H, W, 3) uint8 RGB; `intrinsics` of those frames; `poses_c2w` (N, 4, 4) wire camera-to-world
    (camera looks down -Z) in any scale; `keyframes` the frames that may serve as source views (default all;
    e.g. the tracker's registered, sharp frames: every frame still gets a depth); `sparse_points` (M, 3) world
    points of the tracking (same scale) to choose the depth range from; `progress(stage, done, total)` with
    stages "depth" (the sweep) and "depth-fill".
    """
    start = time.perf_counter()
    frames, poses = _check_inputs(frames, intrinsics, poses_c2w)
    n, height, width = frames.shape[:3]
    h, w = working_size(height, width, config.max_side)
    intr = intrinsics.scaled(w, h)
    c2w = cv_poses(poses)
    centres = c2w[:, :3, 3]
    extent = float(np.max(np.linalg.norm(centres - centres.mean(axis=0), axis=1))) * 2.0 if n > 1 else 0.0
    scale_ref = max(1.0, float(np.abs(centres).max()))
    if extent <= 1e-9 * scale_ref:
        return _all_infinite(frames, config, (h, w), start, "rotation-only input (no camera translation)")

    near, typical = _depth_range(c2w, intr, sparse_points, extent, config)
    allowed = np.zeros(n, bool)
    if keyframes is None:
        allowed[:] = True
    else:
        idx = np.asarray(list(keyframes), dtype=np.intp)
        if idx.size and (idx.min() < 0 or idx.max() >= n):
            raise InvalidArgument(
                f"keyframes must be frame indices in [0, {n}), got {idx.min()}..{idx.max()}", field="keyframes"
            )
        allowed[idx] = True
    w2c = np.linalg.inv(c2w)
    sources = [_choose_sources(i, c2w, w2c, intr, typical[i], allowed, config) for i in range(n)]
    if not any(sources):
        return _all_infinite(
            frames,
            config,
            (h, w),
            start,
            f"rotation-only input: no pair of frames has {config.min_parallax_px:g} px of parallax "
            "at the scene's depth",
        )
    focal = 0.5 * (intr.fx + intr.fy)
    step = np.zeros(n)
    planes = np.zeros(n, np.intp)
    for i, src in enumerate(sources):
        if not src:
            continue
        widest = max(float(np.linalg.norm(centres[j] - centres[i])) for j in src)
        rho_max = 1.0 / near[i]
        count = int(math.ceil(rho_max * focal * widest / config.plane_step_px)) + 1
        count = int(np.clip(count, config.min_planes, config.max_planes))
        planes[i] = count
        step[i] = rho_max / (count - 1)

    rgb = np.stack([resize_rgb(f, (h, w)) for f in frames])
    ctx = _Context(config, intr, rgb, grey(rgb), c2w, pixel_rays(intr), sources, near, step, planes)
    workers = config.workers or min(4, os.cpu_count() or 1)
    report = progress or (lambda stage, done, total: None)

    out_depth = np.empty((n, height, width), np.float32)
    out_conf = np.empty((n, height, width), bool)
    coverage = np.zeros(n)
    infinite = np.zeros(n)
    swept: list[_Frame] = []

    def finish(k: int) -> int:
        rho, conf = _finish(ctx, swept, k)
        coverage[k] = conf.mean()
        depth_full = _upsample(rho, ctx.rgb[k], frames[k], config.upsample_blend)
        out_depth[k] = depth_full
        infinite[k] = float(np.isinf(depth_full).mean())
        out_conf[k] = _upsample_nearest(conf, (height, width))
        return k

    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        sweeps = pool.map(lambda k: _sweep(ctx, k), range(n)) if pool else (_sweep(ctx, k) for k in range(n))
        for i, res in enumerate(sweeps):
            swept.append(res)
            report("depth", i + 1, n)
        finished = pool.map(finish, range(n)) if pool else (finish(k) for k in range(n))
        for i, _ in enumerate(finished):
            report("depth-fill", i + 1, n)
    finally:
        if pool:
            pool.shutdown()

    notes: list[str] = []
    lonely = [i for i, s in enumerate(sources) if not s]
    if lonely:
        notes.append(f"{len(lonely)} frame(s) without a source view of enough parallax are at infinity: {lonely[:10]}")
    src_arr = np.full((n, config.source_views), -1, np.intp)
    for i, s in enumerate(sources):
        src_arr[i, : len(s)] = s
    near_out = np.where([bool(s) for s in sources], near, np.inf)
    return DepthResult(
        out_depth, out_conf, coverage, infinite, src_arr, near_out, (h, w), time.perf_counter() - start, tuple(notes)
    )


def _check_inputs(frames: np.ndarray, intrinsics: Intrinsics, poses_c2w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8 or frames.shape[0] < 1:
        raise InvalidArgument(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}", field="frames")
    n, height, width = frames.shape[:3]
    if (intrinsics.width, intrinsics.height) != (width, height):
        raise InvalidArgument(
            f"intrinsics are for {intrinsics.width}x{intrinsics.height} but the frames are {width}x{height}",
            field="intrinsics",
        )
    poses = np.asarray(poses_c2w, dtype=np.float64)
    if poses.shape != (n, 4, 4) or not np.all(np.isfinite(poses)):
        raise InvalidArgument(f"poses_c2w must be ({n}, 4, 4) finite, got {poses.shape}", field="poses_c2w")
    return frames, poses


def _all_infinite(
    frames: np.ndarray, config: DepthConfig, size: tuple[int, int], start: float, note: str
) -> DepthResult:
    n, height, width = frames.shape[:3]
    return DepthResult(
        np.full((n, height, width), np.inf, np.float32),
        np.zeros((n, height, width), bool),
        np.zeros(n),
        np.ones(n),
        np.full((n, config.source_views), -1, np.intp),
        np.full(n, np.inf),
        size,
        time.perf_counter() - start,
        (note + ": depth is +inf everywhere (a direction at infinity, right for a tripod shot)",),
    )


def _depth_range(
    c2w: np.ndarray, intr: Intrinsics, points: np.ndarray | None, extent: float, config: DepthConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(near (N,), typical (N,)) depths per frame: from the sparse points seen in each frame, else the extent."""
    n = c2w.shape[0]
    near = np.full(n, config.fallback_near_extent * extent)
    typical = np.full(n, config.fallback_typical_extent * extent)
    if points is None:
        return near, typical
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) < 8:
        return near, typical
    per_frame: list[np.ndarray] = []
    for i in range(n):
        w2c = np.linalg.inv(c2w[i])
        cam = w2c[:3, :3] @ pts.T + w2c[:3, 3:4]
        x, y, z = project(cam, intr)
        seen = (z > 0) & (x > -0.5) & (x < intr.width - 0.5) & (y > -0.5) & (y < intr.height - 0.5)
        per_frame.append(z[seen])
    pooled = np.concatenate(per_frame)
    if len(pooled) < 8:
        return near, typical
    g_near = float(np.percentile(pooled, config.near_percentile)) / config.near_margin
    g_typ = float(np.median(pooled))
    for i, z in enumerate(per_frame):
        if len(z) >= 20:
            near[i] = float(np.percentile(z, config.near_percentile)) / config.near_margin
            typical[i] = float(np.median(z))
        else:
            near[i], typical[i] = g_near, g_typ
    return near, typical


def _choose_sources(
    i: int, c2w: np.ndarray, w2c: np.ndarray, intr: Intrinsics, typical: float, allowed: np.ndarray, config: DepthConfig
) -> list[int]:
    """Frames to match frame `i` against: per target parallax, the closest candidate before and after `i`."""
    n = c2w.shape[0]
    focal = 0.5 * (intr.fx + intr.fy)
    fwd_i = c2w[i, :3, 2]
    # A 3x3 grid of points at the typical depth, to test that a candidate sees the same part of the scene.
    gx = np.array([0.2, 0.5, 0.8]) * intr.width
    gy = np.array([0.2, 0.5, 0.8]) * intr.height
    gu, gv = np.meshgrid(gx, gy)
    rays = np.stack([(gu.ravel() - intr.cx) / intr.fx, (gv.ravel() - intr.cy) / intr.fy, np.ones(9)])
    probe_w = c2w[i, :3, :3] @ (rays * typical) + c2w[i, :3, 3:4]
    cands: list[tuple[int, float]] = []
    for j in range(n):
        if j == i or not allowed[j]:
            continue
        cos = float(np.clip(fwd_i @ c2w[j, :3, 2], -1.0, 1.0))
        if math.degrees(math.acos(cos)) > config.max_view_angle_deg:
            continue
        # Parallax: the baseline seen at the typical depth, pixels.
        parallax = focal * float(np.linalg.norm(c2w[j, :3, 3] - c2w[i, :3, 3])) / typical
        if parallax < config.min_parallax_px:
            continue
        x, y, z = project(w2c[j, :3, :3] @ probe_w + w2c[j, :3, 3:4], intr)
        inside = (z > 0) & (x > -0.5) & (x < intr.width - 0.5) & (y > -0.5) & (y < intr.height - 0.5)
        if inside.sum() < 5:
            continue
        cands.append((j, parallax))
    chosen: list[int] = []
    sides = [[c for c in cands if c[0] < i], [c for c in cands if c[0] > i]]
    for target in config.parallax_px:
        for side in (0, 1):
            pool = [c for c in sides[side] if c[0] not in chosen] or [c for c in sides[1 - side] if c[0] not in chosen]
            if not pool or len(chosen) >= config.source_views:
                continue
            best = min(pool, key=lambda c: abs(math.log(c[1] / target)))
            chosen.append(best[0])
    # Fill the remaining slots with the candidates nearest any target.
    rest = sorted(
        (c for c in cands if c[0] not in chosen),
        key=lambda c: min(abs(math.log(c[1] / t)) for t in config.parallax_px),
    )
    chosen.extend(c[0] for c in rest[: config.source_views - len(chosen)])
    return chosen


def _box(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over k x k windows of the last two axes (edges repeated)."""
    size = (1,) * (a.ndim - 2) + (k, k)
    return ndimage.uniform_filter(a, size=size, mode="nearest")


def _sweep(ctx: _Context, i: int) -> _Frame:
    """Plane sweep, SGM and winner-take-all for frame `i` at the working size."""
    cfg = ctx.config
    h, w = ctx.intr.height, ctx.intr.width
    ref = ctx.grey[i]
    k = cfg.window
    mu_r = _box(ref, k)
    var_r = np.maximum(_box(ref * ref, k) - mu_r * mu_r, 0.0)
    std = np.sqrt(var_r)
    if not ctx.sources[i]:
        return _Frame(np.zeros((h, w), np.float32), np.zeros((h, w), bool), std)
    count = int(ctx.planes[i])
    rhos = (np.arange(count) * ctx.step[i]).astype(np.float32)
    kmat = ctx.intr.K
    kinv = np.linalg.inv(kmat)
    pix = kmat @ ctx.rays  # (3, P) homogeneous pixel centres
    best: list[np.ndarray] = []  # the `best_views` smallest costs so far, ascending (inf = none)
    invalid_cost = np.float32(np.inf)
    noise = np.float32(cfg.zncc_noise**2)
    for j in ctx.sources[i]:
        rot, t = relative(ctx.c2w[i], ctx.c2w[j])
        a = (kmat @ rot @ kinv @ pix).astype(np.float32)  # (3, P)
        b = (kmat @ t).astype(np.float32)  # (3,)
        pz = a[2][None, :] + rhos[:, None] * b[2]  # (D, P)
        front = pz > 1e-6
        inv_z = np.divide(1.0, pz, out=np.zeros_like(pz), where=front)
        x = (a[0][None, :] + rhos[:, None] * b[0]) * inv_z - 0.5
        y = (a[1][None, :] + rhos[:, None] * b[1]) * inv_z - 0.5
        inside = front & (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)
        warped = _bilinear_clamped(ctx.grey[j], x, y).reshape(count, h, w)
        mu_w = _box(warped, k)
        var_w = np.maximum(_box(warped * warped, k) - mu_w * mu_w, 0.0)
        cov = _box(warped * ref, k) - mu_w * mu_r
        pc = 1.0 - cov / np.sqrt((var_w + noise) * (var_r + noise))
        cost = np.where(inside.reshape(count, h, w), pc, invalid_cost).astype(np.float32)
        # Insert into the running list of the smallest costs (a small sorting network per view).
        for slot in range(len(best)):
            lo = np.minimum(best[slot], cost)
            cost = np.maximum(best[slot], cost)
            best[slot] = lo
        if len(best) < cfg.best_views:
            best.append(cost)
    total = np.zeros_like(best[0])
    used = np.zeros(best[0].shape, np.float32)
    for c in best:
        ok = np.isfinite(c)
        total += np.where(ok, c, 0.0)
        used += ok
    raw = np.where(used > 0, total / np.maximum(used, 1.0), 1.0).astype(np.float32)  # (D, h, w)
    agg = _sgm(raw, ref, cfg)
    idx = np.argmin(agg, axis=0)
    rows, cols = np.indices((h, w))
    c0 = agg[np.maximum(idx - 1, 0), rows, cols]
    c1 = agg[idx, rows, cols]
    c2 = agg[np.minimum(idx + 1, count - 1), rows, cols]
    denom = c0 - 2.0 * c1 + c2
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(denom > 1e-9, 0.5 * (c0 - c2) / denom, 0.0)
    interior = (idx > 0) & (idx < count - 1)
    offset = np.where(interior, np.clip(offset, -0.5, 0.5), 0.0)
    rho = ((idx + offset) * ctx.step[i]).astype(np.float32)
    score = 1.0 - raw[idx, rows, cols]
    conf = (std >= cfg.min_texture) & (score >= cfg.min_zncc) & (idx < count - 1)
    return _Frame(rho, conf, std)


def _bilinear_clamped(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Bilinear samples of `image` (h, w) at array coordinates (x, y), clamped to the image (edges repeated)."""
    h, w = image.shape
    xc = np.clip(x, 0.0, w - 1.001)
    yc = np.clip(y, 0.0, h - 1.001)
    x0 = np.floor(xc)
    y0 = np.floor(yc)
    fx = xc - x0
    fy = yc - y0
    base = (y0 * w + x0).astype(np.intp)
    flat = image.ravel()
    c00 = flat.take(base)
    c01 = flat.take(base + 1)
    c10 = flat.take(base + w)
    c11 = flat.take(base + w + 1)
    top = c00 + (c01 - c00) * fx
    bottom = c10 + (c11 - c10) * fx
    return top + (bottom - top) * fy


def _sgm(cost: np.ndarray, guide: np.ndarray, cfg: DepthConfig) -> np.ndarray:
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


def _finish(ctx: _Context, swept: list[_Frame], i: int) -> tuple[np.ndarray, np.ndarray]:
    """Consistency filter, sky, fill: (inverse depth (h, w) with 0 at infinity, confident (h, w))."""
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
        ray_j = np.stack(
            [(colj + 0.5 - ctx.intr.cx) / ctx.intr.fx, (rowj + 0.5 - ctx.intr.cy) / ctx.intr.fy, np.ones_like(colj)]
        )
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
    out = np.where(conf & (cur.rho > far), rho_fused, 0.0).astype(np.float32)
    sky = _sky(ctx.rgb[i], conf, out, cfg)
    conf &= ~sky
    holes = ~conf & ~sky
    if holes.any() and conf.any():
        out = _fill(out, conf, holes, ctx.rgb[i], cfg)
    elif not conf.any():
        out[:] = 0.0  # no confident pixel at all: nothing to fill from
    out[sky] = 0.0
    return out, conf


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
    for lab in top:
        region = _grow(labels == lab, rgb, cfg.sky_grow_colour, k // 2 + 1)
        ring = ndimage.binary_dilation(region, iterations=k // 2 + 1) & ~region & conf
        if not ring.any() or float(np.percentile(rho[ring], cfg.sky_ring_percentile)) <= cfg.sky_far_ratio * median_rho:
            sky |= region
    return sky


def _grow(region: np.ndarray, rgb: np.ndarray, tolerance: float, steps: int) -> np.ndarray:
    """Grow `region` by up to `steps` pixels into 4-neighbours whose colour differs by at most `tolerance`
    (max over channels) from the region pixel next to them."""
    region = region.copy()
    for _ in range(steps):
        add = np.zeros_like(region)
        for axis, shift in ((0, 1), (0, -1), (1, 1), (1, -1)):
            src = np.roll(region, shift, axis=axis)
            src_rgb = np.roll(rgb, shift, axis=axis)
            close = np.abs(src_rgb - rgb).max(axis=2) <= tolerance
            edge = np.ones_like(region)
            if axis == 0:
                edge[0 if shift == 1 else -1, :] = False
            else:
                edge[:, 0 if shift == 1 else -1] = False
            add |= src & close & edge & ~region
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


def _upsample(rho: np.ndarray, rgb_small: np.ndarray, frame: np.ndarray, blend: float) -> np.ndarray:
    """(H, W) float32 z-depth from low-resolution inverse depth (0 = infinity), guided by the frame's colour."""
    h, w = rho.shape
    height, width = frame.shape[:2]
    if (h, w) == (height, width):
        with np.errstate(divide="ignore"):
            return np.where(rho > 0, 1.0 / rho, np.inf).astype(np.float32)
    x = (np.arange(width) + 0.5) * w / width - 0.5
    y = (np.arange(height) + 0.5) * h / height - 0.5
    x0 = np.clip(np.floor(x).astype(np.intp), 0, w - 1)
    y0 = np.clip(np.floor(y).astype(np.intp), 0, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = np.clip(x - x0, 0.0, 1.0).astype(np.float32)[None, :]
    fy = np.clip(y - y0, 0.0, 1.0).astype(np.float32)[:, None]
    corners = [
        (y0[:, None], x0[None, :]),
        (y0[:, None], x1[None, :]),
        (y1[:, None], x0[None, :]),
        (y1[:, None], x1[None, :]),
    ]
    vals = np.stack([rho[r, c] for r, c in corners])  # (4, H, W)
    wts = np.stack([(1 - fy) * (1 - fx), (1 - fy) * fx, fy * (1 - fx), fy * fx])
    lo = vals.min(axis=0)
    hi = vals.max(axis=0)
    blend = (wts * vals).sum(axis=0)
    agree = ((lo > 0) & (hi <= lo * (1.0 + blend))) | (hi <= 0)
    colour = frame.astype(np.float32) * np.float32(1.0 / 255.0)
    dist = np.stack([np.abs(rgb_small[r, c] - colour).sum(axis=2) for r, c in corners])
    dist += 0.02 * (1.0 - wts)  # ties go to the nearest neighbour
    pick = np.take_along_axis(vals, np.argmin(dist, axis=0)[None], axis=0)[0]
    out = np.where(agree, blend, pick)
    with np.errstate(divide="ignore"):
        return np.where(out > 0, 1.0 / out, np.inf).astype(np.float32)


def _upsample_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = mask.shape
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.intp), w - 1)
    return mask[rows[:, None], cols[None, :]]


# ---------------------------------------------------------------------------------------------- align_depth


class FrameObservations(NamedTuple):
    """The tracked sparse points seen in one frame: where, and how far (align_depth's input)."""

    #: (K, 2) float pixel coordinates (x right, y down) in the depth map's own pixel grid; pixel (u, v) covers
    #: [u, u+1) x [v, v+1), so its centre is (u + 0.5, v + 0.5).
    xy: np.ndarray
    #: (K,) float z-depth of those points in that frame's camera, in the tracking's scale (> 0).
    depth: np.ndarray


@dataclass(frozen=True)
class AlignConfig:
    """Settings of `align_depth`."""

    #: RANSAC: iterations and the relative residual of an inlier.
    iterations: int = 200
    inlier_rel: float = 0.1
    #: Huber IRLS on the inliers: the relative residual where it turns linear, and iterations.
    huber_rel: float = 0.05
    irls_iterations: int = 10
    #: A frame needs this many inlier points for its own fit; others take their neighbours' fit.
    min_points: int = 6
    seed: int = 0


@dataclass(frozen=True)
class AlignedDepth:
    """A monocular depth aligned per frame to the tracked scale."""

    #: (N, H, W) float32 z-depth in the tracking's scale; +inf where the aligned value is at or past infinity.
    depth: np.ndarray = field(repr=False)
    #: (N,) the fit: aligned = scale * mono + shift (in depth, or in inverse depth when `inverse`).
    scale: np.ndarray
    shift: np.ndarray
    #: (N,) inlier points of each frame's fit (0: the frame took its neighbours' fit).
    inliers: np.ndarray
    inverse: bool


def align_depth(
    mono_depth: np.ndarray,
    observations: Sequence[FrameObservations | tuple[np.ndarray, np.ndarray]],
    *,
    inverse: bool = False,
    config: AlignConfig = AlignConfig(),  # noqa: B008 (frozen dataclass: immutable default)
) -> AlignedDepth:
    """Align a monocular depth model's output to the tracked sparse points, frame by frame.

    `mono_depth` (N, H, W): relative depth (`inverse=False`: depth = scale * m + shift) or relative inverse
    depth / disparity (`inverse=True`: 1 / depth = scale * m + shift), e.g. Depth-Anything's output.
    `observations[i]` = (xy (K, 2), depth (K,)): the sparse points seen in frame i (`FrameObservations`),
    pixel coordinates in `mono_depth`'s grid, depths in the tracking's scale (`observations_from_points`
    makes them from world points and poses). Per frame, scale and shift are fitted by RANSAC on relative
    residuals, then refined by Huber IRLS on the inliers; a frame with fewer than `min_points` inliers takes
    the fit of its nearest fitted frames (linear in time between two). No fitted frame at all is an error.
    """
    mono = np.asarray(mono_depth, dtype=np.float64)
    if mono.ndim != 3 or mono.shape[0] < 1:
        raise InvalidArgument(f"mono_depth must be (N, H, W), got {mono.shape}", field="mono_depth")
    n, h, w = mono.shape
    if len(observations) != n:
        raise InvalidArgument(
            f"observations must have one entry per frame ({n}), got {len(observations)}", field="observations"
        )
    rng = np.random.default_rng(config.seed)
    scale = np.full(n, np.nan)
    shift = np.full(n, np.nan)
    inliers = np.zeros(n, np.intp)
    for i, obs in enumerate(observations):
        xy = np.asarray(obs[0], dtype=np.float64).reshape(-1, 2)
        z = np.asarray(obs[1], dtype=np.float64).reshape(-1)
        if len(xy) != len(z):
            raise InvalidArgument(
                f"observations[{i}]: {len(xy)} pixel positions but {len(z)} depths", field="observations"
            )
        m = bilinear(mono[i].astype(np.float32), xy[:, 0] - 0.5, xy[:, 1] - 0.5).astype(np.float64)
        ok = np.isfinite(m) & np.isfinite(z) & (z > 0)
        target = 1.0 / z[ok] if inverse else z[ok]
        fit = _robust_affine(m[ok], target, rng, config)
        if fit is not None:
            scale[i], shift[i], inliers[i] = fit
    fitted = np.flatnonzero(np.isfinite(scale))
    if fitted.size == 0:
        raise InvalidArgument(
            f"align_depth: no frame has {config.min_points} consistent observations to fit a scale and shift",
            field="observations",
        )
    frames_idx = np.arange(n)
    scale = np.interp(frames_idx, fitted, scale[fitted])
    shift = np.interp(frames_idx, fitted, shift[fitted])
    aligned = scale[:, None, None] * mono + shift[:, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(aligned > 0, 1.0 / aligned, np.inf) if inverse else np.where(aligned > 0, aligned, np.inf)
    depth = np.where(np.isfinite(mono), depth, np.inf)
    return AlignedDepth(depth.astype(np.float32), scale, shift, inliers, inverse)


def _robust_affine(
    m: np.ndarray, y: np.ndarray, rng: np.random.Generator, cfg: AlignConfig
) -> tuple[float, float, int] | None:
    """(scale, shift, inliers) with y ~ scale * m + shift, residuals relative to y; None if too few inliers."""
    k = len(m)
    if k < max(2, cfg.min_points):
        return None
    best_in: np.ndarray | None = None
    best_count = 0
    for _ in range(cfg.iterations):
        a, b = rng.choice(k, 2, replace=False)
        if abs(m[a] - m[b]) < 1e-12:
            continue
        s = (y[a] - y[b]) / (m[a] - m[b])
        t = y[a] - s * m[a]
        inl = np.abs(s * m + t - y) <= cfg.inlier_rel * np.abs(y)
        count = int(inl.sum())
        if count > best_count:
            best_in, best_count = inl, count
    if best_in is None or best_count < cfg.min_points:
        return None
    mi, yi = m[best_in], y[best_in]
    s, t = _weighted_line(mi, yi, 1.0 / yi**2)
    for _ in range(cfg.irls_iterations):
        r = np.abs(s * mi + t - yi) / np.abs(yi)
        huber = np.where(r <= cfg.huber_rel, 1.0, cfg.huber_rel / np.maximum(r, 1e-12))
        s, t = _weighted_line(mi, yi, huber / yi**2)
    return float(s), float(t), best_count


def _weighted_line(x: np.ndarray, y: np.ndarray, wts: np.ndarray) -> tuple[float, float]:
    sw = wts.sum()
    mx = (wts * x).sum() / sw
    my = (wts * y).sum() / sw
    var = (wts * (x - mx) ** 2).sum()
    s = (wts * (x - mx) * (y - my)).sum() / var if var > 0 else 0.0
    return float(s), float(my - s * mx)


def observations_from_points(
    points: np.ndarray,
    poses_c2w: np.ndarray,
    intrinsics: Intrinsics,
    *,
    tracks: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    size: tuple[int, int] | None = None,
) -> list[FrameObservations]:
    """Per-frame observations of the world `points` (M, 3) for `align_depth`, their z-depth from `poses_c2w`
    (N, 4, 4) wire camera-to-world.

    With `tracks` = (obs_frame (K,), obs_point (K,), obs_xy (K, 2)) — the tracker's flat observations, pixel
    positions in the `intrinsics`' frame size — each frame gets the points it really saw, at the positions
    measured. Without, every point in front of a frame's camera and inside its image is projected there
    (occluded points come in as outliers, which the robust fit tolerates). `size` (height, width): the pixel grid
    of the depth maps to align (default: the intrinsics' size); positions are scaled to it."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    c2w = cv_poses(poses_c2w)
    n = c2w.shape[0]
    height, width = size if size is not None else (intrinsics.height, intrinsics.width)
    sx, sy = width / intrinsics.width, height / intrinsics.height
    w2c = np.linalg.inv(c2w)
    out: list[FrameObservations] = []
    if tracks is not None:
        frame_idx = np.asarray(tracks[0], dtype=np.intp)
        point_idx = np.asarray(tracks[1], dtype=np.intp)
        xy = np.asarray(tracks[2], dtype=np.float64).reshape(-1, 2)
        if not len(frame_idx) == len(point_idx) == len(xy):
            raise InvalidArgument("tracks: obs_frame, obs_point and obs_xy must have the same length", field="tracks")
        for i in range(n):
            sel = frame_idx == i
            p = pts[point_idx[sel]]
            z = p @ w2c[i, 2, :3] + w2c[i, 2, 3]
            ok = z > 0
            out.append(FrameObservations(xy[sel][ok] * (sx, sy), z[ok]))
        return out
    intr = intrinsics.scaled(width, height)
    for i in range(n):
        cam = w2c[i, :3, :3] @ pts.T + w2c[i, :3, 3:4]
        x, y, z = project(cam, intr)
        ok = (z > 0) & (x > -0.5) & (x < intr.width - 0.5) & (y > -0.5) & (y < intr.height - 0.5)
        out.append(FrameObservations(np.stack([x[ok] + 0.5, y[ok] + 0.5], axis=1), z[ok]))
    return out
