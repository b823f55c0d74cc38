"""Each unmatched region's depth chosen by the source views: segment-level hypothesis testing. By default step
8c of depth.py, after the fill and the edge snapping (`choose_regions`); with `DepthConfig.regions` "static" a
pass after the moving objects are placed (`choose_static_regions`, pipeline.py).

The fill gives a hole (a pixel with no confident match: a plain face, stripes along the motion) a blend of the
confident depths around it, guided by colour. Where a hole borders two surfaces at different depths (a plain
box face between its own outline and the wall behind it, a far building's face beside a nearer one) the blend
lies between the two, or takes the wrong one, and nothing in the fill can tell: it sees colours, not the other
views. The views can tell, though not pixel by pixel (a plain or striped pixel matches anywhere along its
epipolar line: why it is a hole): a whole region warped at the right depth lands on its own colours in the
source views, at a wrong one partly on what lies beside it.

So, per frame: the holes are cut into regions (connected hole pixels within one colour segment, the superpixels of
depth_planes.py; by default only its plain segments, `DepthConfig.region_segments`: in a textured cell a hole sits
at a depth edge, where one constant depth would move the edge); each region's candidates are the fill itself and a
few levels of the confident inverse depths on its border (`region_percentiles` of those within `region_ring_px`:
the far side, the middle, the near side); each candidate is scored by the mean colour difference (L1 over RGB) of
the region's pixels, with the farther half of its own segment's confident pixels within `region_outline_px` (its
outline: a plain face's edges are where its depth shows), warped at that depth (fronto-parallel, a constant inverse
depth; the fill keeps its own shape) into each source view, averaged over the `region_best_views` best views (at an
occluding edge the views that see behind the near side are left out, as in the sweep's cost); a candidate replaces
the fill where its score is below `region_margin` times the fill's. All of a region's hypotheses are judged on the
same views (a view counts only where, under each of them, most of the region lands inside it). Measured on
bench_capture's clips: `DepthConfig.regions` says the numbers.

Limits: a region whose pixels and outline look alike at every candidate depth (a striped far tower whose
outline is mostly a nearer building's edge fattened over it) keeps the fill; a region is
given one depth, so a slanted surface keeps its fill unless a constant depth fits the views clearly better;
inside the depth stage the moving objects are not known yet, so a plain object that moves can take a depth
under which its motion looks like parallax, and the moving masks then miss it (world 1's walk: a white box).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from .depth_config import DepthConfig
from .depth_ops import (
    grey,
    pixel_rays,
    project,
    relative,
    resize_nearest,
    resize_rgb,
    working_mask,
)
from .depth_planes import segments
from .depth_region_score import view_scores
from .depth_sweep import SweepContext

#: A source view scores a hypothesis only where at least this share of the region lands inside it.
MIN_INSIDE = 0.8


def choose_regions(
    ctx: SweepContext, i: int, rho: np.ndarray, conf: np.ndarray, moving: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Frame `i`'s filled inverse depth `rho` (h, w; 0 at infinity) with each hole region's depth chosen among
    its candidates (module docstring); `conf` (h, w) the confident pixels; `moving` (N, h, w) bool, every
    frame's moving pixels at the context's size, or None: a moving pixel is neither a hole nor a candidate's
    source, and a warped pixel that lands on one in a source view does not count. Returns (inverse depth,
    share of pixels changed). Confident pixels, moving ones and those at infinity are never changed."""
    cfg = ctx.config
    out = rho.copy()
    still = np.ones(rho.shape, bool) if moving is None else ~moving[i]
    holes = ~conf & still & (rho > 0)
    if not ctx.sources[i] or not holes.any() or not conf.any():
        return out, 0.0
    labels, plain = segments(ctx.rgb[i], cfg.plane_segment_px, cfg.plane_flat_step)
    if cfg.region_segments == "plain":
        labels = np.where(labels <= plain, labels, 0)  # a textured cell's holes sit at depth edges: left as filled
    regions = _hole_regions(labels, holes)
    known = conf & still & (rho > 0)
    pixels, levels = _candidates(regions, rho, known, cfg.region_ring_px, cfg.region_min_pixels,
                                 cfg.region_percentiles)  # fmt: skip
    if not levels:
        return out, 0.0
    index = np.concatenate([np.full(len(p), r) for r, p in enumerate(pixels)])
    flat = np.concatenate(pixels)
    # hypothesis 0 is the fill itself, 1.. the region's levels (a region with fewer repeats its last one)
    count = max(len(v) for v in levels)
    table = np.array([np.pad(v, (0, count - len(v)), mode="edge") for v in levels], np.float64)  # (R, count)
    fill = rho.ravel()[flat].astype(np.float64)
    scored, scored_index, scored_fill = flat, index, fill
    if cfg.region_outline_px > 0:
        edge, edge_index, edge_fill = _outlines(regions, pixels, labels, known, rho, cfg.region_outline_px)
        scored = np.concatenate([flat, edge])
        scored_index = np.concatenate([index, edge_index])
        scored_fill = np.concatenate([fill, edge_fill])
    hypotheses = np.concatenate([scored_fill[None], table[scored_index].T])  # (1 + count, M)
    rays, colours = ctx.rays[:, scored], ctx.rgb[i].reshape(-1, 3)[scored]
    score = _scores(ctx, i, rays, colours, hypotheses, scored_index, len(levels), moving)
    best = np.argmin(score, axis=0)  # (R,)
    chosen = score[best, np.arange(len(levels))]
    won = (best > 0) & (chosen < cfg.region_margin * score[0]) & (chosen < score[0] - cfg.region_min_gain)
    take = won[index]
    out.ravel()[flat[take]] = hypotheses[best[index[take]], np.nonzero(take)[0]]
    return out, float(take.sum()) / float(out.size)


