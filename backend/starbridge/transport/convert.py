"""Protobuf messages <-> the backend's own values, in one place (docs/architecture.md §3, §4).

Validation of what a peer sends lives here too: every check names the field and its bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgument
from ..geometry.camera import check_fov
from ..geometry.conventions import check_finite, check_unit_quaternion
from ..protocol import engine_pb2 as pb
from .version import PROTOCOL_MAJOR, PROTOCOL_MINOR

#: Widest viewport aspect (width / height) accepted in a pose.
MAX_ASPECT = 10.0


def pose_from_proto(pose: pb.CameraPose) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(position, unit quaternion xyzw, vertical fov deg, aspect) of a CameraPose, validated."""
    if not pose.HasField("pose"):
        raise InvalidArgument("pose.pose is missing: send position and rotation", field="pose.pose")
    p, q = pose.pose.position, pose.pose.rotation
    position = [p.x, p.y, p.z]
    check_finite(position, "pose.pose.position")
    rotation = check_unit_quaternion([q.x, q.y, q.z, q.w], "pose.pose.rotation")
    check_fov(pose.vertical_fov_deg, "pose.vertical_fov_deg")
    if not (math.isfinite(pose.aspect) and 0.0 <= pose.aspect <= MAX_ASPECT):
        raise InvalidArgument(
            f"pose.aspect must be in [0, {MAX_ASPECT:g}] (width / height; 0 = the frame's), got {pose.aspect}",
            field="pose.aspect",
        )
    return np.asarray(position, dtype=np.float64), rotation, float(pose.vertical_fov_deg), float(pose.aspect)


def pose_to_proto(
    position: Sequence[float] | np.ndarray, rotation: Sequence[float] | np.ndarray, out: pb.Pose
) -> pb.Pose:
    """Fill `out` with position (x, y, z) and rotation (x, y, z, w); returns it."""
    out.position.x, out.position.y, out.position.z = (float(v) for v in position)
    out.rotation.x, out.rotation.y, out.rotation.z, out.rotation.w = (float(v) for v in rotation)
    return out


def protocol_version() -> pb.ProtocolVersion:
    """This build's protocol version, as Hello and Welcome carry it."""
    return pb.ProtocolVersion(major=PROTOCOL_MAJOR, minor=PROTOCOL_MINOR)
