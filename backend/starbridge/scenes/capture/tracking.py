"""Camera tracking: every frame's pose and the field of view, from the video alone (pycolmap, CPU).

`track_camera(frames)` runs, with `progress(stage, done, total)` per stage:

1. ``features``: quick SIFT features of every frame (at most `max_side` pixels on the long side);
2. ``keyframes``: keyframes where the features moved enough since the last one (or overlap is running out);
3. ``matching``: dense SIFT on the keyframes; each matched with the next few and with a few far ones (cheap
   loop closure), kept by epipolar geometry (no focal length assumed);
4. ``mapping``: first, do the keyframes fit a pure rotation (a tripod pan, a fixed camera) nearly as well as
   their noise allows? Then the clip is solved as rotation only (track_rotation.py: rotations and the focal
   length from the homographies, translations zero). Else COLMAP's global mapper (rotation averaging, then
   positions and points; `TrackingConfig.mapper`, track_mapping.py says why not the incremental one) runs on
   the keyframes with the focal length *fixed* (self-calibration from scratch is fragile on short clips): once
   per candidate field of view (60, then 40..90 degrees; every other keyframe when there are many); from each model that
   registered (nearly) the most keyframes, one bundle adjustment with the focal length free, then another
   without the observations it leaves far off (outliers pull the focal length); all keyframes mapped at the
   median of those, adjusted the same way and mapped again until the value stays put. Its uncertainty
   combines the spread of the candidates' first refinements with the last adjustment's covariance; where
   the motion does not measure the field of view (straight ahead, circling one point, barely moving) the
   candidates disagree, or the cameras travel along their view hardly turning. The scene's right angles are
   a second cue (track_vanishing.py: orthogonal vanishing points in the keyframes), combined with the motion's
   by their uncertainties: it decides where the motion cannot; where the motion measures it poorly, the walls'
   lean against the ground in the candidates' models is a third (track_structure.py: dense stereo of a few
   keyframes per model; walls lean when the focal length is wrong). Where none measures it, the default is
   assumed (that of a 26 mm-equivalent lens, a phone's: 44.4 degrees for 16:9 in landscape), said so in a
   warning. A given
   `vertical_fov_deg` is used as is (one mapping run). Should mapping fail, or its cameras hardly move, a
   rotation that fits fairly well is used instead;
5. ``registration``: every other frame is registered against the map (2D-3D matches with its neighbouring
   keyframes, RANSAC + refinement at the fixed focal length; for rotation only, its rotation from matches
   with them); a frame that cannot be is interpolated between its neighbours (`pose_sources` says which);
6. refinement (structure from motion only; timed as ``refinement`` in `stage_seconds`, its progress is the
   registration's): every observation moved onto its point's middle observation's image patch by a
   projective (homography) Lucas-Kanade fit (the detector's positions drift with the view; a translation-only
   fit still centres on the texture of a foreshortened patch, an affine one where the scale changes across
   the window), then one bundle adjustment of every posed frame and point together, the focal length fixed
   (track_refine.py: on the benchmark's clips it cuts the rotation errors by 20-45%, those the depth stage's
   stereo pairs see by 20-70%; they placed far surfaces too near; the affine warp a further 27% on average,
   the homography the field of view's error 22%, PatchConfig.warp). Where the motion or the walls chose the
   field of view, the same observations then measure it once more: the adjustment with the focal length free and a
   tight robust loss (TrackingConfig.fov_refit_loss_px: the precise majority decides, the observations that
   slide along stripes or sit on depth edges hardly weigh), and the usual adjustment again at what it found.

Poses are returned in the wire convention (camera-to-world, camera looking down -Z, +Y up; see
geometry/conventions.py) with frame 0 at the identity, in the reconstruction's arbitrary scale, normalised so
the median depth of the sparse points over all observations is 1 (the pipeline rescales). Sparse points are in
the same world; observations tie each frame's 2D points (input pixels, centre of the top-left pixel at
(0.5, 0.5)) to point ids, and `point_depths(frame)` gives their z-depths, for depth alignment and scaling.

Failure (too short, too dark, featureless, nothing trackable) raises `TrackingError` (a SceneError) whose
`reason` is one of TrackingError.REASONS and whose message says what to do; partial success returns a
result with plain-words `warnings`. COLMAP's working files live in a temporary folder removed on return.

Modules: track_types.py (settings, result, error), track_features.py (stages 1-3), track_rotation.py (the
rotation test and rotation-only solve), track_mapping.py (COLMAP's mapper and adjustments), track_fov.py (the
field-of-view search), track_register.py (stage 5), track_refine.py (6); this one runs the stages and
assembles the result.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pycolmap
from scipy.spatial.transform import Rotation, Slerp

from ...errors import InvalidArgument, StarBridgeError
from ...geometry.camera import Intrinsics, check_fov
from ...geometry.conventions import cv_to_wire
from .track_features import (
    FeatureEngine,
    Features,
    TrackImages,
    keyframe_pairs,
    prepare_images,
    select_keyframes,
)
from .track_fov import POORLY_DETERMINED, FovSearch, fov_score
from .track_mapping import COLMAP_MAX_ERROR_PX, MapBuilder, MapRun, focal_of, fov_of, model_arrays
from .track_refine import PatchConfig, RefineConfig, Refined, adjust_all, refine_observations
from .track_register import PosedFrames, Registrar
from .track_rotation import PairMatches, RotationSolution, epipolar_noise, estimate_focal, pair_matches, solve_rotations
from .track_structure import StructureConfig, WallLean, model_cloud, wall_lean
from .track_types import (
    FOV_DEFAULT,
    FOV_ESTIMATED,
    FOV_GIVEN,
    FOV_STRUCTURE,
    FOV_VANISHING,
    POSE_INTERPOLATED,
    POSE_KEYFRAME,
    POSE_REGISTERED,
    STAGES,
    FovScore,
    ProgressFn,
    TrackingConfig,
    TrackingError,
    TrackResult,
)
from .track_vanishing import VanishingConfig, VanishingCue, vanishing_fov

__all__ = [
    "FOV_DEFAULT",
    "FOV_ESTIMATED",
    "FOV_GIVEN",
    "FOV_STRUCTURE",
    "FOV_VANISHING",
    "POSE_INTERPOLATED",
    "POSE_KEYFRAME",
    "POSE_REGISTERED",
    "STAGES",
    "FovScore",
    "ProgressFn",
    "TrackResult",
    "TrackingConfig",
    "TrackingError",
    "track_camera",
]

log = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------------ API


def track_camera(
    frames: np.ndarray,
    *,
    vertical_fov_deg: float | None = None,
    progress: ProgressFn | None = None,
    config: TrackingConfig = TrackingConfig(),  # noqa: B008 (frozen dataclass: immutable default)
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
    tracker = _Tracker(frames, vertical_fov_deg, progress, config.for_frames(frames.shape[2], frames.shape[1]))
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
class _Attempt:
    """One level's map, its frames registered to it, and what its mapping found (the field-of-view scores,
    warnings and choice), restored when it is the one chosen."""

    run: MapRun
    registrar: Registrar
    poses: PosedFrames
    scores: list[FovScore]
    warnings: list[str]
    fov_source: str
    fov_sigma: float
    fov_note: str


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
        #: the focal length every frame's refined observations measured (`_refit_focal`), tracking pixels
        self.refit_focal: float | None = None
        self.rotation_misfit = math.nan
        self._pairs: list[PairMatches] | None = None
        self._cue: VanishingCue | None = None
        #: the chosen map and its registration (`_structure`), reused by the registration stage
        self._registered: _Attempt | None = None

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

        outcome = self._map(workdir)
        self.stage_done("mapping")
        if isinstance(outcome, RotationSolution):
            registrar = self._registrar()
            poses = registrar.to_rotation(outcome)
            self.stage_done("registration")
        else:
            # the mapping registered the frames to choose its map (`_structure`): that registration is kept
            chosen = self._registered
            if chosen is not None and chosen.run is outcome:
                registrar, poses = chosen.registrar, chosen.poses
            else:
                _, registrar, poses = self._register(outcome)
            self.stage_done("registration")
            if cfg.final_adjustment:
                self._adjust_all(poses, registrar, outcome)
                self.stage_done("refinement")
        return self._result(poses, registrar, outcome, time.perf_counter() - start)

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

    def _geometries_within(self, max_error_px: float) -> dict[tuple[int, int], pycolmap.TwoViewGeometry]:
        """The verified pairs verified again with inliers within `max_error_px` (from their matches: the first
        verification's inliers are one model's, maybe the wrong one); as they are at COLMAP's own threshold."""
        if max_error_px >= COLMAP_MAX_ERROR_PX:
            return self.geometries
        out = {}
        least = self.cfg.min_pair_inliers
        for a, b in self.geometries:
            strict = self.engine.verify(self.dense[a], self.dense[b], self.size, least, max_error_px)
            if strict is not None:
                out[(a, b)] = strict
        return out

    def _structure(self, workdir: Path, given: float | None) -> MapRun:
        """Structure from motion (at the given focal length, else by the field-of-view search) at each of
        `map_max_error_px` in turn (TrackingConfig says why), until one maps the keyframes and places at least
        `warn_registered_fraction` of the frames; when none does, the one that placed the most. Placing the
        keyframes is not enough: a strict level's map can pose every keyframe and keep a handful of points,
        too few to place the frames between them (world 0's 512x288 dolly encoded at CRF 15: 4 points, 14 of
        40 frames placed, interpolated 0.7 degrees off, where the next level places all 40 at 0.07)."""
        cfg = self.cfg
        failure = TrackingError("no_track", "could not track the camera: no two keyframes share enough features")
        best: _Attempt | None = None
        for n, level in enumerate(cfg.map_max_error_px):
            geometries = self._geometries_within(level)
            if not geometries:
                continue
            folder = workdir / f"map{n}"
            folder.mkdir()
            builder = MapBuilder(
                folder,
                self.size,
                self.dense,
                geometries,
                num_threads=cfg.mapping_threads if cfg.mapping_threads > 0 else self.threads,
                seed=cfg.seed,
                init_min_tri_angle_deg=cfg.init_min_tri_angle_deg,
                max_error_px=level,
                mapper=cfg.mapper,
            )
            scores, warnings = len(self.fov_scores), len(self.warnings)
            try:
                run = self._map_given(builder, given) if given is not None else self._estimate_fov(builder)
            except TrackingError as exc:
                failure = exc
                del self.fov_scores[scores:], self.warnings[warnings:]  # what a failed attempt found is not the clip's
                continue
            attempt = _Attempt(
                *self._register(run), self.fov_scores[scores:], self.warnings[warnings:], self.fov_source,
                self.fov_sigma, self.fov_note,
            )  # fmt: skip
            del self.fov_scores[scores:], self.warnings[warnings:]  # kept with the attempt until one is chosen
            placed = len(attempt.poses.w2c)
            if best is None or placed > len(best.poses.w2c):
                best = attempt
            if placed >= cfg.warn_registered_fraction * self.n:
                break
        if best is None:
            raise failure
        self.fov_scores.extend(best.scores)
        self.warnings.extend(best.warnings)
        self.fov_source, self.fov_sigma, self.fov_note = best.fov_source, best.fov_sigma, best.fov_note
        self._registered = best
        return best.run

    def _registrar(self) -> Registrar:
        return Registrar(
            self.frames, self.engine, self.keyframes, self.quick, self.dense, self.size, self.scale, self.cfg,
            self.report,
        )  # fmt: skip

    def _register(self, run: MapRun) -> tuple[MapRun, Registrar, PosedFrames]:
        """Every frame placed by a map: its keyframes, and the frames registered to it."""
        registrar = self._registrar()
        return run, registrar, registrar.to_map(run)

    def _map(self, workdir: Path) -> MapRun | RotationSolution:
        """The keyframes' cameras: a pure rotation when they fit one, else structure from motion."""
        cfg = self.cfg
        h = self.size[1]
        given = focal_of(self.given_fov, h) if self.given_fov is not None else None
        if self.given_fov is not None:
            self.fov_source, self.fov_note, self.fov_sigma = FOV_GIVEN, f"given: {self.given_fov:g} degrees", 0.0
        self.report("mapping", 0, 1)
        rotation = self._rotation(given)
        # the matches' noise, at most the cap: beyond it they are not noise-limited (moving content, mismatches)
        noise = min(epipolar_noise(self._pair_matches()), cfg.rotation_noise_cap_px)
        ratio = rotation.p90_error_px / noise if noise > 0 else math.inf
        self.rotation_misfit = ratio
        if ratio <= cfg.rotation_max_misfit:
            self.report("mapping", 1, 1)
            return rotation if given is not None else self._rotation_fov(rotation)
        loose = ratio <= cfg.rotation_fallback_misfit
        try:
            run = self._structure(workdir, given)
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

    def _estimate_fov(self, builder: MapBuilder) -> MapRun:
        """The field of view by the candidate search (track_fov.py); all keyframes mapped at it."""
        search = FovSearch(
            builder,
            self.cfg,
            self.size[1],
            len(self.keyframes),
            self.report,
            self.fov_scores,
            self.warnings,
            self._vanishing(),
            self._wall_lean if self.cfg.fov_structure else None,
        )
        run = search.run()
        self.fov_source, self.fov_sigma, self.fov_note = search.source, search.sigma, search.note
        return run

    def _vanishing(self) -> VanishingCue | None:
        """The keyframes' vanishing points' field of view (track_vanishing.py), searched once; None when off."""
        if not self.cfg.fov_vanishing:
            return None
        if self._cue is None:
            assert self.images is not None
            config = VanishingConfig(fov_range_deg=self.cfg.fov_range_deg, seed=self.cfg.seed)
            self._cue = vanishing_fov(self.images.grey[self.keyframes], self.keyframes, config)
        return self._cue

    def _wall_lean(self, run: MapRun) -> WallLean:
        """The walls' lean against the ground in a mapped model (track_structure.py): stereo of a few of its
        keyframes with its poses at its field of view."""
        config = StructureConfig(seed=self.cfg.seed)
        poses, points, _, _ = model_arrays(run)
        mapped = sorted(poses)
        count = min(config.stereo_keyframes, len(mapped))
        pick = [mapped[i] for i in np.unique(np.linspace(0, len(mapped) - 1, count).round().astype(int))]
        c2w = np.array([np.linalg.inv(np.vstack([poses[k], [0.0, 0.0, 0.0, 1.0]])) for k in pick])
        frames = self.frames[[self.keyframes[k] for k in pick]]
        return wall_lean(model_cloud(frames, run.vertical_fov_deg, c2w, points), c2w, run.vertical_fov_deg, config)

    def _map_given(self, builder: MapBuilder, focal: float) -> MapRun:
        nk = len(self.keyframes)
        self.report("mapping", 0, 1)
        run = builder.run(focal)
        self.report("mapping", 1, 1)
        self.fov_scores.append(fov_score(run, "given", math.nan))
        if run.num_registered < 0.5 * nk or not run.num_points:
            raise TrackingError(
                "no_track",
                f"could not track the camera: structure from motion placed {run.num_registered} of {nk} keyframes",
            )
        return builder.adjusted(run, focal)  # a robust (Cauchy) adjustment: moving objects weigh less

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
        cue = self._vanishing()
        if cue is not None and cue.determined:
            self.fov_source, self.fov_sigma = FOV_VANISHING, cue.sigma_deg
            self.fov_note = f"from the vanishing points ({cue.note}): the camera turns too little to measure it"
            return self._rotation(focal_of(cue.vertical_fov_deg, h))
        self.fov_source, self.fov_sigma = FOV_DEFAULT, math.inf
        self.fov_note = (
            f"assumed {self.cfg.assumed_fov_deg:.1f} degrees{self.cfg.default_fov_words}: the camera turns too "
            "little to measure it"
        )
        if cue is not None:
            self.fov_note += f", nor do the vanishing points ({cue.note})"
        self.warnings.append(
            f"the camera turns too little to measure the field of view; assumed {self.cfg.assumed_fov_deg:.1f} "
            f"degrees{self.cfg.default_fov_words} ({self.cfg.fov_hint})"
        )
        return self._rotation(focal_of(self.cfg.assumed_fov_deg, h))

    # --------------------------------------------------------------------------------- refinement

    def _adjust_all(self, poses: PosedFrames, registrar: Registrar, run: MapRun) -> None:
        """One bundle adjustment of every posed frame and the map's points together (track_refine.py); the
        poses, points and observations are replaced by the adjusted ones."""
        config = RefineConfig(
            loss_scale_px=self.cfg.refine_loss_px,
            function_tolerance=self.cfg.refine_function_tolerance,
            num_threads=self.cfg.mapping_threads if self.cfg.mapping_threads > 0 else self.threads,
        )
        obs = [(frame, xy / self.scale, rows) for frame, xy, rows in registrar.obs]
        if self.cfg.refine_patches:
            assert self.images is not None
            patches = PatchConfig(max_frames=self.cfg.refine_patch_frames, warp=self.cfg.refine_patch_warp)
            obs, _ = refine_observations(self.images.grey, obs, patches)
            registrar.obs = [(frame, xy * self.scale, rows) for frame, xy, rows in obs]
        refined = adjust_all(poses.w2c, registrar.model_points, obs, run.focal, self.size, config)
        focal = self._refit_focal(refined, obs, run.focal, config)
        if focal != run.focal:
            refined = adjust_all(refined.w2c, refined.points, obs, focal, self.size, config)
            self.refit_focal = focal
        poses.w2c.update(refined.w2c)
        registrar.model_points = refined.points
        adjusted = np.isfinite(refined.errors)
        registrar.model_errors = np.where(adjusted, refined.errors * self.scale, registrar.model_errors)
        registrar.obs = [
            (frame, xy[refined.kept[frame]], rows[refined.kept[frame]]) if frame in refined.kept else (frame, xy, rows)
            for frame, xy, rows in registrar.obs
        ]

    def _refit_focal(
        self, refined: Refined, obs: list[tuple[int, np.ndarray, np.ndarray]], focal: float, config: RefineConfig
    ) -> float:
        """The focal length measured once more by every frame's refined observations, outliers discounted
        (TrackingConfig.fov_refit_loss_px says why and how well), where the motion or the walls chose it;
        `focal` where the field of view was given, assumed or the vanishing points' (the motion turned too
        little to measure it), or where the refit lands too far from it. Taken, it withdraws the search's warning
        that the field of view is poorly determined."""
        cfg = self.cfg
        if cfg.fov_refit_loss_px <= 0 or self.fov_source not in (FOV_ESTIMATED, FOV_STRUCTURE):
            return focal
        free = replace(
            config, refine_focal=True, loss_scale_px=cfg.fov_refit_loss_px, max_iterations=cfg.fov_refit_iterations
        )
        refit = adjust_all(refined.w2c, refined.points, obs, focal, self.size, free).focal
        before, after = fov_of(focal, self.size[1]), fov_of(refit, self.size[1])
        if not abs(after - before) <= cfg.fov_refit_max_shift_deg:  # (nan too)
            self.fov_note += (
                f"; every frame's refined observations would put it at {after:.1f} degrees, too far from it to "
                "trust: kept"
            )
            return focal
        self.fov_note += (
            f"; then {after:.1f} degrees from every frame's refined observations (the focal length adjusted with "
            "them, their outliers discounted)"
        )
        self.fov_source, self.fov_sigma = FOV_ESTIMATED, cfg.fov_refit_sigma_deg
        # the search's warning that it could not pin it no longer holds
        self.warnings = [w for w in self.warnings if not w.startswith(POORLY_DETERMINED)]
        return refit

    # ------------------------------------------------------------------------------------- result

    def _result(
        self, poses: PosedFrames, found: Registrar, outcome: MapRun | RotationSolution, elapsed: float
    ) -> TrackResult:
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
        points = found.model_points @ anchor[:3, :3].T + anchor[:3, 3]
        obs = found.obs or [(0, np.zeros((0, 2)), np.zeros(0, np.int64))]
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
        focal = (self.refit_focal or outcome.focal) * self.scale
        fov = fov_of(focal, hgt)
        if self.fov_source == FOV_GIVEN and self.given_fov is not None:
            fov = self.given_fov
        elif self.fov_source == FOV_DEFAULT and abs(fov - cfg.assumed_fov_deg) < 1e-6:
            fov = cfg.assumed_fov_deg  # exactly, the focal length's round trip aside (not where it was mapped
            # elsewhere, track_fov.py's fov_retry_step_deg: the intrinsics are those the poses were mapped with)
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
            point_errors=found.model_errors,
            point_colors=found.model_colors,
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
