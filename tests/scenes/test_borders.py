"""Black bars baked into a clip's picture: found (letterbox, pillarbox), told apart from dark scenery that moves
or varies, and cropped by the import (frames, the user's depth, the report) through real H.264 files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_video_meta import write_clip

from starbridge.cli import capture_summary
from starbridge.scenes.borders import BorderConfig, Borders, find_borders
from starbridge.scenes.store import SceneStore
from starbridge.scenes.video import decode_video


def textured(n: int, h: int, w: int, seed: int = 0) -> np.ndarray:
    """(n, h, w, 3) frames of a picture that moves (random blocks, shifted a pixel a frame)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 230, (h // 4 + 1, w // 4 + n + 1, 3)).repeat(4, 0).repeat(4, 1).astype(np.uint8)
    return np.stack([base[:h, k : k + w] for k in range(n)])


def boxed(content: np.ndarray, top: int, bottom: int, left: int, right: int, level: int = 0) -> np.ndarray:
    n, h, w = content.shape[:3]
    out = np.full((n, h + top + bottom, w + left + right, 3), level, np.uint8)
    out[:, top : top + h, left : left + w] = content
    return out


def test_letterbox_and_pillarbox_are_found():
    content = textured(12, 60, 80)
    assert find_borders(boxed(content, 10, 10, 0, 0)) == Borders(10, 10, 0, 0)
    assert find_borders(boxed(content, 0, 0, 24, 24, level=16)) == Borders(0, 0, 24, 24)  # lifted black
    assert find_borders(content) == Borders()
    # odd remainder: one more row off the thicker bar, so the picture keeps even sides
    assert find_borders(boxed(content[:, :59], 11, 10, 0, 0)) == Borders(12, 10, 0, 0)
    # a line of padding is no bar
    assert find_borders(boxed(content, 1, 0, 0, 0)[:, :, :]) == Borders()


def test_dark_scenery_is_not_a_bar():
    rng = np.random.default_rng(1)
    content = textured(12, 60, 80)
    night = boxed(content, 12, 0, 0, 0)
    # a night sky: dark, but stars and noise change from frame to frame
    night[:, :12] = rng.integers(0, 30, night[:, :12].shape)
    assert find_borders(night) == Borders()
    # a dark band that does not span the whole row (a dark roof at one side) is scenery
    roof = boxed(content, 12, 0, 0, 0)
    roof[:, :12, 60:] = 120
    assert find_borders(roof) == Borders()
    # a clip that is dark all over is a dark clip, not bars; bars leaving too little picture are left alone
    assert find_borders(np.zeros((5, 40, 40, 3), np.uint8)) == Borders()
    assert find_borders(boxed(textured(4, 6, 80), 20, 20, 0, 0)) == Borders()
    assert find_borders(boxed(textured(4, 6, 80), 20, 20, 0, 0), BorderConfig(min_picture=0.1)) == Borders(20, 20, 0, 0)


def test_crop_and_words():
    b = Borders(2, 4, 1, 3)
    assert b.crop_frames(np.zeros((3, 20, 30, 3))).shape == (3, 14, 26, 3)
    assert b.crop_maps(np.zeros((3, 20, 30))).shape == (3, 14, 26)
    assert b.words(30, 20) == (
        "black bars cropped (2 px top, 4 px bottom, 1 px left, 3 px right of 30x20; the picture kept is 26x14)"
    )
    assert Borders().none and Borders().words(30, 20) == ""


def test_a_letterboxed_clip_imports_without_its_bars(store: SceneStore, sample_video: Path, tmp_path: Path):
    """Big Buck Bunny (128x72 here) letterboxed into a 128x104 picture, through H.264, with depth files of the
    full picture: the scene is the film alone, its depth the files' inside the bars, and `scene show` says
    what was cropped."""
    content = decode_video(sample_video, 128, 8, lambda *a: None).frames
    clip = write_clip(tmp_path / "letterboxed.mp4", boxed(content, 16, 16, 0, 0))
    folder = tmp_path / "depth"
    folder.mkdir()
    for i in range(8):
        d = np.full((104, 128), 1000.0, np.float32)  # the bars: "far"
        d[16:88] = np.linspace(100.0, 300.0, 72 * 128, dtype=np.float32).reshape(72, 128)
        np.save(folder / f"frame_{i:04d}.npy", d)
    bundle = store.import_video(clip, depth_dir=folder, max_side=128, progress=lambda *a: None)
    assert (bundle.meta.width, bundle.meta.height) == (128, 72)
    assert np.abs(bundle.frames.astype(int) - content).mean() < 6  # the film, two H.264 encodes apart
    depth = bundle.depth / bundle.meta.scale  # back to the files' units
    assert depth.max() == pytest.approx(300.0, rel=0.02)  # none of the bars' 1000
    words = "black bars cropped (16 px top, 16 px bottom of 128x104; the picture kept is 128x72)"
    assert bundle.meta.capture["borders"] == words
    assert f"video         {words}" in capture_summary(bundle.meta.capture)
