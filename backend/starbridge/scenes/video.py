"""Video files through PyAV (FFmpeg's libraries): writing MP4s of frames.

PyAV because it is FFmpeg without a subprocess: it decodes everything FFmpeg does, gives frames straight
as NumPy arrays and ships as wheels with its own FFmpeg. One writer for everyone: `fly` records what an
engine received, the capture benchmark and tests encode ground-truth clips to import as if they were real.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

import numpy as np

from ..errors import InvalidArgument

#: H.264 quality (constant rate factor; lower is better, 18 is visually lossless) and speed preset.
H264_CRF = 20
H264_PRESET = "veryfast"


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
            self._stream.options = {"crf": str(crf), "preset": H264_PRESET}
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
