"""What a video file says about itself: its display matrix stands a portrait phone clip upright, and the lens
an Apple device names in its metadata becomes the field of view's prior. Real MP4s written by FFmpeg (PyAV)
with the matrix and the metadata key a phone writes; decoded and imported as a user's clip would be."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import av
import numpy as np
import pytest

from starbridge.cli import capture_summary
from starbridge.errors import InvalidArgument
from starbridge.geometry.camera import fov_of_equivalent_focal
from starbridge.scenes.capture.track_types import TrackingConfig
from starbridge.scenes.capture.user_depth import probe_video
from starbridge.scenes.store import SceneStore
from starbridge.scenes.video import X264_REPRODUCIBLE, decode_video
from starbridge.scenes.video_meta import LENS_KEYS, Orientation, lens_of, orientation_of, square_size, steady_frames

LENS_KEY = LENS_KEYS[0]


def picture(width: int = 96, height: int = 48) -> np.ndarray:
    """Grey, with a red block at the top left, a green one at the top right and a blue one at the bottom left:
    every turn and mirror of it is a different picture."""
    img = np.full((height, width, 3), 128, np.uint8)
    b = height // 3
    img[:b, :b] = (230, 20, 20)
    img[:b, -b:] = (20, 230, 20)
    img[-b:, :b] = (20, 20, 230)
    return img


def write_clip(path: Path, frames: np.ndarray, *, rotation: float = 0.0, hflip: bool = False, vflip: bool = False,
               lens: str | None = None, fps: int = 25) -> Path:  # fmt: skip
    """An H.264 MP4 of `frames` as coded, with the display matrix of a counter-clockwise `rotation` (then
    mirrors) and, when given, the lens metadata key as text (what FFmpeg writes with use_metadata_tags)."""
    options = {"movflags": "use_metadata_tags"} if lens is not None else {}
    container = av.open(str(path), "w", options=options)
    stream = container.add_stream("libx264", rate=fps)
    stream.height, stream.width = frames.shape[1:3]
    stream.pix_fmt = "yuv420p"
    stream.options = {"crf": "12", "x264-params": X264_REPRODUCIBLE}  # the same bytes every run
    if rotation or hflip or vflip:
        stream.set_display_rotation(rotation, hflip=hflip, vflip=vflip)
    if lens is not None:
        container.metadata[LENS_KEY] = lens
    for f in frames:
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def retype_lens(path: Path, value_type: int, payload: bytes) -> None:
    """Rewrite the lens key's value in place as QuickTime value type `value_type` (23: big-endian float32, 21:
    big-endian signed integer), as Apple's recorders store numbers; the text written must be 4 bytes."""
    data = path.read_bytes()
    at = data.find(LENS_KEY.encode())
    assert at > 0
    value = data.find(b"data", at)  # the ilst's 'data' atom: type (4), locale (4), payload
    assert value > 0 and len(payload) == 4
    start = value + 4
    path.write_bytes(data[:start] + struct.pack(">I", value_type) + data[start + 4 : start + 8] + payload
                     + data[start + 12 :])  # fmt: skip


def block_colours(img: np.ndarray) -> tuple[int, int, int]:
    """Which channel dominates at the top left, top right and bottom left (-1: grey)."""
    h, w = img.shape[:2]
    b = min(h, w) // 6

    def dominant(patch: np.ndarray) -> int:
        mean = patch.reshape(-1, 3).mean(axis=0)
        return int(np.argmax(mean)) if mean.max() - mean.min() > 100 else -1

    return dominant(img[:b, :b]), dominant(img[:b, -b:]), dominant(img[-b:, :b])


#: (rotation, hflip, vflip) -> the coded picture as a player shows it
ORIENTATIONS = [
    ((90, False, False), lambda p: np.rot90(p, 1)),
    ((-90, False, False), lambda p: np.rot90(p, -1)),
    ((180, False, False), lambda p: np.rot90(p, 2)),
    ((0, True, False), lambda p: p[:, ::-1]),
    ((0, False, True), lambda p: p[::-1]),
    ((90, True, False), lambda p: np.rot90(p, 1)[:, ::-1]),
    ((-90, True, False), lambda p: np.rot90(p, -1)[:, ::-1]),
]


