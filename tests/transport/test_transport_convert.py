"""Protobuf <-> backend values: poses (and the field each refusal names), the protocol version, FrameMeta."""

from __future__ import annotations

import math

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.protocol import engine_pb2 as pb
from starbridge.transport.convert import MAX_ASPECT, pose_from_proto, pose_to_proto, protocol_version
from starbridge.transport.frame import FrameMeta
from starbridge.transport.version import PROTOCOL_MAJOR, PROTOCOL_MINOR


def camera_pose(position=(1.0, -2.0, 0.5), rotation=(0.0, 0.0, 0.0, 1.0), fov=60.0, aspect=0.0) -> pb.CameraPose:
    pose = pb.CameraPose(sequence=7, vertical_fov_deg=fov, aspect=aspect)
    pose_to_proto(position, rotation, pose.pose)
    return pose


def test_pose_round_trip():
    rotation = (0.5, -0.5, 0.5, 0.5)
    position, q, fov, aspect = pose_from_proto(camera_pose((1.5, -2.25, 4.0), rotation, 45.0, 1.75))
    assert position.dtype == np.float64 and position.tolist() == [1.5, -2.25, 4.0]
    np.testing.assert_allclose(q, rotation)
    assert (fov, aspect) == (45.0, 1.75)
    out = pose_to_proto(position, q, pb.Pose())
    assert (out.position.x, out.position.y, out.position.z) == (1.5, -2.25, 4.0)
    assert (out.rotation.x, out.rotation.y, out.rotation.z, out.rotation.w) == rotation


def test_pose_from_proto_renormalises_a_nearly_unit_quaternion():
    _, q, _, _ = pose_from_proto(camera_pose(rotation=(0.0, 0.0, 0.0, 1.0005)))
    assert math.isclose(float(np.linalg.norm(q)), 1.0)


@pytest.mark.parametrize(
    ("pose", "field"),
    [
        (pb.CameraPose(vertical_fov_deg=60.0), "pose.pose"),
        (camera_pose(position=(math.nan, 0.0, 0.0)), "pose.pose.position"),
        (camera_pose(position=(0.0, math.inf, 0.0)), "pose.pose.position"),
        (camera_pose(rotation=(0.0, 0.0, 0.0, 2.0)), "pose.pose.rotation"),
        (camera_pose(rotation=(0.0, 0.0, 0.0, 0.0)), "pose.pose.rotation"),
        (camera_pose(fov=0.0), "pose.vertical_fov_deg"),
        (camera_pose(fov=180.0), "pose.vertical_fov_deg"),
        (camera_pose(aspect=-1.0), "pose.aspect"),
        (camera_pose(aspect=MAX_ASPECT * 2), "pose.aspect"),
        (camera_pose(aspect=math.nan), "pose.aspect"),
    ],
)
def test_pose_from_proto_names_the_bad_field(pose: pb.CameraPose, field: str):
    with pytest.raises(InvalidArgument) as err:
        pose_from_proto(pose)
    assert err.value.field == field
    assert field in err.value.message


def test_protocol_version():
    v = protocol_version()
    assert isinstance(v, pb.ProtocolVersion)
    assert (v.major, v.minor) == (PROTOCOL_MAJOR, PROTOCOL_MINOR)


def meta(**changes) -> FrameMeta:
    """Every field set to a value exact in the wire's types (float32 for the pose, fov, aspect, latency)."""
    fields = dict(
        frame_sequence=2**32 + 7,
        slot=2,
        pose_sequence=2**40 + 3,
        engine_time_us=1_700_000_000_000_123,
        position=(1.5, -0.25, 4.0),
        rotation=(0.0, -0.5, 0.5, -0.5),
        vertical_fov_deg=60.0,
        aspect=1.75,
        scene_time_s=3.125,
        generation_latency_ms=12.5,
        width=512,
        height=288,
    )
    fields.update(changes)
    return FrameMeta(**fields)


def test_frame_meta_round_trip():
    m = meta()
    fr = m.to_proto()
    assert isinstance(fr, pb.FrameReady)
    assert (fr.frame_sequence, fr.slot, fr.pose_sequence) == (2**32 + 7, 2, 2**40 + 3)
    assert fr.engine_time_us == m.engine_time_us
    assert (fr.pose.position.x, fr.pose.position.y, fr.pose.position.z) == m.position
    assert (fr.vertical_fov_deg, fr.aspect, fr.scene_time_s, fr.generation_latency_ms) == (60.0, 1.75, 3.125, 12.5)
    assert (fr.width, fr.height) == (512, 288)
    assert FrameMeta.from_proto(fr) == m
    # Through bytes too (what actually travels), and into an existing message.
    msg = pb.BackendMessage()
    assert m.to_proto(msg.frame) is msg.frame
    parsed = pb.BackendMessage.FromString(msg.SerializeToString())
    assert FrameMeta.from_proto(parsed.frame) == m


def test_frame_meta_from_proto_reads_single_precision():
    """The wire carries the pose as float32: what comes back is the float32 value, as the ring's is."""
    fr = meta(position=(0.1, 0.2, 0.3)).to_proto()
    back = FrameMeta.from_proto(fr)
    assert back.position == tuple(float(np.float32(v)) for v in (0.1, 0.2, 0.3))
    assert back != meta(position=(0.1, 0.2, 0.3))
