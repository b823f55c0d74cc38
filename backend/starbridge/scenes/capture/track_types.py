"""What camera tracking (tracking.py) takes and gives: its settings, its error, its result, and the names of its
stages, pose sources and field-of-view sources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from ...errors import InvalidArgument, SceneError
from ...geometry.camera import Intrinsics, check_equivalent_focal, check_fov, fov_of_equivalent_focal

#: The warps of the refinement's patch alignment (track_refine.PatchConfig.warp).
PATCH_WARPS = ("translation", "affine", "homography")

ProgressFn = Callable[[str, int, int], None]

#: Progress stages, in order (`progress(stage, done, total)`).
STAGES = ("features", "keyframes", "matching", "mapping", "registration")

#: Where each frame's pose came from.
POSE_KEYFRAME = "keyframe"  # a keyframe posed by the map (or the rotation-only solve)
POSE_REGISTERED = "registered"  # registered against the map from its own features
POSE_INTERPOLATED = "interpolated"  # could not be registered: between its posed neighbours

#: The structure-from-motion mappers (track_mapping.py says how they differ and why "global" is the default).
MAPPERS = ("global", "incremental")

#: How the field of view was chosen.
FOV_GIVEN = "given"
FOV_ESTIMATED = "estimated"
FOV_DEFAULT = "default"
FOV_VANISHING = "vanishing points"  # the scene's right angles decided (the motion did not, or less surely)
FOV_STRUCTURE = "walls and ground"  # the scene's 3D structure decided: walls upright on the ground


class TrackingError(SceneError):
    """The camera could not be tracked; `reason` says why in one word, the message in plain words."""

    REASONS = ("too_short", "too_dark", "featureless", "no_track", "internal")

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, field="frames")
        self.reason = reason


@dataclass(frozen=True)
class TrackingConfig:
    #: Frames are tracked at most this many pixels on the long side (poses do not depend on resolution).
    max_side: int = 640
    #: SIFT features per image, at most.
    max_features: int = 2048
    #: Fewer frames than this is "too short".
    min_frames: int = 3
    #: Fewer quick features per frame (median) than this is "featureless" (or "too dark").
    min_features: int = 40
    #: Mean brightness (0..255) below which featureless frames are reported as too dark.
    dark_brightness: float = 30.0
    #: A new keyframe once features moved this fraction of the image diagonal (median) since the last...
    keyframe_motion: float = 0.03
    #: ...or after this many frames (0: a fifteenth of the clip, at least 3)...
    keyframe_max_gap: int = 0
    #: ...or when fewer features than this still match the last keyframe.
    keyframe_min_matches: int = 40
    #: Each keyframe is matched with the next `match_window` keyframes and with those `loop_offsets` further.
    match_window: int = 3
    loop_offsets: tuple[int, ...] = (6, 12, 24)
    #: Pairs of keyframes with fewer verified matches are dropped.
    min_pair_inliers: int = 20
    #: The candidates are mapped with every other keyframe when there are more keyframes than this.
    coarse_keyframes: int = 14
    #: Candidate vertical fields of view, degrees, in the order tried (the first is the usual guess).
    fov_candidates_deg: tuple[float, ...] = (60.0, 40.0, 50.0, 70.0, 80.0, 90.0)
    #: Estimates outside this range are not trusted (degrees, vertical).
    fov_range_deg: tuple[float, float] = (25.0, 110.0)
    #: Field of view assumed where neither the motion nor the scene measures it (a fixed camera, a dolly, a
    #: failed track), and the centre of the prior below, degrees vertical; None: that of a lens of
    #: `default_focal_35mm` over the clip's frame (`default_fov`).
    default_fov_deg: float | None = None
    #: 35 mm-equivalent focal length assumed (on the diagonal): 26 mm, a phone's main camera (most are 24-28 mm,
    #: drones' 24): 44.4 degrees vertical for 16:9 in landscape, 71.9 in portrait, 36.1 for 2.35:1 cinema.
    #: Until this round the default was a fixed 60 degrees vertical, which across a 16:9 frame is 91.5 (an
    #: action camera's, not a phone's) and in portrait is narrower than a phone. bench_capture's 40-frame
    #: 320x180 clips (filmed at 48; fields of view estimated): the dolly, whose motion measures nothing, 60.0
    #: -> 44.4 assumed, novel-view PSNR 16.89 -> 19.37 dB; where the prior pulls a weak estimate: orbit 49.87
    #: -> 49.50 (20.96 -> 21.82 dB), moving 48.17 -> 48.00 (26.92 -> 27.31), handheld 46.96 -> 46.70 (23.22 ->
    #: 22.42; bench/results/capture-vm.json). The real bikes.mp4 shot (frames 187-241, 2.35:1, a sideways
    #: walk: its refinements land on 43-47, not accepted as agreeing; its true field of view is unknown) is
    #: assumed at 36.1 instead of 60.
    default_focal_35mm: float = 26.0
    #: How the default was chosen, for the report (set by `for_frames`, or `with_lens`).
    default_fov_words: str = ""
    #: The default is the lens the clip's metadata names (`with_lens`): the warnings' advice says so.
    default_from_metadata: bool = False
    #: The estimate's standard deviation: the bundle adjustment's (which assumes independent feature errors;
    #: they are not quite, the same texture is found in neighbouring keyframes) times this, combined with
    #: a floor for what the model leaves out (moving objects, compression) and the spread of the refinements.
    fov_sigma_inflation: float = 3.0
    fov_sigma_floor_deg: float = 1.0
    #: An estimate less certain than this (standard deviation, degrees) is reported as poorly determined...
    fov_tolerance_deg: float = 3.0
    #: ...and one less certain than this (or a fit without a minimum) is not used: the default is assumed.
    fov_unmeasurable_deg: float = 12.0
    #: The focal length is measured by a second free-focal adjustment without the observations that reproject
    #: further than this many times the first one's mean reprojection error: features on occlusion edges,
    #: aliased texture and moving objects pull it (measured on the ground-truth clips, handheld: 60.6 -> 60.0
    #: degrees, true 60). How far the first adjustments from the candidates disagree still says how well the
    #: motion measures it.
    fov_inlier_factor: float = 2.0
    #: Cameras that travel within `fov_forward_deg` of their viewing direction and turn less than
    #: `fov_min_turn_deg` (a vehicle, a dolly; the median over the candidates' models) do not measure the
    #: field of view: the default is assumed, even when the adjustments happen to agree (measured: a 2 m dolly
    #: with a 6 degree pan, true 60, gave 68-77; its models put the path 4-5 degrees off the view, one
    #: distorted model 54; the walks and orbits 82-90 degrees).
    fov_forward_deg: float = 45.0
    fov_min_turn_deg: float = 10.0
    #: At most this many bundle adjustments with the focal length free on all keyframes (mapping again at
    #: each result) to reach the fixed point.
    fov_refinements: int = 3
    #: Where COLMAP's mapper cannot map all keyframes together at the chosen field of view (it fails at some
    #: focal lengths and not a fraction of a degree away: world 1's orbit, 0 keyframes at 50.0 and 50.2, all
    #: 14 at 50.5), it is tried this many degrees either side, then twice that, before a candidate's estimate
    #: farther off (which then is named, with a warning; it was used silently: 58.1 where the walls said
    #: 50.2, true 48).
    fov_retry_step_deg: float = 0.3
    #: Prior on the field of view: default_fov_deg +- this (0: none). It only matters where the motion
    #: measures the field of view poorly (it pulls a +-1 degree estimate by less than 0.01 degree).
    fov_prior_sigma_deg: float = 15.0
    #: The prior's spread when the clip's own metadata names its lens (`with_lens`; video_meta.py): the
    #: lens the camera reports, which the video frame can show narrower than its equivalent focal length over
    #: the frame's diagonal says: a 16:9 crop of a 4:3 sensor's full width (26 mm: 41.0 degrees vertical
    #: instead of 44.4), and stabilisation's few per cent more: about 4 degrees.
    lens_prior_sigma_deg: float = 4.0
    #: The vanishing points' cue (track_vanishing.py) is combined with the motion's estimate when it agrees
    #: with it within this many combined standard deviations (else the motion's is kept if it is within
    #: fov_tolerance_deg, the surer one if not); fov_vanishing False: not searched.
    fov_cue_agreement: float = 3.0
    fov_vanishing: bool = True
    #: Where the motion measures the field of view less surely than `fov_structure_above_deg` (standard
    #: deviation; 0: always), the walls' lean against the ground in the candidates' models (track_structure.py)
    #: is a third cue; False: not searched (it costs a stereo pass of a few keyframes per model tried, 2-4).
    fov_structure: bool = True
    fov_structure_above_deg: float = 3.0
    #: COLMAP's mapper for the keyframes: "global" (rotation averaging, then positions and points) or
    #: "incremental" (pair by pair from a starting pair; it let forward motion drift: track_mapping.py).
    mapper: str = "global"
    #: The incremental mapper's initial pair needs at least this triangulation angle, degrees.
    init_min_tri_angle_deg: float = 4.0
    #: Structure from motion is tried at these inlier thresholds in turn (tracking pixels), the next only when
    #: the previous could not map the keyframes or its map places fewer than `warn_registered_fraction` of the
    #: frames (the one that placed most is kept; tracking.py's `_structure`): each keyframe pair's two-view
    #: geometry re-estimated from its verified matches within the threshold, and the mapper's initial pair
    #: held to it (its other limits:
    #: 4 px for a new keyframe's pose, 2 px for a point's observations, while the threshold is under 4; at 4,
    #: COLMAP's own defaults of 12 and 4). COLMAP's 4-pixel default is made for photographs thousands of
    #: pixels wide; at the tracking size it let one homography explain a textured ground seen while travelling
    #: forward, and the mapper started from its decomposition, with the camera's travel 60-90 degrees off:
    #: vehicle dollies in 6 of 10 procedural worlds were tracked 7-12 degrees off or not at all, FOV given
    #: (bench/bench_tracking_worlds.py). The pairs' first verification (4 px) still decides rotation only.
    map_max_error_px: tuple[float, ...] = (0.7, 1.0, 4.0)
    #: The clip is solved as rotation only when the keyframes' matches fit a pure rotation nearly as well as
    #: their noise allows: the 90th percentile of the rotation's transfer errors at most this many times
    #: that of their Sampson distances to per-pair fundamental matrices (measured: tripod pans and fixed
    #: cameras 2.4-3.7; the procedural walks, orbits and dollies 7.7-16, also tracked at 256x144; with the
    #: boxes' patterns filtered over the pixel, the 48-frame 384x216 pan 5.07-5.4 (its second half sees mostly
    #: the tiled ground: adjacent keyframes fit a rotation to a 2-3 px median), the 320x180 ones 3.6-3.9; the
    #: walks, orbits, dollies and walks among movers of worlds 0-2 8.0-23.1, bench/bench_tracking_worlds.py's
    #: `m`: the threshold between, near their geometric mean)...
    rotation_max_misfit: float = 6.5
    #: ...that Sampson percentile taken at most this (px at the tracking size): the matches of a rigid scene
    #: measure 0.23 (Big Buck Bunny's fixed camera) to 0.65 (the procedural clips); carphone's, a man talking in
    #: a car with the street passing the window, 1.43, which is not noise but content that moves, and divided by
    #: it a rotation fitting to 8.8 px (p90) read 6.15 and was taken for a fixed camera's turns (up to 3.5
    #: degrees, 2.4 px mean error): capped, its ratio is 11, and it is tracked as before (free motion, 82%).
    rotation_noise_cap_px: float = 0.8
    #: ...and also when structure from motion fails, or its cameras hardly move, if they fit it this well.
    rotation_fallback_misfit: float = 8.0
    #: A map whose cameras travel less than this fraction of the median scene depth counts as rotation only.
    min_travel_ratio: float = 0.01
    #: Fewer tracked frames (keyframes posed + registered) than this fraction is a failure.
    min_registered_fraction: float = 0.3
    #: Warn when fewer frames than this fraction are tracked.
    warn_registered_fraction: float = 0.9
    #: A frame is registered with at least this many inlier 2D-3D matches, this fraction of them in front of
    #: the camera, turned at most this many degrees from the nearest keyframe (else it is interpolated).
    min_register_inliers: int = 20
    min_register_in_front: float = 0.9
    max_register_turn_deg: float = 45.0
    #: After registration, one bundle adjustment of every posed frame (keyframes and registered frames) with
    #: the map's points, the focal length fixed (track_refine.py).
    final_adjustment: bool = True
    #: Before it, every observation within `refine_patch_frames` frames of its point's middle one is moved onto
    #: that one's image patch (Lucas-Kanade, track_refine.py): the detector's positions drift with the view.
    refine_patches: bool = True
    refine_patch_frames: int = 40
    #: The patch's warp in that alignment: "homography", "affine" or "translation" (track_refine.PatchConfig.warp
    #: says why).
    refine_patch_warp: str = "homography"
    #: Where the motion or the walls chose the field of view, it is then measured once more by every frame's
    #: refined observations: the same adjustment with the focal length free and a Cauchy loss of this scale
    #: (pixels; 0: not done), then the usual one at that focal length. The refined observations are precise
    #: (median 0.1 px against the truth) but some are not (along the ground tiles' stripes 0.4-0.8 px, at depth
    #: edges a tail to several pixels), and at the usual scale (0.5) those pull the focal length 0.3-1.8
    #: degrees off (bench_fov_valley.py); at 0.1 they hardly weigh. Twelve walks, orbits and walks among
    #: moving objects of worlds 0-3 (filmed at 48, through H.264): the search's mean error 1.01 degrees ->
    #: 0.50 with this (0.46 at 0.05; 0.02-1.59 each, worst world 2's walk among moving objects 45.9 -> 49.6).
    fov_refit_loss_px: float = 0.1
    #: ...its result is kept only this close to the chosen value (degrees), with this standard deviation (the
    #: root mean square of those twelve errors).
    fov_refit_max_shift_deg: float = 5.0
    fov_refit_sigma_deg: float = 0.7
    #: ...and that adjustment stops after this many iterations (at 40 frames it lands the same after 20 as after
    #: 50, the usual adjustments' cap: walk / orbit / walk among moving objects 48.09 / 48.56 / 48.77 against
    #: 48.09 / 48.53 / 48.77; after 10 48.05 / 48.53 / 48.76, after 5 47.75 / 48.26 / 48.39).
    fov_refit_iterations: int = 20
    #: The refinement's adjustments stop once an iteration gains less than this fraction of the cost
    #: (track_refine.RefineConfig.function_tolerance; 0: only after their iterations).
    refine_function_tolerance: float = 1e-6
    #: The scale of the refinement's adjustments' Cauchy loss, pixels (track_refine.RefineConfig.loss_scale_px,
    #: 0.5 there: before the patch alignment the observations fit to a third of a pixel). The refined
    #: observations are precise (median 0.1 px against the truth) but some carry structured errors of 0.4-0.8
    #: px (T-junctions, the ground's stripes) that drift smoothly over the frames: at 0.5 they weigh fully and
    #: pull a sideways walk's yaw rate, a direction the motion barely measures (turning every stereo pair's
    #: inverse depth alike: far things placed too far). At 0.1 the precise majority decides, as in the field of
    #: view's refit. The depth stage on world 2's walk among moving objects (bench/bench_depth_cameras.py):
    #: inverse-depth offset 8-60 m -5.5 per km -> -1.5 (the true cameras +0.2), AbsRel 0.162 -> 0.097 (0.085).
    #: bench_capture_variants.py's sixteen clips, field of view given, 0.5 / 0.2 / 0.1: mean novel-view gap
    #: 1.388 / 1.366 / 1.304 dB, within 2 dB 15 / 14 / 14, AbsRel 0.0912 / 0.0863 / 0.0849, within 0.10 13 / 15
    #: / 15 (bench/results/capture-variants-vm-refine-loss.json; docs/capture-measurements.md, session 53).
    refine_loss_px: float = 0.1
    #: Threads for SIFT and matching (-1: all cores)...
    num_threads: int = -1
    #: ...and for COLMAP's mapper and bundle adjustment (1: the same clip always gives the same result).
    mapping_threads: int = 1
    #: Seed of every random choice (RANSAC, the mapper): the same clip gives the same result.
    seed: int = 0

    def __post_init__(self) -> None:
        valid = self.max_side >= 64 and self.min_frames >= 2 and bool(self.fov_candidates_deg)
        valid &= bool(self.map_max_error_px) and min(self.map_max_error_px) > 0
        valid &= self.rotation_noise_cap_px > 0 and self.fov_retry_step_deg >= 0
        valid &= self.fov_refit_loss_px >= 0 and self.fov_refit_max_shift_deg > 0 and self.fov_refit_sigma_deg > 0
        valid &= self.fov_refit_iterations >= 1 and 0 <= self.refine_function_tolerance < 1
        valid &= self.refine_loss_px > 0
        if not (valid and self.fov_inlier_factor > 0 and 0 <= self.fov_forward_deg <= 90):
            raise InvalidArgument(
                "tracking config: max_side >= 64, min_frames >= 2, some candidates, some positive "
                f"map_max_error_px, rotation_noise_cap_px > 0, fov_inlier_factor > 0, fov_forward_deg in [0, 90], "
                f"fov_retry_step_deg >= 0, fov_refit_loss_px >= 0, fov_refit_max_shift_deg and "
                f"fov_refit_sigma_deg > 0, fov_refit_iterations >= 1, refine_function_tolerance in [0, 1), "
                f"refine_loss_px > 0: {self}"
            )
        if self.mapper not in MAPPERS:
            raise InvalidArgument(f"tracking config: mapper must be one of {', '.join(MAPPERS)}, got {self.mapper!r}")
        if self.refine_patch_warp not in PATCH_WARPS:
            raise InvalidArgument(
                f"tracking config: refine_patch_warp must be one of {', '.join(PATCH_WARPS)}, "
                f"got {self.refine_patch_warp!r}"
            )
        for fov in self.fov_candidates_deg:
            check_fov(fov, "fov_candidates_deg")
        if self.default_fov_deg is not None:
            check_fov(self.default_fov_deg, "default_fov_deg")
        check_equivalent_focal(self.default_focal_35mm, "default_focal_35mm")
        if not self.lens_prior_sigma_deg > 0:
            raise InvalidArgument(
                f"tracking config: lens_prior_sigma_deg must be > 0, got {self.lens_prior_sigma_deg}",
                field="lens_prior_sigma_deg",
            )

    @property
    def assumed_fov_deg(self) -> float:
        """`default_fov_deg` once set (track_camera sets it for the clip with `for_frames`)."""
        if self.default_fov_deg is None:
            raise InvalidArgument(
                "tracking config: no default field of view for this clip yet (for_frames sets it)",
                field="default_fov_deg",
            )
        return self.default_fov_deg

    def default_fov(self, width: int, height: int) -> float:
        """The field of view assumed for a `width` x `height` clip, degrees vertical (`default_fov_deg`)."""
        if self.default_fov_deg is not None:
            return self.default_fov_deg
        return fov_of_equivalent_focal(self.default_focal_35mm, width, height)

    def for_frames(self, width: int, height: int) -> TrackingConfig:
        """This config with `default_fov_deg` (and the words that say where it comes from) set for a `width` x
        `height` clip."""
        if self.default_fov_deg is not None:
            return self
        words = self.default_fov_words or f" (a {self.default_focal_35mm:g} mm-equivalent lens, a phone's main camera)"
        return replace(self, default_fov_deg=self.default_fov(width, height), default_fov_words=words)

    def with_lens(self, focal_35mm: float) -> TrackingConfig:
        """This config with the lens a clip's metadata names as its default and the prior's centre, the prior
        `lens_prior_sigma_deg` wide: the motion and the scene still measure the field of view where they can."""
        check_equivalent_focal(focal_35mm, "focal_35mm")
        words = f" (the {focal_35mm:g} mm-equivalent lens the clip's metadata names)"
        return replace(
            self, default_fov_deg=None, default_focal_35mm=focal_35mm, default_fov_words=words,
            fov_prior_sigma_deg=self.lens_prior_sigma_deg, default_from_metadata=True,
        )  # fmt: skip

    @property
    def fov_hint(self) -> str:
        """What the user can do about a field of view that was assumed or poorly measured."""
        if self.default_from_metadata:
            return "the clip's metadata names its lens; give the field of view if the video shows less of it"
        return "give the true one, or the lens's 35 mm-equivalent focal length, if you know it"


@dataclass(frozen=True)
class FovScore:
    """One mapping run at a fixed field of view: what it registered, how well its points reproject, and
    where bundle adjustment with the focal length free moved it, without its outliers (nan: not tried or
    implausible)."""

    vertical_fov_deg: float
    #: "candidate" (every other keyframe when there are many), "consensus" (all keyframes at the median of
    #: the candidates' refinements), "refine" (mapped again at a refinement), "final" (at the estimate),
    #: "given".
    stage: str
    registered_keyframes: int
    num_points: int
    mean_error_px: float
    refined_fov_deg: float


@dataclass(frozen=True)
class TrackResult:
    """Every frame's camera, the intrinsics, the sparse points, and how far to trust them."""

    #: (N, 4, 4) float64 wire camera-to-world; frame 0 the identity; arbitrary scale (median point depth 1).
    poses: np.ndarray = field(repr=False)
    #: Pinhole intrinsics at the input frames' resolution (square pixels, centred principal point).
    intrinsics: Intrinsics
    vertical_fov_deg: float
    #: FOV_GIVEN, FOV_ESTIMATED (the motion decided), FOV_VANISHING (the vanishing points did) or FOV_DEFAULT;
    #: `fov_note` says how, in words.
    fov_source: str
    fov_note: str
    #: Standard deviation of the estimate, degrees: 0 when given, inf when assumed, nan for rotation only (the
    #: vanishing points' when they decided).
    fov_uncertainty_deg: float
    #: Every mapping run's score (one when the FOV was given).
    fov_scores: tuple[FovScore, ...]
    #: How much worse than the matches' noise a pure rotation fits them (90th percentiles; rotation only is
    #: chosen at TrackingConfig.rotation_max_misfit or less).
    rotation_misfit: float
    #: The camera only rotates: translations are zero, there are no sparse points.
    rotation_only: bool
    #: Per frame: POSE_KEYFRAME, POSE_REGISTERED or POSE_INTERPOLATED.
    pose_sources: tuple[str, ...]
    keyframes: tuple[int, ...]
    #: (M, 3) float64 sparse points in the poses' world; (M,) reprojection error, input pixels; (M, 3) colour.
    points: np.ndarray = field(repr=False)
    point_errors: np.ndarray = field(repr=False)
    point_colors: np.ndarray = field(repr=False)
    #: Observations, flat: frame index (K,), point index (K,), 2D position in input pixels (K, 2).
    obs_frame: np.ndarray = field(repr=False)
    obs_point: np.ndarray = field(repr=False)
    obs_xy: np.ndarray = field(repr=False)
    #: Fraction of frames with a pose from the map or their own registration (the rest interpolated).
    registered_fraction: float
    #: Mean reprojection error of the observations (rotation only: the median transfer error of the keyframe
    #: matches), input pixels.
    reprojection_error_px: float
    #: Plain-words problems ("only 40% of frames could be tracked", ...); empty when all went well.
    warnings: tuple[str, ...]
    #: Wall time, seconds, in all and per stage.
    seconds: float
    stage_seconds: tuple[tuple[str, float], ...] = ()

    @property
    def num_frames(self) -> int:
        return len(self.poses)

    def observations(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """(K, 2) input-pixel positions and (K,) point indices of the sparse points seen in `frame`."""
        sel = self.obs_frame == frame
        return self.obs_xy[sel], self.obs_point[sel]

    def point_depths(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """(K, 2) input-pixel positions and (K,) z-depths (along the view direction, > 0) of the sparse
        points seen in `frame`, in the poses' scale."""
        xy, ids = self.observations(frame)
        if len(ids) == 0:
            return xy, np.zeros(0)
        world_to_cam = np.linalg.inv(self.poses[frame])
        cam = self.points[ids] @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
        return xy, -cam[:, 2]

    def summary(self) -> str:
        """One paragraph in plain words."""
        kind = "rotation only (tripod)" if self.rotation_only else "free motion"
        counts = {s: self.pose_sources.count(s) for s in (POSE_KEYFRAME, POSE_REGISTERED, POSE_INTERPOLATED)}
        text = (
            f"{self.num_frames} frames tracked as {kind}: {counts[POSE_KEYFRAME]} keyframes, "
            f"{counts[POSE_REGISTERED]} registered, {counts[POSE_INTERPOLATED]} interpolated; "
            f"{len(self.points)} sparse points, mean reprojection error {self.reprojection_error_px:.2f} px; "
            f"vertical field of view {self.vertical_fov_deg:.1f} degrees ({self.fov_note}); {self.seconds:.1f} s."
        )
        if self.warnings:
            text += " Warnings: " + " ".join(self.warnings)
        return text
