"""Planes in a point cloud, and the ground among them.

One home for the plane search that two stages use: the field-of-view cue (track_structure.py: walls lean
against the ground when the field of view is wrong) and the moving objects' depth (moving_depth.py: a moving
thing stands on the ground). `ransac_plane` finds the plane with the most points among those whose normal a
test accepts; `fit_ground` the plane whose normal is within a tilt of the cameras' mean "down" axis (the
cameras of a walk, a drone or a vehicle are held roughly level), with its normal turned up, towards the
cameras' side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ...errors import InvalidArgument


def ransac_plane(
    pts: np.ndarray,
    rng: np.random.Generator,
    tol: float,
    hypotheses: int,
    accept: Callable[[np.ndarray], bool],
    beneath: tuple[np.ndarray, float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """RANSAC: the plane (a point, its unit normal, its inliers) with the most points within `tol` among
    those whose normal `accept`s; refitted twice by least squares on its inliers. None: no plane accepted.
    `beneath` (viewpoint (3,), margin, weight): each point more than `margin` beyond the plane as seen from
    `viewpoint` counts `weight` against it (the ground: nothing static is seen below it)."""
    if len(pts) < 3:
        return None
    best, most = None, -math.inf
    for i, j, k in rng.integers(0, len(pts), (hypotheses, 3)):
        normal = np.cross(pts[j] - pts[i], pts[k] - pts[i])
        length = float(np.linalg.norm(normal))
        if length <= 0:
            continue
        normal /= length
        if not accept(normal):
            continue
        signed = (pts - pts[i]) @ normal
        score = float((np.abs(signed) < tol).sum())
        if beneath is not None:
            viewpoint, margin, weight = beneath
            side = 1.0 if float((viewpoint - pts[i]) @ normal) >= 0 else -1.0
            score -= weight * float((side * signed < -margin).sum())
        if score > most:
            best, most = (pts[i], normal), score
    if best is None:
        return None
    centre, normal = best
    inliers = np.abs((pts - centre) @ normal) < tol
    for _ in range(2):
        if inliers.sum() < 3:
            return None
        centre = pts[inliers].mean(axis=0)
        refit = np.linalg.svd(pts[inliers] - centre, full_matrices=False)[2][2]
        if not accept(refit):
            break
        normal = refit
        inliers = np.abs((pts - centre) @ normal) < tol
    return centre, normal, inliers


@dataclass(frozen=True)
class Ground:
    """The ground plane: a point on it and its unit normal pointing up (towards the cameras' side), in the
    cloud's world frame; `inliers` marks the points searched that lie on it."""

    centre: np.ndarray
    up: np.ndarray
    inliers: np.ndarray = field(repr=False)

    @property
    def fraction(self) -> float:
        """The share of the points searched that lie on the ground."""
        return float(self.inliers.mean()) if self.inliers.size else 0.0

    def ray_depths(self, c2w_cv: np.ndarray, rays_cam: np.ndarray) -> np.ndarray:
        """(M,) z-depth at which camera rays (3, M) with z = 1 (OpenCV) from the camera `c2w_cv` (4, 4) meet the
        ground; NaN where a ray does not descend to it in front of the camera (at or above the horizon)."""
        descent = -(self.up @ (c2w_cv[:3, :3] @ rays_cam))  # how fast each ray falls per unit of z-depth
        height_above = float((c2w_cv[:3, 3] - self.centre) @ self.up)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(descent > 1e-9, height_above / descent, np.nan)
        return np.where(z > 0, z, np.nan)


@dataclass(frozen=True)
class GroundSearch:
    """How a cloud is searched for planes: at most `max_points` points (a random subset) of those within
    `range_factor` times the median distance from the cameras (far surfaces are the noisiest); a point is on a
    plane within `plane_tol` of that median distance; `hypotheses` RANSAC samples per plane; the ground's
    normal within `ground_max_tilt_deg` of the cameras' mean down axis, holding at least `min_ground_fraction`
    of the points."""

    max_points: int = 20000
    range_factor: float = 2.5
    plane_tol: float = 0.01
    hypotheses: int = 400
    ground_max_tilt_deg: float = 35.0
    min_ground_fraction: float = 0.05
    #: Each point more than `beneath_margin` times the plane tolerance below a candidate ground (the side away
    #: from the cameras) counts `beneath_weight` against it.
    beneath_margin: float = 3.0
    beneath_weight: float = 1.0
    #: The ground found is refitted this many times with each point weighted by its depth's precision
    #: (`precise_ground`; the points within the tolerance of each refit are the next one's); 0: the RANSAC
    #: band's plain least-squares plane.
    precision_rounds: int = 0

    def __post_init__(self) -> None:
        ok = (
            self.max_points >= 3
            and self.range_factor > 0
            and self.plane_tol > 0
            and self.hypotheses >= 1
            and 0 < self.ground_max_tilt_deg < 90
            and 0 <= self.min_ground_fraction <= 1
            and self.beneath_margin > 0
            and self.beneath_weight >= 0
            and self.precision_rounds >= 0
        )
        if not ok:
            raise InvalidArgument(f"GroundSearch: a setting is out of range: {self}", field="ground")


@dataclass(frozen=True)
class GroundFound:
    """A search's result: the points searched, the plane tolerance used (scene units) and the ground (None:
    none holds `min_ground_fraction` of the points)."""

    points: np.ndarray = field(repr=False)
    tol: float
    ground: Ground | None


def find_ground(points: np.ndarray, c2w_cv: np.ndarray, search: GroundSearch, rng: np.random.Generator) -> GroundFound:
    """The ground in a cloud (`points` (M, 3), seen by cameras `c2w_cv` (K, 4, 4) OpenCV camera-to-world),
    searched as `search` says."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if len(pts) < 3:
        return GroundFound(pts, 0.0, None)
    dist = np.linalg.norm(pts - c2w_cv[:, :3, 3].mean(axis=0), axis=1)
    scale = float(np.median(dist))
    pts = pts[dist < search.range_factor * scale]
    if len(pts) > search.max_points:
        pts = pts[rng.permutation(len(pts))[: search.max_points]]
    tol = search.plane_tol * scale
    beneath = search.beneath_margin * tol, search.beneath_weight
    ground = fit_ground(pts, c2w_cv, tol, search.hypotheses, search.ground_max_tilt_deg, rng, beneath)
    if ground is not None and search.precision_rounds:
        ground = precise_ground(pts, c2w_cv[:, :3, 3], ground, tol, search.precision_rounds)
    if ground is not None and ground.inliers.sum() < search.min_ground_fraction * len(pts):
        ground = None
    return GroundFound(pts, tol, ground)


def precise_ground(pts: np.ndarray, centres: np.ndarray, ground: Ground, tol: float, rounds: int) -> Ground:
    """`ground` refitted to `pts` (M, 3) `rounds` times, each point weighted by its stereo depth's precision: a
    disparity's error is about the same everywhere, so a depth's grows as its square and its weight falls as the
    fourth power of its distance from the nearest camera (of `centres` (K, 3)); the points within `tol` of each
    refit are the next one's. The far ground, seen at a grazing angle, is matched too near (its rows mixed with
    the nearer, more textured ones below: world 2's orbit with the true cameras, 1.01 of its depth at 3-4 m,
    0.94 at 6-8, 0.91 at 8-12), which lifts it and tilts an unweighted plane towards the cameras: 2.1 and 2.9
    degrees on worlds 0 and 2's orbits (six frames' stereo, the field-of-view cue's), where the walls stand
    within about a degree of the true ground."""
    gaps = np.linalg.norm(pts[:, None, :] - centres[None, :, :], axis=2).min(axis=1)
    weight = 1.0 / np.maximum(gaps, 1e-6 * max(float(gaps.max()), 1.0)) ** 4
    centre, normal = ground.centre, ground.up
    on = np.abs((pts - centre) @ normal) < tol
    for _ in range(rounds):
        if on.sum() < 3:
            break
        w = weight[on] / weight[on].sum()
        centre = w @ pts[on]
        normal = np.linalg.svd((pts[on] - centre) * np.sqrt(w)[:, None], full_matrices=False)[2][2]
        on = np.abs((pts - centre) @ normal) < tol
    return Ground(centre, normal if normal @ ground.up > 0 else -normal, on)


def cameras_down(c2w_cv: np.ndarray) -> np.ndarray:
    """The cameras' mean "down" axis (OpenCV +Y), unit, from (N, 4, 4) OpenCV camera-to-world poses."""
    down = np.asarray(c2w_cv, dtype=np.float64)[:, :3, 1].mean(axis=0)
    return down / max(float(np.linalg.norm(down)), 1e-12)


def fit_ground(
    pts: np.ndarray,
    c2w_cv: np.ndarray,
    tol: float,
    hypotheses: int,
    max_tilt_deg: float,
    rng: np.random.Generator,
    beneath: tuple[float, float] = (0.0, 0.0),
) -> Ground | None:
    """The plane with the most of `pts` (M, 3) within `tol` whose normal is within `max_tilt_deg` of the
    cameras' mean down axis (`c2w_cv` (N, 4, 4) OpenCV camera-to-world); None when there is none. `beneath`
    (margin, weight): each point more than `margin` below the plane (away from the cameras' mean centre) counts
    `weight` against it."""
    down = cameras_down(c2w_cv)
    cos_ground = math.cos(math.radians(max_tilt_deg))
    margin, weight = beneath
    below = (c2w_cv[:, :3, 3].mean(axis=0), margin, weight) if weight > 0 else None
    found = ransac_plane(pts, rng, tol, hypotheses, lambda n: abs(n @ down) >= cos_ground, below)
    if found is None:
        return None
    centre, normal, inliers = found
    up = -normal if normal @ down > 0 else normal
    return Ground(centre, up, inliers)
