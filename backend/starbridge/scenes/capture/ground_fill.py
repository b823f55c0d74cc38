"""The ground carried into the depth's holes: a step after the moving objects are placed (pipeline.py).

Multi-view stereo leaves holes where a surface has too little texture to match, and the depth stage fills them
from the confident depths around them (depth_fill.py: edge-aware, a plane per pixel through its neighbours'
inverse depths). On the ground that fill goes wrong in two places: far ground, whose texture fades with
distance, is filled from the nearer objects standing on it (the fill's slopes are pulled flat where the
support is thin, so the far ground takes the near ground's or the objects' depth: too near); and the strips of
ground between objects take the objects' depth. Yet the ground is the one surface whose shape is known: a plane,
found once for the clip (ground.py, through the static stereo points; the moving objects stand on it).

Per frame, `fill_ground`:

1. **The frame's ground pixels**: the confident, static pixels whose inverse depth is within
   `label_tolerance` (relative) of the clip's ground plane seen from this frame.
2. **The frame's own plane**: inverse depth is affine in the image on a plane (rho = a x + b y + c), fitted by
   least squares through those pixels, then again through the confident pixels within `fit_tolerance` of the
   fit (`fit_iterations` fits; at least `min_pixels` pixels each). Fitted per frame rather than taken from the
   clip's plane, it follows what the frame's own stereo says of the ground (the clip's plane can be tilted by a
   degree or two against it, which matters most near the horizon).
3. **Where the ground goes on**: the share of ground pixels in each pixel's edge-aware support (the fill's
   domain-transform weights, `DepthConfig.fill_sigma_s` / `fill_sigma_r`, over the confident pixels).
4. A hole (not confident, not moving, not at infinity) below the frame plane's horizon whose support is at
   least `min_share` ground takes the plane's inverse depth, where that is within `plane_agreement` of the
   clip's plane (a frame's fit cannot run away from the ground the whole clip agrees on).
5. **Nothing is seen below the ground** (`under_ground`): the clip's plane is refitted by least squares through
   the confident static pixels of the whole clip near it, and every static pixel below its horizon whose depth
   lies beyond it along its ray (under the ground, or at infinity) or within `under_tolerance` in front of it
   takes the plane's depth, confident pixels too. The stereo's ground is biased frame by frame (on world 2's
   dolly each frame's ground plane, fitted to the depth stage's own ground pixels, leans 2-6 degrees from the
   clip's, with the true cameras as well), while the clip's plane through every frame's points is right to a
   fraction of a degree; on that clip the true ground pixels' share of AbsRel was 0.033, and 0.005 with each
   of them put on one plane fitted through them all.

Measured on bench_capture's 40-frame clips (field of view given; the same tracked poses, depth and masks with
and without this step; worlds 0, 1 and 2 at 320x180 and world 0 at 512x288, handheld / orbit / dolly / walk
among moving objects): see `GroundFillConfig` for the numbers.

Limits: only the one plane the clip's cameras stand over (a ramp, a hill or terraces are not it; their holes
keep the fill's depth); a hole takes the plane only where its colour connects it to ground pixels, so a plain
floor of another colour than its textured parts is not reached; step 5 puts on the plane what its tolerance
reaches (the feet of walls and objects standing on the ground, within 5% of it, move onto it: a small error
where it was none), and a surface that truly lies below the plane (a ditch, steps down, a slope falling away
from the cameras) is lifted onto it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from .depth_ops import back_project, domain_transform, pixel_rays, resize_nearest, resize_rgb, working_mask
from .ground import Ground


@dataclass(frozen=True)
class GroundFillConfig:
    """Settings of `fill_ground`.

    Measured on bench_capture's 40-frame clips (field of view given, the same tracked poses, depth and masks;
    novel-view gap dB / AbsRel at the path's scale, without -> with; handheld / orbit / dolly / walk among
    moving objects): world 0 at 320x180 1.51 / 1.59 / 1.71 / 1.23 -> 1.49 / 1.58 / 1.66 / 1.22, AbsRel 0.133 /
    0.119 / 0.175 / 0.136 -> 0.129 / 0.116 / 0.170 / 0.131; world 1 2.08 / 1.29 / 2.21 / 1.95 -> 2.07 / 1.28 /
    2.18 / 1.94, 0.098 / 0.129 / 0.170 / 0.109 -> 0.094 / 0.127 / 0.157 / 0.105; world 2 2.42 / 2.65 / 3.14 /
    3.32 -> 2.40 / 2.65 / 3.08 / 3.32, 0.124 / 0.135 / 0.175 / 0.258 -> 0.119 / 0.134 / 0.169 / 0.253; world 0
    at 512x288 2.37 / 3.44 / 2.68 / 2.96 -> 2.34 / 3.41 / 2.71 / 2.95, 0.129 / 0.116 / 0.175 / 0.151 -> 0.126 /
    0.113 / 0.171 / 0.150. Means 2.283 -> 2.268 dB and 0.1457 -> 0.1415: small, and on 15 of the 16 clips
    the same or better (the benchmark's own runs, tracking included, agree to 0.02 dB; with the field of view
    estimated 7.54 / 4.67 / 10.62 / 3.30 -> 7.53 / 4.64 / 10.63 / 3.30 dB). `min_share` 0.3 instead of 0.5
    (more holes taken): world 0's 512x288 dolly 2.71 -> 2.77; `label_tolerance` 0.25: the same to +-0.01 dB."""

    #: Off: the holes keep the depth stage's fill.
    enabled: bool = True
    #: A confident pixel within this (relative, in inverse depth) of the clip's ground plane is ground.
    label_tolerance: float = 0.15
    #: The frame's plane is refitted through the confident pixels within this of it.
    fit_tolerance: float = 0.05
    fit_iterations: int = 3
    #: Fewest ground pixels a frame's fit needs (working pixels).
    min_pixels: int = 50
    #: A hole takes the plane where at least this share of its edge-aware support is ground.
    min_share: float = 0.5
    #: ...and where the frame's plane is within this (relative) of the clip's: a degree or two of tilt
    #: between them is allowed (near the horizon that is tens of per cent), a fit that runs away is not.
    plane_agreement: float = 0.3
    #: Nothing is seen below the ground: with `under_ground`, the clip's plane is first refitted by least squares
    #: through the confident static pixels of every other frame near it (a band narrowed `fit_iterations` times
    #: to 2.5 times its points' median distance), then every static pixel below its horizon whose depth lies
    #: beyond it along its ray (under the ground, or at infinity), or within `under_tolerance` (relative, in
    #: inverse depth) in front of it, takes its depth; confident pixels too (the stereo's ground leans by
    #: degrees from frame to frame, the plane through the whole clip does not).
    #: On bench_capture_variants.py's sixteen clips (CRF 16, field of view given, the same tracking; off -> on):
    #: mean gap 1.703 -> 1.677 dB, AbsRel (median) 0.1066 -> 0.1027, AbsRel <= 0.10 on 8 -> 9, within 2 dB 12
    #: either way, gap better on 9 and worse on 3 (by 0.01-0.02); the dollies most (world 0's 1.45 / 0.134 ->
    #: 1.34 / 0.128, world 1's 1.54 / 0.104 -> 1.50 / 0.098). docs/capture-measurements.md, "Nothing is seen
    #: below the ground"; bench/results/capture-variants-vm-under-ground.json.
    under_ground: bool = True
    #: 0.05 rather than the 0.1 it was built with (the feet of walls and objects it flattens cost the novel
    #: views): mean gap 1.677 -> 1.666 dB, better on 8 clips and worse on none by more than 0.01, AbsRel (median)
    #: 0.1027 -> 0.1029, <= 0.10 on 9 -> 10 (`--variant 'ut05=ground_fill.under_tolerance=0.05'`,
    #: bench/results/capture-variants-vm-under-tolerance.json); 0.2 made every gap worse on five clips.
    under_tolerance: float = 0.05

    def __post_init__(self) -> None:
        ok = (
            0 < self.label_tolerance < 1
            and 0 < self.fit_tolerance < 1
            and self.fit_iterations >= 1
            and self.min_pixels >= 3
            and 0 < self.min_share <= 1
            and self.plane_agreement > 0
            and 0 <= self.under_tolerance < 1
        )
        if not ok:
            raise InvalidArgument(f"GroundFillConfig: a setting is out of range: {self}", field="ground_fill")


