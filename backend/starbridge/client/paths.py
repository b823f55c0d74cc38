"""Camera paths for `starbridge fly`: smooth, looping camera motion through a scene.

Scene space (docs/architecture.md §3): the reference video's first camera sits at the origin looking
down -Z with +Y up, and the scene is scaled so its median depth is SCENE_MEDIAN_DEPTH_M. The paths
stay close to that camera, so the generated view stays mostly inside what the reference saw:

- ``orbit``: an arc around the point SCENE_MEDIAN_DEPTH_M in front of the origin camera, always
  looking at it, swinging +-ORBIT_DEGREES around +Y (the arc passes through the origin);
- ``dolly``: forward along -Z and back again, by up to DOLLY_METRES, looking straight ahead;
- ``pan``: yaw in place, +-PAN_DEGREES;
- ``tour`` (the default): orbit, then dolly, then pan, looping.

Every path starts and ends each loop at the origin camera (identity pose), so they chain without
jumps. Poses are camera-to-world in the wire convention: position (x, y, z) in metres and a unit
quaternion (x, y, z, w).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import InvalidArgument
from ..geometry.conventions import matrix_to_quat
from ..scenes.bundle import SCENE_MEDIAN_DEPTH_M

#: The point the orbit looks at: straight ahead of the origin camera at the median depth.
ORBIT_TARGET = (0.0, 0.0, -SCENE_MEDIAN_DEPTH_M)
ORBIT_DEGREES = 20.0
ORBIT_PERIOD_S = 8.0
DOLLY_METRES = 1.0
DOLLY_PERIOD_S = 6.0
PAN_DEGREES = 25.0
PAN_PERIOD_S = 6.0

Pose = tuple[np.ndarray, np.ndarray]
#: A point or direction: a sequence of floats or a numpy array.
Vector = Sequence[float] | np.ndarray


def look_at(eye: Vector, target: Vector, up: Vector = (0.0, 1.0, 0.0)) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a wire-convention camera at `eye` looking at `target`.

    The camera's -Z points at the target and its +Y is as close to `up` as possible.
    """
    eye_v = np.asarray(eye, dtype=np.float64)
    forward = np.asarray(target, dtype=np.float64) - eye_v
    norm = float(np.linalg.norm(forward))
    if norm == 0.0:
        raise InvalidArgument("look_at: eye and target coincide", field="target")
    z_axis = -forward / norm  # the camera looks down its -Z
    x_axis = np.cross(np.asarray(up, dtype=np.float64), z_axis)
    x_norm = float(np.linalg.norm(x_axis))
    if x_norm < 1e-9:
        raise InvalidArgument("look_at: `up` is parallel to the viewing direction", field="up")
    x_axis /= x_norm
    y_axis = np.cross(z_axis, x_axis)
    return matrix_to_quat(np.stack([x_axis, y_axis, z_axis], axis=1))


def _ease(t: float, period_s: float) -> float:
    """0 -> 1 over each period, starting and ending at rest (cosine ease-in-out)."""
    return 0.5 - 0.5 * math.cos(math.pi * (t % period_s) / period_s)


def _swing(t: float, period_s: float) -> float:
    """0 -> 1 -> -1 -> 0 over each period, at rest at both ends (so paths chain without a jolt)."""
    return math.sin(2.0 * math.pi * _ease(t, period_s))


def _yaw_quat(degrees: float) -> np.ndarray:
    half = math.radians(degrees) / 2.0
    return np.array([0.0, math.sin(half), 0.0, math.cos(half)])


def orbit(t: float) -> Pose:
    """Arc around ORBIT_TARGET through the origin, looking at the target."""
    angle = math.radians(ORBIT_DEGREES) * _swing(t, ORBIT_PERIOD_S)
    radius = SCENE_MEDIAN_DEPTH_M
    target = np.asarray(ORBIT_TARGET)
    eye = target + radius * np.array([math.sin(angle), 0.0, math.cos(angle)])
    return eye, look_at(eye, target)


def dolly(t: float) -> Pose:
    """Forward along -Z by up to DOLLY_METRES and back, looking straight ahead."""
    depth = DOLLY_METRES * math.sin(math.pi * _ease(t, DOLLY_PERIOD_S))
    return np.array([0.0, 0.0, -depth]), np.array([0.0, 0.0, 0.0, 1.0])


def pan(t: float) -> Pose:
    """Yaw in place at the origin, +-PAN_DEGREES (positive: turning left, about +Y)."""
    return np.zeros(3), _yaw_quat(PAN_DEGREES * _swing(t, PAN_PERIOD_S))


def tour(t: float) -> Pose:
    """Orbit, then dolly, then pan; loops every TOUR_PERIOD_S."""
    t = t % TOUR_PERIOD_S
    if t < ORBIT_PERIOD_S:
        return orbit(t)
    t -= ORBIT_PERIOD_S
    if t < DOLLY_PERIOD_S:
        return dolly(t)
    return pan(t - DOLLY_PERIOD_S)


TOUR_PERIOD_S = ORBIT_PERIOD_S + DOLLY_PERIOD_S + PAN_PERIOD_S

#: Path name -> (pose at time t, loop length in seconds).
PATHS: dict[str, tuple[Callable[[float], Pose], float]] = {
    "tour": (tour, TOUR_PERIOD_S),
    "orbit": (orbit, ORBIT_PERIOD_S),
    "dolly": (dolly, DOLLY_PERIOD_S),
    "pan": (pan, PAN_PERIOD_S),
}
DEFAULT_PATH = "tour"


def camera_pose(name: str, t: float) -> Pose:
    """(position xyz metres, unit quaternion xyzw) of path `name` at time `t` seconds, wire convention."""
    try:
        pose, _period = PATHS[name]
    except KeyError:
        raise InvalidArgument(f"unknown camera path {name!r}; choose one of {', '.join(PATHS)}", field="path") from None
    return pose(t)


def path_period(name: str) -> float:
    """Seconds after which path `name` repeats."""
    if name not in PATHS:
        raise InvalidArgument(f"unknown camera path {name!r}; choose one of {', '.join(PATHS)}", field="path")
    return PATHS[name][1]
