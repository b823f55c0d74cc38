"""Walking forward past where the reference frames stood: the fused world stays closed on continuous surfaces.

A real scene (the procedural ray-caster: tiled ground, a far wall, a sign in front of it) written as a bundle; the
explicit generator's session renders a camera 3 m ahead of the reference camera, which magnifies the ground near
the camera about 4x (its spacing grows with the square of the depth ratio) and the wall 1.2x. Each target pixel
is classed by the ground truth: seen by a reference frame (its point is the surface that frame's depth shows), or
hidden from all of them (the wall beside the sign that walking forward uncovers: a disocclusion).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from starbridge.geometry import Intrinsics
from starbridge.geometry.conventions import wire_to_cv
from starbridge.runtime.explicit import ExplicitGenerator
from starbridge.runtime.generator import FrameRequest
from starbridge.scenes.bundle import SceneMeta, write_bundle
from starbridge.scenes.procedural.raycast import Box, Ground, RayScene, render

INTR = Intrinsics.from_fov(60.0, 192, 112)
SCENE = RayScene(
    ground=Ground(height=-1.6),
    boxes=(
        Box((0.0, 2.0, -20.0), (16.0, 4.0, 0.5), (0.55, 0.45, 0.40), pattern="windows"),  # the far wall
        Box((-1.5, 0.0, -5.0), (0.6, 0.6, 0.05), (0.20, 0.45, 0.30), pattern="stripes"),  # a sign in front of it
    ),
)
WALK_M = 3.0


def _pose(x: float, z: float) -> np.ndarray:
    c2w = np.eye(4)
    c2w[0, 3], c2w[2, 3] = x, z
    return c2w


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    poses = np.stack([_pose(0.0, 0.0), _pose(0.1, 0.0)])
    shots = [render(SCENE, p, INTR) for p in poses]
    frames, depth = np.stack([s[0] for s in shots]), np.stack([s[1] for s in shots])
    meta = SceneMeta(
        scene_id="walk", title="walk", fps=10.0, frame_count=len(poses), intrinsics=INTR, source="engine",
        depth_source="exact",
    )  # fmt: skip
    bundle = write_bundle(tmp_path_factory.mktemp("walk") / "walk", meta, frames, depth, poses, in_scene_units=True,
                          lossless=True)  # fmt: skip
    target = _pose(0.0, -WALK_M)
    _, truth_depth = render(SCENE, target, INTR)
    seen, hidden = _seen_by_references(truth_depth, target, poses, depth)
    return bundle, target, seen, hidden


def _seen_by_references(depth: np.ndarray, c2w: np.ndarray, poses: np.ndarray, ref_depth: np.ndarray):
    """(seen, hidden) (H, W) bool for the target camera c2w with true depth (H, W): a pixel's surface point is seen
    by a reference frame when it lands in its image at a depth that frame shows there (within 1 % of the
    range of the 3x3 pixels around); hidden
    when no frame sees it. Both exclude the sky and the pixels within 4 of a depth edge or of the other class."""
    h, w = depth.shape
    a = (np.arange(w) + 0.5 - INTR.cx) / INTR.fx
    b = (np.arange(h) + 0.5 - INTR.cy) / INTR.fy
    finite = np.isfinite(depth)
    z = np.where(finite, depth, 1.0)
    cam = np.stack([a[None, :] * z, b[:, None] * z, z, np.ones_like(z)], axis=-1)  # OpenCV camera frame
    world = cam @ wire_to_cv(c2w).T
    seen = np.zeros((h, w), bool)
    for pose, shown in zip(poses, ref_depth, strict=True):
        p = world @ np.linalg.inv(wire_to_cv(pose)).T
        u = np.floor(INTR.fx * p[..., 0] / p[..., 2] + INTR.cx).astype(int)
        v = np.floor(INTR.fy * p[..., 1] / p[..., 2] + INTR.cy).astype(int)
        inside = (p[..., 2] > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        vv, uu = np.clip(v, 1, h - 2), np.clip(u, 1, w - 2)
        around = np.stack([shown[vv + dv, uu + du] for dv in (-1, 0, 1) for du in (-1, 0, 1)])  # (the depth there
        lo, hi = around.min(axis=0), around.max(axis=0)  # varies fast on the ground: its 3x3 pixels' range)
        seen |= finite & inside & (p[..., 2] >= 0.99 * lo) & (p[..., 2] <= 1.01 * hi)
    hidden = finite & ~seen
    log = np.log(z)
    edge = ~finite.copy()
    edge[:, 1:] |= np.abs(np.diff(log, axis=1)) > 0.05
    edge[1:] |= np.abs(np.diff(log, axis=0)) > 0.05
    edge[:, 1:] |= seen[:, 1:] != seen[:, :-1]
    edge[1:] |= seen[1:] != seen[:-1]
    near = edge.copy()
    for _ in range(4):
        grown = near.copy()
        grown[1:] |= near[:-1]
        grown[:-1] |= near[1:]
        grown[:, 1:] |= near[:, :-1]
        grown[:, :-1] |= near[:, 1:]
        near = grown
    return seen & ~near, hidden & ~near


def test_walking_forward_the_world_closes_continuous_surfaces_and_leaves_edges_open(scene):
    bundle, target, seen, hidden = scene
    session = ExplicitGenerator().open(bundle, INTR.width, INTR.height)
    request = FrameRequest(target, INTR, 0.0)
    frame_only = session._frames.get(INTR)(bundle.frames[0], bundle.depth[0], bundle.poses[0], target)
    assert seen.sum() > 5000 and hidden.sum() > 100
    assert (~frame_only.mask[seen]).mean() > 0.05  # the same-time frame alone parts on the near ground
    session.splat(request)
    observed = session.observed  # True where the same-time frame or the fused world covers the pixel
    assert observed[seen].mean() > 0.998
    assert observed[hidden].mean() < 0.02  # the disocclusion is left to the fill
    rows = np.nonzero(seen)[0]
    assert rows.max() > 0.9 * INTR.height  # the ground right in front of the camera is among the seen pixels
    # the same world without its cells (each point a bilinear footprint) parts there: the check can fail
    plain = ExplicitGenerator().open(bundle, INTR.width, INTR.height)
    plain._world = dataclasses.replace(plain.world, cells=None)
    plain.splat(request)
    assert plain.observed[seen].mean() < 0.995


def test_a_walk_forward_remembers_no_stripes(scene):
    """Rendered step by step along the walk, the frames keep what the world shows: the memory never has to
    stand in for it on the seen ground (the stripes of fill a cracked world left were remembered and seen
    again), and the frame at the end matches the one rendered there by a fresh session."""
    bundle, target, seen, _ = scene
    session = ExplicitGenerator().open(bundle, INTR.width, INTR.height)
    for z in np.linspace(0.0, -WALK_M, 13):
        session.render(FrameRequest(_pose(0.0, float(z)), INTR, 0.0))
    last = session.render(FrameRequest(target, INTR, 0.0))
    assert session.observed[seen].mean() > 0.998
    fresh = ExplicitGenerator().open(bundle, INTR.width, INTR.height).render(FrameRequest(target, INTR, 0.0))
    same = (last == fresh).all(axis=-1)
    assert same[seen].mean() > 0.995


def test_a_world_without_cells_gives_zero_cells(scene):
    """A world without cells (FusedWorld.cells None) still draws: every point's cell is zero (the bilinear
    footprint)."""
    bundle, _, _, _ = scene
    session = ExplicitGenerator().open(bundle, INTR.width, INTR.height)
    world = dataclasses.replace(session.world, cells=None)
    points, colours, cells = world.parts(np.ones(len(world.boxes), bool))
    assert cells.shape == (len(points), 6) and not cells.any()
