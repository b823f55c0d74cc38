"""Moving shadows: the moving-mask pixels that are the ground darkened by a mover (a step of moving_depth.py).

The moving masks (dynamic.py) flag what the static world cannot explain, so a moving object's shadow is flagged
with it: the ground there changes its look. It is rightly kept out of the static world, but it is not part of
the object: joined to the object's region it makes the region reach down to the shadow's far edge, so the
object is stood on the ground at the shadow's contact (too near) and the region's convex hull takes the ground
between them up with it (a billboard from the ball down to its shadow). So before the objects are placed, each
flagged pixel below the horizon is tested: its ray meets the ground plane at a point, that point is looked up
in the frames `offsets_s` seconds before and after (projected; skipped where that frame flags it moving, where a
nearer static surface hides it, or off the picture), and the median of those colours is the ground's own colour
there. The pixel is shadow when it is that colour darkened: its brightness (the sum of its linear RGB) between
`min_ratio` and `max_ratio` of the ground's, and its colour's direction within `max_angle_deg` of the ground's
(a shadow lowers every channel by about the same factor; a red ball on grey ground is 45 degrees away). Small
specks are dropped (`min_area`, as the masks' own cleaning does).

Shadow pixels lie on the ground: moving_depth.py gives them the ground's depth and keeps them out of the
objects' regions (their contact, their size on screen, their hull); they stay in the moving mask. Why the
colour and not the stereo's depth: a test for regions whose confident stereo depth is the ground's was
measured earlier and dropped (neutral on the bench at half of the pixels; at a third it took the bouncing ball,
whose stereo noise is often the ground behind it: moving clip 2.02 -> 2.65 dB). What it gains is in
moving_depth.py's docstring.

Limits: a shadow cast on a wall or on another object is not on the ground plane and is not found; a dark grey
mover on grey ground (a grey car on asphalt) can pass for its own shadow where its colour is the ground's
darkened; the test needs the ground seen unshadowed in another frame (a shadow that stays on the same patch of
ground all clip, under a mover that does not move much, is not found).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from .depth_ops import image_rays, pixel_rays
from .ground import Ground


@dataclass(frozen=True)
class ShadowConfig:
    """Settings of `find_shadows`."""

    #: Off: no pixel is taken for a shadow.
    enabled: bool = True
    #: The frames the ground's own colour is read from: this many seconds before and after.
    offsets_s: tuple[float, ...] = (0.33, 0.67, 1.0)
    #: A shadow's brightness over the ground's (linear RGB sums).
    min_ratio: float = 0.15
    max_ratio: float = 0.85
    #: The largest angle between the pixel's linear RGB and the ground's, degrees.
    max_angle_deg: float = 8.0
    #: A frame that sees the ground point nearer than its static depth there by more than this (relative) is
    #: hidden from it (a static thing in front).
    occlusion: float = 0.1
    #: The smallest shadow region kept, as a fraction of the frame's pixels.
    min_area: float = 0.0005

    def __post_init__(self) -> None:
        ok = (
            bool(self.offsets_s)
            and all(math.isfinite(o) and o > 0 for o in self.offsets_s)
            and 0 < self.min_ratio < self.max_ratio < 1
            and 0 < self.max_angle_deg < 90
            and self.occlusion >= 0
            and 0 <= self.min_area < 1
        )
        if not ok:
            raise InvalidArgument(f"ShadowConfig: a setting is out of range: {self}", field="shadows")


def find_shadows(
    frames: np.ndarray,
    moving: np.ndarray,
    depth: np.ndarray,
    intrinsics: Intrinsics,
    c2w: np.ndarray,
    ground: Ground,
    fps: float,
    config: ShadowConfig = ShadowConfig(),  # noqa: B008 (frozen dataclass: immutable default)
) -> np.ndarray:
    """(N, H, W) bool: the pixels of `moving` that are shadow on `ground` (module docstring). `frames` (N, H, W,
    3) uint8, `moving` (N, H, W) bool, `depth` (N, H, W) the static z-depth (+inf at infinity), `c2w` (N, 4, 4)
    OpenCV camera-to-world in the ground's units, `fps` the frames' rate."""
    n, height, width = moving.shape
    out = np.zeros_like(moving)
    if not config.enabled or n < 2:
        return out
    offsets = sorted({max(1, round(o * fps)) for o in config.offsets_s})
    reach = offsets[-1]
    linear: dict[int, np.ndarray] = {}  # frame -> blurred linear RGB; only the frames within reach are kept
    near_moving: dict[int, np.ndarray] = {}  # frame -> its moving mask grown by two pixels

    def prepared(j: int) -> tuple[np.ndarray, np.ndarray]:
        if j not in linear:
            linear[j] = _linear(frames[j])
            near_moving[j] = ndimage.binary_dilation(moving[j], iterations=2)
        return linear[j], near_moving[j]

    cos_max = math.cos(math.radians(config.max_angle_deg))
    min_pixels = max(1, int(config.min_area * height * width))
    for i in range(n):
        for j in [j for j in linear if j < i - reach]:
            del linear[j], near_moving[j]
        ys, xs = np.nonzero(moving[i])
        if not len(ys):
            continue
        points, ok = _on_ground(xs, ys, intrinsics, c2w[i], ground)
        if not ok.any():
            continue
        ys, xs, points = ys[ok], xs[ok], points[:, ok]
        seen = []
        for j in [i - o for o in offsets] + [i + o for o in offsets]:
            if 0 <= j < n:
                colours, hidden = prepared(j)
                seen.append(_look_up(points, colours, hidden, depth[j], intrinsics, c2w[j], config.occlusion))
        if not seen:
            continue
        stack = np.stack(seen)  # (views, M, 3), NaN where not seen
        counted = np.isfinite(stack[..., 0]).sum(axis=0)
        with np.errstate(all="ignore"):
            ground_colour = np.nanmedian(np.where(counted[None, :, None] > 0, stack, 0.0), axis=0)
        pixel = prepared(i)[0][ys, xs]
        bright_p, bright_g = pixel.sum(axis=1), ground_colour.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = bright_p / bright_g
            cosine = (pixel * ground_colour).sum(axis=1) / (
                np.linalg.norm(pixel, axis=1) * np.linalg.norm(ground_colour, axis=1)
            )
        shadow = (counted > 0) & (ratio >= config.min_ratio) & (ratio <= config.max_ratio) & (cosine >= cos_max)
        mask = np.zeros((height, width), bool)
        mask[ys[shadow], xs[shadow]] = True
        out[i] = _clean(mask, min_pixels) & moving[i]
    return out


def ground_depth(intrinsics: Intrinsics, c2w: np.ndarray, ground: Ground, size: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 z-depth at which each pixel's ray (at `size`, the intrinsics scaled to it) meets the
    ground; +inf where it does not (at or above the horizon)."""
    h, w = size
    intr = intrinsics.scaled(w, h)
    z = ground.ray_depths(c2w, pixel_rays(intr))
    return np.where(np.isfinite(z), z, np.inf).astype(np.float32).reshape(h, w)


