"""Pose math over time: quaternion slerp, pose interpolation/extrapolation, and a short pose track.

Quaternions are (x, y, z, w) float64 arrays of unit length (conventions.py); positions are (3,)
float64 arrays in scene units; times are float seconds. Rotations move along the shortest arc: q and
-q are the same rotation, so the second quaternion is flipped onto the first one's hemisphere.

`PoseTrack` is what a session feeds with the engine's camera poses and asks for the pose at the
display time of a frame still to be generated::

    track = PoseTrack(max_extrapolation_s=0.25)
    track.add(t_received, position, quat)          # every CameraPose
    position, quat = track.predict(t_display)      # constant velocity, horizon capped
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgument, StarBridgeError
from .conventions import Vector, check_finite, check_unit_quaternion

#: Below this angle between two quaternions (radians of the 4D arc) slerp falls back to normalised lerp.
SLERP_NLERP_THRESHOLD = 1e-6


def quat_multiply(a: Vector, b: Vector) -> np.ndarray:
    """Hamilton product a * b of (x, y, z, w) quaternions: the rotation b, then a."""
    ax, ay, az, aw = (float(c) for c in a)
    bx, by, bz, bw = (float(c) for c in b)
    return np.array(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ]
    )


def quat_conjugate(q: Vector) -> np.ndarray:
    """Conjugate (x, y, z, w) -> (-x, -y, -z, w): the inverse rotation of a unit quaternion."""
    x, y, z, w = (float(c) for c in q)
    return np.array([-x, -y, -z, w])


def quat_from_axis_angle(axis: Vector, angle_rad: float) -> np.ndarray:
    """Unit quaternion (x, y, z, w) rotating by `angle_rad` (right-handed) about `axis` (any length > 0)."""
    a = np.asarray(axis, dtype=np.float64)
    norm = float(np.linalg.norm(a))
    if not norm > 0.0:
        raise InvalidArgument(f"axis must be a non-zero vector, got {a.tolist()}", field="axis")
    s = math.sin(0.5 * angle_rad) / norm
    return np.array([a[0] * s, a[1] * s, a[2] * s, math.cos(0.5 * angle_rad)])


def slerp(q0: Vector, q1: Vector, s: float) -> np.ndarray:
    """Spherical linear interpolation of unit quaternions (x, y, z, w) along the shortest arc.

    s = 0 gives q0, s = 1 gives q1 (or -q1); s outside [0, 1] extrapolates at the same angular
    velocity about the same axis, i.e. q0 * (q0^-1 q1)^s. Nearly equal quaternions use normalised
    lerp (exact to first order, no division by a vanishing sine). Returns a float64 (4,) unit quaternion.
    """
    a = np.asarray(q0, dtype=np.float64)
    b = np.asarray(q1, dtype=np.float64)
    dot = float(np.dot(a, b))
    if dot < 0.0:  # -q1 is the same rotation on q0's side of the sphere: shortest path
        b = -b
        dot = -dot
    theta = math.acos(min(dot, 1.0))  # half the rotation angle between the two, in [0, pi/2]
    if theta < SLERP_NLERP_THRESHOLD:
        out = (1.0 - s) * a + s * b
    else:
        sin_theta = math.sin(theta)
        out = (math.sin((1.0 - s) * theta) / sin_theta) * a + (math.sin(s * theta) / sin_theta) * b
    return out / np.linalg.norm(out)


def interpolate_pose(
    p0: Vector,
    q0: Vector,
    t0: float,
    p1: Vector,
    q1: Vector,
    t1: float,
    t: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Pose at time `t` from poses (p0, q0) at t0 and (p1, q1) at t1: lerp position, slerp rotation.

    Outside [t0, t1] this extrapolates with the constant linear and angular velocity the two poses
    imply. With t0 == t1 there is no velocity: (p1, q1) is returned. Returns (position (3,), quat (4,)).
    """
    pa = np.asarray(p0, dtype=np.float64)
    pb = np.asarray(p1, dtype=np.float64)
    if t1 == t0:
        return pb.copy(), np.asarray(q1, dtype=np.float64).copy()
    s = (t - t0) / (t1 - t0)
    return pa + s * (pb - pa), slerp(q0, q1, s)


