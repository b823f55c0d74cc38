"""The fused world's cells (scenes/fused.py `point_cells`): each point's patch of surface, ending at depth edges."""

from __future__ import annotations

import math

import numpy as np
import pytest

from starbridge.geometry.camera import Intrinsics
from starbridge.geometry.conventions import pose_to_matrix
from starbridge.geometry.poses import quat_from_axis_angle
from starbridge.geometry.splat import frame_points
from starbridge.scenes.fused import FusionConfig, point_cells

INTR = Intrinsics.from_fov(60.0, 48, 32)


def _grid_points(depth: np.ndarray, c2w: np.ndarray) -> np.ndarray:
    """(H, W, 3) world points of every pixel (NaN where it has no depth)."""
    out = np.full(depth.shape + (3,), np.nan)
    keep = np.isfinite(depth) & (depth > 0)
    out[keep] = frame_points(depth, INTR, c2w, where=keep)[:, :3]
    return out


def test_cells_of_an_oblique_plane_are_the_vectors_to_the_nearer_neighbours():
    """A plane seen obliquely (a wall along the street: depth from 2 to 30 m across the image, more than the edge
    ratio between neighbours where it is far): every pixel's cell edges are the world vectors to its
    neighbours, the shorter of the two sides, so the whole plane is one surface."""
    c2w = pose_to_matrix([0.5, 1.0, 0.0], quat_from_axis_angle([0.0, 1.0, 0.0], math.radians(20.0)))
    # a plane: inverse depth affine in the ray (a, b, 1), from 2 m on the right to 30 m on the left
    a = (np.arange(INTR.width) + 0.5 - INTR.cx) / INTR.fx
    b = (np.arange(INTR.height) + 0.5 - INTR.cy) / INTR.fy
    depth = np.broadcast_to(1.5 / (0.4 + 0.41 * a + 0.02 * b[:, None]), (INTR.height, INTR.width)).astype(np.float32)
    surface = np.ones(depth.shape, bool)
    assert 1.9 < depth.min() and depth.max() > 25.0
    cells = point_cells(depth, surface, INTR, c2w, FusionConfig().cell_edge_ratio)
    cells = cells.reshape(INTR.height, INTR.width, 6)
    pts = _grid_points(depth, c2w)
    right, down = pts[:, 1:] - pts[:, :-1], pts[1:] - pts[:-1]
    for edge, steps, axis in ((cells[..., :3], right, 1), (cells[..., 3:], down, 0)):
        pad_after = [(0, 0)] * 3
        pad_after[axis] = (0, 1)
        pad_before = [(0, 0)] * 3
        pad_before[axis] = (1, 0)
        after = np.pad(steps, pad_after, constant_values=np.inf)
        before = np.pad(steps, pad_before, constant_values=np.inf)
        shorter = np.where(
            (np.linalg.norm(after, axis=-1) <= np.linalg.norm(before, axis=-1))[..., None], after, before
        )
        np.testing.assert_allclose(edge, shorter, rtol=2e-3, atol=1e-4)


def test_cells_end_at_depth_edges_and_at_what_is_not_surface():
    """A panel at 2 m over a wall at 6 m: a pixel on either side of the edge takes its vector to the neighbour on
    its own side; a one-pixel sliver (no neighbour on its surface) gets the footprint of a pixel facing the
    camera (depth / focal length); pixels next to a hole or to what is not `surface` do not reach into it;
    directions get zero cells."""
    depth = np.full((INTR.height, INTR.width), 6.0, np.float32)
    depth[:, :20] = 2.0  # the panel
    depth[:, 30] = 2.0  # a sliver
    depth[:4] = np.inf  # sky rows
    surface = np.ones(depth.shape, bool)
    surface[10, 40] = False  # e.g. a moving object's pixel
    cells = point_cells(depth, surface, INTR, np.eye(4), FusionConfig().cell_edge_ratio)
    grid = np.zeros(depth.shape + (6,), np.float32)
    grid[surface] = cells
    across = grid[..., 0]  # identity pose: world x = camera x
    assert np.allclose(across[10, 19], 2.0 / INTR.fx, rtol=1e-4)  # the panel's last pixel: its left neighbour
    assert np.allclose(across[10, 20], 6.0 / INTR.fx, rtol=1e-4)  # the wall's first pixel: its right neighbour
    assert np.allclose(across[10, 30], 2.0 / INTR.fx, rtol=1e-4)  # the sliver: a pixel facing the camera
    assert np.allclose(across[10, 29], 6.0 / INTR.fx, rtol=1e-4) and np.allclose(across[10, 31], 6.0 / INTR.fx)
    assert np.allclose(across[10, 39], 6.0 / INTR.fx, rtol=1e-4) and np.allclose(across[10, 41], 6.0 / INTR.fx)
    assert not grid[:4].any()  # directions
    down = grid[..., 3:]
    assert np.allclose(down[4, 10, 1], -2.0 / INTR.fy, rtol=1e-4)  # below the sky: its lower neighbour (wire y up)
    assert np.abs(grid[5:, :, 2]).max() < 1e-6 and np.abs(grid[5:, :, 5]).max() < 1e-6  # all at one depth each


@pytest.mark.parametrize("ratio", [0.5, 1.0])
def test_the_edge_ratio_must_be_above_one(ratio: float):
    with pytest.raises(ValueError, match="cell_edge_ratio"):
        FusionConfig(cell_edge_ratio=ratio)
