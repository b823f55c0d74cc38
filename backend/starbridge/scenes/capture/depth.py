"""Dense depth for every frame of a tracked video, by multi-view stereo on the CPU; and alignment of a user's
monocular depth to the tracked scale.

`estimate_depth(frames, intrinsics, poses_c2w)` works in a downscaled copy of the video (long side
`DepthConfig.max_side`, 320 px by default), keeps the inverse depth at a smaller size (`store_side`, 192) and
returns z-depth at the frames' size, in the poses' units
(whatever scale the tracking chose: nothing here assumes metres), +inf for what is at infinity (sky, very far
surfaces): the renderer treats +inf as a direction. Per frame:

1. **Source views.** `source_views` (6) other frames: for each target parallax (`parallax_px`, working pixels
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
   `best_views` best views (robust to occlusion; `forward_best_views` under forward motion, where the views
   before and after see the same occlusions). Shiftable windows: a pixel's cost is the least of the
   windows within `cost_shift` pixels that contain it where that beats its own window's by more than
   `cost_shift_penalty` (a window on one side of a depth edge, not straddling it: less fattening).
4. **Aggregation** by semi-global matching (`sgm_paths` scan directions, penalties P1/P2, P2 lowered across
   grey edges), winner-take-all, and a parabola through the neighbouring planes (sub-plane refinement).
5. **Confidence**: texture (local grey std >= `min_texture`, and at least `min_epipolar_texture` of the
   gradient's energy along the epipolar line: not stripes along the motion), the raw ZNCC at the winner (>=
   `min_zncc`), and geometric consistency with `min_consistent_views` source views (project into the source, read
   its depth there, project back: within `consistency_px` pixels and `consistency_depth` relative depth); a
   confident depth is averaged with those of its consistent views (`fuse`). `DepthResult.coverage` is the
   confident fraction of each frame, before filling (and after step 6).
6. **Fusion across frames** (depth_fuse.py): the confident depths of the frames within `fuse_frames` of
   this one, projected into it where its colour agrees (a hidden point lands on another colour), average
   with its confident pixels and make confident the pixels where `fuse_votes` of them agree: a surface this
   frame's own source views could not measure, another frame often did.
7. **Infinity.** Confident inverse depths within `far_planes` plane steps of zero are at infinity. Sky: flat
   colour (every channel's local std below `sky_texture`) touching the top border, grown a few pixels into
   neighbours of nearly the same colour, whose confident surroundings are far (their `sky_ring_percentile`
   inverse depth at most `sky_far_ratio` times the frame's median): +inf; unless the region is a wall (it
   encloses confident depth, at least `sky_wall_inner` of its area, about as far as its own outline: windows
   in a plain facade), which is filled like any other hole.
8. **Fill** the rest (the near side's outermost confident pixel at each depth edge, where the sweep fattens a
   near surface over what lies behind it, is not confident from step 7 on: `edge_erode_px`) by first-order
   normalised convolution: a plane in inverse depth (linear in the image on any planar surface, so slanted ground
   is not flattened) fitted at every pixel to the confident inverse depths with the edge-aware weights of the
   domain transform's recursive filter, guided by the colour; the nearest confident value where there is no
   support. With `planes` "fill" a RANSAC plane per plain-colour superpixel replaces the fill there where it is
   near it (depth_planes.py); by default ("static") that runs later, on the kept depth after the moving
   objects are placed (pipeline.py; depth_config.py says why). Then the depth edges are snapped to the colour
   edges (`snap`, depth_snap.py): a pixel beside a depth jump whose colour is the other side's takes that
   side's depth (the fattened outline of a textured thing over a plain one). Last (`regions` "fill",
   depth_regions.py), each region of holes within a colour segment takes, of the fill and a few levels of the
   confident depths on its border, the one under which it lands on its own colours in the source views (a
   plain face that the fill gave the wall behind it).
9. **Keep** the inverse depth at `store_side` (each kept pixel takes the working pixel under its centre) and
   **upsample** it to the frame size (depth_upsample.py, compiled): bilinear in inverse depth where the four
   low-resolution neighbours agree within `upsample_blend` (relative), else the neighbour whose colour is
   nearest the full-resolution pixel's (no flying pixels across depth edges). The kept inverse depth is
   `DepthResult.inverse`: a scene bundle stores it and redoes the upsampling when it is loaded.

Rotation-only input (no camera translation, or less than `min_parallax_px` of parallax at the sparse points'
depth between any two frames) gives +inf everywhere at once, with a note. Speed: about 0.8 s of CPU per frame
at 256 with sparse points (40 frames of bench_import_time's 512x288 walk, one thread, 33 s; matching at 320,
the default since, takes the depth stage 1.46x its time; matched at 192 it was 0.4 s, and 0.61 s before the
per-view cost and SGM were compiled). Of that,
the per-view warp and ZNCC (depth_cost.py, compiled) is about 45%, the rest of the sweep (shiftable windows'
minimum filter, SGM, winner) about 30%, the fusion, fill and edge snapping (depth_fuse.py, depth_fill.py,
NumPy) about 25%. The shiftable windows add about 5% (measured before the
compiling: 40-frame 320x180 handheld clip, one thread: 20.0 -> 21.6 s of CPU). Frames run on `workers`
threads (the compiled loops release the GIL; NumPy and SciPy only in parts: the regions' scoring, in NumPy, held
it for most of its time, so on two threads the fill ran 1.3x faster than on one while the sweep ran 2.0x; now
compiled, depth_region_score.py: the 10 s, 300-frame 512x288 walk's depth stage 214 -> 180 s, the same depth).
Session 56: the per-view cost and the cost volume's making faster, the same depth to the bit (depth_cost.py):
that walk side by side with the tree before (`python bench/bench_import_time.py --compare`, on a slower VM than
the numbers above, bench/results/import-time-vm-cost-kernel.json) depth 301 -> 233 s, the import 436 -> 369 s,
no depth or mask pixel different; profiled on one thread the sweep went from 1.30 to about 0.77 s a frame, so
the fusion, fill and edge snapping (mostly NumPy, holding the GIL) are now about a third of the stage. Starting
each frame's finish as soon as its inputs were checked, beside later frames' sweeps, measured no gain worth its
code (docs/capture-measurements.md, session 56).

Error budget (bench_capture's 40-frame 320x180 clips, field of view given, AbsRel at the path's scale, each
pixel's share of the mean; measured by pixel class against the true depth and by putting the true depth in
for one class at a time): the hazy towers beyond 25 m (8-12% of the pixels, horizontal stripes only: the aperture
problem under a sideways or forward path) are 92-95% too near, mean error 0.63-0.70, and carry 0.054-0.084
of the 0.12-0.19 mean, yet the true depth there changes novel-view PSNR by -0.11..+0.12 dB (0.3 m beside a
50 m surface is about a pixel): the main reason AbsRel and PSNR disagree. Most of the PSNR was in the
moving objects, which stereo cannot measure (they move between the frames it matches) and which AbsRel leaves
out: the true depth put on the moving pixels alone (3% of them) took the novel-view gap handheld / dolly /
moving / orbit 2.81 / 2.65 / 2.60 / 2.50 -> 1.91 / 1.00 / 1.68 / 1.83 dB, on every static pixel only to 2.17
/ 2.42 / 1.92 / -, on the static pixels nearer than 8 m to 2.60 / 2.42 / 2.35 (an earlier budget that put
+1.1 / +1.7 dB in the near surfaces counted the bouncing ball among them); hence moving_depth.py. All of it
true: 0.68 / 0.49 dB (the poses, masks and renderer). With the true poses instead of the tracked ones the
handheld's gap is 2.50 (2.81) and its AbsRel 0.129 (0.156), its confident depth without a bias that grows
with distance (median ratio 0.97 / 0.95 / 0.91 at 3-6 / 6-12 / 12-25 m, a constant inverse-depth offset).

Limits: surfaces with no texture but lines along the direction of motion (the aperture problem) get their depth
from the fill, i.e. from their edges; hazy far buildings whose only texture is that may take the depth of the
nearer surfaces around them (measured on frame 20 of that handheld clip, the pixels over 50 m: those beside
the sky only are 78% confident and about half within a plane of the truth, their disparity in the widest
view being 1.5-2 planes; those within 2 px of a nearer building are all confident and none right, the
window's textured near side wins; the rest 10% confident, 7% right, their cost flat along the stripes. The
tracker's sparse points there are as wrong, 0.1-0.3 of the true depth: corners where a near edge crosses a
far one. Neither a cost-distinctiveness test nor `cost_shift` 2 helped (the latter: handheld / dolly gap 1.91 ->
2.24 / 1.74 -> 1.83 dB));
the more textured side of a depth edge still fattens over the other by a pixel
or two (less with the shiftable windows), and a flat face whose only texture runs along the motion takes its
depth from the fill, which leaks across weak colour edges.

Modules: depth_config.py (settings), depth_sweep.py (steps 3-4, with depth_cost.py and depth_sgm.py),
depth_fill.py (steps 5 and 7-8, with depth_planes.py, depth_snap.py and depth_regions.py with its compiled
depth_region_score.py), depth_fuse.py (step 6),
depth_upsample.py (step 9), depth_ops.py (image and camera helpers); depth_align.py aligns a user's monocular
depth to the tracked scale.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from .depth_config import DepthConfig
from .depth_fill import check, fill
from .depth_fuse import fuse_frame
from .depth_ops import (
    back_project,
    cv_poses,
    grey,
    image_rays,
    pixel_rays,
    project,
    resize_nearest,
    resize_rgb,
    working_size,
)
from .depth_sweep import SweepContext, SweptFrame, sweep
from .depth_upsample import upsample

__all__ = ["DepthConfig", "DepthResult", "ProgressFn", "confident_points", "estimate_depth"]

#: progress(stage, done, total), as the importer's.
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DepthResult:
    """Dense depth of every frame. Depth units are the poses' units (the tracking's scale)."""

    #: (N, H, W) float32 z-depth at the frames' size; +inf at infinity (sky, very far). Never NaN or <= 0.
    depth: np.ndarray = field(repr=False)
    #: (N, h, w) float32 inverse depth at the kept size `working_size` (0 at infinity), which `depth` is the
    #: colour-guided upsampling of (depth_upsample.py, with `upsample_blend`): what a bundle stores.
    inverse: np.ndarray = field(repr=False)
    #: The `upsample_blend` that made `depth` from `inverse`.
    upsample_blend: float
    #: (N, H, W) bool: the depth came from a confident, geometrically consistent match (not filled).
    confident: np.ndarray = field(repr=False)
    #: (N,) fraction of each frame's pixels with a confident depth before filling (at the matching size).
    coverage: np.ndarray
    #: (N,) fraction of each frame's pixels set to +inf (sky and very far).
    infinite: np.ndarray
    #: (N, V) the source frames each frame was matched against (-1: none).
    sources: np.ndarray = field(repr=False)
    #: (N,) nearest depth swept per frame (poses' units); +inf for a frame without stereo.
    near: np.ndarray = field(repr=False)
    #: (height, width) of `inverse`: the size the later stages (moving objects, ground fill) and a bundle work
    #: at (`DepthConfig.store_side`; the matching itself ran at `max_side`).
    working_size: tuple[int, int]
    #: Wall time, seconds.
    seconds: float
    #: What the caller should know (rotation-only input, frames without stereo).
    notes: tuple[str, ...] = ()

    @property
    def rotation_only(self) -> bool:
        return bool(np.all(self.sources < 0))


# ---------------------------------------------------------------------------------------------- estimate_depth


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
    kept = working_size(height, width, min(config.max_side, config.store_side))
    intr = intrinsics.scaled(w, h)
    c2w = cv_poses(poses)
    centres = c2w[:, :3, 3]
    extent = float(np.max(np.linalg.norm(centres - centres.mean(axis=0), axis=1))) * 2.0 if n > 1 else 0.0
    scale_ref = max(1.0, float(np.abs(centres).max()))
    if extent <= 1e-9 * scale_ref:
        return _all_infinite(frames, config, kept, start, "rotation-only input (no camera translation)")

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
            kept,
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
    ctx = SweepContext(config, intr, rgb, grey(rgb), c2w, pixel_rays(intr), sources, near, step, planes)
    workers = config.workers or min(4, os.cpu_count() or 1)
    report = progress or (lambda stage, done, total: None)

    out_depth = np.empty((n, height, width), np.float32)
    out_inverse = np.empty((n, *kept), np.float32)
    out_conf = np.empty((n, height, width), bool)
    coverage = np.zeros(n)
    infinite = np.zeros(n)
    swept: list[SweptFrame] = []
    checked: list[tuple[np.ndarray, np.ndarray]] = []

    def check_frame(k: int) -> tuple[np.ndarray, np.ndarray]:
        return check(ctx, swept, k)

    def finish_frame(k: int) -> int:
        rho, conf = fill(ctx, k, *fuse_frame(ctx, checked, k))
        coverage[k] = conf.mean()
        rgb = ctx.rgb[k]
        if kept != (h, w):
            rho, rgb = resize_nearest(rho, kept), resize_rgb(frames[k], kept)
        out_inverse[k] = rho
        depth_full = upsample(rho, rgb, frames[k], config.upsample_blend)
        out_depth[k] = depth_full
        infinite[k] = float(np.isinf(depth_full).mean())
        out_conf[k] = resize_nearest(conf, (height, width))
        return k

    pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None
    try:
        sweeps = pool.map(lambda k: sweep(ctx, k), range(n)) if pool else (sweep(ctx, k) for k in range(n))
        for i, res in enumerate(sweeps):
            swept.append(res)
            report("depth", i + 1, n)
        checked.extend(pool.map(check_frame, range(n)) if pool else (check_frame(k) for k in range(n)))
        finished = pool.map(finish_frame, range(n)) if pool else (finish_frame(k) for k in range(n))
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
        out_depth, out_inverse, config.upsample_blend, out_conf, coverage, infinite, src_arr, near_out, kept,
        time.perf_counter() - start, tuple(notes),
    )  # fmt: skip


def confident_points(
    result: DepthResult,
    intrinsics: Intrinsics,
    c2w_cv: np.ndarray,
    frames: Sequence[int] | None = None,
    exclude: np.ndarray | None = None,
) -> np.ndarray:
    """(M, 3) world points: the confident, finite working-size depths of `frames` (default all) back-projected
    with `intrinsics` (the full frames') and `c2w_cv` (N, 4, 4) OpenCV camera-to-world; `exclude` (N, H, W)
    bool at the frames' size drops pixels (e.g. the moving ones)."""
    h, w = result.working_size
    height, width = result.confident.shape[1:]
    rays = pixel_rays(intrinsics.scaled(w, h))
    rows = ((np.arange(h) + 0.5) * height / h).astype(int)
    cols = ((np.arange(w) + 0.5) * width / w).astype(int)
    out = [np.zeros((0, 3))]
    for i in range(len(result.inverse)) if frames is None else frames:
        ok = result.confident[i][rows][:, cols] & (result.inverse[i] > 0)
        if exclude is not None:
            ok &= ~exclude[i][rows][:, cols]
        out.append(back_project(result.inverse[i], ok, rays, c2w_cv[i][:3, :3], c2w_cv[i][:3, 3]).T)
    return np.concatenate(out)


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
        np.zeros((n, *size), np.float32),
        config.upsample_blend,
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
    rays = image_rays(intr, gu, gv)
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