def _outlines(
    regions: np.ndarray,
    pixels: list[np.ndarray],
    labels: np.ndarray,
    known: np.ndarray,
    rho: np.ndarray,
    outline_px: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The farther half of the confident pixels of each scored region's own colour segment within `outline_px`
    of it (its outline: where a plain face's depth shows, e.g. a far tower's side against the sky; the nearer
    half may be a nearer neighbour's fattened edge): (flat indices, the region each belongs to, the fill's
    inverse depth at the region's nearest pixel: their value under the fill's hypothesis). A pixel near two
    regions goes with each."""
    h, w = regions.shape
    flat_out: list[np.ndarray] = [np.zeros(0, np.intp)]
    index_out: list[np.ndarray] = [np.zeros(0, np.intp)]
    fill_out: list[np.ndarray] = [np.zeros(0)]
    for r, region_pixels in enumerate(pixels):
        ys, xs = np.divmod(region_pixels, w)
        y0, x0 = max(ys.min() - outline_px, 0), max(xs.min() - outline_px, 0)
        y1, x1 = min(ys.max() + 1 + outline_px, h), min(xs.max() + 1 + outline_px, w)
        region = np.zeros((y1 - y0, x1 - x0), bool)
        region[ys - y0, xs - x0] = True
        segment = labels[ys[0], xs[0]]
        near = ndimage.binary_dilation(region, iterations=outline_px) & ~region
        edge = near & known[y0:y1, x0:x1] & (labels[y0:y1, x0:x1] == segment)
        if not edge.any():
            continue
        # fattening only makes a face's outline nearer (a nearer neighbour's texture wins the windows that
        # straddle the edge): the farther half of its own outline is where its depth shows
        crop = rho[y0:y1, x0:x1]
        edge &= crop <= np.median(crop[edge])
        # under the fill's hypothesis an outline pixel takes the fill of the region's pixel nearest to it
        _, (ny, nx) = ndimage.distance_transform_edt(~region, return_indices=True)
        ey, ex = np.nonzero(edge)
        flat_out.append((ey + y0) * w + ex + x0)
        index_out.append(np.full(len(ey), r, np.intp))
        fill_out.append(rho[ny[ey, ex] + y0, nx[ey, ex] + x0].astype(np.float64))
    return np.concatenate(flat_out), np.concatenate(index_out), np.concatenate(fill_out)


def _candidates(
    regions: np.ndarray,
    rho: np.ndarray,
    known: np.ndarray,
    ring_px: int,
    min_pixels: int,
    percentiles: tuple[float, ...],
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(flat pixel indices of each region kept, its candidate levels): the regions of at least `min_pixels`
    with at least two `known` pixels within `ring_px` of them, whose `percentiles` are the levels."""
    h, w = regions.shape
    pixels: list[np.ndarray] = []
    levels: list[np.ndarray] = []
    for k, box in enumerate(ndimage.find_objects(regions), start=1):
        if box is None:
            continue
        y0, x0 = max(box[0].start - ring_px, 0), max(box[1].start - ring_px, 0)
        y1, x1 = min(box[0].stop + ring_px, h), min(box[1].stop + ring_px, w)
        region = regions[y0:y1, x0:x1] == k
        if int(region.sum()) < min_pixels:
            continue
        ring = ndimage.binary_dilation(region, iterations=ring_px) & known[y0:y1, x0:x1]
        if int(ring.sum()) < 2:
            continue
        ys, xs = np.nonzero(region)
        pixels.append((ys + y0) * w + xs + x0)
        levels.append(np.unique(np.percentile(rho[y0:y1, x0:x1][ring], percentiles).astype(np.float32)))
    return pixels, levels


def _hole_regions(labels: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """(h, w) int labels 1..R of the connected hole regions within each colour segment, 0 elsewhere."""
    out = np.zeros(labels.shape, np.int32)
    count = 0
    for seg, box in enumerate(ndimage.find_objects(np.where(holes, labels, 0)), start=1):
        if box is None:
            continue
        part, n = ndimage.label((labels[box] == seg) & holes[box])
        if n:
            out[box][part > 0] = part[part > 0] + count
            count += n
    return out


def _scores(
    ctx: SweepContext,
    i: int,
    rays: np.ndarray,
    colours: np.ndarray,
    hypotheses: np.ndarray,
    index: np.ndarray,
    regions: int,
    moving: np.ndarray | None,
) -> np.ndarray:
    """(H, R) score of each hypothesis for each region: `hypotheses` (H, M) inverse depths of the M pixels with
    `rays` (3, M), `colours` (M, 3) and region `index` (M,) in 0..R-1. Per source view a region's mean L1
    colour difference of its warped pixels that land inside the view (and not on its `moving` pixels); a
    view counts for a region only where, under every hypothesis, at least `MIN_INSIDE` of them do (all of a
    region's hypotheses are judged on the same views); then the mean over each hypothesis's best
    `region_best_views` views (the views that see behind an occluding edge differ with the depth), or as many
    as count; +inf where none counts."""
    cfg = ctx.config
    count = hypotheses.shape[0]
    sources = ctx.sources[i]
    size = np.bincount(index, minlength=regions).astype(np.float64)
    per_view = np.full((len(sources), count, regions), np.inf)
    points = rays[:, None, :] / np.maximum(hypotheses, 1e-12)[None]  # (3, H, M) camera-frame points
    for v, j in enumerate(sources):
        rot, t = relative(ctx.c2w[i], ctx.c2w[j])
        x, y, z = project((rot @ points.reshape(3, -1)).reshape(points.shape) + t[:, None, None], ctx.intr)
        hits, total = view_scores(x, y, z, ctx.rgb[j], colours, None if moving is None else moving[j], index, regions)
        mean = total / np.maximum(hits, 1.0)
        seen = np.asarray(np.all(hits >= MIN_INSIDE * size[None], axis=0))  # (R,)
        per_view[v] = np.where(seen[None], mean, np.inf)
    best = np.sort(per_view, axis=0)[: cfg.region_best_views]
    counted = np.isfinite(best)
    summed = np.where(counted, best, 0.0).sum(axis=0)
    return np.where(counted.any(axis=0), summed / np.maximum(counted.sum(axis=0), 1), np.inf)


def choose_static_regions(
    inverse: np.ndarray,
    measured: np.ndarray,
    confident: np.ndarray,
    moving: np.ndarray,
    frames: np.ndarray,
    intrinsics: Intrinsics,
    c2w_cv: np.ndarray,
    sources: np.ndarray,
    cfg: DepthConfig,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, float]:
    """The regions' choice run on a clip's kept (working-size) inverse depth after the moving objects are
    placed (`DepthConfig.regions` "static"): `inverse` (N, h, w) the depth (0 at infinity; the stereo's with
    the moving objects placed), `measured` the stereo's own, `confident` and `moving` (N, H, W) bool at the
    frames' size, `frames` (N, H, W, 3) uint8, `intrinsics` the frames', `c2w_cv` (N, 4, 4) OpenCV
    camera-to-world, `sources` (N, V) each frame's source views (-1: none; `DepthResult.sources`). The holes are
    the filled static pixels the placement left as the stereo had them; the moving pixels are left out of the
    regions, their candidates and the warped samples. Returns (inverse depth, share of the pixels changed);
    `progress(done, total)` after each frame."""
    n, h, w = inverse.shape
    full = frames.shape[:3]
    if measured.shape != inverse.shape or confident.shape != full or moving.shape != full or full[0] != n:
        raise InvalidArgument(
            f"choose_static_regions: inverse {inverse.shape}, measured {measured.shape}, confident "
            f"{confident.shape}, moving {moving.shape} and frames {frames.shape} must agree",
            field="depth",
        )
    if len(c2w_cv) != n or len(sources) != n:
        raise InvalidArgument(
            f"choose_static_regions: {n} frames but {len(c2w_cv)} poses and {len(sources)} source lists", field="depth"
        )
    intr = intrinsics.scaled(w, h)
    rgb = np.stack([resize_rgb(f, (h, w)) for f in frames])
    still = np.stack([~working_mask(m, (h, w)) for m in moving])
    zeros = np.zeros(n)
    views = [[int(j) for j in row if j >= 0] for row in np.asarray(sources).reshape(n, -1)]
    ctx = SweepContext(cfg, intr, rgb, grey(rgb), c2w_cv, pixel_rays(intr), views, zeros, zeros, zeros)
    out = np.array(inverse, dtype=np.float32, copy=True)
    changed = 0
    for i in range(n):
        untouched = out[i] == measured[i]  # the placement did not write these
        sure = resize_nearest(confident[i], (h, w)) | ~untouched
        chosen, share = choose_regions(ctx, i, out[i], sure, ~still)
        if share > 0:
            take = chosen != out[i]
            out[i][take] = chosen[take]
            changed += int(take.sum())
        if progress is not None:
            progress(i + 1, n)
    return out, changed / max(out.size, 1)
