"""Fusion of the confident depths across frames (capture/depth_fuse.py).

Two parts: `fuse_frame` on cameras looking at a textured wall (exact geometry: what a neighbour measured is
carried in, what is hidden behind something else is not), and `estimate_depth` on a ground-truth clip filmed
through H.264 with and without the fusion (the pixels it adds are measured, not guessed, and the frames'
depth gets nearer the truth).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from test_capture_depth import depth_metrics, film, sparse_points

from starbridge.geometry.camera import Intrinsics
from starbridge.scenes.capture.depth import DepthConfig, estimate_depth
from starbridge.scenes.capture.depth_fuse import fuse_frame
from starbridge.scenes.capture.depth_ops import grey, pixel_rays
from starbridge.scenes.capture.depth_sweep import SweepContext

WALL_Z = 5.0  # metres in front of every camera (OpenCV: +z forward)
SIZE = (48, 64)  # (h, w) working pixels


def _wall_colour(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(…, 3) colour of the wall at world (x, y): smooth stripes in three directions, so that a point's colour
    tells it from its neighbours' a few centimetres away."""
    return np.stack(
        [0.5 + 0.4 * np.sin(7.0 * x), 0.5 + 0.4 * np.sin(5.0 * y + 1.0), 0.5 + 0.4 * np.sin(4.0 * (x + y))], -1
    )


def _wall_context(cfg: DepthConfig, box_colour: tuple[float, float, float] | None = None) -> SweepContext:
    """Five cameras 0.2 m apart along x, all facing the wall; with `box_colour`, frame 2 (the middle one)
    sees a box of that colour 1 m in front of it over its centre square (the wall hidden behind it)."""
    h, w = SIZE
    intr = Intrinsics.from_fov(50.0, w, h)
    rays = pixel_rays(intr)
    n = 5
    c2w = np.repeat(np.eye(4)[None], n, axis=0)
    c2w[:, 0, 3] = 0.2 * (np.arange(n) - 2)
    rgb = np.empty((n, h, w, 3), np.float32)
    for k in range(n):
        x = c2w[k, 0, 3] + rays[0] * WALL_Z
        y = rays[1] * WALL_Z
        rgb[k] = _wall_colour(x, y).reshape(h, w, 3)
    if box_colour is not None:
        rgb[2, 16:32, 24:40] = box_colour
    sources = [[j for j in range(n) if j != k] for k in range(n)]
    zeros = np.zeros(n)
    return SweepContext(cfg, intr, rgb, np.stack([grey(f) for f in rgb]), c2w, rays, sources, zeros, zeros, zeros)


