"""Camera conventions, tested both ways: wire (OpenGL) <-> OpenCV, Unity <-> wire, quaternions <-> matrices."""

from __future__ import annotations

import math

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.geometry.conventions import (
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

MIRROR_Z = np.diag([1.0, 1.0, -1.0])


def random_quats(n: int, seed: int = 0) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=(n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def same_rotation(q0: np.ndarray, q1: np.ndarray, tol: float = 1e-9) -> bool:
    return abs(abs(float(np.dot(q0, q1))) - 1.0) < tol


@pytest.mark.parametrize("q", random_quats(20))
def test_quat_matrix_round_trip(q: np.ndarray) -> None:
    m = quat_to_matrix(q)
    np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(m) == pytest.approx(1.0)
    back = matrix_to_quat(m)
    assert back[3] >= 0.0
    assert same_rotation(back, q)
    np.testing.assert_allclose(quat_to_matrix(back), m, atol=1e-12)


def test_quat_to_matrix_right_handed_about_y() -> None:
    # +90 degrees about +Y takes the wire forward (-Z) to -X (a camera turning left).
    q = np.array([0.0, math.sin(math.pi / 4), 0.0, math.cos(math.pi / 4)])
    np.testing.assert_allclose(quat_to_matrix(q) @ np.array([0.0, 0.0, -1.0]), [-1.0, 0.0, 0.0], atol=1e-12)


def test_pose_matrix_round_trip() -> None:
    for q in random_quats(10, seed=1):
        p = np.random.default_rng(2).normal(size=3)
        pos, rot = matrix_to_pose(pose_to_matrix(p, q))
        np.testing.assert_allclose(pos, p)
        assert same_rotation(rot, q)


def test_wire_cv_round_trip_both_ways() -> None:
    for q in random_quats(10, seed=3):
        m = pose_to_matrix([1.0, -2.0, 3.0], q)
        np.testing.assert_allclose(cv_to_wire(wire_to_cv(m)), m, atol=1e-12)
        np.testing.assert_allclose(wire_to_cv(cv_to_wire(m)), m, atol=1e-12)


def test_wire_to_cv_axes() -> None:
    """Same camera, same position: OpenCV +Z (forward) is wire -Z, OpenCV +Y (down) is wire -Y, +X shared."""
    for q in random_quats(10, seed=4):
        wire = pose_to_matrix([0.5, 0.25, -4.0], q)
        cv = wire_to_cv(wire)
        np.testing.assert_allclose(cv[:3, 3], wire[:3, 3])
        np.testing.assert_allclose(cv[:3, 0], wire[:3, 0], atol=1e-12)
        np.testing.assert_allclose(cv[:3, 1], -wire[:3, 1], atol=1e-12)
        np.testing.assert_allclose(cv[:3, 2], -wire[:3, 2], atol=1e-12)


def test_identity_wire_camera_in_cv_looks_down_world_minus_z() -> None:
    cv = wire_to_cv(np.eye(4))
    np.testing.assert_allclose(cv[:3, 2], [0.0, 0.0, -1.0])  # looks down world -Z
    np.testing.assert_allclose(cv[:3, 1], [0.0, -1.0, 0.0])  # image down is world down


def test_unity_wire_round_trip_both_ways() -> None:
    rng = np.random.default_rng(5)
    for q in random_quats(10, seed=6):
        p = rng.normal(size=3)
        p2, q2 = wire_to_unity(*unity_to_wire(p, q))
        np.testing.assert_allclose(p2, p)
        np.testing.assert_allclose(q2, q)
        p3, q3 = unity_to_wire(*wire_to_unity(p, q))
        np.testing.assert_allclose(p3, p)
        np.testing.assert_allclose(q3, q)


def test_unity_position_mirrors_z() -> None:
    p, _ = unity_to_wire([1.0, 2.0, 3.0], [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(p, [1.0, 2.0, -3.0])


def test_unity_identity_camera_looks_along_wire_minus_z() -> None:
    """A Unity camera with identity rotation looks along Unity +Z, which is wire -Z: the wire camera's forward."""
    _, q = unity_to_wire([0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0])
    r = quat_to_matrix(q)
    np.testing.assert_allclose(r @ [0.0, 0.0, -1.0], [0.0, 0.0, -1.0])  # wire forward
    np.testing.assert_allclose(MIRROR_Z @ [0.0, 0.0, 1.0], [0.0, 0.0, -1.0])  # Unity +Z in wire coordinates


@pytest.mark.parametrize("q_unity", random_quats(20, seed=7))
def test_unity_camera_axes_map_to_wire_camera_axes(q_unity: np.ndarray) -> None:
    """Forward (Unity +Z / wire -Z), up (+Y both) and right (+X both), mirrored into the wire world, agree."""
    r_unity = quat_to_matrix(q_unity)
    _, q_wire = unity_to_wire([0.0, 0.0, 0.0], q_unity)
    r_wire = quat_to_matrix(q_wire)
    np.testing.assert_allclose(r_wire @ [0, 0, -1.0], MIRROR_Z @ r_unity @ [0, 0, 1.0], atol=1e-12)
    np.testing.assert_allclose(r_wire @ [0, 1.0, 0], MIRROR_Z @ r_unity @ [0, 1.0, 0], atol=1e-12)
    np.testing.assert_allclose(r_wire @ [1.0, 0, 0], MIRROR_Z @ r_unity @ [1.0, 0, 0], atol=1e-12)


@pytest.mark.parametrize("bad", [[math.nan, 0.0, 0.0, 1.0], [0.0, math.inf, 0.0, 1.0]])
def test_check_unit_quaternion_refuses_non_finite(bad: list[float]) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_unit_quaternion(bad, "camera.rotation")
    assert info.value.field == "camera.rotation"
    assert "camera.rotation" in str(info.value)


@pytest.mark.parametrize("bad", [[0.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.4]])
def test_check_unit_quaternion_refuses_non_unit(bad: list[float]) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_unit_quaternion(bad)
    assert info.value.field == "rotation"
    assert "rotation" in str(info.value) and "unit" in str(info.value)


def test_check_unit_quaternion_refuses_wrong_length() -> None:
    with pytest.raises(InvalidArgument, match="pose.q"):
        check_unit_quaternion([0.0, 0.0, 1.0], "pose.q")


def test_check_unit_quaternion_renormalises_small_error() -> None:
    q = check_unit_quaternion([0.0, 0.0, 0.0, 1.0005])
    np.testing.assert_allclose(q, [0.0, 0.0, 0.0, 1.0])
