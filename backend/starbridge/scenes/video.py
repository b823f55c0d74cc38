"""Video files through PyAV (FFmpeg's libraries): decoding a user's clip into frames, writing MP4s of frames.

PyAV because it is FFmpeg without a subprocess: it decodes everything FFmpeg does, gives frames straight
as NumPy arrays and ships as wheels with its own FFmpeg. What FFmpeg's libraries leave to a player, decoding
does here: the display matrix, the sample aspect ratio and a variable frame rate (video_meta.py), HDR to SDR
(video_colour.py), and a 4:2:0 clip's colour rebuilt at its luma's resolution where the frames are kept near
the clip's own size (chroma.py). One writer for everyone: `fly` records what an
engine received, the capture benchmark and tests encode ground-truth clips to import as if they were real.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import av
import numpy as np
from av.sidedata.sidedata import Type as SideDataType

from ..errors import InvalidArgument, SceneError
from . import chroma
from .video_colour import HdrSignal, hdr_of, to_sdr
from .video_meta import Orientation, lens_of, orientation_of, square_size, steady_frames

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]

#: A stream that decodes to fewer than this fraction of the frames its container announces is truncated.
TRUNCATED_FRACTION = 0.9
#: Frame rate assumed when the stream does not say (logged).
FALLBACK_FPS = 30.0

#: H.264 quality (constant rate factor; lower is better, 18 is visually lossless) and speed preset.
H264_CRF = 20
H264_PRESET = "veryfast"
#: libx264 options every H.264 encode here passes: the same frames give the same bytes. Without them the
#: encoder's assembly paths (its macroblock tree) made the output differ from encode to encode in one process
#: (5 different files in 5 encodes of one clip when a decode ran in between; a clip's camera tracking hinged on
#: that noise: 0.11 or 0.70 degrees median rotation error); tests/scenes/test_video_reproducible.py checks it.
X264_REPRODUCIBLE = "cpu-independent=1"


class VideoWriter:
    """H.264 (or MPEG-4 where libx264 is missing) MP4, written to a temporary file and renamed when done.

    Usage::

        with VideoWriter(Path("out.mp4"), fps=30, width=512, height=288) as video:
            video.write(frame)          # (H, W, 3) RGB or (H, W, 4) RGBA uint8, rows top to bottom

    Odd sizes are cropped to even (yuv420p needs it). Leaving the `with` block by an exception removes the
    temporary file and keeps nothing.
    """

    def __init__(self, path: Path, fps: float, width: int, height: int, *, crf: int = H264_CRF) -> None:
        import av

        self.path = Path(path)
        self.frames = 0
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp{self.path.suffix}")
        try:
            self._container = av.open(str(self._tmp), mode="w")
        except Exception as exc:  # PyAV's errors (OSError subclasses or FFmpegError): a path we cannot write
            raise InvalidArgument(f"out: cannot write {path}: {exc}", field="out") from None
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self._stream = cast("av.video.stream.VideoStream", self._container.add_stream(codec, rate=round(fps)))
        self._stream.width, self._stream.height = width - width % 2, height - height % 2
        self._stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self._stream.options = {"crf": str(crf), "preset": H264_PRESET, "x264-params": X264_REPRODUCIBLE}
        else:
            self._stream.bit_rate = 8_000_000
        self._av = av

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) RGB or (H, W, 4) RGBA uint8 frame (alpha is dropped)."""
        h, w = int(self._stream.height), int(self._stream.width)
        rgb = np.ascontiguousarray(frame[:h, :w, :3])
        video_frame = self._av.VideoFrame.from_ndarray(rgb, format="rgb24")
        for packet in self._stream.encode(video_frame):
            self._container.mux(packet)
        self.frames += 1

    def close(self, keep: bool = True) -> None:
        """Flush and finalise; `keep`: rename into place, else remove. The temp file never stays behind."""
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            if keep:
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(keep=exc_type is None)


def write_video(path: Path, frames: np.ndarray, fps: float, *, crf: int = H264_CRF) -> Path:
    """Encode (N, H, W, 3|4) uint8 frames as an MP4 at `path`; returns the path."""
    n, h, w = frames.shape[:3]
    with VideoWriter(path, fps, w, h, crf=crf) as video:
        for frame in frames:
            video.write(frame)
    return Path(path)


# ---------------------------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class DecodedVideo:
    """frames (N, H, W, 3) uint8 sRGB, rows top to bottom, upright and with square pixels as a player shows
    them, at a steady rate; fps; whether `max_frames` cut the video short; how the frames were turned to stand
    upright ('' for not at all) and the 35 mm-equivalent lens the file's metadata names (None: it does not),
    video_meta.py; warnings about either."""

    frames: np.ndarray
    fps: float
    limited: bool
    orientation: str = ""
    lens_35mm: float | None = None
    warnings: tuple[str, ...] = ()
    #: How an HDR clip's colours were brought to SDR ('' for an SDR clip), video_colour.py.
    colour: str = ""
    #: How a variable frame rate was made steady ('' for a steady clip), video_meta.py.
    timing: str = ""