def _checked(ctx: SweepContext, hole: bool, noise: float = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every frame confident at the wall's inverse depth (times 1 + noise), but frame 2's centre square not
    confident (0) when `hole`."""
    h, w = SIZE
    rng = np.random.default_rng(0)
    out = []
    for k in range(len(ctx.rgb)):
        rho = np.full((h, w), 1.0 / WALL_Z, np.float32) * (1.0 + noise * rng.standard_normal((h, w))).astype(np.float32)
        conf = np.ones((h, w), bool)
        if hole and k == 2:
            rho[16:32, 24:40] = 0.0
            conf[16:32, 24:40] = False
        out.append((rho, conf))
    return out


def test_a_pixel_its_neighbours_measured_becomes_confident_at_their_depth() -> None:
    ctx = _wall_context(DepthConfig(fuse_frames=2))
    rho, conf = fuse_frame(ctx, _checked(ctx, hole=True), 2)
    square = conf[16:32, 24:40]
    assert square.all(), f"{(~square).sum()} of the hole's pixels not carried in"
    assert np.allclose(rho[16:32, 24:40], 1.0 / WALL_Z, rtol=1e-3)
    # off: nothing changes
    rho_off, conf_off = fuse_frame(replace(ctx, config=DepthConfig(fuse_frames=0)), _checked(ctx, hole=True), 2)
    assert not conf_off[16:32, 24:40].any() and np.all(rho_off[16:32, 24:40] == 0)


def test_too_few_votes_leave_the_hole_to_the_fill() -> None:
    # two neighbours each side, but five votes asked: each pixel gets about four
    ctx = _wall_context(DepthConfig(fuse_frames=2, fuse_votes=6))
    _, conf = fuse_frame(ctx, _checked(ctx, hole=True), 2)
    assert conf[16:32, 24:40].mean() < 0.05


def test_a_surface_hidden_behind_something_else_is_not_carried_in() -> None:
    # frame 2 sees a plain grey box where its neighbours see the wall: their wall points land on box pixels
    ctx = _wall_context(DepthConfig(fuse_frames=2), box_colour=(0.5, 0.5, 0.5))
    _, conf = fuse_frame(ctx, _checked(ctx, hole=True), 2)
    assert conf[18:30, 26:38].mean() < 0.02, "wall depths carried onto a box that hides the wall"


def test_nothing_of_the_same_colour_nearby_leaves_the_frame_as_it_was() -> None:
    ctx = _wall_context(DepthConfig(fuse_frames=2))
    ctx.rgb[[0, 1, 3, 4]] = 0.0  # every neighbour sees black, 0.1 or more from every colour of the wall
    checked = _checked(ctx, hole=True)
    rho, conf = fuse_frame(ctx, checked, 2)
    assert np.array_equal(rho, checked[2][0]) and np.array_equal(conf, checked[2][1])


def test_confident_depths_are_averaged_with_their_neighbours() -> None:
    ctx = _wall_context(DepthConfig(fuse_frames=2, fuse_own_weight=1.0))
    checked = _checked(ctx, hole=False, noise=0.02)
    rho, conf = fuse_frame(ctx, checked, 2)
    assert conf.all()
    before = np.abs(checked[2][0] * WALL_Z - 1.0).mean()
    after = np.abs(rho * WALL_Z - 1.0).mean()
    assert after < 0.7 * before, (before, after)  # up to five values a pixel: noise / sqrt(5) at best


def test_fusion_config_is_checked() -> None:
    from starbridge.errors import InvalidArgument

    for bad in ({"fuse_frames": -1}, {"fuse_votes": 0}, {"fuse_colour": 0.0}, {"fuse_own_weight": -1.0}):
        with pytest.raises(InvalidArgument, match="fuse"):
            DepthConfig(**bad)


@pytest.mark.slow
def test_fusion_on_a_filmed_walk_measures_what_the_fill_guessed(tmp_path: Path) -> None:
    d = film("handheld", tmp_path)
    clip = d.clip
    points = sparse_points(clip)
    off = estimate_depth(d.frames, clip.intrinsics, clip.poses, sparse_points=points, config=DepthConfig(fuse_frames=0))
    on = estimate_depth(d.frames, clip.intrinsics, clip.poses, sparse_points=points)
    static = np.isfinite(clip.depth) & ~clip.moving
    added = on.confident & ~off.confident & static
    assert on.coverage.mean() > off.coverage.mean() + 0.03, (off.coverage.mean(), on.coverage.mean())
    # the pixels the fusion made confident (10% of the pixels): nearer the truth than the fill had them (measured 0.131
    # -> 0.108 AbsRel, median error 0.036 -> 0.025; 0.138 -> 0.112 when matched at 192; the far towers'
    # stripes are as wrong either way)
    absrel_on, _ = depth_metrics(on.depth, clip.depth, added)
    absrel_off, _ = depth_metrics(off.depth, clip.depth, added)
    median_on = float(np.median(np.abs(on.depth[added] / clip.depth[added] - 1)))
    median_off = float(np.median(np.abs(off.depth[added] / clip.depth[added] - 1)))
    print(
        f"\nadded {added.mean():.3f} of the pixels: AbsRel {absrel_off:.3f} filled -> {absrel_on:.3f} fused, "
        f"median error {median_off:.3f} -> {median_on:.3f}"
    )
    assert absrel_on < 0.9 * absrel_off and median_on < 0.85 * median_off
    # and the frames as a whole (measured 0.125 -> 0.117; 0.137 -> 0.127 when matched at 192)
    all_on, _ = depth_metrics(on.depth, clip.depth, static)
    all_off, _ = depth_metrics(off.depth, clip.depth, static)
    print(f"all static pixels: AbsRel {all_off:.3f} -> {all_on:.3f}")
    assert all_on < all_off - 0.005
