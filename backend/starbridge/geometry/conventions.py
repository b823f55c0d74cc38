"""Camera conventions, in one place (docs/architecture.md §3).

Three frames meet in StarBridge:

- **wire** (also OpenGL/Godot): right-handed, +Y up; a camera looks down its local -Z with +Y up.
  Poses on the wire and in scene bundles are camera-to-world 4x4 matrices in this convention.
- **OpenCV** (inside the renderer): camera +X right, +Y down, +Z forward. Same world frame as the
  wire; only the camera's local axes differ: ``c2w_cv = c2w_wire @ diag(1, -1, -1, 1)``.
- **Unity**: left-handed, +Y up, camera looks down +Z. Unity <-> wire mirrors the world Z axis:
  position z -> -z, quaternion (x, y, z, w) -> (-x, -y, z, w). The same formulas map both ways.

Quaternions are (x, y, z, w), unit length. A rotation quaternion and its negation are the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgument

#: A short vector: a sequence of floats or a 1-D array (positions, quaternions).
Vector = Sequence[float] | np.ndarray

#: How far |q| may stray from 1 before a quaternion is refused (float32 engines round a little).
UNIT_QUAT_TOLERANCE = 1e-3

#: Flips camera Y and Z: wire (OpenGL) camera axes <-> OpenCV camera axes. Its own inverse.
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def check_finite(values: Vector, field: str) -> None:
    """Raise InvalidArgument naming `field` when any value is NaN or infinite."""
    for v in values:
        if not math.isfinite(v):
            raise InvalidArgument(f"{field} must be finite numbers, got {list(values)}", field=field)


def check_unit_quaternion(q: Vector, field: str = "rotation") -> np.ndarray:
    """Return `q` (x, y, z, w) as float64 renormalised, or raise InvalidArgument.

    Refused: NaN/inf components, and a norm off 1 by more than UNIT_QUAT_TOLERANCE.
    """
    check_finite(q, field)
    arr = np.asarray(q, dtype=np.float64)
    if arr.shape != (4,):
        raise InvalidArgument(f"{field} must have 4 components (x, y, z, w), got {arr.shape}", field=field)
    norm = float(np.linalg.norm(arr))
    if abs(norm - 1.0) > UNIT_QUAT_TOLERANCE:
        raise InvalidArgument(
            f"{field} must be a unit quaternion: |q| = {norm:.6f}, allowed 1 ± {UNIT_QUAT_TOLERANCE} "
            "(normalise it before sending)",
            field=field,
        )
    return arr / norm


def quat_to_matrix(q: Vector) -> np.ndarray:
    """3x3 rotation matrix of a unit quaternion (x, y, z, w)."""
    x, y, z, w = (float(c) for c in q)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """Unit quaternion (x, y, z, w) of a 3x3 rotation matrix, with w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * math.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    arr = np.array(q)
    arr /= np.linalg.norm(arr)
    return -arr if arr[3] < 0 else arr


def pose_to_matrix(position: Vector, rotation: Vector) -> np.ndarray:
    """4x4 camera-to-world matrix from a position and a unit quaternion (x, y, z, w)."""
    m = np.eye(4)
    m[:3, :3] = quat_to_matrix(rotation)
    m[:3, 3] = np.asarray(position, dtype=np.float64)
    return m


def matrix_to_pose(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(position, quaternion xyzw) of a 4x4 rigid camera-to-world matrix."""
    m = np.asarray(m, dtype=np.float64)
    return m[:3, 3].copy(), matrix_to_quat(m[:3, :3])


def wire_to_cv(c2w_wire: np.ndarray) -> np.ndarray:
    """Camera-to-world in the OpenCV camera convention, from the wire (OpenGL) convention."""
    return np.asarray(c2w_wire, dtype=np.float64) @ GL_TO_CV


def cv_to_wire(c2w_cv: np.ndarray) -> np.ndarray:
    """Camera-to-world in the wire (OpenGL) convention, from the OpenCV camera convention."""
    return np.asarray(c2w_cv, dtype=np.float64) @ GL_TO_CV


def unity_to_wire(position: Vector, rotation: Vector) -> tuple[np.ndarray, np.ndarray]:
    """Unity (left-handed, camera +Z forward) pose -> wire pose, by mirroring the world Z axis."""
    px, py, pz = (float(c) for c in position)
    qx, qy, qz, qw = (float(c) for c in rotation)
    return np.array([px, py, -pz]), np.array([-qx, -qy, qz, qw])


def wire_to_unity(position: Vector, rotation: Vector) -> tuple[np.ndarray, np.ndarray]:
    """Wire pose -> Unity pose. Mirroring Z is its own inverse, so this is unity_to_wire again."""
    return unity_to_wire(position, rotation)
