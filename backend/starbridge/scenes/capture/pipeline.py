"""The capture pipeline: a decoded video in, a 4D scene out (poses, depth, moving masks, and a report).

Stages, in order, each with progress (`progress(stage, done, total)`):

1. **shots** (cuts.py): a clip with several shots keeps one (a backdrop is one place): the longest, or the one
   the caller names by its number (`shot`; `find_clip_shots` lists them, for an import of each), less a
   fade-in or fade-out at its ends; a dip to black or a dissolve parts two shots too (fades.py); the report
   says which frames were kept and why.
2. **tracking** (tracking.py): every frame's camera and the field of view (estimated unless given). A clip
   that cannot be tracked (too dark, featureless, too short) still imports, as rotation-only (a fixed
   camera, depth at infinity), and the report says so in plain words.
3. **depth**: the user's depth (files or an ONNX model, aligned to the tracked scale by `align_depth`), or
   multi-view stereo from the tracked cameras (depth.py); a tripod pan has none (rotation only).
4. **moving** (dynamic.py): the frames first brought to one exposure (exposure.py: gains measured from the
   tracked geometry; the scene keeps them so), then the pixels that disagree with the static reconstruction
   across views; then, for multi-view stereo's depth, the moving objects stood on the ground
   (moving_depth.py: stereo cannot measure what moves between the frames it matches).
5. **ground fill** (ground_fill.py): the depth's holes on the ground (far ground, strips between objects)
   take the ground plane's depth instead of the depth stage's fill from the objects around them.

The result is in the tracking's arbitrary scale; the bundle writer rescales it so the median depth is the
scene convention's (4 m) and records the factor.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from ..bundle import WorkingDepth
from .cuts import choose_shot, find_shots
from .depth import DepthConfig, estimate_depth
from .depth_align import align_depth, observations_from_points
from .depth_ops import cv_poses
from .depth_planes import refine_static_planes
from .depth_regions import choose_static_regions
from .depth_upsample import upsample_frames
from .dynamic import DynamicConfig, moving_masks
from .exposure import at_one_exposure, clip_gains
from .fades import Fades, find_fades, split_at_dissolves, split_at_flat
from .ground import Ground
from .ground_fill import GroundFillConfig, fill_ground
from .moving_depth import MovingDepthConfig, place_moving_objects, static_ground
from .tracking import TrackingConfig, TrackingError, track_camera

ProgressFn = Callable[[str, int, int], None]

#: The report mentions the exposure when a frame's gain differs from the clip's typical by more than this.
EXPOSURE_NOTE = 0.02


@dataclass(frozen=True)
class CaptureConfig:
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    depth: DepthConfig = field(default_factory=DepthConfig)
    dynamic: DynamicConfig = field(default_factory=DynamicConfig)
    moving_depth: MovingDepthConfig = field(default_factory=MovingDepthConfig)
    ground_fill: GroundFillConfig = field(default_factory=GroundFillConfig)


@dataclass(frozen=True)
class UserDepth:
    """Depth the user brought: (N, H, W) float32 per frame, and what kind of values they are."""

    values: np.ndarray = field(repr=False)
    #: "depth" (z-depth in any unit: only the per-frame scale is unknown) or "disparity" (relative inverse
    #: depth from a monocular model: scale and shift unknown).
    kind: str
    #: How the report names it, e.g. "depth-files" or "depth-model:depth_anything_v2_small.onnx".
    source: str


@dataclass(frozen=True)
class Capture:
    """A captured scene, in the tracking's scale (frames possibly trimmed to one shot)."""

    frames: np.ndarray = field(repr=False)
    #: (N, H, W) float32 z-depth, +inf at infinity.
    depth: np.ndarray = field(repr=False)
    #: (N, 4, 4) wire camera-to-world, frame 0 the identity.
    poses: np.ndarray = field(repr=False)
    intrinsics: Intrinsics
    #: (N, H, W) bool, or None when not computed (rotation only).
    moving: np.ndarray | None = field(repr=False)
    rotation_only: bool
    depth_source: str
    #: What `scene show` prints: how the scene was made, in numbers and plain words (JSON-safe).
    report: dict[str, Any]
    #: Multi-view stereo's working-size inverse depth that `depth` was upsampled from (what the bundle
    #: stores), or None (the user's depth, rotation only).
    depth_working: WorkingDepth | None = field(default=None, repr=False)


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


@dataclass(frozen=True)
class ClipShots:
    """A clip's shots: [start, end) frame ranges in order, and the fades at the clip's own ends (left out)."""

    shots: list[tuple[int, int]]
    ends: Fades


