"""The ground carried into the depth's holes (capture/ground_fill.py), against the ground truth of a procedural
walk: the stereo input is the true inverse depth at a working size with the far ground made holes (not confident)
and filled wrongly, too near, as the depth stage's fill does there; the clip's ground plane is given tilted by a
degree, as a fit through stereo points is. What is measured is the step alone."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from PIL import Image

from starbridge.errors import InvalidArgument
from starbridge.scenes.capture.depth_ops import cv_poses, resize_nearest, working_size
from starbridge.scenes.capture.ground import Ground
from starbridge.scenes.capture.ground_fill import GroundFillConfig, fill_ground
from starbridge.scenes.procedural.clips import ClipConfig, GroundTruthClip, render_clip
from starbridge.scenes.procedural.world import DemoWorld, DemoWorldConfig

WRONG = 1.6  # the holes' inverse depth, times the truth (too near)
SIGMA_S, SIGMA_R = 0.15, 0.16  # the depth fill's (DepthConfig)


@dataclasses.dataclass
class Case:
    clip: GroundTruthClip
    truth: np.ndarray  # (N, h, w) true inverse depth at the working size
    ground: np.ndarray  # (N, h, w) bool: the working pixels on the ground
    inverse: np.ndarray  # the input: holes too near
    confident: np.ndarray
    holes: np.ndarray  # far ground (beyond 10 m) and a block of a facade
    facade: np.ndarray
    plane: Ground  # the clip's ground, tilted by a degree


@pytest.fixture(scope="module")
def case() -> Case:
    clip = render_clip(ClipConfig(kind="handheld", frames=6, width=192, height=108))
    n, height, width = clip.depth.shape
    h, w = working_size(height, width, 96)
    with np.errstate(divide="ignore"):
        rho = np.where(np.isfinite(clip.depth), 1.0 / clip.depth, 0.0).astype(np.float32)
    truth = np.stack([np.asarray(Image.fromarray(r).resize((w, h), Image.Resampling.BOX)) for r in rho])
    # the ground's pixels: the true point at the working pixel's centre lies on the world's ground
    ground_y = DemoWorld(DemoWorldConfig(seed=clip.config.world_seed)).moving.ground_y
    small = clip.intrinsics.scaled(w, h)
    v, u = np.mgrid[0:h, 0:w] + 0.5
    c2w = cv_poses(clip.poses)
    on_ground = np.zeros(truth.shape, bool)
    for i in range(n):
        z = np.where(truth[i] > 0, 1.0 / np.maximum(truth[i], 1e-9), 0.0)
        cam = np.stack([(u - small.cx) / small.fx * z, (v - small.cy) / small.fy * z, z], axis=-1)
        world = cam @ c2w[i][:3, :3].T + c2w[i][:3, 3]
        on_ground[i] = (truth[i] > 0) & (np.abs(world[..., 1] - ground_y) < 0.03)
    far_ground = on_ground & (truth < 1 / 10.0)
    facade = np.zeros_like(on_ground)
    facade[:, 8:16, 60:72] = True
    facade &= ~on_ground & (truth > 0)
    holes = far_ground | facade
    tilt = math.radians(1.0)
    plane = Ground(np.array([0.0, ground_y, 0.0]), np.array([0.0, math.cos(tilt), math.sin(tilt)]), np.zeros(0, bool))
    return Case(
        clip, truth, on_ground, np.where(holes, truth * WRONG, truth).astype(np.float32), (truth > 0) & ~holes,
        holes, facade, plane,
    )  # fmt: skip


def run(case: Case, config: GroundFillConfig = GroundFillConfig(), plane: Ground | None = None):  # noqa: B008
    return fill_ground(
        case.inverse, case.inverse, full_size(case.confident, case.clip), np.zeros_like(case.clip.moving),
        case.clip.frames, case.clip.intrinsics, cv_poses(case.clip.poses), plane or case.plane, SIGMA_S, SIGMA_R,
        config,
    )  # fmt: skip


def full_size(mask: np.ndarray, clip: GroundTruthClip) -> np.ndarray:
    """(N, H, W): each working pixel's value over the full-size pixels nearest to it (as the depth stage does)."""
    return np.stack([resize_nearest(m, clip.depth.shape[1:]) for m in mask])


@pytest.mark.parametrize(("min_share", "reached"), [(0.5, 0.4), (0.05, 0.6)])
def test_holes_on_the_far_ground_take_the_ground_plane(case: Case, min_share: float, reached: float) -> None:
    """Every hole on the ground beyond 10 m: those whose support is mostly ground (at the default share, about
    half of them here, where the whole far ground is a hole) take the frame's plane, which is not tilted."""
    out = run(case, GroundFillConfig(min_share=min_share, under_ground=False))
    far = case.holes & case.ground
    taken = far & (out.inverse != case.inverse)
    assert far.sum() > 200 and taken.sum() > reached * far.sum()
    before = np.median(np.abs(case.inverse[far] / case.truth[far] - 1.0))
    after = np.median(np.abs(out.inverse[taken] / case.truth[taken] - 1.0))
    assert before == pytest.approx(WRONG - 1.0) and after < 0.02, (before, after)
    assert out.changed == pytest.approx(taken.sum() / out.inverse.size)


