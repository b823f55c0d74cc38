"""Fades at a shot's ends (capture/fades.py): an edited clip's fade-in and fade-out are left out, through H.264;
a camera that starts on plain sky keeps the picture it tilts to; real clips keep every frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_capture_cuts import decode, mp4_of, sample_clip

from starbridge.scenes.capture.cuts import find_shots
from starbridge.scenes.capture.fades import Fades, find_fades, split_at_dissolves, split_at_flat
from starbridge.scenes.procedural.clips import ClipConfig, render_clip
from starbridge.scenes.store import SceneStore


def walk(frames: int = 24) -> np.ndarray:
    return render_clip(ClipConfig(kind="handheld", frames=frames, width=128, height=72, vertical_fov_deg=48.0)).frames


def fade(picture: np.ndarray, to: int, count: int, inwards: bool) -> np.ndarray:
    """`count` frames of `picture` mixed with the flat grey level `to` (0 black, 255 white): from the flat
    colour to the picture (`inwards`), or away from it."""
    weights = np.arange(count) / count if inwards else 1.0 - np.arange(1, count + 1) / count
    flat = np.full_like(picture, to, dtype=np.float32)
    return np.stack([(w * picture + (1 - w) * flat).round().astype(np.uint8) for w in weights])


def test_a_fade_in_from_black_and_out_to_white_are_left_out(tmp_path: Path):
    shot = walk()
    frames = np.concatenate([fade(shot[0], 0, 16, True), shot, fade(shot[-1], 255, 12, False)])
    decoded = mp4_of(frames, tmp_path / "faded.mp4")
    found = find_fades(decoded)
    # every fading frame is left out, the fade-in's last one too (at 15/16 of the picture, 6% dimmer than the
    # walk's first frame); the walk's last frames, 3-8% below its typical contrast, are kept
    assert found == Fades(16, 12)
    assert found.words(0, len(decoded)) == "left out a fade-in, frames 0 to 15 and a fade-out, frames 40 to 51"
    assert find_fades(mp4_of(shot, tmp_path / "plain.mp4")) == Fades()


def test_a_camera_that_starts_on_plain_sky_keeps_the_picture_it_finds():
    shot = walk()
    sky = np.broadcast_to(np.array([150, 180, 230], np.uint8), shot[:1].shape).repeat(3, axis=0)
    # three frames of plain sky, then another, dimmer picture (the first frames flipped), then the walk
    other = (shot[:3, ::-1].astype(np.float32) * 0.5).astype(np.uint8)
    assert find_fades(np.concatenate([sky, shot])) == Fades(3, 0)  # the plain frames: nothing to see there
    assert find_fades(np.concatenate([sky, other, shot])) == Fades(3, 0)  # not a fade of the walk
    # a clip that is dim all through, or mostly fade, is kept whole
    assert find_fades((shot * 0.05).astype(np.uint8)) == Fades()
    assert find_fades(np.concatenate([fade(shot[0], 0, 30, True), shot[:6]])) == Fades()
    assert find_fades(shot[:2]) == Fades()


@pytest.mark.parametrize("name", ["bigbuckbunny.mp4", "carphone_pristine.mp4", "bikes.mp4"])
def test_real_shots_keep_every_frame(name: str):
    frames = decode(sample_clip(name))
    shots = find_shots(frames)
    for start, end in shots:
        assert find_fades(frames[start:end]) == Fades(), (start, end)
    assert split_at_flat(frames, shots) == shots and split_at_dissolves(frames, shots) == shots


@pytest.mark.parametrize("kind", ["handheld", "orbit", "dolly", "pan", "moving"])
def test_camera_moves_are_no_dissolve(kind: str):
    """A camera's own motion (a pan's picture sliding through, a dolly's growing) leaves the middle frame sharp,
    not the mean of the frames around it."""
    frames = render_clip(ClipConfig(kind=kind, frames=40, width=160, height=90, world_seed=1)).frames
    assert split_at_dissolves(frames, [(0, 40)]) == [(0, 40)]


def test_an_exposure_change_on_a_still_view_is_no_dissolve(tmp_path: Path):
    """A still camera (Big Buck Bunny) losing 40% of its exposure over 12 frames blends like a dissolve (each
    frame the mean of those around it), but it is the same picture at another gain: one shot, every frame kept
    (capture/exposure.py evens it out)."""
    real = decode(sample_clip("bigbuckbunny.mp4"))[:40]
    gain = np.clip(1.0 - 0.4 * (np.arange(40) - 12) / 12, 0.6, 1.0)
    frames = mp4_of((real * gain[:, None, None, None]).round().astype(np.uint8), tmp_path / "exposure.mp4")
    assert split_at_dissolves(frames, [(0, 40)]) == [(0, 40)]


@pytest.mark.parametrize("length", [12, 24])
def test_a_dissolve_parts_two_shots_and_its_blends_are_left_out(tmp_path: Path, length: int):
    """Big Buck Bunny's first 20 frames dissolving into 30 later ones, mirrored (another place), through H.264:
    cut detection sees one shot; the blended frames (20 to 20 + length - 1) are left out, the first blends,
    still within 15% of the first picture, with the first shot."""
    real = decode(sample_clip("bigbuckbunny.mp4"))
    first, second = real[:20], np.ascontiguousarray(real[100:130, :, ::-1])
    weights = np.arange(1, length + 1) / (length + 1)
    mix = np.stack([((1 - w) * first[-1] + w * second[0]).round().astype(np.uint8) for w in weights])
    frames = mp4_of(np.concatenate([first, mix, second]), tmp_path / "dissolve.mp4")
    assert find_shots(frames) == [(0, len(frames))]
    (a0, a1), (b0, b1) = split_at_dissolves(frames, [(0, len(frames))])
    assert a0 == 0 and 16 <= a1 <= 20  # the first picture, and at most its first few blends
    assert b0 == 20 + length and b1 == len(frames)  # the second picture from its first pure frame


def test_the_import_leaves_out_the_fades_and_a_dip_to_black_and_says_so(tmp_path: Path):
    """An edited real clip: Big Buck Bunny's first 16 frames fading in from black and out to it, then another
    shot (later frames, mirrored) fading in from black: the scene is the longer second shot without its fade,
    and the report says what was left out."""
    from starbridge.scenes.video import write_video

    real = decode(sample_clip("bigbuckbunny.mp4"))
    first, second = real[:16], np.ascontiguousarray(real[100:124, :, ::-1])
    frames = np.concatenate([fade(first[0], 0, 6, True), first, fade(first[-1], 0, 5, False),
                             fade(second[0], 0, 6, True), second])  # fmt: skip
    clip = write_video(tmp_path / "edited.mp4", frames, 24.0)
    bundle = SceneStore(tmp_path / "store").import_video(clip, max_side=256, progress=lambda *a: None)
    report = bundle.meta.capture
    assert bundle.meta.frame_count == 24 and report["kept_frames"] == [33, 57]
    said = " | ".join(report["warnings"])
    assert "left out a fade-in, frames 0 to 5:" in said  # the clip's own start
    # the dip (the fade-out and fade-in, 22-32) steps fast enough to be cut off as a shot of its own
    assert "kept the longest, frames 33 to 56" in said
    assert np.abs(bundle.frames.astype(int) - second).mean() < 6


def test_a_slow_dip_to_black_parts_two_shots(tmp_path: Path):
    """Two shots joined by a slow dip to black (20 frames out, 20 in): without the flat frames they could be one
    shot gluing two places; cut apart there, the longer one is kept without its fade-in."""
    from starbridge.scenes.video import write_video

    real = decode(sample_clip("bigbuckbunny.mp4"))
    first, second = real[:16], np.ascontiguousarray(real[100:124, :, ::-1])
    frames = np.concatenate([first, fade(first[-1], 0, 20, False), fade(second[0], 0, 20, True), second])
    decoded = mp4_of(frames, tmp_path / "dip.mp4")
    # the steps into and out of the black frames are histogram jumps 4-6 times the steps around them, at the
    # cut rule's edge (cuts.py: one cut or two, or none where the black pair reads as a flash): whatever cut
    # detection makes of it, the flat frames part the clip, as one shot or as the shots it found
    pieces = split_at_flat(decoded, [(0, len(decoded))])
    assert split_at_flat(decoded, find_shots(decoded)) == pieces
    assert len(pieces) == 2 and pieces[0][0] == 0 and pieces[1][1] == 80
    # the flat frames about 35-36 dropped, but the one next to each piece (its fade starts from it)
    assert 30 <= pieces[0][1] <= 37 and 35 <= pieces[1][0] <= 42
    clip = write_video(tmp_path / "dip-import.mp4", frames, 24.0)
    bundle = SceneStore(tmp_path / "store").import_video(clip, max_side=256, progress=lambda *a: None)
    # the fade-in's last frame, at 19/20 of the picture, is within 5% of its contrast and is kept (a fade is the
    # same picture at another gain: no dissolve)
    assert bundle.meta.frame_count == 25 and bundle.meta.capture["kept_frames"] == [55, 80]
    assert np.abs(bundle.frames[1:].astype(int) - second).mean() < 6