def _on_ground(
    xs: np.ndarray, ys: np.ndarray, intr: Intrinsics, c2w: np.ndarray, ground: Ground
) -> tuple[np.ndarray, np.ndarray]:
    """((3, M) world points where the pixels' rays meet the ground, (M,) bool: they do, in front)."""
    cam = image_rays(intr, xs + 0.5, ys + 0.5)
    z = ground.ray_depths(c2w, cam)
    ok = np.isfinite(z)
    return c2w[:3, 3:4] + (c2w[:3, :3] @ cam) * np.where(ok, z, 0.0), ok


def _look_up(
    points: np.ndarray,
    colours: np.ndarray,
    near_moving: np.ndarray,
    depth: np.ndarray,
    intr: Intrinsics,
    c2w: np.ndarray,
    occlusion: float,
) -> np.ndarray:
    """(M, 3) linear colour of frame j (`colours`) at the world `points` (nearest pixel); NaN where the point is
    behind the camera, off the picture, on or beside a moving pixel (`near_moving`) or hidden by a nearer static
    surface."""
    cam = c2w[:3, :3].T @ (points - c2w[:3, 3:4])
    z = cam[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.rint(intr.fx * cam[0] / z + intr.cx - 0.5)
        y = np.rint(intr.fy * cam[1] / z + intr.cy - 0.5)
    h, w = near_moving.shape
    inside = (z > 0) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
    xi, yi = np.where(inside, x, 0).astype(np.intp), np.where(inside, y, 0).astype(np.intp)
    ok = inside & ~near_moving[yi, xi] & ~(depth[yi, xi] < (1.0 - occlusion) * z)
    out = np.full((points.shape[1], 3), np.nan, np.float32)
    out[ok] = colours[yi[ok], xi[ok]]
    return out


_SRGB = np.arange(256, dtype=np.float64) / 255.0
#: sRGB code value -> linear (the sRGB transfer function).
_TO_LINEAR = np.where(_SRGB <= 0.04045, _SRGB / 12.92, ((_SRGB + 0.055) / 1.055) ** 2.4).astype(np.float32)


def _linear(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 linear RGB of an sRGB uint8 frame, lightly blurred (compression noise)."""
    return ndimage.gaussian_filter(_TO_LINEAR[frame], sigma=(0.7, 0.7, 0), mode="nearest")


def _clean(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """An opening (one pixel), then components smaller than `min_pixels` dropped; in the box around the mask's
    pixels (a few percent of the frame), padded so the opening sees the frame's edges as it would."""
    ys, xs = np.nonzero(mask)
    out = np.zeros_like(mask)
    if not len(ys):
        return out
    y0, y1, x0, x1 = max(ys.min() - 2, 0), ys.max() + 3, max(xs.min() - 2, 0), xs.max() + 3
    box = ndimage.binary_opening(mask[y0:y1, x0:x1])
    labels, count = ndimage.label(box)
    if count:
        keep = np.bincount(labels.ravel()) >= min_pixels
        keep[0] = False
        out[y0:y1, x0:x1] = keep[labels]
    return out