@pytest.mark.parametrize(("turn", "shown"), ORIENTATIONS, ids=[str(t) for t, _ in ORIENTATIONS])
def test_frames_are_decoded_as_a_player_shows_them(tmp_path: Path, turn, shown):
    coded = picture()
    clip = write_clip(tmp_path / "turned.mp4", np.stack([coded] * 3), rotation=turn[0], hflip=turn[1], vflip=turn[2])
    video = decode_video(clip, 512, 0, lambda *a: None)
    expected = shown(coded)
    assert video.frames.shape[1:3] == expected.shape[:2]
    assert block_colours(video.frames[0]) == block_colours(expected)
    assert np.abs(video.frames[1].astype(int) - expected).mean() < 6  # the codec's noise, not another picture
    assert video.orientation.endswith("(the file's display matrix)")
    assert probe_video(clip).size == (expected.shape[1], expected.shape[0])


def test_a_clip_without_a_display_matrix_is_left_as_it_is(tmp_path: Path):
    coded = picture()
    video = decode_video(write_clip(tmp_path / "plain.mp4", np.stack([coded] * 2)), 512, 0, lambda *a: None)
    assert video.orientation == "" and video.lens_35mm is None and video.warnings == ()
    assert block_colours(video.frames[0]) == block_colours(coded) == (0, 1, 2)


def test_the_display_matrix_is_read_as_ffmpeg_writes_it():
    def matrix(a: float, b: float, c: float, d: float) -> bytes:
        fixed = [round(v * 65536) for v in (a, b, 0, c, d, 0, 0, 0, 0)]
        fixed[8] = 1 << 30
        return struct.pack("=9i", *fixed)

    assert orientation_of(None) == (Orientation(), "")
    assert orientation_of(matrix(1, 0, 0, 1)) == (Orientation(), "")
    assert orientation_of(matrix(0, -1, 1, 0))[0] == Orientation(swap=True, flip_rows=True)  # 90 counter-clockwise
    assert orientation_of(matrix(0, -1, 1, 0))[0].words().startswith("turned 90 degrees counter-clockwise")
    assert orientation_of(matrix(0, 1, -1, 0))[0].words().startswith("turned 90 degrees clockwise (")
    s = math.sqrt(0.5)
    kept, warning = orientation_of(matrix(s, -s, s, s))  # 45 degrees: not something to guess at
    assert kept.identity and "45.0 degrees (not a quarter turn)" in warning
    kept, warning = orientation_of(b"\0" * 12)
    assert kept.identity and "12 bytes" in warning
    img = np.arange(24).reshape(2, 4, 3)
    assert Orientation(swap=True).apply(img).shape == (4, 2, 3) and Orientation(swap=True).size(4, 2) == (2, 4)


@pytest.mark.parametrize(
    ("text", "retype", "expected"),
    [("13.0", None, 13.0), ("26.0", (23, struct.pack(">f", 77.0)), 77.0), ("26.0", (21, struct.pack(">i", 26)), 26.0)],
    ids=["text", "float32", "integer"],
)
def test_the_lens_an_apple_device_names_is_read(tmp_path: Path, text, retype, expected):
    clip = write_clip(tmp_path / "lens.mp4", np.stack([picture()] * 2), lens=text)
    if retype is not None:
        retype_lens(clip, *retype)
    video = decode_video(clip, 512, 0, lambda *a: None)
    assert video.lens_35mm == pytest.approx(expected) and video.warnings == ()


def test_a_lens_value_that_cannot_be_a_lens_is_ignored_with_a_warning(tmp_path: Path):
    assert lens_of({}) == (None, "")
    mm, warning = lens_of({LENS_KEY: "wide"})
    assert mm is None and "not a number ('wide')" in warning
    mm, warning = lens_of({LENS_KEY: "0.5"})
    assert mm is None and "0.5 mm-equivalent lens, outside [4, 1000] mm: ignored" in warning
    clip = write_clip(tmp_path / "odd.mp4", np.stack([picture()] * 2), lens="5000")
    video = decode_video(clip, 512, 0, lambda *a: None)
    assert video.lens_35mm is None and len(video.warnings) == 1 and video.warnings[0].startswith("video file odd.mp4:")


