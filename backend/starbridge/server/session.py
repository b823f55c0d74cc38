"""One client session: it owns all of its mutable state (docs/architecture.md §8).

A session holds the scene clock, the track of received poses, the generator session (for STAR:
the KV cache), the frame ring (shared-memory transport) and its statistics. Two threads run it:

- the **generator** thread waits until the scheduler says the next block must start, predicts
  the camera pose at each frame's display time from the pose track, reads the scene time at it,
  and asks the generator for the block;
- the **pacer** thread hands each frame over at its display time (ring slot + FrameReady, or
  FrameReady with inline pixels) and drops frames that are ready too late, except the newest.

Generator threads of all sessions pass one `FairGate` before each block, so when there is more
work than cores every session gets a fair share of the frame rate; a session that cannot keep its
fps says so once (a non-fatal OVERLOADED Error) and in its stats.

The server talks to a session through `submit_pose`, `time_control`, `touch` and `begin_close` /
`finish_close` (`close` does both); the session talks back through a `FrameSink` (engine channel or
gRPC stream).
"""

from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from .. import __version__
from ..errors import InvalidArgument, NoSession, Overloaded
from ..geometry.camera import Intrinsics
from ..geometry.conventions import matrix_to_pose, pose_to_matrix
from ..geometry.poses import PoseTrack
from ..protocol import engine_pb2 as pb
from ..runtime.generator import FrameRequest, GeneratorSession
from ..scenes.bundle import SceneBundle
from ..scenes.store import SceneLease
from ..transport.convert import pose_from_proto, protocol_version
from ..transport.error_codes import error_message
from ..transport.frame import FrameMeta
from ..transport.ring import FrameRingWriter, ring_path
from .clock import SceneClock
from .fairness import FairGate
from .scheduler import BlockScheduler, SchedulerConfig
from .stats import SessionStats

log = logging.getLogger(__name__)

#: How long session threads sleep at most before re-checking for close, seconds.
POLL_S = 0.05
#: Load (time waiting at the gate + generating, per block interval) above which a session is
#: overloaded, and below which it is no longer (hysteresis).
OVERLOAD_ON, OVERLOAD_OFF = 1.1, 0.9
#: Weight of the newest block in the running load estimate.
LOAD_EMA = 0.2
#: Blocks at the start of a session left out of the load estimate (one-off warm-up costs).
WARMUP_BLOCKS = 2
#: A session reports overload only after running this long (the estimate has settled), seconds.
OVERLOAD_GRACE_S = 1.0
#: How long closing waits for a session thread to finish its current block, seconds.
JOIN_TIMEOUT_S = 5.0


