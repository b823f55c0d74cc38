"""Moving objects: the pixels that disagree with the static reconstruction across views.

`moving_masks(frames, depth, intrinsics, poses_c2w)` flags, in every frame, what the static world (the
frame's depth, the cameras) cannot explain. Per frame, in a downscaled copy (long side `max_side`; steps 1-3
run per pair of frames in a compiled loop, dynamic_compare.py, and the frames on threads):

1. **Warp the neighbours into the frame.** For each neighbour `offsets_s` seconds away in time, every pixel is
   unprojected with the frame's depth (+inf: a direction, rotated only), moved into the neighbour's camera
   and projected; the neighbour's colour and depth are read there.
2. **Residuals.** Photometric: the smallest colour difference (mean over RGB, blurred images) between the
   pixel and the neighbour's pixels within `tolerance_px` of where it lands (warps are off by a pixel or so
   at edges and where the depth is filled). Geometric: the neighbour's depth there against the point's depth
   in the neighbour's camera.
3. **Votes.** A neighbour in which the point is hidden (its depth there is clearly nearer: a static occluder,
   or a moving object in *that* frame) has no say. A neighbour votes "moving" when the photometric residual
   exceeds `photometric`, or when the neighbour sees clearly past the point (the surface is gone there) and
   the residual exceeds half of it. A pixel is moving when at least `min_votes` neighbours and at least
   `min_fraction` of those that had a say voted so.
4. **Clean up** with morphology: an opening (removes the thin lines left by misregistered edges), a closing,
   components smaller than `min_area` (fraction of the frame) dropped, holes filled.
5. **Carry along time** (dynamic_carry.py): a plain mover that overlaps itself between the frames compared is
   flagged at its outline only; each frame's mask, carried to the next frame (forwards and backwards), adds
   the pixels there whose colour is the object's rather than the background's. Then upsampled to the frame
   size.

Depth and poses may be in any scale (they only need to agree). The residuals compare colours, so a moving
object's shadow is flagged as well (it changes the static world's look); a moving object of the same colour
as what is behind it is not. A pixel seen in no neighbour is flagged only by the carrying (step 5).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image
from scipy import ndimage

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from .depth_ops import cv_poses, image_rays, pixel_rays, project, relative, resize_rgb, working_size
from .dynamic_carry import carry_masks
from .dynamic_compare import compare_into
from .exposure import ExposureConfig, exposure_gains

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DynamicConfig:
    """Settings of `moving_masks`. Pixel sizes are at the working size."""

    #: Long side of the working images, pixels.
    max_side: int = 256
    #: Neighbours, seconds before and after (the frames that exist; `frame_offsets` at the clip's rate); a frame
    #: needs at least one. Far enough apart in time for a slow object to move by its own size (a plain-coloured
    #: object is otherwise flagged at its edges only). At 30 fps 4 / 10 / 20 frames; measured on the 40-frame
    #: 320x180 bench clips at 30 fps (captured depth and poses, `moving_masks` alone) against the earlier
    #: 3 / 6 / 10 frames: IoU 0.428 -> 0.557 (walk among moving objects), 0.413 -> 0.498 (handheld walk),
    #: precision unchanged (0.85 / 0.79); 6 / 15 / 30 frames flagged more of the static world (handheld precision
    #: 0.71). On the real bikes.mp4 shot (25 fps) the walking legs' mask 5.7% -> 5.9% of the pixels, nothing
    #: where nobody walks. Measured again on the benchmark (bench_capture_variants.py, the sixteen clips, field
    #: of view given): a fourth neighbour a second away / 6 / 15 / 30 frames raised the masks' IoU (0.618 ->
    #: 0.630 / 0.632 over the twelve 320x180 clips) but not the novel view: mean gap 1.365 -> 1.415 / 1.399 dB,
    #: three of the four walks worse by 0.2-0.35 dB (static pixels flagged where views a second apart occlude
    #: differently).
    offsets_s: tuple[float, ...] = (0.13, 0.33, 0.67)
    #: A neighbour must see at least this fraction of the frame (else a nearer one is taken).
    min_overlap: float = 0.6
    #: Colour difference (mean over RGB in [0, 1]) above which a neighbour votes "moving".
    photometric: float = 0.06
    #: Search radius around the warped position, pixels (tolerates small warp errors).
    tolerance_px: int = 1
    #: Relative depth difference beyond which the neighbour sees something nearer (hidden: no say) or farther
    #: (the surface is gone there).
    depth_tolerance: float = 0.15
    #: Votes needed: at least `min_votes`, and at least `min_fraction` of the neighbours that had a say.
    min_votes: int = 2
    min_fraction: float = 0.5
    #: Gaussian blur of the colours before comparing, pixels (noise, compression).
    blur_px: float = 0.7
    #: Morphology: opening and closing radii (pixels), smallest component (fraction of the frame's pixels).
    open_px: int = 1
    close_px: int = 2
    min_area: float = 0.0005
    #: 2: ask again without the neighbours' pixels flagged the first time (fewer false positives around
    #: moving objects); 1: one pass.
    passes: int = 2
    #: Carry the masks along time (dynamic_carry.py): each region of a frame's mask, dilated by `carry_grow`
    #: times the square root of its area, is a prior in the next frame (forwards, then backwards), where a
    #: pixel joins when its colour is within `carry_colour` of the object's flagged colours and nearer to them
    #: than `carry_ratio` times to the ring beyond the prior; about `carry_samples` colours of each (fewer than
    #: twice as many). 0: off.
    #: Harness on the same tracked poses and depth (bench_capture's 40-frame 320x180 clips, field of view
    #: given; novel-view gap in dB, world 1's dolly / walk among moving objects, world 0's handheld / dolly /
    #: orbit / walk among moving objects): 3.11 / 2.61 / 1.91 / 1.74 / 2.05 / 1.77 without it -> 2.55 / 2.43 /
    #: 1.92 / 1.73 / 1.98 / 1.77; ratio 0.3: 2.34 / 2.62 / 2.00 / 1.76 / 2.01 / 1.79 (the ball and the red
    #: sliding box beside it carried into one region, which takes one depth); ratio 0.3 with the background
    #: ring right outside the prior (an object that outgrew it is its own background): 2.55 / 2.33 / 1.95 /
    #: 1.75 / 1.97 / -.
    carry_grow: float = 0.15
    carry_colour: float = 0.05
    carry_ratio: float = 0.2
    carry_samples: int = 300
    #: Threads over frames (0: min(4, CPU count)).
    workers: int = 0
    #: Each frame's colours brought to the clip's typical exposure before comparing (exposure.py); None: as
    #: filmed.
    exposure: ExposureConfig | None = field(default_factory=ExposureConfig)

    def __post_init__(self) -> None:
        if not self.offsets_s or not all(np.isfinite(o) and o > 0 for o in self.offsets_s):
            raise InvalidArgument("DynamicConfig: offsets_s must be positive seconds", field="dynamic_config")
        if not (self.carry_grow >= 0 and self.carry_colour > 0 and self.carry_ratio > 0 and self.carry_samples >= 1):
            raise InvalidArgument(
                "DynamicConfig: need carry_grow >= 0, carry_colour > 0, carry_ratio > 0, carry_samples >= 1",
                field="dynamic_config",
            )
        if self.workers < 0:
            raise InvalidArgument("DynamicConfig: workers must be >= 0", field="dynamic_config")
        if not (16 <= self.max_side <= 4096 and self.photometric > 0 and self.min_votes >= 1):
            raise InvalidArgument(
                "DynamicConfig: need max_side in [16, 4096], photometric > 0, min_votes >= 1", field="dynamic_config"
            )


def frame_offsets(config: DynamicConfig, fps: float) -> tuple[int, ...]:
    """`config.offsets_s` in frames at `fps` (at least one frame each, no repeats)."""
    return tuple(sorted({max(1, int(round(o * fps))) for o in config.offsets_s}))


def moving_masks(
    frames: np.ndarray,
    depth: np.ndarray,
    intrinsics: Intrinsics,
    poses_c2w: np.ndarray,
    *,
    fps: float = 30.0,
    progress: ProgressFn | None = None,
    config: DynamicConfig = DynamicConfig(),  # noqa: B008 (frozen dataclass: immutable default)
) -> np.ndarray:
    """(N, H, W) bool: True where a pixel shows something that moves (module docstring).

    `frames` (N, H, W, 3) uint8; `depth` (N, H', W') z-depth in the poses' units (+inf at infinity; any size
    with the frames' aspect, e.g. `estimate_depth`'s); `intrinsics` of the frames; `poses_c2w` (N, 4, 4) wire
    camera-to-world; `fps` the frames' rate (the neighbours are `config.offsets_s` apart in time).
    `progress("moving", done, total)` after each frame.
    """
    frames = np.asarray(frames)
    depth = np.asarray(depth)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise InvalidArgument(f"frames must be (N, H, W, 3) uint8, got {frames.shape} {frames.dtype}", field="frames")
    n, height, width = frames.shape[:3]
    if depth.ndim != 3 or depth.shape[0] != n:
        raise InvalidArgument(f"depth must be ({n}, H, W), got {depth.shape}", field="depth")
    poses = np.asarray(poses_c2w, dtype=np.float64)
    if poses.shape != (n, 4, 4):
        raise InvalidArgument(f"poses_c2w must be ({n}, 4, 4), got {poses.shape}", field="poses_c2w")
    if (intrinsics.width, intrinsics.height) != (width, height):
        raise InvalidArgument(
            f"intrinsics are for {intrinsics.width}x{intrinsics.height} but the frames are {width}x{height}",
            field="intrinsics",
        )
    if not (np.isfinite(fps) and fps > 0):
        raise InvalidArgument(f"fps must be > 0, got {fps}", field="fps")
    cfg = config
    offsets = frame_offsets(cfg, fps)
    h, w = working_size(height, width, cfg.max_side)
    intr = intrinsics.scaled(w, h)
    c2w = cv_poses(poses)
    rgb, lo, hi, inv = working_images(frames, depth, c2w, intr, cfg)
    rays = pixel_rays(intr)
    report = progress or (lambda stage, done, total: None)
    neighbours = [_neighbours(i, inv, c2w, intr, cfg, offsets) for i in range(n)]

    def flag(i: int, first: np.ndarray | None) -> np.ndarray:
        votes = np.zeros(h * w, np.int32)
        said = np.zeros(h * w, np.int32)
        for j in neighbours[i]:
            rot, t = relative(c2w[i], c2w[j])
            ignore = None if first is None else first[j]
            compare_into(
                votes, said, inv[i], rays, rot, t, intr, rgb[i], lo[j], hi[j], inv[j], ignore, cfg.photometric,
                cfg.depth_tolerance,
            )  # fmt: skip
        flagged = (votes >= cfg.min_votes) & (votes >= cfg.min_fraction * np.maximum(said, 1))
        if first is not None:
            # Too few unflagged neighbours to decide again: keep the first answer.
            flagged |= first[i].ravel() & (said < cfg.min_votes)
        return _clean(flagged.reshape(h, w), cfg)

    # Pass 1 flags what disagrees; pass 2 asks again, without the neighbours' pixels flagged in pass 1: a
    # moving object in a neighbour must not make the static world behind it look like it moved.
    carrying = cfg.carry_grow > 0
    total = n * cfg.passes + (2 * n if carrying else 0)  # the carrying goes over every frame twice
    first = np.zeros((n, h, w), bool)
    workers = cfg.workers or min(4, os.cpu_count() or 1)
    # Frames are independent within a pass (the kernel and SciPy's morphology release the GIL).
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for i, mask in enumerate(pool.map(lambda k: flag(k, None), range(n))):
            first[i] = mask
            report("moving", i + 1, total)
        masks = first
        if cfg.passes > 1:
            masks = np.zeros((n, h, w), bool)
            for i, mask in enumerate(pool.map(lambda k: flag(k, first), range(n))):
                masks[i] = mask
                report("moving", n + i + 1, total)
    if carrying:
        masks = carry_masks(
            rgb,
            masks,
            grow=cfg.carry_grow,
            colour=cfg.carry_colour,
            ratio=cfg.carry_ratio,
            samples=cfg.carry_samples,
            min_pixels=max(1, int(cfg.min_area * h * w)),
            progress=lambda done: report("moving", n * cfg.passes + done, total),
        )
    out = np.zeros((n, height, width), bool)
    for i in range(n):
        out[i] = _upsample_mask(masks[i], (height, width))
    return out


def working_images(
    frames: np.ndarray, depth: np.ndarray, c2w: np.ndarray, intr: Intrinsics, cfg: DynamicConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(rgb, lo, hi, inv) at the working size of `intr` (OpenCV camera-to-world `c2w`): the blurred colours at
    one exposure, their minimum and maximum within `tolerance_px` of each pixel ((N, h, w, 3) uint8: a 10 s
    clip holds three copies), and the inverse depths ((N, h, w) float32, 0 at infinity)."""
    n = len(frames)
    h, w = intr.height, intr.width
    rgb = np.empty((n, h, w, 3), np.uint8)
    lo = np.empty_like(rgb)
    hi = np.empty_like(rgb)
    window = (2 * cfg.tolerance_px + 1, 2 * cfg.tolerance_px + 1, 1)
    inv = np.stack([_inverse_depth_small(d, (h, w)) for d in depth])
    for k in range(n):
        rgb[k] = np.clip(np.rint(resize_rgb(frames[k], (h, w)) * np.float32(255.0)), 0, 255)
    # each frame brought to the clip's typical exposure (exposure.py): a phone's exposure changing as it turns
    # is no moving object
    gains = exposure_gains(rgb, inv, c2w, intr, pixel_rays(intr), cfg.exposure) if cfg.exposure else None
    for k in range(n):
        small = rgb[k].astype(np.float32)
        if gains is not None:
            small /= gains[k].astype(np.float32)
        if cfg.blur_px > 0:
            small = ndimage.gaussian_filter(small, sigma=(cfg.blur_px, cfg.blur_px, 0), mode="nearest")
        rgb[k] = np.clip(np.rint(small), 0, 255)
        # The range of colours within `tolerance_px` of each pixel: a warp off by that much still matches.
        lo[k] = ndimage.minimum_filter(rgb[k], size=window, mode="nearest")
        hi[k] = ndimage.maximum_filter(rgb[k], size=window, mode="nearest")
    return rgb, lo, hi, inv


