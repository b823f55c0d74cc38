"""The field of view of a lens given as a 35 mm-equivalent focal length (the tracker's default)."""

from __future__ import annotations

import math

import pytest

from starbridge.errors import InvalidArgument
from starbridge.geometry.camera import FULL_FRAME_DIAGONAL_MM, Intrinsics, fov_of_equivalent_focal
from starbridge.scenes.capture.track_types import TrackingConfig


def test_a_full_frame_picture_through_its_own_normal_lens() -> None:
    # 36 x 24 mm through 43.3 mm (the diagonal): the diagonal spans 2 atan(1/2) = 53.13 degrees, the height
    # 2 atan(12 / 43.27)
    fov = fov_of_equivalent_focal(FULL_FRAME_DIAGONAL_MM, 3600, 2400)
    assert fov == pytest.approx(math.degrees(2 * math.atan(12.0 / FULL_FRAME_DIAGONAL_MM)), rel=1e-12)
    # a 50 mm lens on full frame: 27.0 degrees vertical (the textbook value)
    assert fov_of_equivalent_focal(50.0, 36, 24) == pytest.approx(26.99, abs=0.01)


def test_a_phone_lens_in_landscape_portrait_and_cinema() -> None:
    landscape = fov_of_equivalent_focal(26.0, 1920, 1080)
    portrait = fov_of_equivalent_focal(26.0, 1080, 1920)
    assert landscape == pytest.approx(44.38, abs=0.01)
    assert portrait == pytest.approx(71.90, abs=0.01)
    # the same lens: the portrait's vertical is the landscape's horizontal
    k = Intrinsics.from_fov(landscape, 1920, 1080)
    assert math.degrees(2 * math.atan(960 / k.fx)) == pytest.approx(portrait, abs=1e-9)
    # the size does not matter, the aspect does; a wider picture of the same diagonal is lower
    assert fov_of_equivalent_focal(26.0, 320, 180) == pytest.approx(landscape, abs=1e-9)
    assert fov_of_equivalent_focal(26.0, 512, 218) == pytest.approx(36.11, abs=0.01)
    # a longer lens sees less
    assert fov_of_equivalent_focal(52.0, 1920, 1080) < landscape / 1.9


@pytest.mark.parametrize("focal", [0.0, -26.0, math.nan, math.inf])
def test_a_bad_focal_length_is_refused(focal: float) -> None:
    with pytest.raises(InvalidArgument, match="focal length"):
        fov_of_equivalent_focal(focal, 1920, 1080)
    with pytest.raises(InvalidArgument, match="image size"):
        fov_of_equivalent_focal(26.0, 0, 1080)


def test_the_tracker_assumes_a_phone_lens_unless_told() -> None:
    cfg = TrackingConfig()
    assert cfg.default_fov_deg is None and cfg.default_focal_35mm == 26.0
    assert cfg.default_fov(320, 180) == pytest.approx(44.38, abs=0.01)
    assert cfg.default_fov(180, 320) == pytest.approx(71.90, abs=0.01)
    resolved = cfg.for_frames(320, 180)
    assert resolved.default_fov_deg == pytest.approx(44.38, abs=0.01)
    assert "26 mm-equivalent" in resolved.default_fov_words
    # a fixed default is used as is, for any aspect, and says nothing of lenses
    fixed = TrackingConfig(default_fov_deg=60.0)
    assert fixed.default_fov(180, 320) == 60.0 and fixed.for_frames(180, 320) == fixed
    assert TrackingConfig(default_focal_35mm=50.0).default_fov(320, 180) < cfg.default_fov(320, 180)
    with pytest.raises(InvalidArgument, match="default_focal_35mm"):
        TrackingConfig(default_focal_35mm=0.0)
    with pytest.raises(InvalidArgument, match="default_fov_deg"):
        TrackingConfig(default_fov_deg=200.0)


def test_the_assumed_field_of_view_needs_the_clip() -> None:
    with pytest.raises(InvalidArgument, match="for_frames"):
        _ = TrackingConfig().assumed_fov_deg
    assert TrackingConfig().for_frames(1920, 1080).assumed_fov_deg == pytest.approx(44.38, abs=0.01)
    assert TrackingConfig(default_fov_deg=60.0).assumed_fov_deg == 60.0
