"""Camera tracking: every frame's pose and the field of view, from the video alone (pycolmap, CPU).

`track_camera(frames)` runs, with `progress(stage, done, total)` per stage:

1. ``features``: quick SIFT features of every frame (at most `max_side` pixels on the long side);
2. ``keyframes``: keyframes where the features moved enough since the last one (or overlap is running out);
3. ``matching``: dense SIFT on the keyframes; each matched with the next few and with a few far ones (cheap
   loop closure), kept by epipolar geometry (no focal length assumed);
4. ``mapping``: first, do the keyframes fit a pure rotation (a tripod pan, a fixed camera) nearly as well as
   their noise allows? Then the clip is solved as rotation only (track_rotation.py: rotations and the focal
   length from the homographies, translations zero). Else COLMAP's incremental mapper runs on the keyframes
   with the focal length *fixed* (self-calibration from scratch is fragile on short clips): once per candidate
   field of view (60, then 40..90 degrees; every other keyframe when there are many); from each model that
   registered (nearly) the most keyframes, one bundle adjustment with the focal length free; all keyframes
   mapped at the median of those, adjusted with the focal length free and mapped again until the value stays
   put. Its uncertainty combines the spread of the candidates' refinements with the last adjustment's
   covariance; where the motion does not measure the field of view (straight ahead, circling one point,
   barely moving) the candidates disagree and the default (60) is assumed, said so in a warning. A given
   `vertical_fov_deg` is used as is (one mapping run). Should mapping fail, or its cameras hardly move, a
   rotation that fits fairly well is used instead;
5. ``registration``: every other frame is registered against the map (2D-3D matches with its neighbouring
   keyframes, RANSAC + refinement at the fixed focal length; for rotation only, its rotation from matches
   with them); a frame that cannot be is interpolated between its neighbours (`pose_sources` says which).

Poses are returned in the wire convention (camera-to-world, camera looking down -Z, +Y up; see
geometry/conventions.py) with frame 0 at the identity, in the reconstruction's arbitrary scale, normalised so
the median depth of the sparse points over all observations is 1 (the pipeline rescales). Sparse points are in
the same world; observations tie each frame's 2D points (input pixels, centre of the top-left pixel at
(0.5, 0.5)) to point ids, and `point_depths(frame)` gives their z-depths, for depth alignment and scaling.

Failure (too short, too dark, featureless, nothing trackable) raises `TrackingError` (a SceneError) whose
`reason` is one of TrackingError.REASONS and whose message says what to do; partial success returns a
result with plain-words `warnings`. COLMAP's working files live in a temporary folder removed on return.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pycolmap
from scipy.spatial.transform import Rotation, Slerp

from ...errors import InvalidArgument, SceneError, StarBridgeError
from ...geometry.camera import Intrinsics, check_fov
from ...geometry.conventions import cv_to_wire
from .track_features import FeatureEngine, Features, TrackImages, keyframe_pairs, prepare_images, select_keyframes
from .track_mapping import MapBuilder, MapRun, focal_of, fov_of, model_arrays
from .track_rotation import (
    PairMatches,
    RotationSolution,
    epipolar_noise,
    estimate_focal,
    pair_matches,
    register_rotation,
    solve_rotations,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]

#: Progress stages, in order (`progress(stage, done, total)`).
STAGES = ("features", "keyframes", "matching", "mapping", "registration")

#: Where each frame's pose came from.
POSE_KEYFRAME = "keyframe"  # a keyframe posed by the map (or the rotation-only solve)
POSE_REGISTERED = "registered"  # registered against the map from its own features
POSE_INTERPOLATED = "interpolated"  # could not be registered: between its posed neighbours

#: How the field of view was chosen.
FOV_GIVEN = "given"
FOV_ESTIMATED = "estimated"
FOV_DEFAULT = "default"


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
    #: Field of view assumed when the motion cannot measure it (a static or nearly static camera).
    default_fov_deg: float = 60.0
    #: The estimate's standard deviation: the bundle adjustment's (which assumes independent feature errors;
    #: they are not quite, the same texture is found in neighbouring keyframes) times this, combined with
    #: a floor for what the model leaves out (moving objects, compression) and the spread of the refinements.
    fov_sigma_inflation: float = 3.0
    fov_sigma_floor_deg: float = 1.0
    #: An estimate less certain than this (standard deviation, degrees) is reported as poorly determined...
    fov_tolerance_deg: float = 3.0
    #: ...and one less certain than this (or a fit without a minimum) is not used: the default is assumed.
    fov_unmeasurable_deg: float = 12.0
    #: At most this many bundle adjustments with the focal length free on all keyframes (mapping again at
    #: each result) to reach the fixed point.
    fov_refinements: int = 3
    #: Prior on the field of view: default_fov_deg +- this (0: none). It only matters where the motion
    #: measures the field of view poorly (it pulls a +-1 degree estimate by less than 0.01 degree).
    fov_prior_sigma_deg: float = 15.0
    #: The mapper's initial pair needs at least this triangulation angle, degrees.
    init_min_tri_angle_deg: float = 4.0
    #: The clip is solved as rotation only when the keyframes' matches fit a pure rotation nearly as well as
    #: their noise allows: the 90th percentile of the rotation's transfer errors at most this many times
    #: that of their Sampson distances to per-pair fundamental matrices (measured: tripod pans and fixed
    #: cameras 2.4-3.7; the procedural walks, orbits and dollies 7.7-16, also tracked at 256x144)...
    rotation_max_misfit: float = 5.0
    #: ...and also when structure from motion fails, or its cameras hardly move, if they fit it this well.
    rotation_fallback_misfit: float = 8.0
    #: A map whose cameras travel less than this fraction of the median scene depth counts as rotation only.
    min_travel_ratio: float = 0.01
    #: Fewer tracked frames (keyframes posed + registered) than this fraction is a failure.
    min_registered_fraction: float = 0.3
    #: Warn when fewer frames than this fraction are tracked.
    warn_registered_fraction: float = 0.9
    #: A frame is registered with at least this many inlier 2D-3D matches.
    min_register_inliers: int = 20
    #: Threads for SIFT and matching (-1: all cores)...
    num_threads: int = -1
    #: ...and for COLMAP's mapper and bundle adjustment (1: the same clip always gives the same result).
    mapping_threads: int = 1
    #: Seed of every random choice (RANSAC, the mapper): the same clip gives the same result.
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_side < 64 or self.min_frames < 2 or not self.fov_candidates_deg:
            raise InvalidArgument(f"tracking config: max_side >= 64, min_frames >= 2, some candidates: {self}")
        for fov in (*self.fov_candidates_deg, self.default_fov_deg):
            check_fov(fov, "fov_candidates_deg")


@dataclass(frozen=True)
class FovScore:
    """One mapping run at a fixed field of view: what it registered, how well its points reproject, and
    where bundle adjustment with the focal length free moved it (nan: not tried or implausible)."""

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
    #: FOV_GIVEN, FOV_ESTIMATED or FOV_DEFAULT; `fov_note` says how, in words.
    fov_source: str
    fov_note: str
    #: Standard deviation of the estimate, degrees: 0 when given, inf when assumed, nan for rotation only.
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


# ------------------------------------------------------------------------------------------------ API


def track_camera(
    frames: np.ndarray,
    *,
    vertical_fov_deg: float | None = None,
    progress: ProgressFn | None = None,
    config: TrackingConfig = TrackingConfig(),
) -> TrackResult:
    """Track the camera of (N, H, W, 3) uint8 RGB frames. See the module docstring.

    `vertical_fov_deg`: the camera's vertical field of view when known (used as is); else it is estimated.
    Raises TrackingError (a SceneError) when the clip cannot be tracked, InvalidArgument for bad arguments.
    """
    frames = _check_frames(frames)
    if vertical_fov_deg is not None:
        check_fov(vertical_fov_deg)
    n = len(frames)
    if n < config.min_frames:
        raise TrackingError(
            "too_short",
            f"the clip is too short to track: {n} frame{'s' if n != 1 else ''}, camera tracking needs at least "
            f"{config.min_frames} (a second or more of video works best)",
        )
    tracker = _Tracker(frames, vertical_fov_deg, progress, config)
    try:
        with _quiet_colmap(), tempfile.TemporaryDirectory(prefix="starbridge-track-") as tmp:
            return tracker.run(Path(tmp))
    except StarBridgeError:
        raise
    except Exception as exc:  # COLMAP's checks raise ValueError/RuntimeError: report, never a traceback
        log.debug("camera tracking failed", exc_info=True)
        raise TrackingError("internal", f"camera tracking failed inside COLMAP: {exc}") from exc


# ----------------------------------------------------------------------------------------- internals


def _check_frames(frames: np.ndarray) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise InvalidArgument(
            f"frames must be an (N, H, W, 3) uint8 RGB array, got {arr.dtype} {arr.shape}", field="frames"
        )
    if arr.shape[1] < 16 or arr.shape[2] < 16:
        raise InvalidArgument(
            f"frames must be at least 16x16 pixels, got {arr.shape[2]}x{arr.shape[1]}", field="frames"
        )
    return arr


@contextlib.contextmanager
def _quiet_colmap() -> Iterator[None]:
    """COLMAP logs every step to stderr (and the failures tracking handles as errors): quiet while tracking."""
    old = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 3
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = old


@dataclass
class _Poses:
    """Per-frame OpenCV world-to-camera 3x4 poses as they are found, and their sources."""

    n: int
    w2c: dict[int, np.ndarray] = field(default_factory=dict)
    source: dict[int, str] = field(default_factory=dict)

    def set(self, frame: int, pose: np.ndarray, source: str) -> None:
        self.w2c[frame] = pose
        self.source[frame] = source


class _Tracker:
    """One tracking run: the stages in order, and what they found so far."""

    def __init__(
        self, frames: np.ndarray, fov: float | None, progress: ProgressFn | None, config: TrackingConfig
    ) -> None:
        self.frames = frames
        self.n = len(frames)
        self.given_fov = fov
        self.progress = progress
        self.cfg = config
        self.threads = config.num_threads if config.num_threads > 0 else (os.cpu_count() or 1)
        self.engine = FeatureEngine(max_features=config.max_features, num_threads=self.threads, seed=config.seed)
        self.warnings: list[str] = []
        self.stage_seconds: list[tuple[str, float]] = []
        self._stage_start = time.perf_counter()
        # what the stages find
        self.images: TrackImages | None = None
        self.quick: list[Features] = []
        self.keyframes: list[int] = []
        self.dense: list[Features] = []
        self.geometries: dict[tuple[int, int], pycolmap.TwoViewGeometry] = {}
        self.fov_scores: list[FovScore] = []
        self.fov_sigma = math.nan
        self.fov_note = ""
        self.fov_source = FOV_ESTIMATED
        self.rotation_misfit = math.nan
        self.model_points = np.zeros((0, 3))
        self.model_errors = np.zeros(0)
        self.model_colors = np.zeros((0, 3), np.uint8)
        self._pairs: list[PairMatches] | None = None
        #: (frame, input-pixel positions (K, 2), point rows (K,)) per posed frame
        self.obs: list[tuple[int, np.ndarray, np.ndarray]] = []

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the tracking images."""
        assert self.images is not None
        return self.images.size

    @property
    def scale(self) -> float:
        """Input pixels per tracking pixel."""
        assert self.images is not None
        return self.images.scale

    # --------------------------------------------------------------------------------- bookkeeping

    def report(self, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(stage, done, total)

    def stage_done(self, stage: str) -> None:
        now = time.perf_counter()
        self.stage_seconds.append((stage, now - self._stage_start))
        self._stage_start = now

    # ------------------------------------------------------------------------------------- stages

    def run(self, workdir: Path) -> TrackResult:
        start = time.perf_counter()
        cfg = self.cfg
        engine = self.engine
        self.images = images = prepare_images(self.frames, cfg.max_side)

        for i in range(self.n):
            self.quick.append(engine.extract(images.grey[i], dense=False))
            self.report("features", i + 1, self.n)
        self._check_texture([len(q) for q in self.quick], images.brightness)
        self.stage_done("features")

        self.keyframes = select_keyframes(
            engine,
            self.quick,
            min_motion_px=cfg.keyframe_motion * images.diagonal,
            max_gap=cfg.keyframe_max_gap or max(3, round(self.n / 15)),
            min_matches=cfg.keyframe_min_matches,
            progress=lambda done: self.report("keyframes", done, self.n),
        )
        self.report("keyframes", self.n, self.n)
        self.stage_done("keyframes")

        pairs = keyframe_pairs(len(self.keyframes), cfg.match_window, cfg.loop_offsets)
        total = len(self.keyframes) + len(pairs)
        for k, frame in enumerate(self.keyframes):
            self.dense.append(engine.extract(images.grey[frame], dense=True))
            self.report("matching", k + 1, total)
        for p, (a, b) in enumerate(pairs):
            geometry = engine.verify(self.dense[a], self.dense[b], images.size, cfg.min_pair_inliers)
            if geometry is not None:
                self.geometries[(a, b)] = geometry
            self.report("matching", len(self.keyframes) + p + 1, total)
        self.stage_done("matching")
        if not self.geometries:
            raise TrackingError(
                "no_track",
                "could not track the camera: no two keyframes share enough features (a series of unrelated shots, "
                "or very blurred? split it into shots first)",
            )
        self._warn_breaks()

        builder = MapBuilder(
            workdir,
            images.size,
            self.dense,
            self.geometries,
            num_threads=cfg.mapping_threads if cfg.mapping_threads > 0 else self.threads,
            seed=cfg.seed,
            init_min_tri_angle_deg=cfg.init_min_tri_angle_deg,
        )
        outcome = self._map(builder)
        self.stage_done("mapping")
        poses = (
            self._register_rotation(outcome) if isinstance(outcome, RotationSolution) else self._register_map(outcome)
        )
        self.stage_done("registration")
        return self._result(poses, outcome, time.perf_counter() - start)

    def _check_texture(self, counts: list[int], brightness: float) -> None:
        median = float(np.median(counts))
        if median >= self.cfg.min_features:
            return
        if brightness < self.cfg.dark_brightness:
            raise TrackingError(
                "too_dark",
                f"the video is too dark to track the camera: mean brightness {brightness:.0f}/255 and only "
                f"{median:.0f} distinctive points per frame (tracking needs {self.cfg.min_features}); "
                "use a brighter clip, or import it as a fixed (rotation-only) camera",
            )
        raise TrackingError(
            "featureless",
            f"the frames show too little texture to track the camera: {median:.0f} distinctive points per frame "
            f"(tracking needs {self.cfg.min_features}); blank walls, sky, fog or heavy blur cannot be tracked; "
            "import it as a fixed (rotation-only) camera instead",
        )

    def _warn_breaks(self) -> None:
        linked = {a for a, b in self.geometries} | {b for a, b in self.geometries}
        lonely = [self.keyframes[k] for k in range(len(self.keyframes)) if k not in linked]
        if lonely:
            self.warnings.append(
                f"{len(lonely)} keyframe{'s' if len(lonely) != 1 else ''} (frame {', '.join(map(str, lonely[:5]))}"
                f"{', ...' if len(lonely) > 5 else ''}) matched no other: blur, a cut or a fast move there"
            )

    # ------------------------------------------------------------------------------------ mapping

    def _pair_matches(self) -> list[PairMatches]:
        """The verified keyframe pairs' inlier matches, centred on the principal point, with homographies."""
        if self._pairs is None:
            w, h = self.size
            centre = np.array([w / 2.0, h / 2.0])
            self._pairs = []
            for (a, b), geometry in sorted(self.geometries.items()):
                m = geometry.inlier_matches
                xa, xb = self.dense[a].xy[m[:, 0]] - centre, self.dense[b].xy[m[:, 1]] - centre
                self._pairs.append(pair_matches(a, b, xa, xb))
        return self._pairs

    def _rotation(self, focal: float | None) -> RotationSolution:
        """The rotation-only solution (the focal length estimated unless given)."""
        h = self.size[1]
        pairs = self._pair_matches()
        if focal is None:
            focal, _ = estimate_focal(pairs, self.cfg.fov_range_deg, h)
            return solve_rotations(len(self.keyframes), pairs, focal, refine_focal=True)
        return solve_rotations(len(self.keyframes), pairs, focal, refine_focal=False)

    def _map(self, builder: MapBuilder) -> MapRun | RotationSolution:
        """The keyframes' cameras: a pure rotation when they fit one, else structure from motion."""
        cfg = self.cfg
        h = self.size[1]
        given = focal_of(self.given_fov, h) if self.given_fov is not None else None
        if self.given_fov is not None:
            self.fov_source, self.fov_note, self.fov_sigma = FOV_GIVEN, f"given: {self.given_fov:g} degrees", 0.0
        self.report("mapping", 0, 1)
        rotation = self._rotation(given)
        noise = epipolar_noise(self._pair_matches())
        ratio = rotation.p90_error_px / noise if noise > 0 else math.inf
        self.rotation_misfit = ratio
        if ratio <= cfg.rotation_max_misfit:
            self.report("mapping", 1, 1)
            return rotation if given is not None else self._rotation_fov(rotation)
        loose = ratio <= cfg.rotation_fallback_misfit
        try:
            run = self._map_given(builder, given) if given is not None else self._estimate_fov(builder)
        except TrackingError as exc:
            if not loose:
                hint = (
                    "the clip may be too blurred, too repetitive or dominated by moving objects"
                    if self.given_fov is None
                    else f"is the given field of view ({self.given_fov:g} degrees) right? leave it out to have it "
                    "estimated"
                )
                raise TrackingError(
                    "no_track",
                    f"{exc.message}; and the motion is no pure rotation either (it fits one {ratio:.0f} times "
                    f"worse than the matches' noise): {hint}",
                ) from None
            self.warnings.append(
                "structure from motion could not map this clip, but the camera mostly turns: solved as a pure "
                f"rotation (it fits one {ratio:.1f} times worse than the matches' noise), so there is no depth from "
                "motion"
            )
            return rotation if given is not None else self._rotation_fov(rotation)
        if loose and self._barely_moves(run):
            return rotation if given is not None else self._rotation_fov(rotation)
        return run

    def _map_given(self, builder: MapBuilder, focal: float) -> MapRun:
        nk = len(self.keyframes)
        self.report("mapping", 0, 1)
        run = builder.run(focal)
        self.report("mapping", 1, 1)
        self._score(run, "given", math.nan)
        if run.num_registered < 0.5 * nk or not run.num_points:
            raise TrackingError(
                "no_track",
                f"could not track the camera: structure from motion placed {run.num_registered} of {nk} keyframes",
            )
        return builder.adjusted(run, focal)  # a robust (Cauchy) adjustment: moving objects weigh less

    def _estimate_fov(self, builder: MapBuilder) -> MapRun:
        """Map at each candidate field of view; from each model that registered most keyframes, bundle
        adjustment with the focal length free; their median (the spread says how well the motion measures
        it); all keyframes mapped there, adjusted once more with the focal length free; mapped at the result."""
        cfg = self.cfg
        h = self.size[1]
        nk = len(self.keyframes)
        lo, hi = cfg.fov_range_deg
        candidates = list(dict.fromkeys(cfg.fov_candidates_deg))
        subset = list(range(0, nk, 2)) if nk > cfg.coarse_keyframes else None
        if subset is not None and subset[-1] != nk - 1:
            subset.append(nk - 1)
        n_coarse = len(subset) if subset is not None else nk
        total = 2 * len(candidates) + 3
        done = 0

        def tick() -> None:
            nonlocal done, total
            done += 1
            total = max(total, done + 1)
            self.report("mapping", done, total)

        runs: list[MapRun] = []
        for fov in candidates:
            run = builder.run(focal_of(fov, h), subset)
            runs.append(run)
            tick()
        most = max(r.num_registered for r in runs)
        if most < 0.5 * n_coarse:
            self.report("mapping", done, done)
            raise TrackingError(
                "no_track",
                f"could not track the camera: structure from motion placed at most {most} of {n_coarse} keyframes",
            )
        refined: list[float] = []
        for run in runs:
            free = None
            if run.num_registered >= max(most - 1, 0.9 * most) and run.num_points:
                free = builder.adjusted(run)
                tick()
                if lo <= free.vertical_fov_deg <= hi:
                    refined.append(free.vertical_fov_deg)
            self._score(run, "candidate", free.vertical_fov_deg if free is not None else math.nan)
        # (no refinement stayed in range, or too few to agree: the motion does not measure it, the default holds)
        median = float(np.median(refined)) if refined else cfg.default_fov_deg
        spread = 1.4826 * float(np.median(np.abs(np.array(refined) - median))) if len(refined) >= 3 else math.inf

        def map_all(fovs: list[float]) -> MapRun:
            """All keyframes mapped at the first of `fovs` where that works (the others: retries)."""
            for fov in fovs:
                run = builder.run(focal_of(fov, h))
                tick()
                if run.num_registered >= 0.5 * nk and run.num_points:
                    return run
            raise TrackingError(
                "no_track",
                f"could not track the camera: {n_coarse} of the keyframes could be mapped, but not all {nk} together",
            )

        retries = sorted(refined, key=lambda r: abs(r - median))[:2]
        steps = [median]
        sigma = math.inf
        final: MapRun | None = None
        if spread <= cfg.fov_unmeasurable_deg:
            # all keyframes at the consensus; adjust with the focal length free, map there, until it stays put
            base = run = map_all([median, *retries])
            for _ in range(cfg.fov_refinements):
                free = builder.adjusted(run)
                tick()
                self._score(run, "consensus" if run is base else "refine", free.vertical_fov_deg)
                if not (lo <= free.vertical_fov_deg <= hi and abs(free.vertical_fov_deg - median) <= 3 * spread + 8):
                    break
                steps.append(free.vertical_fov_deg)
                df = free.focal_sigma
                stat = abs(fov_of(free.focal - df, h) - fov_of(free.focal + df, h)) / 2 if df < free.focal else 0.0
                sigma = math.hypot(spread, cfg.fov_sigma_inflation * stat, cfg.fov_sigma_floor_deg)
                final = free
                if abs(steps[-1] - steps[-2]) < 1.0:
                    break
                again = builder.run(free.focal)
                tick()
                if again.num_registered < base.num_registered - 1 or not again.num_points:
                    break
                run = again
        fov, source = self._with_prior(steps[-1], sigma)
        if final is None or abs(final.vertical_fov_deg - fov) > 0.25:
            final = map_all([fov, *retries])
            self._score(final, "final", math.nan)
            final = builder.adjusted(final, final.focal)  # a robust (Cauchy) adjustment, as the refinements
        self.report("mapping", done, done)
        self.fov_sigma = sigma if source == FOV_ESTIMATED else math.inf
        self.fov_note = self._fov_words(source, candidates, refined, steps, sigma, final.vertical_fov_deg)
        return final

    def _fov_words(
        self,
        source: str,
        candidates: list[float],
        refined: list[float],
        steps: list[float],
        sigma: float,
        fov: float,
    ) -> str:
        cfg = self.cfg
        moved = (
            f"moved {len(refined)} of them to {', '.join(f'{r:.0f}' for r in sorted(refined))}"
            if refined
            else "moved none of them to a plausible value"
        )
        scan = (
            f"the keyframes were mapped at {len(candidates)} candidate fields of view "
            f"({min(candidates):g}-{max(candidates):g} degrees) and bundle adjustment with the focal length free "
            f"{moved}"
        )
        if source == FOV_DEFAULT:
            self.fov_source = FOV_DEFAULT
            self.warnings.append(
                f"the field of view could not be measured from this camera motion; assumed {cfg.default_fov_deg:g} "
                "degrees (pass the true one if you know it)"
            )
            return (
                f"assumed {cfg.default_fov_deg:g} degrees: {scan}{', which do not agree' if refined else ''} (this "
                "camera motion, straight ahead, circling one point or barely moving, hardly measures it)"
            )
        words = (
            f"estimated: {scan}; all keyframes mapped at their median ({steps[0]:.1f}) and adjusted again "
            f"({' -> '.join(f'{x:.1f}' for x in steps[1:]) or 'no change'}; mapping again in between): "
            f"{steps[-1]:.1f} +- {sigma:.1f} degrees"
        )
        if abs(fov - steps[-1]) > 0.05:
            words += f" ({fov:.1f} with the prior of {cfg.default_fov_deg:g} +- {cfg.fov_prior_sigma_deg:g})"
        if sigma > cfg.fov_tolerance_deg:
            self.warnings.append(
                f"the field of view is poorly determined by this camera motion ({fov:.0f} +- {sigma:.0f} degrees); "
                "pass the true one if you know it"
            )
        return words

    def _with_prior(self, vertex: float, sigma: float) -> tuple[float, str]:
        """The field of view combining the fit with the prior (default +- fov_prior_sigma_deg); the source."""
        cfg = self.cfg
        if not math.isfinite(sigma) or sigma > cfg.fov_unmeasurable_deg:
            return cfg.default_fov_deg, FOV_DEFAULT
        if cfg.fov_prior_sigma_deg <= 0:
            return vertex, FOV_ESTIMATED
        w_fit, w_prior = 1.0 / max(sigma, 1e-6) ** 2, 1.0 / cfg.fov_prior_sigma_deg**2
        return (vertex * w_fit + cfg.default_fov_deg * w_prior) / (w_fit + w_prior), FOV_ESTIMATED

    def _score(self, run: MapRun, stage: str, refined_fov: float) -> None:
        self.fov_scores.append(
            FovScore(run.vertical_fov_deg, stage, run.num_registered, run.num_points, run.mean_error_px, refined_fov)
        )

    def _barely_moves(self, run: MapRun) -> bool:
        """The mapped cameras travel a negligible distance next to the scene's depth (a rotation, really)."""
        if run.reconstruction is None or run.num_points == 0:
            return False
        poses, points, _, obs = model_arrays(run)
        centres = np.array([-p[:, :3].T @ p[:, 3] for p in poses.values()])
        depths = np.concatenate([(points[r] @ poses[k][:, :3].T + poses[k][:, 3])[:, 2] for k, (_, r) in obs.items()])
        travel = float(np.linalg.norm(centres - centres[0], axis=1).max())
        return travel < self.cfg.min_travel_ratio * float(np.median(depths))

    def _rotation_fov(self, rotation: RotationSolution) -> RotationSolution:
        """Accept the rotation-only focal length, or fall back to the default when the pan cannot measure it."""
        h = self.size[1]
        fov = fov_of(rotation.focal, h)
        lo, hi = self.cfg.fov_range_deg
        if rotation.max_pair_angle_deg >= 5.0 and rotation.focal_sensitivity >= 0.05 and lo <= fov <= hi:
            self.fov_note = (
                f"estimated from the rotation: the focal length that makes the keyframes' homographies pure "
                f"rotations ({fov:.1f} degrees)"
            )
            return rotation
        self.fov_source, self.fov_sigma = FOV_DEFAULT, math.inf
        self.fov_note = f"assumed {self.cfg.default_fov_deg:g} degrees: the camera turns too little to measure it"
        self.warnings.append(
            f"the camera turns too little to measure the field of view; assumed {self.cfg.default_fov_deg:g} "
            "degrees (pass the true one if you know it)"
        )
        return self._rotation(focal_of(self.cfg.default_fov_deg, h))

    # ------------------------------------------------------------------------------- registration

    def _neighbours(self, frame: int, posed: list[int], count: int) -> list[int]:
        """The `count` nearest posed keyframe indices before `frame` and the `count` nearest after it."""
        before = [k for k in posed if self.keyframes[k] < frame][-count:]
        after = [k for k in posed if self.keyframes[k] > frame][:count]
        return before[::-1] + after

    def _features_of(self, frame: int) -> Features:
        """A keyframe's dense features, or another frame's quick ones."""
        if frame in self.keyframes:
            return self.dense[self.keyframes.index(frame)]
        return self.quick[frame]

    def _register_map(self, run: MapRun) -> _Poses:
        cfg = self.cfg
        scale = self.scale
        w, h = self.size
        kf_poses, points, _, kf_obs = model_arrays(run)
        self.model_points = points
        self.model_errors, self.model_colors = self._point_stats(run)
        poses = _Poses(self.n)
        for k, pose in kf_poses.items():
            frame = self.keyframes[k]
            poses.set(frame, pose, POSE_KEYFRAME)
            kp_idx, rows = kf_obs[k]
            self.obs.append((frame, self.dense[k].xy[kp_idx] * scale, rows))
        # 3D point row of every keyframe keypoint (-1: none)
        point_of = {k: np.full(len(self.dense[k]), -1) for k in kf_poses}
        for k, (kp_idx, rows) in kf_obs.items():
            point_of[k][kp_idx] = rows
        camera = pycolmap.Camera.create_from_model_name(1, "SIMPLE_PINHOLE", run.focal, w, h)
        camera.params = [run.focal, w / 2.0, h / 2.0]
        estimation = pycolmap.AbsolutePoseEstimationOptions()
        estimation.ransac.max_error = 4.0
        estimation.ransac.random_seed = cfg.seed
        refinement = pycolmap.AbsolutePoseRefinementOptions()
        refinement.refine_focal_length = False
        refinement.refine_extra_params = False
        posed = sorted(kf_poses)
        todo = [f for f in range(self.n) if f not in poses.w2c]
        for t, frame in enumerate(todo):
            feats = self._features_of(frame)
            xy_parts, row_parts = [], []
            for k in self._neighbours(frame, posed, 1):
                m = self.engine.match(feats, self.dense[k])
                if len(m) == 0:
                    continue
                has = point_of[k][m[:, 1]] >= 0
                xy_parts.append(feats.xy[m[has, 0]])
                row_parts.append(point_of[k][m[has, 1]])
            self.report("registration", t + 1, len(todo))
            if not row_parts:
                continue
            all_rows = np.concatenate(row_parts)
            all_xy = np.concatenate(xy_parts)
            _, first = np.unique(all_rows, return_index=True)
            all_rows, all_xy = all_rows[first], all_xy[first]
            if len(all_rows) < cfg.min_register_inliers:
                continue
            result = pycolmap.estimate_and_refine_absolute_pose(
                all_xy, points[all_rows], camera, estimation, refinement
            )
            if result is None or result["num_inliers"] < cfg.min_register_inliers:
                continue
            inl = np.asarray(result["inlier_mask"], dtype=bool)
            poses.set(frame, np.asarray(result["cam_from_world"].matrix(), dtype=np.float64), POSE_REGISTERED)
            self.obs.append((frame, all_xy[inl] * scale, all_rows[inl]))
        self.report("registration", len(todo), len(todo))
        return poses

    def _point_stats(self, run: MapRun) -> tuple[np.ndarray, np.ndarray]:
        """Per point: reprojection error (input pixels) and colour (from its first observation)."""
        rec = run.reconstruction
        assert rec is not None
        ids = sorted(rec.point3D_ids())
        errors = np.array([rec.points3D[p].error for p in ids], dtype=np.float64) * self.scale
        colors = np.zeros((len(ids), 3), np.uint8)
        hgt, wid = self.frames.shape[1:3]
        for n, pid in enumerate(ids):
            element = rec.points3D[pid].track.elements[0]
            image = rec.images[element.image_id]
            x, y = image.points2D[element.point2D_idx].xy * self.scale
            frame = self.keyframes[int(image.name[2:])]
            colors[n] = self.frames[frame, min(int(y), hgt - 1), min(int(x), wid - 1)]
        return errors, colors

    def _register_rotation(self, rotation: RotationSolution) -> _Poses:
        cfg = self.cfg
        w, h = self.size
        centre = np.array([w / 2.0, h / 2.0])
        poses = _Poses(self.n)
        posed = [k for k in range(len(self.keyframes)) if not np.isnan(rotation.rotations[k, 0, 0])]
        for k in posed:
            poses.set(self.keyframes[k], np.column_stack([rotation.rotations[k], np.zeros(3)]), POSE_KEYFRAME)
        todo = [f for f in range(self.n) if f not in poses.w2c]
        for t, frame in enumerate(todo):
            feats = self._features_of(frame)
            views = []
            for k in self._neighbours(frame, posed, 1):
                m = self.engine.match(self.dense[k], feats)
                if len(m) >= 8:
                    kf_xy, xy = self.dense[k].xy[m[:, 0]] - centre, feats.xy[m[:, 1]] - centre
                    views.append((rotation.rotations[k], kf_xy, xy))
            self.report("registration", t + 1, len(todo))
            found = register_rotation(rotation.focal, views, min_inliers=cfg.min_register_inliers) if views else None
            if found is not None:
                poses.set(frame, np.column_stack([found[0], np.zeros(3)]), POSE_REGISTERED)
        self.report("registration", len(todo), len(todo))
        return poses

    # ------------------------------------------------------------------------------------- result

    def _result(self, poses: _Poses, outcome: MapRun | RotationSolution, elapsed: float) -> TrackResult:
        cfg = self.cfg
        n = self.n
        rotation_only = isinstance(outcome, RotationSolution)
        tracked = len(poses.w2c)
        if tracked < max(2, cfg.min_registered_fraction * n):
            raise TrackingError(
                "no_track",
                f"could not track the camera: only {tracked} of {n} frames could be placed "
                f"({100 * tracked / n:.0f}%; at least {100 * cfg.min_registered_fraction:.0f}% are needed)",
            )
        c2w_cv = _fill_poses(poses.w2c, n)
        sources = tuple(poses.source.get(i, POSE_INTERPOLATED) for i in range(n))
        wire = np.array([cv_to_wire(p) for p in c2w_cv])
        anchor = np.linalg.inv(wire[0])
        wire = np.einsum("ij,njk->nik", anchor, wire)
        points = self.model_points @ anchor[:3, :3].T + anchor[:3, 3]
        obs = self.obs or [(0, np.zeros((0, 2)), np.zeros(0, np.int64))]
        obs_frame = np.concatenate([np.full(len(r), f, np.int32) for f, _, r in obs])
        obs_point = np.concatenate([r for _, _, r in obs]).astype(np.int32)
        obs_xy = np.concatenate([xy for _, xy, _ in obs]).astype(np.float32)
        if not rotation_only and len(obs_point):
            depth = _depths(wire, points, obs_frame, obs_point)
            good = depth > 0
            scale = 1.0 / float(np.median(depth[good])) if good.any() else 1.0
            wire[:, :3, 3] *= scale
            points = points * scale
        else:
            wire[:, :3, 3] = 0.0
        wire[0] = np.eye(4)
        hgt, wid = self.frames.shape[1:3]
        focal = outcome.focal * self.scale
        fov = fov_of(focal, hgt)
        if self.fov_source == FOV_GIVEN and self.given_fov is not None:
            fov = self.given_fov
        elif self.fov_source == FOV_DEFAULT:
            fov = cfg.default_fov_deg
        intrinsics = Intrinsics.from_fov(fov, wid, hgt)
        registered = sum(1 for s in sources if s != POSE_INTERPOLATED)
        fraction = registered / n
        if fraction < cfg.warn_registered_fraction:
            self.warnings.insert(
                0,
                f"only {100 * fraction:.0f}% of frames could be tracked; the other {n - registered} were "
                "interpolated between their tracked neighbours",
            )
        if isinstance(outcome, RotationSolution):
            error = outcome.median_error_px * self.scale
        else:
            error = _mean_reprojection(wire, points, obs_frame, obs_point, obs_xy, intrinsics)
        return TrackResult(
            poses=wire,
            intrinsics=intrinsics,
            vertical_fov_deg=float(fov),
            fov_source=self.fov_source,
            fov_note=self.fov_note,
            fov_uncertainty_deg=float(self.fov_sigma),
            fov_scores=tuple(self.fov_scores),
            rotation_misfit=float(self.rotation_misfit),
            rotation_only=rotation_only,
            pose_sources=sources,
            keyframes=tuple(self.keyframes),
            points=points,
            point_errors=self.model_errors,
            point_colors=self.model_colors,
            obs_frame=obs_frame,
            obs_point=obs_point,
            obs_xy=obs_xy,
            registered_fraction=fraction,
            reprojection_error_px=float(error),
            warnings=tuple(self.warnings),
            seconds=elapsed,
            stage_seconds=tuple(self.stage_seconds),
        )


def _fill_poses(w2c: dict[int, np.ndarray], n: int) -> np.ndarray:
    """(n, 4, 4) OpenCV camera-to-world for every frame: the posed ones as they are, the others interpolated
    between their posed neighbours (rotation by slerp, centre linearly), held at the ends."""
    known = sorted(w2c)
    rot = np.array([w2c[f][:, :3].T for f in known])  # camera-to-world rotations
    centre = np.array([-w2c[f][:, :3].T @ w2c[f][:, 3] for f in known])
    out = np.tile(np.eye(4), (n, 1, 1))
    frames = np.arange(n)
    clamped = np.clip(frames, known[0], known[-1]).astype(float)
    if len(known) == 1:
        out[:, :3, :3] = rot[0]
        out[:, :3, 3] = centre[0]
        return out
    slerp = Slerp(np.array(known, dtype=float), Rotation.from_matrix(rot))
    out[:, :3, :3] = slerp(clamped).as_matrix()
    for axis in range(3):
        out[:, axis, 3] = np.interp(clamped, known, centre[:, axis])
    return out


def _depths(wire: np.ndarray, points: np.ndarray, frames: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """z-depth (along the view direction) of point `ids[k]` in camera `frames[k]`."""
    w2c = np.linalg.inv(wire[frames])
    cam = np.einsum("nij,nj->ni", w2c[:, :3, :3], points[ids]) + w2c[:, :3, 3]
    return -cam[:, 2]


def _mean_reprojection(
    wire: np.ndarray,
    points: np.ndarray,
    frames: np.ndarray,
    ids: np.ndarray,
    xy: np.ndarray,
    intr: Intrinsics,
) -> float:
    if len(ids) == 0:
        return math.nan
    w2c = np.linalg.inv(wire[frames])
    cam = np.einsum("nij,nj->ni", w2c[:, :3, :3], points[ids]) + w2c[:, :3, 3]
    z = -cam[:, 2]
    ok = z > 1e-9
    u = intr.cx + intr.fx * cam[ok, 0] / z[ok]
    v = intr.cy - intr.fy * cam[ok, 1] / z[ok]
    return float(np.mean(np.hypot(u - xy[ok, 0], v - xy[ok, 1])))