def _neighbours(
    i: int, inv: np.ndarray, c2w: np.ndarray, intr: Intrinsics, cfg: DynamicConfig, offsets: tuple[int, ...]
) -> list[int]:
    """Frames `offsets` before and after `i`; where one shares less than `min_overlap` of the view (a fast pan),
    the nearest frame in between that does."""
    n = len(inv)
    finite = inv[i][inv[i] > 0]
    rho = float(np.median(finite)) if finite.size > inv[i].size // 2 else 0.0
    gy, gx = np.mgrid[0:5, 0:5]
    probe = image_rays(intr, (gx + 0.5) / 5 * intr.width, (gy + 0.5) / 5 * intr.height)
    chosen: list[int] = []
    for side in (-1, 1):
        for offset in offsets:
            for o in range(offset, 0, -1):
                j = i + side * o
                if not 0 <= j < n:
                    continue
                rot, t = relative(c2w[i], c2w[j])
                pts = rot @ probe + (t[:, None] * rho)  # points at inverse depth rho, scaled by rho (same rays)
                x, y, z = project(pts, intr)
                inside = (z > 0) & (x > -0.5) & (x < intr.width - 0.5) & (y > -0.5) & (y < intr.height - 0.5)
                if inside.mean() >= cfg.min_overlap:
                    if j not in chosen:
                        chosen.append(j)
                    break
    return chosen