def test_confident_pixels_sky_and_other_surfaces_keep_their_depth(case: Case) -> None:
    """The holes' fill alone (`under_ground` off: the test after the next has it)."""
    out = run(case, GroundFillConfig(under_ground=False))
    assert np.array_equal(out.inverse[case.confident], case.inverse[case.confident])
    sky = case.truth == 0
    assert sky.any() and np.all(out.inverse[sky] == 0)
    # a hole in a facade is not ground: its colour does not connect it to the ground pixels
    assert np.mean(out.inverse[case.facade] == case.inverse[case.facade]) > 0.95


def test_without_ground_in_view_or_switched_off_nothing_changes(case: Case) -> None:
    below = Ground(case.plane.centre - np.array([0.0, 100.0, 0.0]), case.plane.up, case.plane.inliers)
    for out in (run(case, plane=below), run(case, GroundFillConfig(enabled=False))):
        assert out.changed == 0.0 and np.array_equal(out.inverse, case.inverse)


def test_bad_input_is_refused(case: Case) -> None:
    with pytest.raises(InvalidArgument, match="must agree"):
        fill_ground(
            case.inverse, case.inverse[:, :-1], full_size(case.confident, case.clip), case.clip.moving,
            case.clip.frames, case.clip.intrinsics, cv_poses(case.clip.poses), case.plane, SIGMA_S, SIGMA_R,
        )  # fmt: skip
    with pytest.raises(InvalidArgument, match="must agree"):  # one frame short
        fill_ground(
            case.inverse, case.inverse, full_size(case.confident, case.clip)[1:], case.clip.moving[1:],
            case.clip.frames[1:], case.clip.intrinsics, cv_poses(case.clip.poses), case.plane, SIGMA_S, SIGMA_R,
        )  # fmt: skip
    for bad in (
        {"min_share": 0.0},
        {"label_tolerance": 1.5},
        {"fit_iterations": 0},
        {"min_pixels": 2},
        {"under_tolerance": -0.1},
    ):
        with pytest.raises(InvalidArgument, match="GroundFillConfig"):
            GroundFillConfig(**bad)


def test_nothing_is_seen_below_the_ground(case: Case) -> None:
    """`under_ground`: confident ground pixels put under the ground (inverse depth 0.7 times the truth: too far,
    as the stereo leaves a lean frame's ground) and others 3% too near come onto the ground plane refitted
    through the clip's confident pixels (the given one is tilted by a degree: the refit is level again, the
    pixels within 1% of the truth); the facades, boxes and sky keep their depth but for the feet of walls and
    boxes within the tolerance of the ground; switched off, confident pixels are never changed."""
    rng = np.random.default_rng(0)
    ground = case.ground & case.confident
    under = ground & (rng.random(ground.shape) < 0.2)
    lean = ground & ~under & (rng.random(ground.shape) < 0.2)
    inverse = np.where(under, case.inverse * 0.7, np.where(lean, case.inverse * 1.03, case.inverse)).astype(np.float32)
    moved = dataclasses.replace(case, inverse=inverse)
    on = run(moved)  # the default
    off = run(moved, GroundFillConfig(under_ground=False))
    for mask in (under, lean):
        assert mask.sum() > 100
        assert np.median(np.abs(inverse[mask] / case.truth[mask] - 1.0)) > 0.025
        assert np.median(np.abs(on.inverse[mask] / case.truth[mask] - 1.0)) < 0.01
        assert np.array_equal(off.inverse[mask], inverse[mask])
    above = case.confident & ~case.ground & (case.truth > 0)
    assert above.sum() > 1000
    # only what stands on the ground's depth along its ray (the foot of a wall or a box, the far ground's
    # mixed pixels at the horizon) may change, and it stays about right
    changed = above & (on.inverse != inverse)
    assert changed.sum() < 0.1 * above.sum()
    assert np.median(np.abs(on.inverse[changed] / case.truth[changed] - 1.0)) < 0.05
    # the sky keeps its infinity but at the horizon: a pixel at infinity below the plane's horizon is ground
    # too far to match (the ground is seen up to the horizon, never beyond); here the refit's horizon and the
    # truth's differ by a row or two
    sky = case.truth == 0
    lost = sky & (on.inverse != 0)
    near_ground = np.zeros_like(sky)
    for k in range(1, 3):
        near_ground[:, :-k] |= case.ground[:, k:]
    assert lost.sum() < 0.01 * sky.sum() and np.all(near_ground[lost])
    assert on.changed > off.changed
    with pytest.raises(InvalidArgument, match="GroundFillConfig"):
        GroundFillConfig(under_tolerance=1.0)
