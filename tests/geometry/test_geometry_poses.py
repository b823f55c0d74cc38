"""Slerp, pose interpolation/extrapolation and PoseTrack prediction."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from starbridge.errors import InvalidArgument, StarBridgeError
from starbridge.geometry.conventions import quat_to_matrix
from starbridge.geometry.poses import (
    PoseTrack,
    PoseTrackConfig,
    interpolate_pose,
    quat_conjugate,
    quat_from_axis_angle,
    quat_multiply,
    slerp,
)

IDENTITY = np.array([0.0, 0.0, 0.0, 1.0])


def assert_same_rotation(q0: np.ndarray, q1: np.ndarray, atol: float = 1e-9) -> None:
    """q and -q are the same rotation: compare the matrices."""
    np.testing.assert_allclose(quat_to_matrix(q0), quat_to_matrix(q1), atol=atol)


def rotation_angle(q0: np.ndarray, q1: np.ndarray) -> float:
    """Angle in radians of the rotation taking q0 to q1."""
    return 2.0 * math.acos(min(1.0, abs(float(np.dot(q0, q1)))))


def test_quat_multiply_composes_like_matrices() -> None:
    a = quat_from_axis_angle([1.0, 2.0, 3.0], 0.7)
    b = quat_from_axis_angle([-1.0, 0.5, 0.0], 1.9)
    np.testing.assert_allclose(quat_to_matrix(quat_multiply(a, b)), quat_to_matrix(a) @ quat_to_matrix(b), atol=1e-12)
    np.testing.assert_allclose(quat_multiply(a, quat_conjugate(a)), IDENTITY, atol=1e-12)


def test_slerp_endpoints() -> None:
    q0 = quat_from_axis_angle([0.0, 1.0, 0.0], 0.3)
    q1 = quat_from_axis_angle([1.0, 1.0, 0.0], 1.2)
    assert_same_rotation(slerp(q0, q1, 0.0), q0)
    assert_same_rotation(slerp(q0, q1, 1.0), q1)


def test_slerp_midpoint_is_half_angle() -> None:
    q1 = quat_from_axis_angle([0.0, 0.0, 1.0], math.radians(90.0))
    mid = slerp(IDENTITY, q1, 0.5)
    assert_same_rotation(mid, quat_from_axis_angle([0.0, 0.0, 1.0], math.radians(45.0)))
    assert np.linalg.norm(mid) == pytest.approx(1.0)


def test_slerp_takes_shortest_path_for_antipodal_representation() -> None:
    q1 = quat_from_axis_angle([0.0, 0.0, 1.0], math.radians(170.0))
    expected = quat_from_axis_angle([0.0, 0.0, 1.0], math.radians(85.0))
    assert_same_rotation(slerp(IDENTITY, q1, 0.5), expected)
    assert_same_rotation(slerp(IDENTITY, -q1, 0.5), expected)  # -q1: the same rotation, same short path


def test_slerp_nearly_equal_quaternions() -> None:
    q0 = quat_from_axis_angle([0.3, 1.0, 0.0], 0.4)
    q1 = quat_from_axis_angle([0.3, 1.0, 0.0], 0.4 + 1e-10)
    for s in (0.0, 0.5, 1.0, 3.0):
        out = slerp(q0, q1, s)
        assert np.all(np.isfinite(out))
        assert np.linalg.norm(out) == pytest.approx(1.0)
        assert_same_rotation(out, q0, atol=1e-8)
    assert_same_rotation(slerp(q0, q0, 0.5), q0)
    assert_same_rotation(slerp(q0, -q0, 0.5), q0)


@pytest.mark.parametrize("s", [-1.0, 1.5, 2.0, 4.0])
def test_slerp_extrapolates_at_constant_angular_velocity(s: float) -> None:
    axis = [0.2, -1.0, 0.4]
    q0 = quat_from_axis_angle(axis, 0.1)
    q1 = quat_from_axis_angle(axis, 0.35)
    assert_same_rotation(slerp(q0, q1, s), quat_from_axis_angle(axis, 0.1 + 0.25 * s))


def test_interpolate_pose_lerps_and_extrapolates() -> None:
    q0 = quat_from_axis_angle([0.0, 1.0, 0.0], 0.0)
    q1 = quat_from_axis_angle([0.0, 1.0, 0.0], 0.2)
    p, q = interpolate_pose([0.0, 0.0, 0.0], q0, 1.0, [1.0, 2.0, 3.0], q1, 2.0, 1.25)
    np.testing.assert_allclose(p, [0.25, 0.5, 0.75])
    assert_same_rotation(q, quat_from_axis_angle([0.0, 1.0, 0.0], 0.05))
    p, q = interpolate_pose([0.0, 0.0, 0.0], q0, 1.0, [1.0, 2.0, 3.0], q1, 2.0, 3.0)
    np.testing.assert_allclose(p, [2.0, 4.0, 6.0])
    assert_same_rotation(q, quat_from_axis_angle([0.0, 1.0, 0.0], 0.4))


def test_interpolate_pose_same_time_returns_second() -> None:
    q1 = quat_from_axis_angle([1.0, 0.0, 0.0], 0.5)
    p, q = interpolate_pose([0.0, 0.0, 0.0], IDENTITY, 1.0, [1.0, 1.0, 1.0], q1, 1.0, 5.0)
    np.testing.assert_allclose(p, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(q, q1)


# ---------------------------------------------------------------------- PoseTrack

VELOCITY = np.array([0.5, -0.2, 1.5])  # m/s
OMEGA_AXIS = np.array([0.3, 1.0, -0.2])
OMEGA = 2.0  # rad/s
START_Q = quat_from_axis_angle([1.0, 0.0, 0.0], 0.3)


def true_pose(t: float) -> tuple[np.ndarray, np.ndarray]:
    """A camera moving at constant linear and angular (world-frame) velocity."""
    return np.array([1.0, 2.0, 3.0]) + VELOCITY * t, quat_multiply(quat_from_axis_angle(OMEGA_AXIS, OMEGA * t), START_Q)


def moving_track(times: list[float], **kwargs: Any) -> PoseTrack:
    track = PoseTrack(**kwargs)
    for t in times:
        track.add(t, *true_pose(t))
    return track


@pytest.mark.parametrize("t", [0.0, 0.01, 0.05, 0.1, 0.2])
def test_track_exact_for_constant_velocity(t: float) -> None:
    track = moving_track([-0.05, -0.033, -0.016, 0.0], max_extrapolation_s=0.25)
    p, q = track.predict(t)
    p_true, q_true = true_pose(t)
    np.testing.assert_allclose(p, p_true, atol=1e-9)
    assert_same_rotation(q, q_true)


def test_track_interpolates_between_samples() -> None:
    track = moving_track([0.0, 0.1, 0.2, 0.3])
    p, q = track.predict(0.15)
    p_true, q_true = true_pose(0.15)
    np.testing.assert_allclose(p, p_true, atol=1e-9)
    assert_same_rotation(q, q_true)


def test_track_extrapolation_is_capped() -> None:
    track = moving_track([0.0, 0.02], max_extrapolation_s=0.1)
    capped = track.predict(0.12)
    for t in (0.2, 5.0, 1e6):
        p, q = track.predict(t)
        np.testing.assert_allclose(p, capped[0])
        np.testing.assert_allclose(q, capped[1])
    p_true, q_true = true_pose(0.12)
    np.testing.assert_allclose(capped[0], p_true, atol=1e-9)
    assert_same_rotation(capped[1], q_true)


def test_track_zero_horizon_holds_newest() -> None:
    track = moving_track([0.0, 0.02], max_extrapolation_s=0.0)
    p, q = track.predict(1.0)
    np.testing.assert_allclose(p, true_pose(0.02)[0])
    assert_same_rotation(q, true_pose(0.02)[1])


def test_track_single_sample_and_empty() -> None:
    track = PoseTrack()
    with pytest.raises(StarBridgeError):
        track.predict(0.0)
    track.add(1.0, [1.0, 2.0, 3.0], START_Q)
    for t in (0.0, 1.0, 2.0):
        p, q = track.predict(t)
        np.testing.assert_allclose(p, [1.0, 2.0, 3.0])
        np.testing.assert_allclose(q, START_Q)


def test_track_before_oldest_holds_oldest() -> None:
    track = moving_track([1.0, 1.1])
    p, _ = track.predict(0.0)
    np.testing.assert_allclose(p, true_pose(1.0)[0])


def test_track_burst_uses_an_older_baseline() -> None:
    """Poses received nearly together do not give a velocity; an older pose does."""
    track = moving_track([0.0, 0.0005], min_baseline_s=0.005)
    np.testing.assert_allclose(track.predict(0.1)[0], true_pose(0.0005)[0])  # nothing old enough: hold
    track = moving_track([-0.016, 0.0, 0.0005], min_baseline_s=0.005)
    np.testing.assert_allclose(track.predict(0.1)[0], true_pose(0.1)[0], atol=1e-9)


def test_track_keeps_history_bounded_and_sorted() -> None:
    track = moving_track([0.3, 0.1, 0.2, 0.0, 0.4], history=3)
    assert len(track) == 3
    np.testing.assert_allclose(track.predict(0.25)[0], true_pose(0.25)[0], atol=1e-9)
    track.add(0.4, *true_pose(0.0))  # same time: replaces
    assert len(track) == 3
    np.testing.assert_allclose(track.predict(0.4)[0], true_pose(0.0)[0])
    track.clear()
    assert len(track) == 0


@pytest.mark.parametrize(
    ("t", "position", "quat", "field"),
    [
        (math.nan, [0.0, 0.0, 0.0], IDENTITY, "time"),
        (0.0, [0.0, math.inf, 0.0], IDENTITY, "position"),
        (0.0, [0.0, 0.0], IDENTITY, "position"),
        (0.0, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0], "rotation"),
        (0.0, [0.0, 0.0, 0.0], [math.nan, 0.0, 0.0, 1.0], "rotation"),
    ],
)
def test_track_refuses_bad_samples(t: float, position: list[float], quat: list[float], field: str) -> None:
    track = PoseTrack()
    with pytest.raises(InvalidArgument) as info:
        track.add(t, position, quat)
    assert info.value.field == field
    assert len(track) == 0


@pytest.mark.parametrize(
    "kwargs",
    [{"max_extrapolation_s": -1.0}, {"max_extrapolation_s": math.nan}, {"min_baseline_s": -0.1}, {"history": 1}],
)
def test_track_config_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument):
        PoseTrackConfig(**kwargs)