def _inverse_depth_small(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 inverse depth (0 at infinity, also for NaN or <= 0) resized by nearest neighbour."""
    d = np.asarray(depth, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = np.where(np.isfinite(d) & (d > 0), 1.0 / d, 0.0).astype(np.float32)
    if inv.shape != size:
        inv = np.asarray(Image.fromarray(inv).resize((size[1], size[0]), Image.Resampling.NEAREST))
    return inv


def _clean(mask: np.ndarray, cfg: DynamicConfig) -> np.ndarray:
    """Opening, closing, small components dropped, holes filled."""
    if cfg.open_px > 0:
        mask = ndimage.binary_opening(mask, structure=_disk(cfg.open_px))
    if cfg.close_px > 0:
        padded = np.pad(mask, cfg.close_px)
        padded = ndimage.binary_closing(padded, structure=_disk(cfg.close_px))
        mask = padded[cfg.close_px : -cfg.close_px, cfg.close_px : -cfg.close_px]
    labels, count = ndimage.label(mask)
    if count:
        sizes = np.bincount(labels.ravel())
        keep = sizes >= max(1.0, cfg.min_area * mask.size)
        keep[0] = False
        mask = keep[labels]
    return ndimage.binary_fill_holes(mask)


def _disk(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (xx * xx + yy * yy) <= radius * radius + radius


def _upsample_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = mask.shape
    if (h, w) == size:
        return mask
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.intp), w - 1)
    return mask[rows[:, None], cols[None, :]]
