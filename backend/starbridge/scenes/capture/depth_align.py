"""Alignment of a user's monocular depth to the tracked scale: per-frame scale and shift fitted to the tracker's
sparse points (RANSAC, then Huber IRLS on relative residuals).

`align_depth(mono_depth, observations)` fits each frame; `observations_from_points` makes its input from the
tracker's points and observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from .depth_ops import bilinear, cv_poses, project


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