def output_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """(width, height) scaled so the longest side is at most `max_side`, both even and >= 2."""
    scale = min(1.0, max_side / max(width, height))
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def _open_video(path: Path):
    if not path.exists():
        raise SceneError(f"video file {path} does not exist", field="video_path")
    if not path.is_file():
        raise SceneError(f"video file {path} is not a file", field="video_path")
    if path.stat().st_size == 0:
        raise SceneError(f"video file {path.name}: file is empty", field="video_path")
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise SceneError(f"video file {path.name}: not a video FFmpeg can read ({exc})", field="video_path") from None
    except (OSError, ValueError) as exc:
        raise SceneError(f"video file {path.name}: cannot open: {exc}", field="video_path") from None


def _probe_siting(path: Path) -> chroma.Siting:
    """Where the chroma samples of `path`'s first video stream lie, from its first frames (chroma.py)."""
    container = _open_video(path)
    try:
        return chroma.probe_siting(container.decode(container.streams.video[0]))
    except av.FFmpegError:  # the main pass reports a frame it cannot decode
        return "left"
    finally:
        container.close()


def decode_video(
    path: Path, max_side: int, max_frames: int, report: ProgressFn, *, rebuild_chroma: bool = True
) -> DecodedVideo:
    """Decode the first video stream of `path` to RGB frames of at most `max_side` pixels on the long side
    (an 8-bit 4:2:0 stream kept at more than half its size has its chroma rebuilt first, chroma.py, unless
    `rebuild_chroma` is off: FFmpeg's own upsampling, as a player shows it)."""
    container = _open_video(path)
    try:
        if not container.streams.video:
            raise SceneError(f"video file {path.name}: no video stream", field="video_path")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        if not (math.isfinite(fps) and fps > 0):
            log.warning("%s does not state its frame rate; assuming %g fps", path.name, FALLBACK_FPS)
            fps = FALLBACK_FPS
        announced = int(stream.frames or 0)
        total = min(announced, max_frames) if max_frames else announced
        lens, lens_warning = lens_of(container.metadata)
        sample_aspect = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
        pixel_warning = ""
        frames: list[np.ndarray] = []
        times: list[float | None] = []
        nominal = stream.guessed_rate or stream.base_rate
        size: tuple[int, int] | None = None
        upright = Orientation()
        turn_warning = ""
        hdr: HdrSignal | None = None
        siting: chroma.Siting | None = None  # set where the frames' chroma is rebuilt (chroma.py)
        try:
            for frame in container.decode(stream):
                if size is None:
                    (square_w, square_h), pixel_warning = square_size(frame.width, frame.height, sample_aspect)
                    size = output_size(square_w, square_h, max_side)
                    # the first frame's display matrix (a file has one for its track) stands every frame upright
                    matrix = frame.side_data.get(SideDataType.DISPLAYMATRIX)
                    upright, turn_warning = orientation_of(bytes(matrix) if matrix is not None else None)
                    hdr = hdr_of(frame.color_trc, frame.color_primaries)
                    if rebuild_chroma and hdr is None and chroma.rebuilds(frame, size):
                        siting = _probe_siting(path)
                if siting is not None:
                    rgb = chroma.to_rgb(frame, size, siting)
                elif hdr is None:
                    rgb = frame.reformat(
                        width=size[0], height=size[1], format="rgb24", interpolation="AREA"
                    ).to_ndarray()
                else:  # 16 bits a channel through the curves (video_colour.py)
                    wide = frame.reformat(width=size[0], height=size[1], format="rgb48le", interpolation="AREA")
                    rgb = to_sdr(wide.to_ndarray(), hdr)
                frames.append(upright.apply(rgb))
                times.append(frame.time)
                report("decode", len(frames), total)
                if max_frames and len(frames) >= max_frames:
                    break
        except av.FFmpegError as exc:
            raise SceneError(
                f"video file {path.name}: could not decode frame {len(frames)}: {exc}", field="video_path"
            ) from None
    finally:
        container.close()
    limited = bool(max_frames) and len(frames) >= max_frames
    if not frames:
        raise SceneError(f"video file {path.name}: truncated or empty: decoded 0 frames", field="video_path")
    if not limited and announced and len(frames) < TRUNCATED_FRACTION * announced:
        raise SceneError(
            f"video file {path.name}: truncated: decoded {len(frames)} of the {announced} frames it announces",
            field="video_path",
        )
    # a variable frame rate resampled to a steady one (a scene's frame k stands at k / fps)
    picked, steady_fps, timing = steady_frames(times, float(nominal) if nominal else fps)
    if picked is not None:
        frames, fps = [frames[i] for i in picked], steady_fps
        if max_frames:
            frames = frames[:max_frames]
    warnings = tuple(f"video file {path.name}: {w}" for w in (turn_warning, lens_warning, pixel_warning) if w)
    for w in warnings:
        log.warning("%s", w)
    colour = hdr.words() if hdr is not None else ""
    return DecodedVideo(np.stack(frames), fps, limited, upright.words(), lens, warnings, colour, timing)