@dataclass(frozen=True)
class PoseTrackConfig:
    """How a PoseTrack predicts."""

    #: Furthest a prediction goes past the newest pose, seconds; beyond it the pose is held (a stalled
    #: engine must not send the camera flying).
    max_extrapolation_s: float = 0.25
    #: Velocity is taken between the newest pose and the newest older one at least this much older,
    #: seconds, so that poses arriving in a burst (nearly the same receive time) do not give huge speeds.
    min_baseline_s: float = 0.005
    #: Poses kept.
    history: int = 8

    def __post_init__(self) -> None:
        if not (math.isfinite(self.max_extrapolation_s) and self.max_extrapolation_s >= 0.0):
            raise InvalidArgument(
                f"max_extrapolation_s must be finite and >= 0, got {self.max_extrapolation_s}",
                field="max_extrapolation_s",
            )
        if not (math.isfinite(self.min_baseline_s) and self.min_baseline_s >= 0.0):
            raise InvalidArgument(
                f"min_baseline_s must be finite and >= 0, got {self.min_baseline_s}", field="min_baseline_s"
            )
        if self.history < 2:
            raise InvalidArgument(f"history must be >= 2, got {self.history}", field="history")


class PoseTrack:
    """The last few timed camera poses, and constant-velocity prediction from them.

    `predict(t)`:
    - t between two stored poses: interpolation between them;
    - t after the newest pose: extrapolation with the velocity between the newest pose and the newest
      one at least `min_baseline_s` older (the newest pose is held when there is none), going at most
      `max_extrapolation_s` past the newest pose, then holding;
    - t before the oldest stored pose: the oldest pose;
    - one pose: that pose. No pose: StarBridgeError.

    Not thread-safe: callers share one track under their own lock.
    """

    def __init__(
        self,
        max_extrapolation_s: float = 0.25,
        *,
        min_baseline_s: float = PoseTrackConfig.min_baseline_s,
        history: int = PoseTrackConfig.history,
    ) -> None:
        self.config = PoseTrackConfig(max_extrapolation_s, min_baseline_s, history)
        self._times: list[float] = []
        self._positions: list[np.ndarray] = []
        self._quats: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._times)

    def clear(self) -> None:
        """Forget every pose (e.g. after a teleport)."""
        self._times.clear()
        self._positions.clear()
        self._quats.clear()

    def add(self, t: float, position: Vector, quat: Vector) -> None:
        """Store the pose (position (3,), unit quaternion (x, y, z, w)) the camera had at time `t` seconds.

        A pose with the same time as a stored one replaces it; an older one is inserted in order.
        Raises InvalidArgument naming the field for NaN/inf values or a non-unit quaternion.
        """
        check_finite([t], "time")
        p = np.asarray(position, dtype=np.float64)
        if p.shape != (3,):
            raise InvalidArgument(f"position must have 3 components, got shape {p.shape}", field="position")
        check_finite(p.tolist(), "position")
        q_in = np.asarray(quat, dtype=np.float64)
        if q_in.shape != (4,):
            raise InvalidArgument(f"rotation must have 4 components (x, y, z, w), got {q_in.shape}", field="rotation")
        q = check_unit_quaternion(q_in.tolist(), "rotation")
        i = bisect.bisect_left(self._times, t)
        if i < len(self._times) and self._times[i] == t:
            self._positions[i], self._quats[i] = p, q
            return
        self._times.insert(i, float(t))
        self._positions.insert(i, p)
        self._quats.insert(i, q)
        if len(self._times) > self.config.history:
            del self._times[0], self._positions[0], self._quats[0]

    def predict(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(position (3,), unit quaternion (4,)) of the camera at time `t` seconds; see the class docstring."""
        n = len(self._times)
        if n == 0:
            raise StarBridgeError("PoseTrack.predict needs a pose first: call add()")
        times = self._times
        if t <= times[0] or n == 1:
            return self._sample(0 if t <= times[0] else n - 1)
        if t < times[-1]:
            i = bisect.bisect_right(times, t)  # times[i - 1] <= t < times[i]
            return self._between(i - 1, i, t)
        j = self._baseline_index()
        if j is None:
            return self._sample(n - 1)
        return self._between(j, n - 1, min(t, times[-1] + self.config.max_extrapolation_s))

    def _sample(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self._positions[i].copy(), self._quats[i].copy()

    def _between(self, i: int, j: int, t: float) -> tuple[np.ndarray, np.ndarray]:
        return interpolate_pose(
            self._positions[i], self._quats[i], self._times[i], self._positions[j], self._quats[j], self._times[j], t
        )

    def _baseline_index(self) -> int | None:
        """Index of the newest pose at least min_baseline_s older than the newest (and strictly older), or None."""
        newest = self._times[-1]
        for i in range(len(self._times) - 2, -1, -1):
            dt = newest - self._times[i]
            if dt > 0.0 and dt >= self.config.min_baseline_s:
                return i
        return None
