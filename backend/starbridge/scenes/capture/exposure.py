"""Exposure: how much brighter or darker each frame was filmed, so that stages comparing colours across frames
compare the scene, not the camera's exposure.

A phone sets its exposure and white balance as it films: turning from shade towards the sun, the whole picture
darkens by a quarter in a few frames. The moving-object masks (dynamic.py) compare a point's colour between
frames a third of a second apart; without this, such a change made the static world disagree with itself
everywhere (bench_capture's 40-frame walk among moving objects, its exposure falling by 25% over frames 15-25:
12.5% of all pixels flagged instead of 2.3%, 89% of frame 20, mask IoU 0.65 -> 0.14).

Per pair of consecutive frames k, k+1: frame k's pixels, unprojected with its inverse depth and moved into
frame k+1's camera (the tracked poses), land on the same surface; the ratio of the two colours there, per
channel, is the change of exposure. Only pixels that say it reliably are used: both colours within
`level_range` (not black, not clipped), the local colour gradient small (a warp a pixel off lands on the same
colour) and the landing inside the frame; the median over them is robust to moving objects and occlusions
(a minority). Chained from frame to frame and divided by their median, the gains say each frame's exposure
against the clip's typical one; frames divided by them are as if filmed at one exposure.

The capture (pipeline.py) divides them out of the frames it keeps, after the depth (which the gains need, and
which does not care: ZNCC is blind to a gain) and before the moving objects: the scene is then at one exposure
too, so the world the backdrop shows does not pump where the phone did, and the patches the renderer takes from
different frames match. Colours clipped at white stay a little below it where a frame was brighter than the
clip's typical exposure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ...geometry.camera import Intrinsics
from .depth_ops import cv_poses, pixel_rays, project, relative, resize_nearest, resize_rgb, working_size


@dataclass(frozen=True)
class ExposureConfig:
    #: Colours used for a ratio lie within this range (0-255) in both frames.
    level_range: tuple[float, float] = (12.0, 240.0)
    #: The local gradient (largest over channels, 0-255 per pixel, after a 1-pixel blur) at most this.
    max_gradient: float = 4.0
    #: A pair needs at least this many such pixels; else its ratio is taken as 1.
    min_pixels: int = 200
    #: Per-pair ratios are clipped to this range (a frame 4x brighter than the one before is not an exposure).
    max_step: float = 1.5


def exposure_gains(
    rgb: np.ndarray,
    inverse_depth: np.ndarray,
    c2w: np.ndarray,
    intrinsics: Intrinsics,
    rays: np.ndarray,
    config: ExposureConfig = ExposureConfig(),  # noqa: B008 (frozen dataclass: immutable default)
) -> np.ndarray:
    """(N, 3) per-channel gains of (N, h, w, 3) float colours (0-255) with their (N, h, w) inverse depths (0 at
    infinity), OpenCV camera-to-world poses (N, 4, 4), the `intrinsics` of that size and its `rays` (3, h*w):
    divide frame k by gains[k] to bring it to the clip's typical exposure (module docstring)."""
    n, h, w = rgb.shape[:3]
    ratios = np.ones((max(n - 1, 0), 3))
    lo, hi = config.level_range
    for k in range(n - 1):
        src = rgb[k].astype(np.float32)
        grad = np.zeros((h, w), np.float32)
        for c in range(3):
            blurred = ndimage.gaussian_filter(src[..., c], 1.0, mode="nearest")
            grad = np.maximum(grad, np.hypot(ndimage.sobel(blurred, 0), ndimage.sobel(blurred, 1)) / 8.0)
        rho = inverse_depth[k].ravel().astype(np.float64)
        rot, t = relative(c2w[k], c2w[k + 1])
        # the point r / rho in frame k's camera, times rho (the same pixel): rot r + t rho in frame k+1's; a
        # point at infinity (rho 0) only turns
        x, y, z = project(rot @ rays + t[:, None] * rho[None, :], intrinsics)
        with np.errstate(invalid="ignore"):
            col, row = np.floor(x + 0.5), np.floor(y + 0.5)
            inside = (z > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
        col, row = np.where(inside, col, 0).astype(np.intp), np.where(inside, row, 0).astype(np.intp)
        a = src.reshape(-1, 3)
        b = rgb[k + 1][row, col].astype(np.float32)
        usable = inside & (grad.ravel() <= config.max_gradient)
        usable &= np.all((a >= lo) & (a <= hi) & (b >= lo) & (b <= hi), axis=1)
        if usable.sum() >= config.min_pixels:
            ratios[k] = np.clip(np.median(b[usable] / a[usable], axis=0), 1 / config.max_step, config.max_step)
    gains = np.concatenate([np.ones((1, 3)), np.cumprod(ratios, axis=0)]) if n else np.ones((0, 3))
    return gains / np.median(gains, axis=0) if n else gains


def clip_gains(
    frames: np.ndarray,
    depth: np.ndarray,
    intrinsics: Intrinsics,
    poses_c2w: np.ndarray,
    max_side: int = 256,
    config: ExposureConfig = ExposureConfig(),  # noqa: B008 (frozen dataclass: immutable default)
) -> np.ndarray:
    """(N, 3) gains of (N, H, W, 3) uint8 `frames` with their (N, H', W') z-depths (+inf at infinity, any size
    with the frames' aspect), `intrinsics` and wire camera-to-world poses, measured at a long side of
    `max_side` (`exposure_gains`)."""
    n, height, width = frames.shape[:3]
    h, w = working_size(height, width, max_side)
    intr = intrinsics.scaled(w, h)
    rgb = np.stack([resize_rgb(f, (h, w)) * np.float32(255.0) for f in frames]) if n else np.zeros((0, h, w, 3))
    with np.errstate(divide="ignore"):
        inverse = np.stack([resize_nearest(np.where(np.isfinite(d), 1.0 / d, 0.0), (h, w)) for d in depth])
    return exposure_gains(rgb, inverse, cv_poses(np.asarray(poses_c2w, np.float64)), intr, pixel_rays(intr), config)


def at_one_exposure(frames: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 frames divided by their (N, 3) gains."""
    return np.clip(np.rint(frames / gains[:, None, None, :]), 0, 255).astype(np.uint8)
