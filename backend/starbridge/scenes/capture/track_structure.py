"""The field of view from the scene's 3D structure: walls stand at right angles to the ground (a cue for
where the camera motion cannot measure it, track_fov.py: above all a drone orbit).

An orbit around a point (its optical axes through one point) is a critical motion for self-calibration:
COLMAP maps it about as well at any focal length, but each wrong one bends the reconstruction so that the
walls lean against the ground, away from the cameras when the field of view is too wide, towards them when
it is too narrow (measured on the procedural orbit, 40 frames at 320x180 through H.264: filmed at 48 degrees,
mapped at 40/50/60, the walls' median lean +7.9, -0.7, -8.0 degrees -> 49.6 +- 2.5; filmed at 70, mapped at
60/70/80, +9.2, -1.1, -8.2 -> 69.7 +- 2.5; at 60, 48 frames at 384x216: 61.8). So, per candidate model (the
keyframes mapped at a fixed field of view):

1. a dense cloud: multi-view stereo (depth.py, `CLOUD_DEPTH`: matched at 192 px) of a few keyframes with the model's
   poses at its field of view; the confident pixels back-projected (the sparse points are too few at the
   benchmark's 320x180: 170-440 per model, and their local normals are noise);
2. the ground (ground.py, `StructureConfig.planes`): the plane (RANSAC, within `plane_tol` of the median
   distance) with the most points whose normal is within `ground_max_tilt_deg` of the cameras' mean "down" axis,
   its normal refitted with each point weighted by its depth's precision (`GroundSearch.precision_rounds`,
   ground.precise_ground: the far ground is matched too near, which tilted the plane 2-3 degrees and the walls'
   lean with it);
3. walls: the next planes whose normals are within `wall_max_tilt_deg` of horizontal (to the ground), each
   with at least `min_wall_fraction` of the points; each one's lean: the angle of its normal (towards the
   cameras) above the ground plane, degrees; the model's lean: the points-weighted median.

The leans of the models tried (starting near the motion's guess, stepping towards the sign change) are
fitted by a line in the field of view; where it crosses zero is the estimate, its standard error (from the
walls' spread and the fit) the uncertainty. Silent (`StructureCue.determined` False) where there is no ground,
fewer than `min_walls` walls, no sign change, or a slope too shallow to tell: a dolly (a stretch along a level
view keeps walls upright whatever the focal length: leans within +-2 degrees at every candidate), a
planar-only or wall-less scene. Cost: one stereo pass of `stereo_keyframes` keyframes per model tried (2-4).

Limits: only a falling lean (the orbit's sign, the one measured) counts: a sideways walk's models lean the
other way and more as the field of view widens (the benchmark's `moving` clip at 48: +9.5..+19 at 60-90), so
the cue abstains there (its motion measures it). Filmed at 45 degrees (40-frame orbit) it abstains too: the
model at 60 is bent differently (+1.1, -15.6, -7.3 at 50/60/70). The scene needs a visible ground and upright
walls (streets, rooms, buildings); sloping roofs,
leaning facades or a hillside bias it, and a clip whose walls are all far (beyond a few times the camera
path) gives too few confident stereo points to find them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from ...geometry.conventions import cv_to_wire
from .depth import confident_points, estimate_depth
from .depth_config import DepthConfig
from .ground import GroundSearch, find_ground, ransac_plane
from .track_types import FOV_STRUCTURE


@dataclass(frozen=True)
class StructureConfig:
    #: Multi-view stereo on at most this many keyframes (evenly spread) per model.
    stereo_keyframes: int = 6
    #: How the stereo points are searched for the ground (and the walls: the same subset, tolerance and
    #: number of RANSAC hypotheses).
    planes: GroundSearch = field(default_factory=lambda: GroundSearch(precision_rounds=3))
    #: A wall's normal is within this many degrees of horizontal; at most `max_walls` walls, each with at least
    #: `min_wall_fraction` of the points; a model's lean needs `min_walls` of them.
    wall_max_tilt_deg: float = 40.0
    max_walls: int = 6
    min_wall_fraction: float = 0.02
    min_walls: int = 3
    #: At most this many models are tried.
    max_models: int = 4
    #: The fit's slope must be at least this steep (degrees of lean per degree of field of view, falling) and
    #: this many standard errors from flat; the crossing within `max_extrapolation_deg` of the models tried.
    min_slope: float = 0.25
    min_slope_significance: float = 3.0
    max_extrapolation_deg: float = 3.0
    #: The uncertainty: the crossing's standard error times `sigma_inflation` (the walls of one model are not
    #: independent measurements), at least `sigma_floor_deg` (measured bias: +-2 degrees at 48 and 70).
    sigma_inflation: float = 2.0
    sigma_floor_deg: float = 2.5
    seed: int = 0

    def __post_init__(self) -> None:
        ok = self.stereo_keyframes >= 2 and self.min_walls >= 1 and self.max_models >= 2
        if not ok:
            raise InvalidArgument(f"structure config: stereo_keyframes >= 2, min_walls >= 1, max_models >= 2: {self}")


@dataclass(frozen=True)
class WallLean:
    """One model's walls against its ground: the model's field of view, the points searched, the ground's,
    each wall's (lean in degrees, points); `lean` the weighted median (nan: not measured) and its standard
    error."""

    vertical_fov_deg: float
    points: int
    ground_points: int
    walls: tuple[tuple[float, int], ...]
    lean: float
    lean_sigma: float


@dataclass(frozen=True)
class StructureCue:
    """The field of view the walls and the ground give (nan when they give none) and how sure."""

    determined: bool
    vertical_fov_deg: float
    sigma_deg: float
    #: What was found, in words (for `scene show`).
    note: str
    leans: tuple[WallLean, ...] = field(default=(), repr=False)
    source: str = FOV_STRUCTURE


# ------------------------------------------------------------------------------------------ one model


#: The cue's stereo: the measured geometry, without the fill stage's depth-edge snapping (a colour heuristic
#: made for pictures: with it the 48-degree orbit's walls crossed zero at 51.2 instead of 49.6 degrees; the cue's
#: uncertainty and tests were measured without it), and with the four source views at two parallaxes they were
#: measured with (the capture's own depth has used six at three since: depth_config.py), and without the fusion
#: across frames (depth_fuse.py; with it the 48-degree orbit's walls were upright at 50.8 instead of 49.2
#: degrees, and that orbit's estimate 51.2 instead of 49.7: the cue was calibrated on the unfused depth), at
#: the 192-pixel matching size it was calibrated at.
CLOUD_DEPTH = DepthConfig(max_side=192, snap=False, source_views=4, parallax_px=(6.0, 18.0), fuse_frames=0)


def model_cloud(
    frames: np.ndarray, vertical_fov_deg: float, c2w_cv: np.ndarray, sparse_points: np.ndarray | None
) -> np.ndarray:
    """(M, 3) world points: the confident stereo depth of (K, H, W, 3) frames with OpenCV camera-to-world
    poses (K, 4, 4) at the field of view, back-projected."""
    k, height, width = frames.shape[:3]
    intr = Intrinsics.from_fov(vertical_fov_deg, width, height)
    wire = np.array([cv_to_wire(p) for p in c2w_cv])
    res = estimate_depth(frames, intr, wire, sparse_points=sparse_points, config=CLOUD_DEPTH)
    return confident_points(res, intr, c2w_cv)


def wall_lean(
    points: np.ndarray,
    c2w_cv: np.ndarray,
    vertical_fov_deg: float,
    config: StructureConfig = StructureConfig(),  # noqa: B008 (frozen dataclass: immutable default)
) -> WallLean:
    """The walls' lean against the ground in a cloud (`points` (M, 3), seen by cameras `c2w_cv` (K, 4, 4)
    OpenCV camera-to-world); see the module docstring."""
    centres = c2w_cv[:, :3, 3]
    if len(points) < 100:
        return WallLean(vertical_fov_deg, len(points), 0, (), math.nan, math.inf)
    rng = np.random.default_rng(config.seed)
    found = find_ground(points, c2w_cv, config.planes, rng)
    pts, tol, ground = found.points, found.tol, found.ground
    if ground is None:
        return WallLean(vertical_fov_deg, len(pts), 0, (), math.nan, math.inf)
    up, on_ground = ground.up, ground.inliers
    sin_wall = math.sin(math.radians(config.wall_max_tilt_deg))
    rest = pts[~on_ground]
    walls: list[tuple[float, int]] = []
    for _ in range(config.max_walls):
        if len(rest) < config.min_wall_fraction * len(pts):
            break
        wall = ransac_plane(rest, rng, tol, config.planes.hypotheses, lambda n: abs(n @ up) <= sin_wall)
        if wall is None or wall[2].sum() < config.min_wall_fraction * len(pts):
            break
        centre, normal, on = wall
        normal = normal if normal @ (centres.mean(axis=0) - centre) > 0 else -normal  # towards the cameras
        walls.append((math.degrees(math.asin(float(np.clip(normal @ up, -1.0, 1.0)))), int(on.sum())))
        rest = rest[~on]
    lean, sigma = _weighted_median(walls) if len(walls) >= config.min_walls else (math.nan, math.inf)
    return WallLean(vertical_fov_deg, len(pts), int(on_ground.sum()), tuple(walls), lean, sigma)


def _weighted_median(walls: Sequence[tuple[float, int]]) -> tuple[float, float]:
    """The points-weighted median of the walls' leans and its standard error (1.4826 weighted MAD over the
    square root of the number of walls)."""
    leans = np.array([a for a, _ in walls])
    weights = np.array([n for _, n in walls], dtype=np.float64)

    def wmedian(x: np.ndarray) -> float:
        order = np.argsort(x)
        cum = np.cumsum(weights[order])
        return float(x[order][np.searchsorted(cum, 0.5 * cum[-1])])

    median = wmedian(leans)
    mad = 1.4826 * wmedian(np.abs(leans - median))
    return median, max(mad, 0.5) / math.sqrt(len(walls))


# --------------------------------------------------------------------------------------- the search


#: Leans all within this many degrees of upright say the walls stand upright whatever the field of view (a dolly:
#: within +-2 at every candidate, the module docstring).
UPRIGHT_EVERYWHERE_DEG = 2.0


def search_structure(
    candidates: Sequence[float],
    start_fov: float,
    lean_at: Callable[[float], WallLean],
    config: StructureConfig = StructureConfig(),  # noqa: B008
) -> StructureCue:
    """The field of view where the walls stand upright: `lean_at(fov)` measured at the candidate fields of
    view (those of the mapped models), from the one nearest `start_fov` towards the sign change (while none
    has shown a lean, a ground and walls, on both sides: world 3's orbit on FFmpeg's frames started at 60, no
    ground there, and stopped), at most `max_models`; then `fit_structure`."""
    fovs = sorted(set(candidates))
    if not fovs:
        return _none((), "no model to measure")
    at = min(range(len(fovs)), key=lambda i: abs(fovs[i] - start_fov))
    leans: dict[int, WallLean] = {}
    lo = hi = at
    while len(leans) < config.max_models:
        for i in (lo, hi):
            if i not in leans:
                leans[i] = lean_at(fovs[i])
        measured = [leans[i] for i in sorted(leans) if math.isfinite(leans[i].lean)]
        if not measured:  # no ground or too few walls so far (a model bent too far): its neighbours, both sides
            if lo == 0 and hi == len(fovs) - 1:
                break
            lo, hi = max(lo - 1, 0), min(hi + 1, len(fovs) - 1)
            continue
        if measured[0].lean > 0 > measured[-1].lean:  # bracketed: a third model to fit the slope, then done
            if len(measured) >= 3:
                break
            step_up = hi + 1 < len(fovs)
        elif measured[-1].lean > 0:  # too narrow everywhere so far: wider
            step_up = True
        elif measured[0].lean < 0:  # too wide: narrower
            step_up = False
        else:
            break
        if step_up and hi + 1 < len(fovs):
            hi += 1
        elif not step_up and lo > 0:
            lo -= 1
        elif lo > 0 and measured[0].lean > 0 > measured[-1].lean:
            lo -= 1
        else:
            break
    return fit_structure([leans[i] for i in sorted(leans)], config)


def fit_structure(leans: Sequence[WallLean], config: StructureConfig = StructureConfig()) -> StructureCue:  # noqa: B008
    """The zero crossing of the models' leans (a weighted line through them); silent when they do not
    determine it (see the module docstring)."""
    tried = tuple(leans)
    measured = [x for x in tried if math.isfinite(x.lean)]
    words = ", ".join(
        f"{x.vertical_fov_deg:.0f}: " + (f"{x.lean:+.1f}" if math.isfinite(x.lean) else _walls_words(x)) for x in tried
    )
    found = f"the walls' lean against the ground in the models mapped at {words} degrees"
    if not measured:
        grounds = sum(1 for x in tried if x.ground_points)
        why = "no ground plane" if not grounds else f"fewer than {config.min_walls} upright walls"
        return _none(tried, f"{found}: {why} found in the stereo points")
    if len(measured) < 2 or not (measured[0].lean > 0 > measured[-1].lean):
        return _none(tried, f"{found}: {_no_crossing_words(measured, config)}")
    x = np.array([m.vertical_fov_deg for m in measured])
    y = np.array([m.lean for m in measured])
    w = 1.0 / np.array([m.lean_sigma for m in measured]) ** 2
    xm = float((w * x).sum() / w.sum())
    sxx = float((w * (x - xm) ** 2).sum())
    slope = float((w * (x - xm) * y).sum() / sxx)
    intercept = float((w * y).sum() / w.sum())  # at xm
    resid = y - intercept - slope * (x - xm)
    dof = max(len(x) - 2, 1)
    scale = max(1.0, float((w * resid**2).sum()) / dof) if len(x) > 2 else 1.0  # misfit inflates the errors
    slope_se = math.sqrt(scale / sxx)
    if slope > -config.min_slope or -slope < config.min_slope_significance * slope_se:
        return _none(tried, f"{found}: too shallow a change to tell ({slope:+.2f} +- {slope_se:.2f} per degree)")
    fov = xm - intercept / slope
    if not (x.min() - config.max_extrapolation_deg <= fov <= x.max() + config.max_extrapolation_deg):
        return _none(tried, f"{found}: upright only outside the models tried")
    # standard error of the crossing (delta method: the intercept's and the slope's)
    se = math.sqrt(scale / w.sum() + ((fov - xm) * slope_se) ** 2) / abs(slope)
    sigma = max(config.sigma_floor_deg, config.sigma_inflation * se)
    note = f"{found}: upright at {fov:.1f} +- {sigma:.1f} degrees"
    return StructureCue(True, fov, sigma, note, tried)


def _walls_words(model: WallLean) -> str:
    """A model without a lean, in the note: no ground, or how few upright walls it had."""
    if not model.ground_points:
        return "no ground"
    count = len(model.walls)
    return "no walls" if count == 0 else f"{count} wall{'s' if count > 1 else ''}"


def _no_crossing_words(measured: Sequence[WallLean], config: StructureConfig) -> str:
    """Why the measured leans (at least one, in the order of their fields of view) give no crossing, in words."""
    leans = [m.lean for m in measured]
    if len(leans) == 1:
        return "walls in one model only: no change to measure"
    if max(abs(a) for a in leans) <= UPRIGHT_EVERYWHERE_DEG:
        return (
            f"within {UPRIGHT_EVERYWHERE_DEG:g} degrees of upright in every model (the walls stand upright whatever "
            "the field of view: a camera travelling along its view)"
        )
    if min(leans) > 0:  # leaning towards the cameras: too narrow in every model
        return "leaning towards the cameras in every model (upright only wider than the models tried)"
    if max(leans) < 0:
        return "leaning away from the cameras in every model (upright only narrower than the models tried)"
    return "not falling from leaning towards the cameras to leaning away as the field of view widens"


def _none(leans: tuple[WallLean, ...], note: str) -> StructureCue:
    return StructureCue(False, math.nan, math.inf, note, leans)