def test_the_metadata_lens_is_the_field_of_views_prior():
    config = TrackingConfig().with_lens(13.0)
    assert config.default_focal_35mm == 13.0 and config.fov_prior_sigma_deg == config.lens_prior_sigma_deg == 4.0
    framed = config.for_frames(72, 128)  # portrait
    assert framed.assumed_fov_deg == pytest.approx(fov_of_equivalent_focal(13.0, 72, 128))
    assert "the 13 mm-equivalent lens the clip's metadata names" in framed.default_fov_words
    assert "a phone's main camera" in TrackingConfig().for_frames(128, 72).default_fov_words
    with pytest.raises(InvalidArgument, match="lens_prior_sigma_deg"):
        TrackingConfig(lens_prior_sigma_deg=0)


def test_a_portrait_phone_clip_imports_upright_with_its_lens(store: SceneStore, sample_video: Path, tmp_path: Path):
    """Big Buck Bunny's frames as a phone held upright stores them (the sensor's landscape frames, the display
    matrix turning them a quarter clockwise) with a 13 mm-equivalent lens named: the scene is the portrait
    picture a player shows, its field of view that lens's over the portrait frame, and `scene show` says so."""
    source = decode_video(sample_video, 128, 8, lambda *a: None).frames  # (8, 72, 128, 3): the coded frames
    clip = write_clip(tmp_path / "portrait.mp4", source, rotation=-90, lens="13")
    bundle = store.import_video(clip, max_side=128, progress=lambda *a: None)
    upright = np.rot90(source, -1, axes=(1, 2))  # (8, 128, 72, 3)
    assert (bundle.meta.width, bundle.meta.height) == (72, 128)
    assert np.abs(bundle.frames.astype(int) - upright).mean() < 8  # two H.264 encodes apart, not a quarter turn
    turned_wrong = np.abs(bundle.frames.astype(int) - np.rot90(source, 1, axes=(1, 2))).mean()
    assert turned_wrong > 20
    report = bundle.meta.capture
    assert report["orientation"].startswith("turned 90 degrees clockwise") and report["lens_metadata_mm"] == 13.0
    # a fixed camera measures no field of view: the metadata's lens is taken, over the portrait frame
    assert bundle.meta.rotation_only
    assert bundle.meta.intrinsics.vertical_fov_deg == pytest.approx(fov_of_equivalent_focal(13.0, 72, 128), abs=0.05)
    assert "the 13 mm-equivalent lens the clip's metadata names" in report["fov_note"]
    assert any(
        "metadata names its lens; give the field of view if the video shows less" in w for w in report["warnings"]
    )
    summary = capture_summary(report)
    expected = "video         turned 90 degrees clockwise (the file's display matrix); its metadata names a 13 mm"
    assert expected in summary