def find_clip_shots(frames: np.ndarray, progress: ProgressFn | None = None) -> ClipShots:
    """The shots of (N, H, W, 3) uint8 `frames` (step 1 of the module docstring): an edited clip's fade-in and
    fade-out are no part of the place; found on the whole clip first (a short fade steps fast enough to pass for
    cuts), then the cuts, and a dip to black or a dissolve parts two shots too. `progress` gets "shots"."""
    n_in = len(frames)
    ends = find_fades(frames)
    first, last = ends.fade_in, n_in - ends.fade_out
    shots = [(s + first, e + first) for s, e in find_shots(frames[first:last], progress=progress)]
    shots = split_at_flat(frames, shots)  # a dip to black, however slow, parts two shots
    shots = split_at_dissolves(frames, shots)  # so does a dissolve, its blended frames left out
    return ClipShots(shots, ends)


#: `shots_words` names at most this many shots (an edited film may have hundreds; the report lists them all).
SHOTS_NAMED = 12


def shots_words(shots: list[tuple[int, int]]) -> str:
    """'1: frames 0-29, 2: frames 30-75, ...' (shot numbers count from 1; the last frame inclusive), the first
    `SHOTS_NAMED` of them."""
    named = ", ".join(f"{k}: frames {s}-{e - 1}" for k, (s, e) in enumerate(shots[:SHOTS_NAMED], start=1))
    more = len(shots) - SHOTS_NAMED
    return named + (f", and {more} more (the report's 'shots' lists them)" if more > 0 else "")


