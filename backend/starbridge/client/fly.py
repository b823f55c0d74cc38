"""`starbridge fly`: fly a camera through a scene over the real engine channel, as an engine would.

Each tick (at the requested fps) it sends the camera pose of a named path (paths.py), picks up
whatever frames arrived (shared memory, or inline with `inline=True`), writes them to a video
and, optionally, every 30th frame to PNG. The report gives delivered frames/s and the
pose-to-frame latency on the engine's clock (FrameReady echoes the pose's engine time).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from ..errors import InvalidArgument
from .engine import EngineClient, ReceivedFrame, now_us
from .paths import camera_pose, path_period

log = logging.getLogger(__name__)

#: Save every Nth frame as PNG when a frames folder is given.
PNG_EVERY = 30


@dataclass(frozen=True)
class FlyConfig:
    endpoint: str = "tcp://127.0.0.1:50052"
    scene_id: str = ""
    path: str = "tour"
    #: Flight length; 0: one loop of the path.
    seconds: float = 0.0
    fps: float = 30.0
    width: int = 0
    height: int = 0
    vertical_fov_deg: float = 60.0
    inline: bool = False
    token: str = ""
    out: Path | None = None
    frames_dir: Path | None = None
    #: How long to wait for Welcome before saying the backend is not there.
    connect_timeout_s: float = 5.0


@dataclass
class FlyReport:
    frames: int = 0
    seconds: float = 0.0
    width: int = 0
    height: int = 0
    transport: str = ""
    generator: str = ""
    latencies_ms: list[float] = field(default_factory=list)
    generation_ms: list[float] = field(default_factory=list)
    out: Path | None = None
    pngs: list[Path] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")

    def table(self) -> str:
        rows = [
            ("frames received", f"{self.frames} ({self.width}x{self.height}, {self.transport}, {self.generator})"),
            ("frames/s", f"{self.fps:.1f}"),
            ("pose-to-frame latency p50", f"{self.percentile(self.latencies_ms, 50):.1f} ms"),
            ("pose-to-frame latency p95", f"{self.percentile(self.latencies_ms, 95):.1f} ms"),
            ("generation p50 (per block)", f"{self.percentile(self.generation_ms, 50):.1f} ms"),
        ]
        if self.out:
            rows.append(("video", str(self.out)))
        if self.pngs:
            rows.append(("frames (PNG)", f"{len(self.pngs)} in {self.pngs[0].parent}"))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


class VideoWriter:
    """H.264 (or MPEG-4 where libx264 is missing) MP4 via PyAV, written to a temp file then renamed."""

    def __init__(self, path: Path, fps: float, width: int, height: int) -> None:
        import av

        self.path = path
        self._tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
        self._container = av.open(str(self._tmp), mode="w")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self._stream = cast("av.video.stream.VideoStream", self._container.add_stream(codec, rate=round(fps)))
        self._stream.width, self._stream.height = width - width % 2, height - height % 2
        self._stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self._stream.options = {"crf": "20", "preset": "veryfast"}
        self._av = av

    def write(self, rgba: np.ndarray) -> None:
        h, w = int(self._stream.height), int(self._stream.width)
        rgb = np.ascontiguousarray(rgba[:h, :w, :3])
        frame = self._av.VideoFrame.from_ndarray(rgb, format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self, keep: bool = True) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        if keep:
            os.replace(self._tmp, self.path)
        else:
            self._tmp.unlink(missing_ok=True)


def save_png(path: Path, rgba: np.ndarray) -> None:
    from PIL import Image

    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(tmp, format="PNG")
    os.replace(tmp, path)


def fly(config: FlyConfig) -> FlyReport:
    """Run one flight; returns the report. Raises StarBridgeError when the backend refuses or is gone."""
    if config.fps <= 0:
        raise InvalidArgument(f"fps must be > 0, got {config.fps}", field="fps")
    seconds = config.seconds or path_period(config.path)
    report = FlyReport(transport="inline" if config.inline else "shared memory")
    writer: VideoWriter | None = None
    with EngineClient(config.endpoint) as client:
        welcome = client.hello(
            scene_id=config.scene_id,
            width=config.width,
            height=config.height,
            fps=config.fps,
            transport="inline" if config.inline else "shm",
            token=config.token,
            timeout_s=config.connect_timeout_s,
        )
        report.width, report.height, report.generator = welcome.width, welcome.height, welcome.generator
        if config.out is not None:
            writer = VideoWriter(config.out, welcome.fps, welcome.width, welcome.height)
        if config.frames_dir is not None:
            config.frames_dir.mkdir(parents=True, exist_ok=True)
        ok = False
        try:
            _flight(client, config, seconds, report, writer)
            ok = True
        finally:
            if writer is not None:
                writer.close(keep=ok and report.frames > 0)
                report.out = config.out if ok and report.frames > 0 else None
            client.goodbye("flight done")
    return report


def _flight(
    client: EngineClient, config: FlyConfig, seconds: float, report: FlyReport, writer: VideoWriter | None
) -> None:
    interval = 1.0 / config.fps
    start = time.monotonic()
    next_pose = start
    sequence = 0
    while (now := time.monotonic()) - start < seconds:
        if now >= next_pose:
            sequence += 1
            position, rotation = camera_pose(config.path, now - start)
            client.send_pose(sequence, position, rotation, config.vertical_fov_deg)
            next_pose += interval
            if next_pose < now:  # we fell behind (slow machine): do not send a burst
                next_pose = now + interval
        frame = client.receive(timeout_s=max(0.0, next_pose - time.monotonic()))
        if frame is not None:
            _take(frame, config, report, writer)
    report.seconds = time.monotonic() - start


def _take(frame: ReceivedFrame, config: FlyConfig, report: FlyReport, writer: VideoWriter | None) -> None:
    report.frames += 1
    report.latencies_ms.append((frame.received_time_us - frame.engine_time_us) / 1000.0)
    report.generation_ms.append(frame.generation_latency_ms)
    if writer is not None:
        writer.write(frame.pixels)
    if config.frames_dir is not None and report.frames % PNG_EVERY == 1:
        path = config.frames_dir / f"frame-{report.frames:05d}.png"
        save_png(path, frame.pixels)
        report.pngs.append(path)


__all__ = ["FlyConfig", "FlyReport", "fly", "now_us"]
