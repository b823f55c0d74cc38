"""Shot cuts: two different clips glued together are two shots; one moving shot is one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from starbridge.scenes.capture.cuts import choose_shot, find_shots
from starbridge.scenes.procedural.clips import ClipConfig, render_clip
from starbridge.scenes.video import decode_video


def test_one_moving_shot_has_no_cut():
    for kind in ("handheld", "pan"):
        clip = render_clip(ClipConfig(kind=kind, frames=24, width=96, height=54))
        assert find_shots(clip.frames) == [(0, 24)], kind


def test_a_cut_between_two_worlds_is_found_and_the_longest_shot_kept():
    a = render_clip(ClipConfig(kind="dolly", frames=14, width=96, height=54, world_seed=0)).frames
    b = render_clip(ClipConfig(kind="pan", frames=9, width=96, height=54, world_seed=7)).frames[:, ::-1]  # mirrored
    b = (b.astype(np.int32) * [0.6, 0.8, 1.3]).clip(0, 255).astype(np.uint8)  # another place, another light
    shots = find_shots(np.concatenate([a, b]))
    assert shots == [(0, 14), (14, 23)]
    assert choose_shot(shots) == (0, 14)


def test_a_single_flash_frame_is_not_a_shot():
    clip = render_clip(ClipConfig(kind="dolly", frames=12, width=96, height=54)).frames.copy()
    clip[6] = 255  # a flash
    assert find_shots(clip) == [(0, 12)]


def test_the_real_sample_clip_is_one_shot(sample_video: Path):
    video = decode_video(sample_video, 128, 0, lambda *a: None)
    shots = find_shots(video.frames)
    assert choose_shot(shots)[1] - choose_shot(shots)[0] >= 0.5 * len(video.frames)