def capture_video(
    frames: np.ndarray,
    *,
    fps: float = 30.0,
    vertical_fov_deg: float | None = None,
    user_depth: UserDepth | None = None,
    shot: int | None = None,
    progress: ProgressFn | None = None,
    config: CaptureConfig = CaptureConfig(),  # noqa: B008 (frozen)
) -> Capture:
    """Run the stages on (N, H, W, 3) uint8 RGB frames, `fps` frames a second (see the module docstring).
    `shot`: which shot of a clip with several to keep, counted from 1 in the clip's order (None: the longest);
    a number past the clip's last shot is refused (InvalidArgument) with the list of its shots."""
    if shot is not None and (isinstance(shot, bool) or not isinstance(shot, int) or shot < 1):
        raise InvalidArgument(f"shot must be a shot number counted from 1, got {shot!r}", field="shot")
    report = progress or _no_progress
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    warnings: list[str] = []
    n_in = len(frames)

    # 1. shots, less fades (fades.py), at the clip's ends and then at the ends of the shot kept (either side
    # of a dip to black between two shots)
    t0 = time.perf_counter()
    ends, shots = (found := find_clip_shots(frames, progress=report)).ends, found.shots
    if shot is not None and shot > len(shots):
        raise InvalidArgument(
            f"shot {shot}: the clip has {len(shots)} shot{'s' if len(shots) > 1 else ''} ({shots_words(shots)})",
            field="shot",
        )
    start, end = choose_shot(shots) if shot is None else shots[shot - 1]
    number = shots.index((start, end)) + 1
    inner = find_fades(frames[start:end])
    seconds["shots"] = time.perf_counter() - t0
    if len(shots) > 1:
        said = f"the clip has {len(shots)} shots ({shots_words(shots)}); "
        if shot is None:
            said += (
                f"kept the longest, frames {start} to {end - 1} (shot {number}): import another by its number, or "
                "each as a scene of its own"
            )
        else:
            said += f"kept shot {number}, frames {start} to {end - 1}, as asked"
        warnings.append(said)
    for fades, (a, b) in ((ends, (0, n_in)), (inner, (start, end))):
        if fades.fade_in or fades.fade_out:
            warnings.append(f"{fades.words(a, b)}: the picture fading from or to a plain colour")
    start, end = start + inner.fade_in, end - inner.fade_out
    frames = frames[start:end]
    if user_depth is not None:
        user_depth = UserDepth(user_depth.values[start:end], user_depth.kind, user_depth.source)
    n, height, width = frames.shape[:3]

    # 2. tracking
    t0 = time.perf_counter()
    try:
        track = track_camera(frames, vertical_fov_deg=vertical_fov_deg, progress=report, config=config.tracking)
    except TrackingError as exc:
        track = None
        assumed = config.tracking.for_frames(width, height)
        fov = "" if vertical_fov_deg else f" at {assumed.assumed_fov_deg:.1f} degrees{assumed.default_fov_words}"
        warnings.append(f"camera tracking failed ({exc.message}); imported as rotation-only (a fixed camera{fov})")
    seconds["tracking"] = time.perf_counter() - t0
    if track is not None:
        warnings.extend(track.warnings)
        poses, intrinsics, rotation_only = track.poses, track.intrinsics, track.rotation_only
    else:
        poses = np.repeat(np.eye(4)[None], n, axis=0)
        fov_deg = vertical_fov_deg or config.tracking.default_fov(width, height)
        intrinsics = Intrinsics.from_fov(fov_deg, width, height)
        rotation_only = True

    # 3. depth
    t0 = time.perf_counter()
    depth_note = ""
    working = None
    stereo = None
    if user_depth is not None and track is not None and not rotation_only:
        obs = observations_from_points(
            track.points, poses, intrinsics, tracks=(track.obs_frame, track.obs_point, track.obs_xy),
            size=user_depth.values.shape[1:],
        )  # fmt: skip
        aligned = align_depth(user_depth.values, obs, inverse=user_depth.kind == "disparity")
        depth = np.asarray(aligned.depth, np.float32)
        depth_source = user_depth.source
        depth_note = "the user's depth, scale (and shift) fitted per frame to the tracked points"
        coverage = float(np.isfinite(depth).mean())
    elif user_depth is not None and user_depth.kind == "depth":
        depth = user_depth.values.astype(np.float32, copy=False)
        depth_source = user_depth.source
        depth_note = "the user's depth as given (no tracked points to align it to)"
        coverage = float(np.isfinite(depth).mean())
    elif user_depth is not None:
        depth = _per_frame_median(user_depth)
        depth_source = user_depth.source
        depth_note = "the model's depth, each frame scaled to the same median (no tracked points to align to)"
        coverage = float(np.isfinite(depth).mean())
    elif rotation_only:
        depth = np.broadcast_to(np.float32(np.inf), (n, height, width))
        depth_source = "none"
        depth_note = "rotation only: everything at infinity (right for a tripod shot)"
        coverage = 0.0
    else:
        stereo = estimate_depth(
            frames, intrinsics, poses, keyframes=track.keyframes if track else None,
            sparse_points=track.points if track else None, progress=report, config=config.depth,
        )  # fmt: skip
        depth = stereo.depth
        working = WorkingDepth(stereo.inverse, blend=stereo.upsample_blend)
        depth_source = "multi-view-stereo"
        depth_note = "multi-view stereo between the tracked frames"
        coverage = float(np.mean(stereo.coverage))
        warnings.extend(stereo.notes)
    seconds["depth"] = time.perf_counter() - t0

    # 4. moving objects, the frames first brought to one exposure (exposure.py: a phone's auto-exposure is no
    # moving object, and the scene then does not pump where the phone did)
    t0 = time.perf_counter()
    exposure_note = ""
    if config.dynamic.exposure is not None and n > 1:
        gains = clip_gains(frames, depth, intrinsics, poses, config.dynamic.max_side, config.dynamic.exposure)
        if np.abs(gains - 1.0).max() > 0:
            frames = at_one_exposure(frames, gains)
        if np.abs(gains - 1.0).max() > EXPOSURE_NOTE:
            exposure_note = (
                f"brought to one exposure: the frames' gains ran {gains.min():.2f}-{gains.max():.2f} of the clip's "
                "typical (a camera adjusting its exposure or white balance as it filmed)"
            )
    moving = None
    if not rotation_only:
        dynamic = replace(config.dynamic, exposure=None)  # the frames are at one exposure already
        moving = moving_masks(frames, depth, intrinsics, poses, fps=fps, progress=report, config=dynamic)
    moving_note = ""
    ground_filled = None
    ground: Ground | None = None
    if stereo is not None and moving is not None:
        report("moving-depth", 0, 1)
        placed = place_moving_objects(stereo, frames, moving, intrinsics, poses, fps, config.moving_depth)
        if placed.depth is not stereo.depth:  # objects placed, or only shadows laid on the ground
            depth = placed.depth
            working = WorkingDepth(placed.inverse, blend=stereo.upsample_blend)
        moving_note = placed.note
        ground = placed.ground
        report("moving-depth", 1, 1)
    seconds["moving"] = time.perf_counter() - t0

    # 4b. with `DepthConfig.regions` "static", each hole region's depth chosen by the source views
    # (depth_regions.py; by default it runs inside the depth stage, "fill"); then a plane per plain segment mends
    # the rest of the filled static depth (depth_planes.py); both after the moving objects, whose masks and
    # placement read the static depth around them
    t0 = time.perf_counter()
    mended_depth = False  # `working` changed since `depth` was upsampled (done once, after step 5)
    if stereo is not None and moving is not None and working is not None and config.depth.regions == "static":
        chosen, share = choose_static_regions(
            working.inverse, stereo.inverse, stereo.confident, moving, frames, intrinsics, cv_poses(poses),
            stereo.sources, config.depth, progress=lambda done, total: report("regions", done, total),
        )  # fmt: skip
        if share > 0:
            working = WorkingDepth(chosen, blend=stereo.upsample_blend)
            mended_depth = True
        seconds["regions"] = time.perf_counter() - t0  # a stage of its own only in this mode
    t0 = time.perf_counter()
    if stereo is not None and moving is not None and working is not None and config.depth.planes == "static":
        mended, share = refine_static_planes(
            working.inverse, stereo.inverse, stereo.confident, moving, frames, stereo.near, config.depth,
            progress=lambda done, total: report("planes", done, total),
        )  # fmt: skip
        if share > 0:
            working = WorkingDepth(mended, blend=stereo.upsample_blend)
            mended_depth = True
    seconds["planes"] = time.perf_counter() - t0

    # 5. the ground into the depth's holes
    t0 = time.perf_counter()
    if stereo is not None and moving is not None and working is not None and config.ground_fill.enabled:
        c2w = cv_poses(poses)
        ground = ground or static_ground(stereo, moving, intrinsics, c2w, config.moving_depth)
        if ground is not None:
            report("ground-fill", 0, 1)
            filled = fill_ground(
                working.inverse, stereo.inverse, stereo.confident, moving, frames, intrinsics, c2w, ground,
                config.depth.fill_sigma_s, config.depth.fill_sigma_r, config.ground_fill,
            )  # fmt: skip
            ground_filled = round(filled.changed, 4)
            if filled.changed > 0:
                working = WorkingDepth(filled.inverse, blend=stereo.upsample_blend)
                mended_depth = True
            report("ground-fill", 1, 1)
    if mended_depth and working is not None and stereo is not None:
        depth = upsample_frames(working.inverse, frames, stereo.upsample_blend)
    seconds["ground-fill"] = time.perf_counter() - t0

    doc: dict[str, Any] = {
        "frames_in_clip": n_in,
        "shots": [[s, e] for s, e in shots],
        "shot": number,
        "shot_chosen": "longest" if shot is None else "given",
        "kept_frames": [start, end],
        "tracking": "failed" if track is None else ("rotation only" if rotation_only else "free motion"),
        "frames_tracked": n if track is None else round(track.registered_fraction * n),
        "tracked_fraction": 0.0 if track is None else round(track.registered_fraction, 3),
        "reprojection_error_px": None if track is None else round(track.reprojection_error_px, 3),
        "vertical_fov_deg": round(intrinsics.vertical_fov_deg, 2),
        "fov_source": "given" if vertical_fov_deg else ("assumed" if track is None else track.fov_source),
        "fov_note": "" if track is None else track.fov_note,
        "depth": depth_source,
        "depth_note": depth_note,
        "depth_coverage": round(coverage, 3),
        "depth_infinite_fraction": round(float(np.isinf(depth).mean()), 3),
        "moving_fraction": None if moving is None else round(float(moving.mean()), 4),
        "moving_depth_note": moving_note,
        "ground_filled_fraction": ground_filled,
        "exposure_note": exposure_note,
        "warnings": warnings,
        "seconds": {k: round(v, 2) for k, v in seconds.items()} | {"total": round(time.perf_counter() - started, 2)},
    }
    # "rotation only" in the bundle's sense: no depth at all (the user's depth makes a fixed camera's scene 3D)
    return Capture(frames, depth, poses, intrinsics, moving, depth_source == "none", depth_source, doc, working)


def _per_frame_median(user: UserDepth) -> np.ndarray:
    """Without tracked points: each frame's depth (or inverse disparity) scaled to a common median."""
    values = user.values.astype(np.float32)
    if user.kind == "disparity":
        with np.errstate(divide="ignore"):
            values = np.where(values > 0, 1.0 / values, np.inf).astype(np.float32)
    out = np.empty_like(values)
    for i, frame in enumerate(values):
        finite = frame[np.isfinite(frame) & (frame > 0)]
        out[i] = frame / np.median(finite) if finite.size else frame
    return out
