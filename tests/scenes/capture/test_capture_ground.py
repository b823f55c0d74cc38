"""The ground among the planes of a point cloud (capture/ground.py): the plane with the most points whose normal
is near the cameras' down axis, less the points seen below it.

A street seen by a camera moving forward: the ground's stereo points are few (plain asphalt), while box tops
and facades whose heights rise with the distance line up on a plane tilted 5 degrees that also passes through
the near ground. More points lie on that tilted plane than on the ground, but the far ground and the facades'
lower parts lie below it, where nothing static can be seen from above.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.scenes.capture.ground import GroundSearch, find_ground, fit_ground

SLOPE = 0.09  # the tilted plane: y = SLOPE (z - 4), about 5 degrees


def street(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(points (M, 3), cameras (N, 4, 4) OpenCV camera-to-world) in a y-up world: the ground at y = 0."""
    ground = np.stack([rng.uniform(-8, 8, 300), np.zeros(300), rng.uniform(2, 30, 300)], axis=1)
    z = rng.uniform(8, 20, 500)
    ramp = np.stack([rng.uniform(-8, 8, 500), SLOPE * (z - 4), z], axis=1)  # box tops and walls, rising
    facade = np.stack([rng.uniform(-10, 10, 600), rng.uniform(0, 8, 600), np.full(600, 30.0)], axis=1)
    points = np.concatenate([ground, ramp, facade]) + rng.normal(0, 0.02, (1400, 3))
    cams = np.tile(np.eye(4), (5, 1, 1))
    cams[:, :3, :3] = np.diag([1.0, -1.0, 1.0])  # OpenCV: +y down, looking along the world's +z
    cams[:, 1, 3] = 1.6  # at eye height
    cams[:, 2, 3] = np.arange(5.0) * 0.5
    return points, cams


def tilt_deg(up: np.ndarray) -> float:
    return math.degrees(math.acos(min(1.0, abs(float(up[1])))))


def test_the_ground_is_the_plane_nothing_is_seen_below() -> None:
    points, cams = street(np.random.default_rng(1))
    plain = fit_ground(points, cams, 0.1, 2000, 35.0, np.random.default_rng(0))
    assert plain is not None and tilt_deg(plain.up) > 4.0  # the most points: the tilted plane
    ground = fit_ground(points, cams, 0.1, 2000, 35.0, np.random.default_rng(0), beneath=(0.3, 1.0))
    assert ground is not None and tilt_deg(ground.up) < 0.5
    assert ground.up[1] > 0  # facing the cameras
    heights = (cams[:, :3, 3] - ground.centre) @ ground.up
    assert np.allclose(heights, 1.6, atol=0.03)
    # find_ground counts the points below by default (its tolerance is a share of the cloud's median distance)
    found = find_ground(points, cams, GroundSearch(hypotheses=2000, plane_tol=0.006), np.random.default_rng(0))
    assert found.ground is not None and tilt_deg(found.ground.up) < 0.5
    off = GroundSearch(hypotheses=2000, plane_tol=0.006, beneath_weight=0.0)
    assert tilt_deg(find_ground(points, cams, off, np.random.default_rng(0)).ground.up) > 4.0  # type: ignore[union-attr]


def test_a_level_ground_alone_is_found_either_way() -> None:
    rng = np.random.default_rng(2)
    points, cams = street(rng)
    flat = points[np.abs(points[:, 1]) < 0.1]  # the ground and the facade's foot only
    for beneath in ((0.0, 0.0), (0.3, 1.0)):
        ground = fit_ground(flat, cams, 0.1, 400, 35.0, np.random.default_rng(0), beneath=beneath)
        assert ground is not None and tilt_deg(ground.up) < 0.5


def test_ground_search_settings_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="GroundSearch"):
        GroundSearch(beneath_margin=0.0)
    with pytest.raises(InvalidArgument, match="GroundSearch"):
        GroundSearch(beneath_weight=-1.0)