class FrameSink(Protocol):
    """Where a session's messages go: an engine-channel peer or a gRPC stream."""

    #: True: frames carry their pixels even when the session writes a shared-memory ring.
    wants_pixels: bool
    # Optional `wants_observed = True`: send() then also takes `observed=`, the frame's (height, width) bool mask of
    # pixels a reference frame saw, when the generator knows it (the browser viewer's coverage overlay).

    def send(self, message: pb.BackendMessage, pixels: np.ndarray | None = None) -> None:
        """Queue a message (and inline pixels). Must not block for long; may drop when the peer lags."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class SessionSpec:
    """What a session was opened with, after defaults and validation."""

    session_id: str
    scene_id: str
    width: int
    height: int
    fps: float
    transport: pb.FrameTransport
    channel: str  # "engine" or "grpc"
    engine_name: str = ""
    engine_version: str = ""
    client_label: str = ""


@dataclass(frozen=True)
class _PoseSample:
    sequence: int
    engine_time_us: int
    received: float
    vertical_fov_deg: float
    aspect: float


@dataclass
class _Block:
    display_times: list[float]
    frames: list[np.ndarray]
    requests: list[FrameRequest]
    pose: _PoseSample
    generation_ms: float
    generation: int  # session generation counter; blocks from before a reset are discarded
    #: Per frame: True where a reference frame saw the pixel (the generator's observed_masks); None: unknown.
    observed: list[np.ndarray] | None = None


class Session:
    def __init__(
        self,
        spec: SessionSpec,
        scene: SceneBundle,
        generator: GeneratorSession,
        sink: FrameSink,
        *,
        ring_slots: int = 3,
        max_extrapolation_s: float = 0.25,
        gate: FairGate | None = None,
        lease: SceneLease | None = None,
    ) -> None:
        self.spec = spec
        self._lease = lease  # released when the session is freed
        self.scene = scene
        self.sink = sink
        self.stats = SessionStats()
        self.clock = SceneClock(scene.meta.duration_s)
        self._generator = generator
        self._track = PoseTrack(max_extrapolation_s=max_extrapolation_s)
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()  # orders frames before a closing message
        self._latest: _PoseSample | None = None
        self._have_pose = threading.Event()
        self._closed = threading.Event()
        self._reset_generation = 0
        self._blocks: queue.Queue[_Block] = queue.Queue(maxsize=1)
        self._frame_sequence = 0
        self.last_message = time.monotonic()
        self.close_reason = ""
        #: Told only to the client in Welcome; a re-attaching peer must present it (never logged).
        self.secret = secrets.token_hex(16)
        self._gate = gate or FairGate(1 << 16)  # none given: effectively no sharing
        #: Running (gate wait + generation) / block interval; > 1: this session cannot keep its fps.
        self.load = 0.0
        self.overloaded = False
        self._overload_reported = False
        self._blocks_seen = 0
        self._freed = threading.Event()
        self.ring: FrameRingWriter | None = None
        if spec.transport == pb.FRAME_TRANSPORT_SHARED_MEMORY:
            self.ring = FrameRingWriter(ring_path(spec.session_id), spec.width, spec.height, slot_count=ring_slots)
        self._scheduler = BlockScheduler(
            SchedulerConfig(fps=spec.fps, block_frames=generator.block_frames), time.monotonic()
        )
        self._threads = [
            threading.Thread(target=self._run_guarded, args=(self._generate_loop,), name=f"gen-{spec.session_id}"),
            threading.Thread(target=self._run_guarded, args=(self._pace_loop,), name=f"pace-{spec.session_id}"),
        ]

    # ------------------------------------------------------------------ lifecycle

    @property
    def session_id(self) -> str:
        return self.spec.session_id

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def start(self) -> None:
        for t in self._threads:
            t.start()

    @property
    def freed(self) -> bool:
        """True once finish_close freed the generator and the ring file."""
        return self._freed.is_set()

    def close(self, reason: str = "closed", error: pb.BackendMessage | None = None) -> None:
        """begin_close then finish_close: returns once the resources are freed. Idempotent, any thread."""
        self.begin_close(reason, error)
        self.finish_close()

    def begin_close(self, reason: str = "closed", error: pb.BackendMessage | None = None) -> bool:
        """Mark the session closed and send `error`, without waiting. True for the call that closed it.

        Never blocks on the session's threads, so the engine channel's thread can call it.
        """
        with self._send_lock:  # no frame goes out after the closing message
            with self._lock:
                if self._closed.is_set():
                    return False
                self._closed.set()
                self.close_reason = reason
            if error is not None:
                self._safe_send(error)
        log.info("session %s closed: %s", self.session_id, reason)
        return True

    def finish_close(self, timeout_s: float = JOIN_TIMEOUT_S) -> None:
        """After begin_close: wait for the threads, free the generator and the ring file. Idempotent."""
        if not self._closed.is_set():
            raise RuntimeError("finish_close() before begin_close()")
        me = threading.current_thread()
        for t in self._threads:
            if t is not me and t.is_alive():
                t.join(timeout=timeout_s)
        with self._lock:
            if self._freed.is_set():
                return
            self._freed.set()
        try:
            self._generator.close()
        finally:
            if self.ring is not None:
                self.ring.close()
            if self._lease is not None:
                self._lease.release()
            self.sink.close()

    def _run_guarded(self, loop) -> None:
        try:
            loop()
        except Exception as exc:  # a generator bug ends this session, never the backend
            log.exception("session %s failed", self.session_id)
            threading.Thread(
                target=self.close, args=(f"failed: {exc}", error_message(exc, fatal=True)), daemon=True
            ).start()

    def send(self, message: pb.BackendMessage) -> None:
        """Send a message (e.g. a notice) to the session's client; never raises."""
        self._safe_send(message)

    def _safe_send(
        self, message: pb.BackendMessage, pixels: np.ndarray | None = None, observed: np.ndarray | None = None
    ) -> None:
        try:
            if observed is None:
                self.sink.send(message, pixels)
            else:  # only sinks with wants_observed = True take it
                self.sink.send(message, pixels, observed=observed)  # type: ignore[call-arg]
        except Exception:
            log.exception("session %s: sending failed", self.session_id)

    # ------------------------------------------------------------------ input

    def attach(self, sink: FrameSink) -> None:
        """Send this session's messages to another peer from now on (re-attach).

        The previous peer is told at once (a fatal NO_SESSION), so an idle client does not wait for
        frames that now go elsewhere.
        """
        previous, self.sink = self.sink, sink
        self.touch()
        if previous is not sink:
            try:
                previous.send(error_message(NoSession(
                    f"session {self.session_id!r} was taken over by another connection (Hello with its "
                    "session_id and secret); send Hello to start a new session"
                ), fatal=True))  # fmt: skip
            except Exception:
                log.exception("session %s: telling the previous peer failed", self.session_id)

    def touch(self) -> None:
        """Any message from the peer counts as a heartbeat."""
        self.last_message = time.monotonic()

    def submit_pose(self, pose: pb.CameraPose) -> None:
        """Record a camera pose (validated; raises InvalidArgument naming the field)."""
        position, rotation, fov, aspect = pose_from_proto(pose)
        received = time.monotonic()
        with self._lock:
            latest = self._latest
            if latest is None or pose.sequence >= latest.sequence:  # else reordered or duplicate: ignored
                self._track.add(received, position, rotation)
                self._latest = _PoseSample(pose.sequence, pose.engine_time_us, received, fov, aspect)
        # Counted once the pose is recorded, so whoever sees the count also sees the pose.
        self.stats.pose()
        self._have_pose.set()

    def time_control(self, control: pb.TimeControl) -> None:
        action = control.action
        if action == pb.TimeControl.ACTION_PLAY:
            self.clock.play()
        elif action == pb.TimeControl.ACTION_PAUSE:
            self.clock.pause()
        elif action == pb.TimeControl.ACTION_SEEK:
            self.clock.seek(control.time_s)
            self._reset()
        elif action == pb.TimeControl.ACTION_SET_SPEED:
            self.clock.set_speed(control.speed)
        else:
            raise InvalidArgument(
                f"time.action must be PLAY, PAUSE, SEEK or SET_SPEED, got {action}", field="time.action"
            )

    def _reset(self) -> None:
        """After a seek: drop queued frames and the generator's history."""
        with self._lock:
            self._reset_generation += 1
        try:
            self._blocks.get_nowait()
        except queue.Empty:
            pass

    # ------------------------------------------------------------------ generator thread

    def _generate_loop(self) -> None:
        generation_seen = 0
        while not self._closed.is_set():
            if not self._have_pose.wait(POLL_S):
                continue
            now = time.monotonic()
            start = self._scheduler.start_time(now)
            if start > now:
                self._closed.wait(min(start - now, POLL_S))
                continue
            # Wait for this session's turn (FIFO across sessions), then plan from the freshest pose.
            waited_from = time.perf_counter()
            if not self._gate.acquire(cancel=self._closed, poll_s=POLL_S):
                return  # closed while waiting
            try:
                waited = time.perf_counter() - waited_from
                now = time.monotonic()
                with self._lock:
                    sample = self._latest
                    generation = self._reset_generation
                assert sample is not None
                if generation != generation_seen:
                    self._generator.reset()
                    self._scheduler.reset(now)
                    generation_seen = generation
                times = self._scheduler.plan(now)
                requests = self._requests(times, sample)
                t0 = time.perf_counter()
                frames = self._generator.generate_block(requests)
                seconds = time.perf_counter() - t0
                observed = getattr(self._generator, "observed_masks", None)
            finally:
                self._gate.release()
            self._scheduler.observe_generation(seconds)
            self.stats.generated(1000.0 * seconds / len(frames))
            self._observe_load(waited + seconds, len(frames))
            block = _Block(times, frames, requests, sample, 1000.0 * seconds, generation, observed)
            while not self._closed.is_set():
                try:
                    self._blocks.put(block, timeout=POLL_S)
                    break
                except queue.Full:
                    continue

    def _observe_load(self, busy_s: float, frames: int) -> None:
        """Track whether this session keeps its fps; say so once when it cannot (non-fatal).

        The first WARMUP_BLOCKS blocks are not counted: they pay one-off costs (buffers, a scene's fused
        world, graph warm-up) that say nothing about the machine keeping up."""
        self._blocks_seen += 1
        if self._blocks_seen <= WARMUP_BLOCKS:
            return
        load = busy_s * self.spec.fps / frames
        self.load = load if self.load == 0.0 else (1 - LOAD_EMA) * self.load + LOAD_EMA * load
        if self.overloaded and self.load < OVERLOAD_OFF:
            self.overloaded = False
            log.info("session %s keeps its %g frames/s again", self.session_id, self.spec.fps)
        elif not self.overloaded and self.load > OVERLOAD_ON:
            self.overloaded = True
            log.warning(
                "session %s overloaded: about %.1f of %g frames/s", self.session_id, self.spec.fps / self.load,
                self.spec.fps,
            )  # fmt: skip
        settled = time.monotonic() - self.stats.opened >= OVERLOAD_GRACE_S
        if self.overloaded and settled and not self._overload_reported:
            self._overload_reported = True
            self._safe_send(error_message(Overloaded(
                f"the backend cannot keep up with all its sessions ({self._gate.slots} core(s) shared fairly): "
                f"this session gets about {self.spec.fps / self.load:.0f} of its {self.spec.fps:g} frames/s; "
                "fewer sessions, a smaller frame size or a lower fps restore the full rate"
            ), fatal=False))  # fmt: skip

    def _requests(self, times: Sequence[float], sample: _PoseSample) -> list[FrameRequest]:
        intr = Intrinsics.from_fov(sample.vertical_fov_deg, self.spec.width, self.spec.height, sample.aspect)
        out = []
        for t in times:
            with self._lock:
                position, rotation = self._track.predict(t)
            out.append(FrameRequest(pose_to_matrix(position, rotation), intr, self.clock.scene_time(t)))
        return out

    # ------------------------------------------------------------------ pacer thread

    def _pace_loop(self) -> None:
        while not self._closed.is_set():
            try:
                block = self._blocks.get(timeout=POLL_S)
            except queue.Empty:
                continue
            last = len(block.frames) - 1
            planned = zip(block.frames, block.requests, block.display_times, strict=True)
            for k, (frame, request, shown_at) in enumerate(planned):
                if block.generation != self._reset_generation:
                    self.stats.dropped(last - k + 1)
                    break
                now = time.monotonic()
                if k < last and self._scheduler.is_stale(shown_at, now):
                    self.stats.dropped()
                    continue
                if shown_at > now and self._closed.wait(shown_at - now):
                    return
                self._deliver(frame, request, block, block.observed[k] if block.observed else None)

    def _deliver(
        self, frame: np.ndarray, request: FrameRequest, block: _Block, observed: np.ndarray | None = None
    ) -> None:
        self._frame_sequence += 1
        position, rotation = matrix_to_pose(request.c2w)
        px, py, pz = (float(v) for v in position)
        qx, qy, qz, qw = (float(v) for v in rotation)
        meta = FrameMeta(
            frame_sequence=self._frame_sequence,
            slot=0,
            pose_sequence=block.pose.sequence,
            engine_time_us=block.pose.engine_time_us,
            position=(px, py, pz),
            rotation=(qx, qy, qz, qw),
            vertical_fov_deg=block.pose.vertical_fov_deg,
            aspect=block.pose.aspect,
            scene_time_s=request.scene_time_s,
            generation_latency_ms=block.generation_ms,
            width=self.spec.width,
            height=self.spec.height,
        )
        if self.ring is not None:
            meta = replace(meta, slot=self.ring.write(frame, meta))
        msg = pb.BackendMessage()
        meta.to_proto(msg.frame)
        # gRPC streams always carry the pixels (their client may be on another machine).
        wants_pixels = self.ring is None or self.sink.wants_pixels
        with self._send_lock:
            if self._closed.is_set():
                return  # closed meanwhile: its last message (an Error, a shutdown notice) stays the last
            if observed is not None and getattr(self.sink, "wants_observed", False):
                self._safe_send(msg, frame if wants_pixels else None, observed)  # the viewer's coverage overlay
            else:
                self._safe_send(msg, frame if wants_pixels else None)
        self.stats.sent(1000.0 * (time.monotonic() - block.pose.received))

    # ------------------------------------------------------------------ reporting

    def welcome(self, heartbeat_timeout_s: float, generator_name: str) -> pb.BackendMessage:
        msg = pb.BackendMessage()
        w = msg.welcome
        w.session_id = self.session_id
        w.protocol.CopyFrom(protocol_version())
        w.width, w.height, w.fps = self.spec.width, self.spec.height, self.spec.fps
        w.transport = self.spec.transport
        if self.ring is not None:
            lay = self.ring.layout()
            shm = w.shared_memory
            shm.path = str(lay.path)
            shm.layout_version = lay.layout_version
            shm.header_bytes = lay.header_bytes
            shm.slot_count = lay.slot_count
            shm.slot_bytes = lay.slot_bytes
            shm.slot_header_bytes = lay.slot_header_bytes
            shm.stride = lay.stride
            shm.pixel_format = lay.pixel_format  # type: ignore[assignment]  # the same numbering
            shm.file_bytes = lay.file_bytes
        w.scene_id = self.spec.scene_id
        w.scene_duration_s = self.scene.meta.duration_s
        w.heartbeat_timeout_s = heartbeat_timeout_s
        w.block_frames = self._generator.block_frames
        w.generator = generator_name
        w.backend_version = __version__
        w.session_secret = self.secret
        return msg
