"""The compiled comparison of a frame with a neighbour (dynamic_compare.py) against the NumPy version it
replaced (kept here as the reference): the same votes and says, on a rendered clip with moving objects, with
and without the first pass's flags, and for neighbours where part of the frame falls outside."""

from __future__ import annotations

import numpy as np
import pytest

from starbridge.geometry.camera import Intrinsics
from starbridge.scenes.capture.depth_ops import bilinear, cv_poses, nearest, pixel_rays, project, relative
from starbridge.scenes.capture.dynamic import DynamicConfig, working_images
from starbridge.scenes.capture.dynamic_compare import compare_into
from starbridge.scenes.procedural.clips import ClipConfig, render_clip


def reference(
    i: int, j: int, rgb: np.ndarray, lo: np.ndarray, hi: np.ndarray, inv: np.ndarray, c2w: np.ndarray,
    rays: np.ndarray, intr: Intrinsics, cfg: DynamicConfig, ignore: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The NumPy comparison dynamic.py used until the compiled one: (moving vote, has a say), flat int32."""
    h, w = intr.height, intr.width
    rho = inv[i].ravel().astype(np.float64)
    at_inf = rho <= 0
    rot, t = relative(c2w[i], c2w[j])
    pts = rot @ (rays / np.where(at_inf, 1.0, rho)) + t[:, None]
    pts = np.where(at_inf, rot @ rays, pts)
    x, y, z = project(pts, intr)
    inside = (z > 0) & (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)
    ref = rgb[i].reshape(-1, 3).astype(np.float32)
    below = bilinear(lo[j], x, y) - ref
    above = ref - bilinear(hi[j], x, y)
    residual = np.maximum(np.maximum(below, above), 0.0).mean(axis=1) * np.float32(1.0 / 255.0)
    residual = np.where(np.isfinite(residual), residual, 0.0)
    rho_j, seen = nearest(inv[j], x, y, fill=0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho_point = np.where(at_inf, 0.0, 1.0 / z)
    tol = cfg.depth_tolerance
    hidden = rho_j > rho_point * (1.0 + tol) + 1e-12
    gone = (rho_j < rho_point * (1.0 - tol)) & ~at_inf
    has_say = inside & seen & ~hidden
    if ignore is not None:
        flagged, _ = nearest(ignore.astype(np.float32), x, y, fill=0.0)
        has_say &= flagged < 0.5
    moving = has_say & ((residual > cfg.photometric) | (gone & (residual > 0.5 * cfg.photometric)))
    return moving.astype(np.int32), has_say.astype(np.int32)


@pytest.fixture(scope="module")
def prepared():
    clip = render_clip(ClipConfig(kind="moving", frames=12, width=192, height=108, fps=10.0))
    cfg = DynamicConfig(max_side=192)
    intr = clip.intrinsics
    rgb, lo, hi, inv = working_images(clip.frames, clip.depth, cv_poses(clip.poses), intr.scaled(192, 108), cfg)
    return clip, cfg, rgb, lo, hi, inv


@pytest.mark.parametrize("pair", [(0, 1), (5, 2), (6, 11), (11, 0)])
@pytest.mark.parametrize("with_ignore", [False, True])
def test_the_compiled_comparison_votes_as_the_numpy_one(prepared, pair: tuple[int, int], with_ignore: bool) -> None:
    clip, cfg, rgb, lo, hi, inv = prepared
    i, j = pair
    intr = clip.intrinsics
    c2w = cv_poses(clip.poses)
    rays = pixel_rays(intr)
    ignore = None
    if with_ignore:  # the moving objects (and a block of the static world) flagged in j the first time
        ignore = clip.moving[j].copy()
        ignore[20:50, 30:90] = True
    want_votes, want_said = reference(i, j, rgb, lo, hi, inv, c2w, rays, intr, cfg, ignore)
    votes = np.zeros(intr.height * intr.width, np.int32)
    said = np.zeros_like(votes)
    rot, t = relative(c2w[i], c2w[j])
    compare_into(votes, said, inv[i], rays, rot, t, intr, rgb[i], lo[j], hi[j], inv[j], ignore, cfg.photometric,
                 cfg.depth_tolerance)  # fmt: skip
    # the test means something: some pixels vote, some have no say (outside j, hidden, ignored)
    assert 0 < want_votes.sum() < want_said.sum() < want_said.size
    np.testing.assert_array_equal(said, want_said)
    np.testing.assert_array_equal(votes, want_votes)
    # and it adds to the counts it is given
    compare_into(votes, said, inv[i], rays, rot, t, intr, rgb[i], lo[j], hi[j], inv[j], ignore, cfg.photometric,
                 cfg.depth_tolerance)  # fmt: skip
    np.testing.assert_array_equal(votes, 2 * want_votes)