def test_non_square_pixels_are_resampled_to_square(tmp_path: Path):
    """An anamorphic clip (each stored pixel 4/3 as wide as high, as DV's 16:9 modes): a square in the picture
    is stored 18 pixels wide and 24 high; decoded, it is square again and the frame 4:3 wider."""
    from fractions import Fraction

    coded = np.full((48, 64, 3), 40, np.uint8)
    coded[12:36, 20:38] = 220  # 18 stored pixels x 4/3 = 24 shown
    path = tmp_path / "anamorphic.mp4"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=25)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.codec_context.sample_aspect_ratio = Fraction(4, 3)
    for _ in range(2):
        for packet in stream.encode(av.VideoFrame.from_ndarray(coded, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    frame = decode_video(path, 512, 0, lambda *a: None).frames[0]
    assert frame.shape[:2] == (48, 84)  # 64 x 4/3 = 85.3, to even sides
    assert probe_video(path).size == (85, 48)
    bright = frame[..., 0] > 130
    rows, cols = np.flatnonzero(bright.any(axis=1)), np.flatnonzero(bright.any(axis=0))
    assert abs((rows[-1] - rows[0]) - (cols[-1] - cols[0])) <= 1  # square, not 18 x 24
    assert square_size(64, 48, 0)[0] == (64, 48) and square_size(64, 48, None)[0] == (64, 48)
    kept, warning = square_size(64, 48, Fraction(100, 1))
    assert kept == (64, 48) and "not believable" in warning


def test_a_variable_frame_rate_is_resampled_to_a_steady_one(tmp_path: Path):
    """A clip whose frames came at irregular times (a phone in low light, a screen recorder): frame i is grey
    level 20 i, shown at the given milliseconds; decoded, every 1/29.97 s shows the frame on screen then."""
    from fractions import Fraction

    shown_ms = [0, 33, 67, 100, 200, 233, 267, 400, 433, 467]
    path = tmp_path / "vfr.mp4"
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
    stream.codec_context.time_base = Fraction(1, 1000)
    for i, ms in enumerate(shown_ms):
        frame = av.VideoFrame.from_ndarray(np.full((32, 64, 3), 20 * i, np.uint8), format="rgb24")
        frame.pts, frame.time_base = ms, Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    video = decode_video(path, 512, 0, lambda *a: None)
    assert video.fps == pytest.approx(30000 / 1001)
    shown = [round(float(f.mean()) / 20) for f in video.frames]
    assert shown == [0, 1, 2, 3, 3, 4, 4, 5, 6, 6, 7, 7, 7, 8, 9]  # ticks 0, 33.4, 66.7, ... 467 ms
    assert "variable frame rate (10 frames over 0.47 s, intervals 33-133 ms)" in video.timing
    assert "15 frames (5 repeated to fill its gaps, 0 dropped)" in video.timing
    # steady clips, jitter of a millisecond included, and clips without times are kept as decoded
    assert steady_frames([0.0, 0.033, 0.067, 0.1, 0.134], 30.0) == (None, 30.0, "")
    assert steady_frames([0.0, None, 0.2], 30.0)[0] is None
    assert steady_frames([0.0, 0.2, 0.1, 0.3], 30.0)[0] is None
    picked, fps, _ = steady_frames([0.0, 0.01, 0.02, 0.03, 0.1], 60.0)  # the usual interval 10 ms, not 60 fps
    assert fps == pytest.approx(100.0) and picked == [0, 1, 2, 3, 3, 3, 3, 4, 4, 4, 4]


# ---------------------------------------------------------------------------------------------- HDR clips

M709_TO_2020 = np.array([[0.6274, 0.3293, 0.0433], [0.0691, 0.9195, 0.0114], [0.0164, 0.0880, 0.8956]])  # BT.2087


def hlg_signal(nits: np.ndarray) -> np.ndarray:
    """Display light (cd/m2, BT.2020) -> HLG signal, as a camera writes it: the inverse of the OOTF for a
    1000 cd/m2 display, then the OETF (BT.2100)."""
    a, b = 0.17883277, 1 - 4 * 0.17883277
    c = 0.5 - a * np.log(4 * a)
    luma = nits @ np.array([0.2627, 0.6780, 0.0593])
    scene = nits / (1000.0 * np.maximum(luma / 1000.0, 1e-12)[..., None] ** (0.2 / 1.2))
    return np.where(scene <= 1 / 12, np.sqrt(3 * scene), a * np.log(np.maximum(12 * scene - b, 1e-12)) + c)


def pq_signal(nits: np.ndarray) -> np.ndarray:
    """Display light (cd/m2) -> PQ signal (BT.2100's inverse EOTF)."""
    m1, m2, c1, c2, c3 = 2610 / 16384, 2523 / 4096 * 128, 3424 / 4096, 2413 / 4096 * 32, 2392 / 4096 * 32
    y = (np.clip(nits, 0, 10000) / 10000.0) ** m1
    return ((c1 + c2 * y) / (1 + c3 * y)) ** m2


def patches() -> np.ndarray:
    """An SDR picture of flat patches (16x16 each, so 4:2:0 chroma is exact inside them): greys, saturated
    primaries and skin, all below the tone curve's knee (code 226), and a white one at the top of SDR."""
    colours = [(20, 20, 20), (90, 90, 90), (200, 200, 200), (200, 40, 30), (40, 180, 60), (30, 60, 200),
               (210, 160, 130), (220, 210, 40), (255, 255, 255)]  # fmt: skip
    img = np.zeros((16, 16 * len(colours), 3), np.uint8)
    for i, c in enumerate(colours):
        img[:, 16 * i : 16 * (i + 1)] = c
    return np.concatenate([img, img], axis=0)


def write_hdr_clip(path: Path, sdr: np.ndarray, transfer: str, frames: int = 3) -> Path:
    """`sdr` as an HDR phone would have filmed it: its display light (BT.1886, 1.0 = reference white, 203
    cd/m2) in BT.2020 primaries, through HLG or PQ, as lossless 10-bit HEVC tagged as such."""
    from av.video.reformatter import Colorspace

    light = (sdr / 255.0) ** 2.4 @ M709_TO_2020.T * 203.0
    signal = hlg_signal(light) if transfer == "hlg" else pq_signal(light)
    rgb16 = np.round(np.clip(signal, 0, 1) * 65535).astype(np.uint16)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx265", rate=25)
    stream.height, stream.width = sdr.shape[:2]
    stream.pix_fmt = "yuv420p10le"
    stream.options = {"x265-params": "lossless=1:log-level=error"}
    trc = 18 if transfer == "hlg" else 16
    ctx = stream.codec_context
    ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range = 9, trc, 9, 1
    for _ in range(frames):
        frame = av.VideoFrame.from_ndarray(rgb16, format="rgb48le").reformat(
            format="yuv420p10le", dst_colorspace=Colorspace.BT2020, dst_color_range=1
        )
        frame.color_primaries, frame.color_trc, frame.colorspace, frame.color_range = 9, trc, 9, 1
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def centres(img: np.ndarray) -> np.ndarray:
    """The colour at the middle of each patch of `patches()` (first row)."""
    return img[8, 8::16].astype(int)


def test_the_hdr_curves_meet_their_published_anchors():
    from starbridge.scenes.video_colour import HdrSignal, display_light, tone_map

    hlg, pq = HdrSignal("hlg", True), HdrSignal("pq", True)
    # BT.2408: HLG's 75% signal is the 203 cd/m2 reference white on a 1000 cd/m2 display; PQ writes it at 58%
    assert display_light(np.full(3, 0.75), hlg) == pytest.approx(np.full(3, 203.0), rel=0.005)
    assert display_light(np.full(3, 0.5807), pq) == pytest.approx(np.full(3, 203.0), rel=0.005)
    assert display_light(np.ones(3), hlg) == pytest.approx(np.full(3, 1000.0), rel=1e-3)
    assert display_light(np.ones(3), pq) == pytest.approx(np.full(3, 10000.0))
    # the roll-off: nothing below the knee, monotone above it, the display's peak on SDR's white
    x = np.linspace(0, 1000 / 203, 200)[:, None] * np.ones(3)
    y = tone_map(x)[:, 0]
    assert np.all(np.diff(y) > 0) and y[-1] == pytest.approx(1.0)
    assert np.allclose(y[x[:, 0] <= 0.75], x[x[:, 0] <= 0.75, 0])


@pytest.mark.parametrize("transfer", ["hlg", "pq"])
def test_an_hdr_phone_clip_decodes_to_the_sdr_picture(tmp_path: Path, transfer: str):
    sdr = patches()
    clip = write_hdr_clip(tmp_path / f"{transfer}.mp4", sdr, transfer)
    video = decode_video(clip, 512, 0, lambda *a: None)
    assert video.colour.startswith(f"HDR ({transfer.upper()}, BT.2020 primaries) converted to SDR")
    got, want = centres(video.frames[0]), centres(sdr)
    # below the knee: the colours filmed, to the 10-bit rounding (the primaries matrix amplifies it in a saturated
    # green's red: 4 levels with PQ)
    assert np.abs(got[:-1] - want[:-1]).max() <= 4
    assert 235 <= got[-1].min() < 255  # SDR's white rolled off a little, still the brightest
    # read as if it were SDR (what the import did before), the same file is another picture
    with av.open(str(clip)) as container:
        naive = centres(next(container.decode(video=0)).reformat(format="rgb24").to_ndarray())
    assert np.abs(naive - want).max() > 40
