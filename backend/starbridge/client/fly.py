"""`starbridge fly`: fly a camera through a scene over the real engine channel, as an engine would.

Each tick (at the requested fps) it sends the camera pose of a named path (paths.py), picks up
whatever frames arrived (shared memory, or inline with `inline=True`), writes them to a video
and, optionally, every 30th frame to PNG. The report gives delivered frames/s (over the whole flight, and
once streaming: from the first frame to the last, the session's start-up apart), the time to the first frame
and the pose-to-frame latency on the engine's clock (FrameReady echoes the pose's engine time).

A flight that gets no frames stops instead of flying on blind: a fatal Error from the backend, a
backend that shuts down, a lost connection, a backend that rejects every pose, or no frame for too
long (see `FlyLimits`) raise a StarBridgeError naming what happened. Whatever was received by then,
and on Ctrl-C (KeyboardInterrupt), is kept: the video is finalised and the PNGs stay.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import BackendUnavailable, InvalidArgument, ShuttingDown, StarBridgeError
from ..geometry.camera import check_fov
from ..protocol import engine_pb2 as pb
from ..scenes.video import VideoWriter
from ..transport.defaults import DEFAULT_ENGINE_ENDPOINT, MAX_SIDE, MIN_SIDE
from ..transport.error_codes import error_from_proto
from .engine import EngineClient, ReceivedFrame, now_us
from .paths import PATHS, camera_pose, path_period

log = logging.getLogger(__name__)

#: Save every Nth frame as PNG when a frames folder is given.
PNG_EVERY = 30
#: Containers `out` may name (PyAV picks the muxer from the suffix).
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".m4v")
ENDPOINT_RE = re.compile(r"tcp://(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):(\d{1,5})")


@dataclass(frozen=True)
class FlyLimits:
    """When a flight that gets no frames is given up, seconds (see `FlyLimits.for_session`)."""

    #: No first frame within this long. At least the session's heartbeat timeout.
    first_frame_s: float = 10.0
    #: Frames came, then none for this long.
    stall_s: float = 3.0
    #: Every pose answered with an Error, no frame in between, for this long (and at least `reject_errors`).
    reject_s: float = 1.0
    reject_errors: int = 10
    #: No pose could be sent for this long: the connection to the backend is gone.
    lost_s: float = 1.0

    @staticmethod
    def for_session(heartbeat_timeout_s: float, fps: float) -> FlyLimits:
        """A backend that is alive answers a pose stream within its heartbeat timeout; once frames flowed, a
        gap of ten frames (three seconds at least) already means it stopped, so that shorter bound applies."""
        first = max(heartbeat_timeout_s, 5.0)
        return FlyLimits(first_frame_s=first, stall_s=min(first, max(3.0, 10.0 / fps)))


@dataclass(frozen=True)
class FlyConfig:
    endpoint: str = DEFAULT_ENGINE_ENDPOINT
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
    #: When to give up on a flight without frames; None: from the session (`FlyLimits.for_session`).
    limits: FlyLimits | None = None

    def validate(self) -> FlyConfig:
        """Check every setting before connecting; InvalidArgument naming the field. Returns self."""

        def bad(name: str, rule: str, value: object) -> InvalidArgument:
            return InvalidArgument(f"{name} must be {rule}, got {value!r}", field=name)

        match = ENDPOINT_RE.fullmatch(self.endpoint)
        if match is None or not 0 < int(match[2]) < 65536:
            raise bad("endpoint", f"tcp://HOST:PORT (the backend's engine channel, e.g. {DEFAULT_ENGINE_ENDPOINT})",
                      self.endpoint)  # fmt: skip
        if self.path not in PATHS:
            raise bad("path", f"one of {', '.join(PATHS)}", self.path)
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise bad("seconds", ">= 0 (0: one loop of the path)", self.seconds)
        if not (math.isfinite(self.fps) and 0 < self.fps <= 1000):
            raise bad("fps", "in (0, 1000] frames per second", self.fps)
        for name, side in (("width", self.width), ("height", self.height)):
            if side != 0 and not MIN_SIDE <= side <= MAX_SIDE:
                raise bad(name, f"0 (the backend's default) or in [{MIN_SIDE}, {MAX_SIDE}] pixels", side)
        check_fov(self.vertical_fov_deg)
        if self.out is not None:
            out = Path(self.out)
            if out.suffix.lower() not in VIDEO_SUFFIXES:
                raise bad("out", f"a video file name ending in {', '.join(VIDEO_SUFFIXES)}", str(out))
            if out.is_dir():
                raise bad("out", "a file name, not a folder", str(out))
            if not out.parent.is_dir():
                raise InvalidArgument(f"out must be in an existing folder: {out.parent} does not exist", field="out")
        if self.frames_dir is not None:
            frames = Path(self.frames_dir)
            if frames.exists() and not frames.is_dir():
                raise bad("frames_dir", "a folder", str(frames))
            if not frames.parent.is_dir():
                raise InvalidArgument(
                    f"frames_dir must be in an existing folder: {frames.parent} does not exist", field="frames_dir"
                )
        if not (math.isfinite(self.connect_timeout_s) and self.connect_timeout_s > 0):
            raise bad("connect_timeout_s", "> 0 seconds", self.connect_timeout_s)
        return self


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
    #: Poses sent, and Errors the backend answered (not fatal ones: those end the flight).
    poses: int = 0
    errors: int = 0
    #: The latest of those Errors, "CODE: message".
    last_error: str = ""
    #: The flight was cut short (Ctrl-C, or a failure): what is here is what came before.
    interrupted: bool = False
    #: When the first and the latest frame came, seconds from the start of the flight (nan: no frame yet).
    first_frame_s: float = math.nan
    last_frame_s: float = math.nan

    @property
    def fps(self) -> float:
        """Frames per second of the whole flight, the wait for the first frame included."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def stream_fps(self) -> float:
        """The stream's rate once it runs: frame intervals from the first frame to the latest, per second (the
        wait for the first frame, a session's start-up, is `first_frame_s`; nan with fewer than two frames)."""
        span = self.last_frame_s - self.first_frame_s
        return (self.frames - 1) / span if self.frames >= 2 and span > 0 else math.nan

    def percentile(self, values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else float("nan")

    def _ms(self, values: list[float], q: float) -> str:
        return f"{self.percentile(values, q):.1f} ms" if values else "- (no frames)"

    def table(self) -> str:
        rows = [
            ("frames received", f"{self.frames} ({self.width}x{self.height}, {self.transport}, {self.generator})"),
            ("frames/s", f"{self.fps:.1f} over {self.seconds:.1f} s" + (" (cut short)" if self.interrupted else "")),
            (
                "frames/s once streaming",
                "-"
                if math.isnan(self.stream_fps)
                else f"{self.stream_fps:.1f} (first frame after {1000 * self.first_frame_s:.0f} ms)",
            ),
            ("pose-to-frame latency p50", self._ms(self.latencies_ms, 50)),
            ("pose-to-frame latency p95", self._ms(self.latencies_ms, 95)),
            ("generation p50 (per block)", self._ms(self.generation_ms, 50)),
        ]
        if self.errors:
            rows.append(("errors from the backend", f"{self.errors} for {self.poses} poses; last: {self.last_error}"))
        if self.out:
            rows.append(("video", str(self.out)))
        if self.pngs:
            rows.append(("frames (PNG)", f"{len(self.pngs)} in {self.pngs[0].parent}"))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def save_png(path: Path, rgba: np.ndarray) -> None:
    from PIL import Image

    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(np.ascontiguousarray(rgba[..., :3])).save(tmp, format="PNG")
    os.replace(tmp, path)


#: Set by the SIGINT handler `_ctrl_c_between_frames` installs; the flight loop checks it once a tick.
_INTERRUPTED = threading.Event()


@contextlib.contextmanager
def _ctrl_c_between_frames() -> Iterator[None]:
    """Ctrl-C ends the flight at the next tick instead of wherever Python happens to be: a KeyboardInterrupt
    raised between the encoder handing out a packet and its write into the MP4 loses that packet, and when it is
    the first key frame, the whole video with it. (Main thread only; elsewhere Ctrl-C is left as it is.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _INTERRUPTED.clear()
    previous = signal.signal(signal.SIGINT, lambda *_: _INTERRUPTED.set())
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _INTERRUPTED.clear()


def fly(config: FlyConfig, report: FlyReport | None = None) -> FlyReport:
    """Run one flight; returns the report (also filled in as it goes when the caller passes one, so it holds
    what happened so far when this raises).

    Raises InvalidArgument for a bad setting (before connecting), and a StarBridgeError when the backend
    refuses the session, sends a fatal Error, shuts down, rejects every pose, or stops sending frames (see
    FlyLimits). KeyboardInterrupt ends the flight early. Whatever ends it, the frames received so far are kept:
    the video is finalised (when at least one frame came) and the PNGs stay.
    """
    config.validate()
    seconds = config.seconds or path_period(config.path)
    report = report if report is not None else FlyReport()
    report.transport = "inline" if config.inline else "shared memory"
    writer: VideoWriter | None = None
    with EngineClient(config.endpoint, log_errors=False) as client:
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
        limits = config.limits or FlyLimits.for_session(welcome.heartbeat_timeout_s or 10.0, config.fps)
        try:
            if config.frames_dir is not None:
                try:
                    config.frames_dir.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise InvalidArgument(f"frames_dir: cannot create {config.frames_dir}: {exc}",
                                          field="frames_dir") from None  # fmt: skip
            if config.out is not None:
                writer = VideoWriter(config.out, welcome.fps, welcome.width, welcome.height)
            with _ctrl_c_between_frames():
                _flight(client, config, seconds, limits, report, writer)
        except BaseException:
            report.interrupted = True
            raise
        finally:
            try:
                if writer is not None:
                    keep = writer.frames > 0
                    writer.close(keep=keep)
                    report.out = config.out if keep else None
            finally:
                client.goodbye("flight done")
    return report


def _flight(
    client: EngineClient,
    config: FlyConfig,
    seconds: float,
    limits: FlyLimits,
    report: FlyReport,
    writer: VideoWriter | None,
) -> None:
    interval = 1.0 / config.fps
    start = time.monotonic()
    next_pose = start
    sequence = 0
    last_frame = start  # when the latest frame came (the start, before the first)
    unsent_since: float | None = None  # first of the poses in a row that could not be sent
    errors_at_last_frame = 0
    try:
        while (now := time.monotonic()) - start < seconds:
            if _INTERRUPTED.is_set():
                raise KeyboardInterrupt  # Ctrl-C, taken here: never between an encoded frame and its write
            if now >= next_pose:
                sequence += 1
                position, rotation = camera_pose(config.path, now - start)
                if client.send_pose(sequence, position, rotation, config.vertical_fov_deg):
                    report.poses += 1
                    unsent_since = None
                elif unsent_since is None:
                    unsent_since = now
                next_pose += interval
                if next_pose < now:  # we fell behind (slow machine): do not send a burst
                    next_pose = now + interval
            frame = client.receive(timeout_s=max(0.0, next_pose - time.monotonic()))
            now = time.monotonic()
            if client.error_count != report.errors and client.last_error is not None:
                report.errors = client.error_count
                report.last_error = error_from_proto(client.last_error).message.removeprefix("backend error ")
            if frame is not None:
                last_frame, errors_at_last_frame = now, client.error_count
                if not report.frames:
                    report.first_frame_s = now - start
                report.last_frame_s = now - start
                _take(frame, config, report, writer)
                continue
            _check_alive(client, config, limits, report, now - last_frame, unsent_since, now,
                         client.error_count - errors_at_last_frame)  # fmt: skip
    finally:
        report.seconds = time.monotonic() - start


def _check_alive(
    client: EngineClient,
    config: FlyConfig,
    limits: FlyLimits,
    report: FlyReport,
    silent_s: float,
    unsent_since: float | None,
    now: float,
    new_errors: int,
) -> None:
    """Raise when the flight cannot get frames any more (see FlyLimits)."""
    where = f"the backend at {config.endpoint}"
    error = client.last_error
    if error is not None and error.code == pb.ERROR_CODE_SHUTTING_DOWN:
        raise ShuttingDown(f"{where} shut down during the flight (start it again with `starbridge serve`)",
                           field="endpoint")  # fmt: skip
    if unsent_since is not None and now - unsent_since >= limits.lost_s and silent_s >= limits.lost_s:
        raise BackendUnavailable(
            f"lost the connection to {where} (no pose could be sent for {now - unsent_since:.1f} s): "
            "it stopped or crashed",
            field="endpoint",
        )
    if error is not None and new_errors >= limits.reject_errors and silent_s >= limits.reject_s:
        rejected = error_from_proto(error)
        raise type(rejected)(
            f"{where} rejects every pose ({new_errors} errors, no frame for {silent_s:.1f} s): {rejected.message}",
            field=rejected.field,
        )
    bound = limits.stall_s if report.frames else limits.first_frame_s
    if silent_s >= bound:
        what = "no frame came" if not report.frames else f"frames stopped after {report.frames}"
        last = f"; its last error: {error_from_proto(error).message}" if error is not None and new_errors else ""
        raise BackendUnavailable(
            f"{what} from {where} for {silent_s:.1f} s: it stopped, crashed or hangs{last}", field="endpoint"
        )


def _take(frame: ReceivedFrame, config: FlyConfig, report: FlyReport, writer: VideoWriter | None) -> None:
    report.frames += 1
    report.latencies_ms.append((frame.received_time_us - frame.meta.engine_time_us) / 1000.0)
    report.generation_ms.append(frame.meta.generation_latency_ms)
    if writer is not None:
        writer.write(frame.pixels)
    if config.frames_dir is not None and report.frames % PNG_EVERY == 1:
        path = config.frames_dir / f"frame-{report.frames:05d}.png"
        try:
            save_png(path, frame.pixels)
        except OSError as exc:
            raise StarBridgeError(f"frames_dir: cannot write {path}: {exc}", field="frames_dir") from None
        report.pngs.append(path)


__all__ = ["FlyConfig", "FlyLimits", "FlyReport", "fly", "now_us"]
