"""A 4:2:0 clip's colour rebuilt at its luma's resolution (scenes/chroma.py), through real encodes and decodes.

The frames are a procedural world filmed by the ray-caster (its truth known), encoded to H.264 by FFmpeg's
own converter (whose chroma is "center"-sited) or from planes subsampled here the MPEG way ("left"), and decoded
with `decode_video` as an import does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.scenes import chroma
from starbridge.scenes.procedural.clips import ClipConfig, render_clip
from starbridge.scenes.video import decode_video, write_video

av = pytest.importorskip("av")
pytestmark = pytest.mark.skipif("libx264" not in av.codecs_available, reason="this PyAV has no libx264")

W, H = 192, 108
#: BT.601 RGB -> Y'CbCr, what FFmpeg assumes for an untagged stream
BT601 = np.array([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]])


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return render_clip(ClipConfig(kind="orbit", frames=10, width=W, height=H, world_seed=2)).frames


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    return 10 * np.log10(255.0**2 / mse)


def _mean_shift(a: np.ndarray, b: np.ndarray) -> float:
    """The largest difference of the two clips' mean R, G or B."""
    return float(np.abs(a.astype(np.float64).mean((0, 1, 2)) - b.astype(np.float64).mean((0, 1, 2))).max())


def _plain(path: Path, size: tuple[int, int]) -> np.ndarray:
    """FFmpeg's own conversion of every frame (the chroma interpolated), as decode_video did before."""
    container = av.open(str(path))
    try:
        return np.stack(
            [
                f.reformat(width=size[0], height=size[1], format="rgb24", interpolation="AREA").to_ndarray()
                for f in container.decode(video=0)
            ]
        )
    finally:
        container.close()


def _frames(path: Path) -> list:
    container = av.open(str(path))
    try:
        return list(container.decode(video=0))
    finally:
        container.close()


def _mp4(path: Path, pix_fmt: str, frames: list) -> Path:
    """The given av.VideoFrames encoded to an H.264 clip at CRF 16 in `pix_fmt`."""
    container = av.open(str(path), mode="w")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
    stream.options = {"crf": "16"}
    for frame in frames:
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def _left_sited_mp4(path: Path, frames: np.ndarray) -> Path:
    """An H.264 clip whose chroma is subsampled the MPEG way: level with the even columns, halfway between rows."""
    planar = []
    for rgb in frames.astype(np.float64):
        yuv = rgb @ BT601.T
        y = 16 + 219 / 255 * yuv[..., 0]
        sub = [chroma.luma_at_chroma(128 + 224 / 255 * yuv[..., c], "left") for c in (1, 2)]
        packed = np.concatenate([y, *(s.reshape(-1, W) for s in sub)])
        planar.append(av.VideoFrame.from_ndarray(np.rint(packed).clip(0, 255).astype(np.uint8), format="yuv420p"))
    return _mp4(path, "yuv420p", planar)


def test_the_rebuilt_colour_is_nearer_the_truth_than_ffmpegs(truth: np.ndarray, tmp_path: Path) -> None:
    for name, path in (
        ("center", write_video(tmp_path / "center.mp4", truth, 30.0, crf=16)),
        ("left", _left_sited_mp4(tmp_path / "left.mp4", truth)),
    ):
        assert chroma.probe_siting(_frames(path)) == name
        decoded = decode_video(path, W, 0, lambda *a: None).frames
        plain = _plain(path, (W, H))
        assert decoded.shape == plain.shape == truth.shape
        gain = _psnr(decoded, truth) - _psnr(plain, truth)
        assert gain > 0.5, f"{name}-sited clip: the rebuilt chroma gains {gain:.2f} dB"
        # the colours themselves (matrix, range) are FFmpeg's: no shift on average (its 4:2:0 path reads about
        # a level dark; its 4:4:4 path, which the rebuilt frames take, does not)
        assert _mean_shift(decoded, truth) < 0.5
        # the luma is the file's: the grey the tracking and the depth read is its luma but for rounding
        luma = np.stack([chroma.planes(f)[0] for f in _frames(path)]).astype(np.float64)
        grey = decoded.astype(np.float64) @ BT601[0]
        assert np.abs(grey - (luma - 16) * 255 / 219).mean() < 0.6


def test_a_clip_kept_at_half_its_size_or_less_is_left_to_ffmpeg(truth: np.ndarray, tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mp4", truth, 30.0, crf=16)
    frame = _frames(path)[0]
    assert chroma.rebuilds(frame, (W, H)) and chroma.rebuilds(frame, (W // 2 + 2, H // 2 + 2))
    assert not chroma.rebuilds(frame, (W // 2, H // 2))
    decoded = decode_video(path, W // 2, 0, lambda *a: None).frames
    np.testing.assert_array_equal(decoded, _plain(path, (W // 2, H // 2)))
    # and at full size when asked (the frames a player shows)
    plain = decode_video(path, W, 0, lambda *a: None, rebuild_chroma=False).frames
    np.testing.assert_array_equal(plain, _plain(path, (W, H)))


def test_full_range_clips_keep_their_range(truth: np.ndarray, tmp_path: Path) -> None:
    path = _mp4(tmp_path / "full.mp4", "yuvj420p", [av.VideoFrame.from_ndarray(rgb, format="rgb24") for rgb in truth])
    assert _frames(path)[0].format.name == "yuvj420p"
    decoded = decode_video(path, W, 0, lambda *a: None).frames
    plain = _plain(path, (W, H))
    # read as limited range, the contrast would be 255 / 219 too high (16% more spread) and the mean shifted
    assert abs(decoded.std() / truth.std() - 1) < 0.02
    assert _mean_shift(decoded, truth) < min(1.0, _mean_shift(plain, truth))
    assert _psnr(decoded, truth) > _psnr(plain, truth) + 0.5


def test_colour_follows_the_luma_edge_and_a_flat_colour_stays_flat() -> None:
    # a red square on grey: the luma's edge at column 7 (odd: between two chroma samples)
    y = np.full((12, 16), 120.0, np.float32)
    y[:, 7:] = 60.0
    truth_cr = np.where(np.arange(16) >= 7, 200.0, 128.0) * np.ones((12, 1))
    cr = chroma.luma_at_chroma(truth_cr, "center")
    rebuilt = chroma.guided_chroma(y, cr, "center")
    plain = chroma._upsample(cr, 12, 16, "center")
    assert np.abs(rebuilt - truth_cr).max() < 4.0  # the edge is as sharp as the luma's
    assert np.abs(plain - truth_cr).max() > 20.0  # interpolated, it is two pixels soft
    flat = chroma.guided_chroma(y, np.full((6, 8), 90.0, np.float32), "left")
    np.testing.assert_allclose(flat, 90.0, atol=1e-3)
    # an odd-sized frame's planes round up; a plane of the wrong size is an error, not a crop
    assert chroma.guided_chroma(np.zeros((5, 7), np.float32), np.zeros((3, 4), np.float32), "left").shape == (5, 7)
    with pytest.raises(ValueError, match="4:2:0"):
        chroma.guided_chroma(np.zeros((5, 7), np.float32), np.zeros((2, 4), np.float32), "left")
    for bad in ({"radius": 0}, {"eps": 0.0}):
        with pytest.raises(InvalidArgument, match="ChromaConfig"):
            chroma.ChromaConfig(**bad)
    # flat frames say nothing of the siting: the MPEG default
    flat_planes = (np.full((8, 8), 100.0), np.full((4, 4), 128.0), np.full((4, 4), 128.0))
    assert chroma.estimate_siting([flat_planes]) == "left"
