"""The field of view from the picture (capture/track_vanishing.py): orthogonal vanishing points, on frames the
procedural ray-caster renders at a known field of view, and the tracker using them where the motion cannot
measure it.

The views: the demo world (axis-aligned floor tiles, houses with window rows) seen from the origin turned 20-50
degrees either way and tilted 10 degrees down, 320x180, as a phone would see a street corner. Measured (2-core
VM, the boxes' patterns averaged over each pixel since render version 2): 45 degrees -> 44.8 +- 1.0 (5 of 6
views agree), 70 -> 70.3 +- 1.0 (5 of 6), under a second each; a tripod turning 1 degree (rotation only, too
little turn to measure it: 60 was assumed before) 45.6 and 69.5. A frame without straight edges (blurred
noise, a flat grey) gives no estimate and no error. End to end, a 24-frame orbit filmed at 70 degrees: the
motion alone says 69.8 +- 2.4 (an orbit barely measures it), the vanishing points 70.3 +- 1.0, combined 70.1
+- 0.9, decided by the vanishing points.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from starbridge.errors import InvalidArgument
from starbridge.geometry.camera import Intrinsics
from starbridge.scenes.capture.track_fov import combine_fov
from starbridge.scenes.capture.track_types import FOV_DEFAULT, FOV_ESTIMATED, TrackingConfig
from starbridge.scenes.capture.track_vanishing import (
    FrameVotes,
    VanishingConfig,
    VanishingCue,
    detect_segments,
    find_vanishing_points,
    pair_fovs,
    pool_votes,
    vanishing_fov,
)
from starbridge.scenes.capture.tracking import FOV_VANISHING, track_camera
from starbridge.scenes.procedural.clips import ClipConfig, render_clip
from starbridge.scenes.procedural.paths import pose
from starbridge.scenes.procedural.world import DemoWorld
from starbridge.scenes.video import decode_video

WIDTH, HEIGHT = 320, 180
TURNS = (20.0, 30.0, 40.0, 50.0, -25.0, -35.0)
LUMA = np.array([0.299, 0.587, 0.114])


def street_corner_views(fov: float, pitch: float = -10.0) -> np.ndarray:
    """(6, H, W) grey renders of the demo world from the origin, turned TURNS degrees, tilted `pitch`."""
    world = DemoWorld()
    intr = Intrinsics.from_fov(fov, WIDTH, HEIGHT)
    return np.stack([world.render(pose(yaw, pitch, (0.0, 0.0, 0.0)), intr, 0.0)[0] @ LUMA for yaw in TURNS])


@pytest.mark.parametrize("fov", [45.0, 70.0])
def test_the_vanishing_points_give_the_field_of_view_of_rendered_frames(fov: float) -> None:
    cue = vanishing_fov(street_corner_views(fov))
    print(f"\n{fov}: {cue.vertical_fov_deg:.2f} +- {cue.sigma_deg:.2f}: {cue.note}")
    assert cue.determined
    assert abs(cue.vertical_fov_deg - fov) <= 1.5
    assert 0.5 <= cue.sigma_deg <= 2.0
    assert cue.agreeing >= 4 and cue.frames == len(TURNS)
    assert "agree on" in cue.note


def test_a_right_angle_pair_gives_the_focal_length() -> None:
    """In one view turned 40 degrees and tilted 10 down, the floor tiles' two directions and the vertical:
    three vanishing points where the geometry puts them, and pairs of them give the field of view."""
    fov = 60.0
    grey = street_corner_views(fov)[2]
    segs = detect_segments(grey)
    assert len(segs) >= 30
    assert (segs.length >= 0.08 * HEIGHT).all() and np.allclose(np.linalg.norm(segs.direction, axis=1), 1.0)
    points = find_vanishing_points(segs, (WIDTH, HEIGHT))
    focal = 0.5 * HEIGHT / math.tan(math.radians(fov / 2))
    # where the world's axes vanish (camera turned 40 degrees left, tilted 10 down; image y down)
    c2w = pose(40.0, -10.0, (0.0, 0.0, 0.0))[:3, :3]
    truth = []
    for axis in np.eye(3):
        d = c2w.T @ axis  # wire camera: x right, y up, looking down -z
        truth.append(np.array([focal * d[0], -focal * d[1], -d[2]]))
    found = [p.point for p in points]

    def near(v: np.ndarray) -> bool:
        # the angle between the two rays (vanishing points as directions), degrees
        rays = [np.array([p[0], p[1], p[2] * focal]) for p in (v, *found)]
        cos = [abs(rays[0] @ r) / np.linalg.norm(rays[0]) / np.linalg.norm(r) for r in rays[1:]]
        return math.degrees(math.acos(min(max(cos), 1.0))) < 2.0

    assert sum(near(v) for v in truth) >= 2
    fovs = pair_fovs(points, HEIGHT, (25.0, 110.0))
    assert any(abs(f - fov) <= 2.0 for f in fovs)


@pytest.mark.parametrize("kind", ["blurred noise", "flat grey"])
def test_a_frame_without_straight_edges_gives_no_estimate_and_no_error(kind: str) -> None:
    rng = np.random.default_rng(3)
    if kind == "flat grey":
        greys = np.full((4, HEIGHT, WIDTH), 128.0)
    else:
        greys = np.stack([ndimage.gaussian_filter(rng.normal(128, 60, (HEIGHT, WIDTH)), 4.0) for _ in range(4)])
    cue = vanishing_fov(greys)
    assert not cue.determined
    assert math.isnan(cue.vertical_fov_deg) and math.isinf(cue.sigma_deg)
    assert "too few" in cue.note


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(InvalidArgument):
        vanishing_fov(np.zeros((0, 10, 10)))
    with pytest.raises(InvalidArgument):
        VanishingConfig(fov_range_deg=(90.0, 30.0))


def votes_of(frames: list[list[tuple[float, int, int]]]) -> tuple[FrameVotes, ...]:
    """Keyframes' votes from (field of view, support of one vanishing point, of the other) per pair, weighted as
    `frame_votes` weighs them (the weaker support over the frame's best pair's)."""
    out = []
    for i, pairs in enumerate(frames):
        strength = [float(min(a, b)) for _, a, b in pairs]
        weights = tuple(s / max(strength) for s in strength)
        out.append(FrameVotes(i, detect_segments(np.zeros((8, 8))), (), tuple(f for f, _, _ in pairs), weights))
    return tuple(out)


def test_weak_pairs_repeating_in_every_keyframe_do_not_tie_the_strong_ones() -> None:
    """A tripod that barely turns: every keyframe's strongest pair (20 and 15 segments) gives 45.6 +- 0.5, and
    four of five also have a pair of weak vanishing points (5 segments each: two faces not at right angles)
    near 51.6. Counted alike that was a tie, and the cue abstained; weighted by their support it is 45.6."""
    strong = [45.2, 45.8, 45.6, 46.0, 45.5]
    frames = [[(f, 20, 15)] + ([(51.6 + 0.2 * i, 5, 5)] if i < 4 else []) for i, f in enumerate(strong)]
    config = VanishingConfig()
    found = pool_votes(votes_of(frames), config)
    assert found.determined and found.vertical_fov_deg == pytest.approx(45.6, abs=0.2) and found.agreeing == 5
    # the same weak pair in every keyframe, as strong as the right angle's: two values as likely, no estimate
    equal = [[(f, 20, 15), (51.6, 20, 15)] for f in strong]
    tie = pool_votes(votes_of(equal), config)
    assert not tie.determined and "about as likely" in tie.note


def cue(fov: float, sigma: float = 0.8, determined: bool = True) -> VanishingCue:
    return VanishingCue(determined, fov if determined else math.nan, sigma if determined else math.inf, 12, 6, 5, "")


def test_the_cues_are_combined_by_their_uncertainties() -> None:
    cfg = TrackingConfig().for_frames(320, 180)  # as track_camera resolves it: a phone lens's 44.4 degrees
    default = cfg.default_fov_deg
    # the motion cannot measure it (an orbit, a dolly): the vanishing points decide (the prior barely moves it)
    fov, source, sigma = combine_fov(55.0, math.inf, cue(48.0), cfg)
    assert source == FOV_VANISHING and fov == pytest.approx(48.0, abs=0.05) and sigma == pytest.approx(0.8)
    # neither does: the default, unmeasured
    assert combine_fov(55.0, math.inf, cue(48.0, determined=False), cfg) == (default, FOV_DEFAULT, math.inf)
    assert combine_fov(55.0, math.inf, None, cfg) == (default, FOV_DEFAULT, math.inf)
    # both, agreeing: inverse-variance weights, the surer one decides, the uncertainty shrinks
    fov, source, sigma = combine_fov(50.0, 2.0, cue(48.0, 1.0), cfg)
    assert source == FOV_VANISHING and 48.0 < fov < 49.0 and sigma < 1.0
    fov, source, sigma = combine_fov(48.0, 0.5, cue(49.0, 2.0), cfg)
    assert source == FOV_ESTIMATED and 48.0 < fov < 48.2
    # disagreeing with a motion that measures it well (a handheld walk): the motion's is kept, whatever the
    # vanishing points claim
    fov, source, sigma = combine_fov(48.0, 1.5, cue(56.0, 0.8), cfg)
    assert source == FOV_ESTIMATED and fov == pytest.approx(48.0, abs=0.2) and sigma == pytest.approx(1.5)
    # ...with one that barely measures it: the surer one
    fov, source, _ = combine_fov(70.0, 5.0, cue(48.0, 0.8), cfg)
    assert source == FOV_VANISHING and fov == pytest.approx(48.0, abs=0.1)


@pytest.mark.parametrize("fov", [45.0, 70.0])
def test_a_camera_on_a_tripod_that_barely_turns_takes_its_field_of_view_from_the_scene(fov: float) -> None:
    """Twelve frames turning 1 degree in all: rotation only, too little turn to measure the focal length from
    the homographies; the vanishing points give it (before this cue: 60 assumed, with a warning)."""
    world = DemoWorld()
    intr = Intrinsics.from_fov(fov, WIDTH, HEIGHT)
    frames = np.stack([world.render(pose(40.0 + 0.1 * i, -10.0, (0.0, 0.0, 0.0)), intr, 0.0)[0] for i in range(12)])
    result = track_camera(frames)
    print(f"\ntripod at {fov}: {result.vertical_fov_deg:.2f} ({result.fov_source}): {result.fov_note}")
    assert result.rotation_only
    assert result.fov_source == FOV_VANISHING and abs(result.vertical_fov_deg - fov) <= 1.5
    assert result.fov_uncertainty_deg <= 2.0 and not result.warnings


@pytest.mark.slow
def test_the_tracker_takes_an_orbits_field_of_view_from_the_vanishing_points(tmp_path: Path) -> None:
    """A short drone orbit filmed at 70 degrees, through H.264: the motion alone barely measures the field of
    view (the keyframes' adjustments land near 73 +- 2); with the scene's right angles it lands within 1.5."""
    fov = 70.0
    clip = render_clip(ClipConfig(kind="orbit", frames=24, width=WIDTH, height=HEIGHT, vertical_fov_deg=fov))
    frames = decode_video(clip.write_mp4(tmp_path / "orbit.mp4"), WIDTH, 0, lambda *a: None).frames
    result = track_camera(frames)
    print(f"\norbit at {fov}: {result.vertical_fov_deg:.2f} ({result.fov_source}): {result.fov_note}")
    assert abs(result.vertical_fov_deg - fov) <= 1.5
    assert result.fov_source == FOV_VANISHING and "vanishing points" in result.fov_note
    assert result.fov_uncertainty_deg <= 2.0
    assert not any("field of view" in w for w in result.warnings)