@dataclass(frozen=True)
class GroundFilled:
    """`fill_ground`'s result: the working-size inverse depth and the share of its pixels that changed."""

    inverse: np.ndarray
    changed: float


def fill_ground(
    inverse: np.ndarray,
    measured: np.ndarray,
    confident: np.ndarray,
    moving: np.ndarray,
    frames: np.ndarray,
    intrinsics: Intrinsics,
    c2w_cv: np.ndarray,
    ground: Ground,
    sigma_s: float,
    sigma_r: float,
    config: GroundFillConfig = GroundFillConfig(),  # noqa: B008 (frozen dataclass: immutable default)
) -> GroundFilled:
    """Holes on the ground take the ground's depth (module docstring). `inverse` (N, h, w) the working-size
    inverse depth to fill (0 at infinity; the stereo's, or with the moving objects placed); `measured` the
    stereo's own, whose confident static pixels the planes are fitted to; `confident` and `moving` (N, H, W)
    bool at the frames' size (a working pixel is confident where its centre is, moving where it is at least half
    inside the mask, as the moving objects were written); `frames` (N, H, W, 3) uint8; `intrinsics` the
    frames'; `c2w_cv` (N, 4, 4) OpenCV camera-to-world; `ground` in the same world; `sigma_s` (fraction of the
    working long side) and `sigma_r` (colour) the depth fill's."""
    n, h, w = inverse.shape
    full = frames.shape[:3]
    mismatch = measured.shape != inverse.shape or confident.shape != full or moving.shape != full
    if mismatch or full[0] != n or len(c2w_cv) != n:
        raise InvalidArgument(
            f"fill_ground: inverse {inverse.shape}, measured {measured.shape}, confident {confident.shape}, "
            f"moving {moving.shape}, frames {frames.shape} and {len(c2w_cv)} poses must agree",
            field="ground_fill",
        )
    out = np.array(inverse, dtype=np.float32, copy=True)
    if not config.enabled:
        return GroundFilled(out, 0.0)
    rays = pixel_rays(intrinsics.scaled(w, h))  # (3, h*w), z = 1
    y, x = np.mgrid[0:h, 0:w]
    design = np.stack([x.ravel() / w, y.ravel() / h, np.ones(h * w)], axis=1)
    # per frame at the working size: not moving, confident, and both with a measured depth (what the planes fit)
    still = np.stack([~working_mask(m, (h, w)) for m in moving])
    sure = np.stack([resize_nearest(c, (h, w)) for c in confident])
    usable = still & sure & (measured > 0)
    changed = 0
    for i in range(n):
        rho = measured[i].astype(np.float64)
        conf = usable[i]
        clip_plane = _plane_inverse(ground, c2w_cv[i], rays).reshape(h, w)
        fit = _frame_plane(rho, conf, clip_plane, design, config)
        if fit is None:
            continue
        on = conf & (fit > 0) & (np.abs(rho - fit) < config.fit_tolerance * fit)
        support = domain_transform(
            np.stack([on, conf], axis=2).astype(np.float64), resize_rgb(frames[i], (h, w)), sigma_s * max(h, w), sigma_r
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(support[..., 1] > 1e-6, support[..., 0] / support[..., 1], 0.0)
        take = (
            ~sure[i]
            & still[i]
            & (out[i] > 0)
            & (fit > 0)
            & (share >= config.min_share)
            & (np.abs(fit - clip_plane) < config.plane_agreement * clip_plane)
        )
        out[i][take] = fit[take]
        changed += int(take.sum())
    plane = _refit(ground, measured, usable, c2w_cv, rays, config) if config.under_ground else None
    if plane is not None:
        for i in range(n):
            on = _plane_inverse(plane, c2w_cv[i], rays).reshape(h, w)
            take = still[i] & (on > 0) & (out[i] <= (1.0 + config.under_tolerance) * on) & (out[i] != on)
            out[i][take] = on[take]
            changed += int(take.sum())
    return GroundFilled(out, changed / max(out.size, 1))


def _refit(
    ground: Ground,
    measured: np.ndarray,
    usable: np.ndarray,
    c2w_cv: np.ndarray,
    rays: np.ndarray,
    config: GroundFillConfig,
) -> Ground | None:
    """The clip's ground plane refitted by least squares through the `usable` (N, h, w: confident, static, with a
    depth) pixels of every other frame (`measured` (N, h, w) inverse depth, `rays` (3, h*w) at z = 1) within a
    band about it: 2% of the
    points' median distance from the cameras first, then 2.5 times the kept points' median distance to the
    plane, `fit_iterations` times. None when fewer than `min_pixels` of them lie near it (a plane that is not
    the ground seen: nothing is put on it)."""
    n, h, w = measured.shape
    points = []
    for i in range(0, n, 2):
        points.append(back_project(measured[i], usable[i], rays, c2w_cv[i, :3, :3], c2w_cv[i, :3, 3]).T)
    pts = np.concatenate(points) if points else np.zeros((0, 3))
    if len(pts) < config.min_pixels:
        return None
    centre, up = np.asarray(ground.centre, np.float64), np.asarray(ground.up, np.float64)
    band = 0.02 * float(np.median(np.linalg.norm(pts - c2w_cv[:, :3, 3].mean(axis=0), axis=1)))
    for k in range(config.fit_iterations):
        near = np.abs((pts - centre) @ up) < band
        if int(near.sum()) < config.min_pixels:
            if k == 0:
                return None
            break
        centre = pts[near].mean(axis=0)
        normal = np.linalg.svd(pts[near] - centre, full_matrices=False)[2][2]
        up = normal if normal @ up > 0 else -normal
        band = max(2.5 * float(np.median(np.abs((pts[near] - centre) @ up))), 1e-9)
    return Ground(centre, up, ground.inliers)


def _plane_inverse(ground: Ground, c2w_cv: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """(M,) inverse z-depth at which rays (3, M) with z = 1 from the camera `c2w_cv` meet the ground; 0 at or
    above the horizon (and for a camera not above the ground)."""
    z = ground.ray_depths(c2w_cv, rays)
    with np.errstate(divide="ignore"):
        return np.where(np.isfinite(z), 1.0 / z, 0.0)


def _frame_plane(
    rho: np.ndarray, conf: np.ndarray, clip_plane: np.ndarray, design: np.ndarray, config: GroundFillConfig
) -> np.ndarray | None:
    """(h, w) inverse depth of the frame's own ground plane (affine in the image), or None when too few of the
    frame's confident pixels lie on the ground."""
    use = conf & (clip_plane > 0) & (np.abs(rho - clip_plane) < config.label_tolerance * clip_plane)
    fit = None
    for _ in range(config.fit_iterations):
        if int(use.sum()) < config.min_pixels:
            return fit
        coef, *_ = np.linalg.lstsq(design[use.ravel()], rho[use], rcond=None)
        fit = (design @ coef).reshape(rho.shape)
        use = conf & (fit > 0) & (np.abs(rho - fit) < config.fit_tolerance * fit)
    return fit
