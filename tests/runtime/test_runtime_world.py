"""The world beyond the reference frame: the fused static world and the session's world memory.

Scenes are ground-truth clips (scenes/procedural/clips.py) written as bundles, so every check compares
with what the procedural world really looks like.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from test_runtime_holes import plain_see_through  # noqa: E402

from starbridge.geometry import Intrinsics, pose_to_matrix, quat_from_axis_angle
from starbridge.geometry.splat import PointSplatter
from starbridge.runtime.explicit import ExplicitGenerator
from starbridge.runtime.generator import FrameRequest
from starbridge.runtime.memory import MemoryConfig
from starbridge.scenes.bundle import SceneMeta, write_bundle
from starbridge.scenes.fused import FusionConfig, fuse_world
from starbridge.scenes.procedural.clips import ClipConfig, GroundTruthClip, render_clip
from starbridge.scenes.procedural.raycast import render
from starbridge.scenes.procedural.world import DemoWorld, DemoWorldConfig


def _bundle(tmp_path: Path, clip: GroundTruthClip, with_masks: bool = True, name: str = "clip"):
    meta = SceneMeta(
        scene_id=name, title=name, fps=clip.config.fps, frame_count=clip.config.frames,
        intrinsics=clip.intrinsics, source="engine", depth_source="exact",
    )  # fmt: skip
    return write_bundle(
        tmp_path / name, meta, clip.frames, clip.depth, clip.poses,
        moving=clip.moving if with_masks else None, in_scene_units=True, lossless=True,
    )  # fmt: skip


def _psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64))[where] ** 2).mean())
    return 10 * math.log10(255.0**2 / max(mse, 1e-12))


@pytest.fixture(scope="module")
def pan(tmp_path_factory) -> tuple:
    clip = render_clip(ClipConfig(kind="pan", frames=10, width=96, height=54))
    return clip, _bundle(tmp_path_factory.mktemp("pan"), clip)


def test_what_only_a_later_frame_saw_appears_at_an_earlier_time(pan):
    """Request scene time 0 (frame 0 looked ahead) with the camera turned to where the last frame looked."""
    clip, bundle = pan
    session = ExplicitGenerator().open(bundle, 96, 54)
    request = FrameRequest(bundle.poses[-1], clip.intrinsics, 0.0)
    result = session.splat(request)
    truth, _ = DemoWorld(DemoWorldConfig()).render(clip.poses[-1], clip.intrinsics, 0.0)
    static = ~clip.moving[-1]
    assert result.mask.mean() > 0.95  # today's reference-frame-only render covers almost nothing there
    assert _psnr(result.colour, truth, result.mask & static) > 25.0
    frame_only = session._frames.get(clip.intrinsics)(bundle.frames[0], bundle.depth[0], bundle.poses[0], request.c2w)
    assert frame_only.mask.mean() < 0.2


def test_the_world_grows_with_new_content_not_with_frames(pan):
    _clip, bundle = pan
    world = fuse_world(bundle, FusionConfig(step=1))
    frame_pixels = 96 * 54
    assert 1.5 * frame_pixels < len(world) < 3.5 * frame_pixels  # 90 degrees of pan: about 2.5 frames' worth
    assert len(world.frames_used) == 10 and world.frames_used[:2] == (0, 9)


def test_moving_objects_never_leave_a_ghost_in_the_static_world(tmp_path: Path):
    clip = render_clip(ClipConfig(kind="moving", frames=8, width=192, height=108))
    world_truth = DemoWorld(DemoWorldConfig())
    ghosts = {}
    for with_masks in (True, False):
        bundle = _bundle(tmp_path, clip, with_masks, name=f"masks-{str(with_masks).lower()}")
        fused = fuse_world(bundle, FusionConfig(step=1))
        splatter = PointSplatter(clip.intrinsics, len(fused))
        bad = 0
        for k in range(clip.config.frames):
            seen = splatter(fused.points, fused.colours, clip.poses[k])
            _, static_depth = render(world_truth.static_scene(), np.array(clip.poses[k]), clip.intrinsics)
            nearer = seen.mask & (seen.depth < static_depth * 0.85)  # something well in front of the static world
            bad += int((nearer & ~_silhouettes(static_depth)).sum())  # (footprints spill one pixel over edges)
        ghosts[with_masks] = bad
    assert ghosts[True] <= 0.0005 * 8 * 192 * 108, ghosts
    assert ghosts[False] > 5 * max(ghosts[True], 20), ghosts  # the check can fail: without masks there are ghosts


def _silhouettes(depth: np.ndarray) -> np.ndarray:
    """Pixels within a pixel of a depth edge (relative step over 5 %, sky included)."""
    log = np.log(np.minimum(depth, 1e4))
    edge = np.zeros(depth.shape, bool)
    edge[:, 1:] |= np.abs(np.diff(log, axis=1)) > 0.05
    edge[1:] |= np.abs(np.diff(log, axis=0)) > 0.05
    for _ in range(1):
        grown = edge.copy()
        grown[1:] |= edge[:-1]
        grown[:-1] |= edge[1:]
        grown[:, 1:] |= edge[:, :-1]
        grown[:, :-1] |= edge[:, 1:]
        edge = grown
    return edge


def test_revisit_shows_identical_pixels_on_a_frozen_clock(pan):
    clip, bundle = pan
    intr = Intrinsics.from_fov(60.0, 96, 54)
    session = ExplicitGenerator().open(bundle, 96, 54)
    look = pose_to_matrix([0.0, 0.0, 0.0], quat_from_axis_angle([0.0, 1.0, 0.0], math.radians(-60.0)))
    away = pose_to_matrix([0.0, 0.0, 0.0], quat_from_axis_angle([0.0, 1.0, 0.0], math.radians(120.0)))
    first = session.render(FrameRequest(look, intr, 0.5))
    assert len(session.memory) > 0  # it invented something (the pan never looked right) and kept it
    session.render(FrameRequest(away, intr, 0.5))
    again = session.render(FrameRequest(look, intr, 0.5))
    np.testing.assert_array_equal(again, first)
    session.close()
    assert len(session.memory) == 0  # freed with the session


def test_memory_is_bounded(pan):
    _clip, bundle = pan
    intr = Intrinsics.from_fov(60.0, 96, 54)
    session = ExplicitGenerator(memory=MemoryConfig(max_points=500)).open(bundle, 96, 54)
    for yaw in range(0, 360, 30):
        c2w = pose_to_matrix([0.0, 0.0, 0.0], quat_from_axis_angle([0.0, 1.0, 0.0], math.radians(-yaw)))
        session.render(FrameRequest(c2w, intr, 0.0))
        assert len(session.memory) <= 500
    assert len(session.memory) > 0


def test_layers_drawn_at_the_holes_only_equal_full_layers(pan):
    """ExplicitSession.splat draws the world and the memory at the hole pixels only, culling what cannot land
    there; the result must be exactly that of full-size layers over everything (the plain way of drawing it)."""
    from starbridge.runtime.holes import SURROUND_DEPTH_TOL, SURROUND_RADIUS, SourceCamera, wide_holes

    clip, bundle = pan
    intr = Intrinsics.from_fov(60.0, 96, 54)
    session = ExplicitGenerator().open(bundle, 96, 54)
    yaws = (-100, -60, 0, 70, 140, -170, 60, 0, -60)  # far outside the pan (memory), then back over it
    for yaw in yaws:
        c2w = pose_to_matrix([0.3, 0.0, -0.2], quat_from_axis_angle([0.0, 1.0, 0.0], math.radians(yaw)))
        request = FrameRequest(c2w, intr, 0.3)
        got = session.splat(request)
        # the plain way: the frame, the whole world at 1 / step upsampled, the whole memory at full size
        i = bundle.frame_index(0.3)
        want = session._frames.get(intr)(bundle.frames[i], bundle.depth[i], bundle.poses[i], c2w)
        camera = SourceCamera.between(intr, c2w, bundle.meta.intrinsics, bundle.poses[i])
        dropped = plain_see_through(want.mask, want.depth, camera)
        want.mask[dropped], want.depth[dropped] = False, np.inf
        holes = wide_holes(~want.mask)
        limit = _plain_limit(want.mask, want.depth, holes, SURROUND_RADIUS)  # no later layer behind the surroundings
        world, step = session.world, session.world.step
        coarse = intr.scaled(-(-96 // step), -(-54 // step))
        blocks = np.pad(holes, ((0, -54 % step), (0, -96 % step))).reshape(coarse.height, step, coarse.width, step)
        everything = (world.points, world.colours, world.cells)  # (with the cells: magnified points cover theirs)
        second = PointSplatter(coarse, 1).splat([everything], c2w, only=blocks.any(axis=(1, 3)))
        up = (slice(0, 54), slice(0, 96))
        fill = holes & np.repeat(np.repeat(second.mask, step, 0), step, 1)[up]
        fill &= np.repeat(np.repeat(second.depth, step, 0), step, 1)[up] <= limit * (1 + SURROUND_DEPTH_TOL)
        want.colour[fill] = np.repeat(np.repeat(second.colour, step, 0), step, 1)[up][fill]
        want.depth[fill] = np.repeat(np.repeat(second.depth, step, 0), step, 1)[up][fill]
        want.mask[fill] = True
        holes &= ~fill
        if len(session.memory) and holes.any():
            third = PointSplatter(intr, 1).splat([session.memory.arrays()], c2w, only=holes)
            where = holes & third.mask & (third.depth <= limit * (1 + SURROUND_DEPTH_TOL))
            want.colour[where], want.depth[where], want.mask[where] = third.colour[where], third.depth[where], True
        np.testing.assert_array_equal(got.mask, want.mask)
        np.testing.assert_array_equal(got.colour, want.colour)
        np.testing.assert_array_equal(got.depth, want.depth)
        session.render(request)  # remember this frame's holes
    assert len(session.memory.chunks()) >= 4  # the memory took part


def _plain_limit(mask: np.ndarray, depth: np.ndarray, holes: np.ndarray, radius: int) -> np.ndarray:
    """Per hole pixel closed in on both sides (left and right, or up and down: the first covered pixel within
    `radius` on each), the farthest depth of the first covered pixels right, down, left and up; +inf elsewhere.
    Pixel by pixel."""
    h, w = mask.shape
    out = np.full((h, w), np.inf, np.float32)
    for y, x in zip(*np.nonzero(holes), strict=True):
        met = []
        for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            hit = None
            for r in range(1, radius + 1):
                yy, xx = y + dy * r, x + dx * r
                if 0 <= yy < h and 0 <= xx < w and mask[yy, xx]:
                    hit = depth[yy, xx]
                    break
            met.append(hit)
        if (met[0] is not None and met[2] is not None) or (met[1] is not None and met[3] is not None):
            out[y, x] = max(m for m in met if m is not None)
    return out
