"""Geometry: camera conventions, intrinsics, pose math, forward splatting and hole filling.

Conventions (docs/architecture.md §3) live in `conventions`: poses travel in the wire (OpenGL) camera
convention; rendering converts to OpenCV inside `splat` (the module; its one-shot function is
`starbridge.geometry.splat.splat`, not re-exported here so the module name stays usable).
"""

from .camera import Intrinsics
from .conventions import (
    check_unit_quaternion,
    cv_to_wire,
    matrix_to_pose,
    matrix_to_quat,
    pose_to_matrix,
    quat_to_matrix,
    unity_to_wire,
    wire_to_cv,
    wire_to_unity,
)
from .fill import push_pull_fill
from .poses import PoseTrack, PoseTrackConfig, interpolate_pose, quat_from_axis_angle, quat_multiply, slerp
from .splat import SplatConfig, SplatResult, Splatter

__all__ = [
    "Intrinsics",
    "PoseTrack",
    "PoseTrackConfig",
    "SplatConfig",
    "SplatResult",
    "Splatter",
    "check_unit_quaternion",
    "cv_to_wire",
    "interpolate_pose",
    "matrix_to_pose",
    "matrix_to_quat",
    "pose_to_matrix",
    "push_pull_fill",
    "quat_from_axis_angle",
    "quat_multiply",
    "quat_to_matrix",
    "slerp",
    "unity_to_wire",
    "wire_to_cv",
    "wire_to_unity",
]
