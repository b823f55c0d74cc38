"""Moving shadows (capture/shadows.py) against the procedural world's ground truth (`DemoWorld.moving_shadow_mask`:
where the full render is darker than the static world's alone, outside the movers)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from starbridge.errors import InvalidArgument
from starbridge.geometry.camera import Intrinsics
from starbridge.scenes.capture.depth_ops import cv_poses
from starbridge.scenes.capture.ground import Ground
from starbridge.scenes.capture.shadows import ShadowConfig, _clean, find_shadows, ground_depth
from starbridge.scenes.procedural.clips import ClipConfig, GroundTruthClip, render_clip


@pytest.fixture(scope="module")
def clip() -> GroundTruthClip:
    return render_clip(ClipConfig(kind="moving", frames=24, width=192, height=108, fps=10.0))


@pytest.fixture(scope="module")
def shadow(clip: GroundTruthClip) -> np.ndarray:
    """(N, H, W) bool: the movers' shadows."""
    return clip.moving_shadows()


def _ground() -> Ground:
    """The procedural world's ground plane (wire world: +Y up; the eye height, 1.6 m, below the origin)."""
    return Ground(np.array([0.0, -1.6, 0.0]), np.array([0.0, 1.0, 0.0]), np.zeros(0, bool))


def test_the_movers_shadows_are_found_and_the_movers_are_not(clip: GroundTruthClip, shadow: np.ndarray) -> None:
    assert shadow.sum() > 1000  # the clip has moving shadows to find (about 60 pixels a frame)
    flagged = clip.moving | shadow  # what the moving masks flag: the movers and the ground they darken
    found = find_shadows(
        clip.frames, flagged, clip.depth, clip.intrinsics, cv_poses(clip.poses), _ground(), clip.config.fps
    )
    assert not (found & ~flagged).any()  # only flagged pixels
    recall = (found & shadow).sum() / shadow.sum()
    on_movers = (found & clip.moving).sum() / found.sum()
    # about half: the rest is the blurred outline of shadows a few pixels wide, and ground that every other
    # frame sees shadowed or behind a mover (its own colour unknown)
    assert recall > 0.4, f"found {recall:.2f} of the shadows"
    assert on_movers < 0.01, f"{on_movers:.3f} of what was taken for shadow is a mover"


def test_a_dark_patch_is_shadow_a_coloured_one_is_not() -> None:
    """A camera looking over grey ground: in frame 0 one patch is the ground at half its light (shadow), one
    is red (a mover), one is a darker blue (not the ground's colour); frames 1 and 2 show the plain ground."""
    intr = Intrinsics.from_fov(50.0, 64, 48)
    c2w = np.repeat(np.eye(4)[None], 3, axis=0)  # OpenCV: y down, so the ground is below at y = +1.5
    ground = Ground(np.array([0.0, 1.5, 0.0]), np.array([0.0, -1.0, 0.0]), np.zeros(0, bool))
    depth = np.repeat(ground_depth(intr, c2w[0], ground, (48, 64))[None], 3, axis=0)
    assert np.isinf(depth[0, :24]).all() and np.isfinite(depth[0, 25:]).all()  # the horizon at the centre row
    frames = np.full((3, 48, 64, 3), 170, np.uint8)
    frames[:, :24] = (120, 160, 220)  # sky
    shade, red, blue = (slice(30, 40), slice(4, 16)), (slice(30, 40), slice(26, 38)), (slice(30, 40), slice(48, 60))
    frames[0][shade] = 120  # grey 170 at about half the light (sRGB 120 is 0.19 linear against 0.40)
    frames[0][red] = (190, 30, 25)
    frames[0][blue] = (60, 60, 110)
    moving = np.zeros((3, 48, 64), bool)
    for patch in (shade, red, blue):
        moving[0][patch] = True
    found = find_shadows(frames, moving, depth, intr, c2w, ground, fps=3.0)
    assert found[0][shade][1:-1, 1:-1].all()  # all but the blurred outline
    assert not found[0][red].any() and not found[0][blue].any() and not found[1:].any()
    off = find_shadows(frames, moving, depth, intr, c2w, ground, 3.0, ShadowConfig(enabled=False))
    assert not off.any()
    # seen in no other frame (the others flag it moving too): the ground's own colour is unknown, no shadow
    hidden = moving.copy()
    hidden[1:] = ndimage.binary_dilation(moving[0], iterations=3)
    assert not find_shadows(frames, hidden, depth, intr, c2w, ground, fps=3.0).any()


def test_bad_settings_are_refused() -> None:
    for bad in ({"min_ratio": 0.9}, {"max_ratio": 1.2}, {"max_angle_deg": 0.0}, {"offsets_s": ()},
                {"offsets_s": (-1.0,)}, {"min_area": 1.0}):  # fmt: skip
        with pytest.raises(InvalidArgument, match="ShadowConfig"):
            ShadowConfig(**bad)


def test_the_cleaning_in_a_box_is_the_cleaning_of_the_frame() -> None:
    """`_clean` works in the box around the mask (speed); it must be the full frame's opening and size filter,
    at the frame's edges too."""
    rng = np.random.default_rng(0)
    for _ in range(100):
        mask = rng.random((40, 60)) < 0.02
        for _ in range(int(rng.integers(1, 5))):
            y, x = rng.integers(0, 40), rng.integers(0, 60)
            h, w = rng.integers(1, 8, 2)
            mask[y : y + h, x : x + w] = True
        labels, _ = ndimage.label(ndimage.binary_opening(mask))
        keep = np.bincount(labels.ravel()) >= 4
        keep[0] = False
        assert np.array_equal(_clean(mask, 4), keep[labels])
    assert not _clean(np.zeros((5, 5), bool), 1).any()
