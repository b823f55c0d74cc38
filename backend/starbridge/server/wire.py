"""Conversions between protobuf messages and the backend's own values, in one place.

Validation of what peers send lives here too: every check names the field and its bound.
"""

from __future__ import annotations

import math

import numpy as np

from .. import PROTOCOL_MAJOR, PROTOCOL_MINOR, __version__
from ..errors import InvalidArgument, ProtocolMismatch, StarBridgeError
from ..geometry.camera import check_fov
from ..geometry.conventions import check_finite, check_unit_quaternion
from ..protocol import engine_pb2 as pb

#: Widest viewport aspect (width / height) accepted in a pose.
MAX_ASPECT = 10.0


def check_protocol(version: pb.ProtocolVersion, field: str = "hello.protocol") -> None:
    """Refuse a different protocol major, naming both versions. A newer minor is fine."""
    ours = f"{PROTOCOL_MAJOR}.{PROTOCOL_MINOR}"
    if version.major == 0:
        raise ProtocolMismatch(
            f"{field} is missing (major 0); this backend speaks protocol {ours}: "
            "send the version the plugin was built for",
            field=field,
        )
    if version.major != PROTOCOL_MAJOR:
        raise ProtocolMismatch(
            f"protocol mismatch: the backend speaks {ours}, the peer sent {version.major}.{version.minor}; "
            "update the plugin or the backend so the major versions match",
            field=field,
        )


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


def pose_to_proto(position: np.ndarray, rotation: np.ndarray, out: pb.Pose) -> pb.Pose:
    out.position.x, out.position.y, out.position.z = (float(v) for v in position)
    out.rotation.x, out.rotation.y, out.rotation.z, out.rotation.w = (float(v) for v in rotation)
    return out


def error_message(exc: BaseException, *, fatal: bool) -> pb.BackendMessage:
    """An Error envelope for an exception: typed for ours, INTERNAL for anything else."""
    msg = pb.BackendMessage()
    if isinstance(exc, StarBridgeError):
        msg.error.code = pb.ErrorCode.Value("ERROR_CODE_" + exc.code)
        msg.error.message = exc.message
        msg.error.field = exc.field
    else:
        msg.error.code = pb.ERROR_CODE_INTERNAL
        msg.error.message = f"internal error: {type(exc).__name__}: {exc}"
    msg.error.fatal = fatal
    return msg


def protocol_version() -> pb.ProtocolVersion:
    return pb.ProtocolVersion(major=PROTOCOL_MAJOR, minor=PROTOCOL_MINOR)


BACKEND_VERSION = __version__
