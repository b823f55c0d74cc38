"""Camera paths for `starbridge fly`: unit, continuous, looping, and the orbit looks at its target."""

import math

import numpy as np
import pytest

from starbridge.client.paths import (
    DEFAULT_PATH,
    DOLLY_METRES,
    ORBIT_DEGREES,
    ORBIT_TARGET,
    PAN_DEGREES,
    PATHS,
    camera_pose,
    look_at,
    path_period,
)
from starbridge.errors import InvalidArgument
from starbridge.geometry.conventions import quat_to_matrix

DT = 1.0 / 120.0
#: Bounds that make motion comfortable to watch (and catch any jump): metres and degrees per second.
MAX_SPEED = 2.0
MAX_TURN_RATE = 60.0


def forward(q: np.ndarray) -> np.ndarray:
    """World direction the camera looks along (its -Z)."""
    return quat_to_matrix(q) @ np.array([0.0, 0.0, -1.0])


def samples(name: str) -> list[tuple[float, np.ndarray, np.ndarray]]:
    period = path_period(name)
    return [(t, *camera_pose(name, t)) for t in np.arange(0.0, period + 1.0, DT)]


@pytest.mark.parametrize("name", sorted(PATHS))
def test_unit_and_continuous(name: str):
    prev = None
    for t, position, rotation in samples(name):
        assert position.shape == (3,) and rotation.shape == (4,)
        assert np.all(np.isfinite(position)) and np.all(np.isfinite(rotation))
        assert abs(np.linalg.norm(rotation) - 1.0) < 1e-9, t
        if prev is not None:
            p0, q0 = prev
            assert np.linalg.norm(position - p0) < MAX_SPEED * DT, f"{name} jumps at t={t:.3f}"
            angle = 2.0 * math.degrees(math.acos(min(1.0, abs(float(q0 @ rotation)))))
            assert angle < MAX_TURN_RATE * DT, f"{name} turns {angle:.2f} degrees in one step at t={t:.3f}"
        prev = position, rotation


@pytest.mark.parametrize("name", sorted(PATHS))
def test_loops_start_at_the_origin_camera(name: str):
    period = path_period(name)
    for t in (0.0, period, 2 * period):
        position, rotation = camera_pose(name, t)
        np.testing.assert_allclose(position, 0.0, atol=1e-9)
        np.testing.assert_allclose(rotation, [0.0, 0.0, 0.0, 1.0], atol=1e-9)


def test_orbit_looks_at_its_target():
    target = np.asarray(ORBIT_TARGET)
    angles = []
    for _t, position, rotation in samples("orbit"):
        to_target = target - position
        assert abs(np.linalg.norm(to_target) - 4.0) < 1e-9  # constant radius
        np.testing.assert_allclose(forward(rotation), to_target / np.linalg.norm(to_target), atol=1e-9)
        up = quat_to_matrix(rotation) @ np.array([0.0, 1.0, 0.0])
        np.testing.assert_allclose(up, [0.0, 1.0, 0.0], atol=1e-9)  # no roll
        angles.append(math.degrees(math.atan2(position[0], position[2] - target[2])))
    assert max(angles) == pytest.approx(ORBIT_DEGREES, abs=0.05)
    assert min(angles) == pytest.approx(-ORBIT_DEGREES, abs=0.05)


def test_dolly_and_pan_ranges():
    dolly = samples("dolly")
    zs = [p[2] for _t, p, _q in dolly]
    assert min(zs) == pytest.approx(-DOLLY_METRES, abs=1e-3) and max(zs) <= 1e-12
    for _t, p, q in dolly:
        np.testing.assert_allclose(q, [0.0, 0.0, 0.0, 1.0])
        assert p[0] == 0.0 and p[1] == 0.0
    yaws = []
    for _t, p, q in samples("pan"):
        np.testing.assert_allclose(p, 0.0)
        f = forward(q)
        assert abs(f[1]) < 1e-12  # level
        yaws.append(math.degrees(math.atan2(-f[0], -f[2])))  # positive: turned left
    assert max(yaws) == pytest.approx(PAN_DEGREES, abs=0.05)
    assert min(yaws) == pytest.approx(-PAN_DEGREES, abs=0.05)


def test_tour_is_orbit_then_dolly_then_pan():
    assert DEFAULT_PATH == "tour"
    o, d = path_period("orbit"), path_period("dolly")
    for t, name, offset in ((o / 4, "orbit", 0.0), (o + d / 2, "dolly", o), (o + d + 1.0, "pan", o + d)):
        for a, b in zip(camera_pose("tour", t), camera_pose(name, t - offset), strict=True):
            np.testing.assert_allclose(a, b)
    assert path_period("tour") == o + d + path_period("pan")


def test_look_at_and_bad_names():
    np.testing.assert_allclose(look_at((0, 0, 0), (0, 0, -1)), [0, 0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(forward(look_at((1, 2, 3), (1, 2, 10))), [0, 0, 1], atol=1e-12)
    with pytest.raises(InvalidArgument):
        look_at((0, 0, 0), (0, 0, 0))
    with pytest.raises(InvalidArgument):
        look_at((0, 0, 0), (0, 5, 0))
    with pytest.raises(InvalidArgument, match="tour, orbit, dolly, pan"):
        camera_pose("spiral", 0.0)
    with pytest.raises(InvalidArgument):
        path_period("spiral")
