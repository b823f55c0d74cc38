"""gRPC API: the `starbridge.v1.Bridge` servicer, plus the health service and reflection.

Scenes and sessions RPCs map StarBridgeError subclasses to gRPC status codes (errors.py). The
`Stream` RPC runs the engine protocol over gRPC: a reader thread feeds the client's messages to a
`Connection` (the same code the engine channel uses) while the response generator yields the
session's Welcome, Errors and frames (pixels as raw bytes). A fatal Error is a call's last message
(the call then ends with status OK); the session lifecycle of OpenSession and Stream (attach,
take-over, a stream ending without Goodbye) is documented in bridge.proto.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
import weakref
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from .. import __version__
from ..errors import InvalidArgument, NoSession, SceneInUse, StarBridgeError
from ..protocol import bridge_pb2 as bpb
from ..protocol import bridge_pb2_grpc
from ..protocol import engine_pb2 as pb
from ..scenes.bundle import SceneBundle
from ..scenes.store import SceneStore
from ..transport.convert import protocol_version
from ..transport.error_codes import error_message
from .config import ServerConfig
from .manager import Connection, SessionManager
from .session import Session

log = logging.getLogger(__name__)

#: Largest message either way: a 4096x4096 RGBA frame plus headroom.
MAX_MESSAGE_BYTES = 4096 * 4096 * 4 + (1 << 20)
#: Frames queued per stream before the oldest is dropped.
STREAM_QUEUE = 8
#: How long CloseSession waits for the session's resources to be freed, seconds.
CLOSE_WAIT_S = 10.0
#: Threads serving RPCs (each open Stream holds one).
MAX_WORKERS = 32


class StreamSink:
    """FrameSink of a gRPC stream: what the response generator yields, in order.

    Frames are bounded (at most `max_frames` queued; when more come, the oldest queued frame is
    dropped); Welcome and Error messages are never dropped. A fatal Error is the stream's last
    message: the sink finishes right after it, so the call ends (status OK) and nothing sent later
    reaches the client.
    """

    #: Frames travel in the response even when the session also writes a ring.
    wants_pixels = True

    def __init__(self, max_frames: int = STREAM_QUEUE) -> None:
        self._items: collections.deque[bpb.StreamResponse | None] = collections.deque()
        self._frames = 0  # frames among _items
        self._max_frames = max_frames
        self._finished = False
        self._cond = threading.Condition()
        self.dropped = 0

    @property
    def finished(self) -> bool:
        """True once the stream's last message is queued (after a fatal Error, Goodbye, or the client left)."""
        return self._finished

    def send(self, message: pb.BackendMessage, pixels: np.ndarray | None = None) -> None:
        if self._finished:
            return  # the call is ending: nothing after its last message
        kind = message.WhichOneof("body")
        item = bpb.StreamResponse(message=message, pixels=b"" if pixels is None else pixels.tobytes())
        with self._cond:
            if self._finished:
                return
            if kind == "frame":
                if self._frames >= self._max_frames:
                    self._drop_oldest_frame()
                self._frames += 1
            self._items.append(item)
            if kind == "error" and message.error.fatal:
                self._finish_locked()
            self._cond.notify_all()

    def _drop_oldest_frame(self) -> None:
        for i, queued in enumerate(self._items):
            if queued is not None and queued.message.WhichOneof("body") == "frame":
                del self._items[i]
                self._frames -= 1
                self.dropped += 1
                return

    def close(self) -> None:
        """The session ended. A fatal Error sent with the close already finished the stream; a session
        closed without one (backend shutdown) leaves it to the server's stop to end the call."""

    def finish(self) -> None:
        """End the response stream after what is queued. Idempotent, any thread."""
        with self._cond:
            self._finish_locked()
            self._cond.notify_all()

    def _finish_locked(self) -> None:
        if not self._finished:
            self._finished = True
            self._items.append(None)  # the end

    def __iter__(self) -> Iterator[bpb.StreamResponse]:
        while True:
            with self._cond:
                while not self._items:
                    self._cond.wait()
                item = self._items.popleft()
                if item is not None and item.message.WhichOneof("body") == "frame":
                    self._frames -= 1
            if item is None:
                return
            yield item


class NullSink:
    """FrameSink of a session opened by OpenSession with no stream attached yet."""

    wants_pixels = False

    def send(self, message: pb.BackendMessage, pixels: np.ndarray | None = None) -> None:
        pass

    def close(self) -> None:
        pass


def scene_info(bundle: SceneBundle) -> bpb.SceneInfo:
    m = bundle.meta
    return bpb.SceneInfo(
        scene_id=m.scene_id,
        title=m.title,
        fps=m.fps,
        frame_count=m.frame_count,
        duration_s=m.duration_s,
        width=m.width,
        height=m.height,
        vertical_fov_deg=m.intrinsics.vertical_fov_deg,
        source=m.source,
        depth_source=m.depth_source,
        rotation_only=m.rotation_only,
        median_depth_m=m.median_depth_m,
        size_bytes=bundle.size_bytes(),
    )


def session_stats(session: Session) -> bpb.SessionStats:
    spec, snap, clock = session.spec, session.stats.snapshot(), session.clock.state()
    return bpb.SessionStats(
        session_id=spec.session_id,
        scene_id=spec.scene_id,
        channel=spec.channel,
        transport=spec.transport,  # type: ignore[arg-type]  # the enum's ValueType is an int
        engine_name=spec.engine_name,
        client_label=spec.client_label,
        width=spec.width,
        height=spec.height,
        fps_target=spec.fps,
        fps_measured=snap["fps_measured"],
        poses_received=int(snap["poses_received"]),
        frames_sent=int(snap["frames_sent"]),
        frames_dropped=int(snap["frames_dropped"]),
        latency_p50_ms=snap["latency_p50_ms"],
        latency_p95_ms=snap["latency_p95_ms"],
        generation_ms_p50=snap["generation_ms_p50"],
        scene_time_s=clock.scene_time_s,
        playing=clock.playing,
        speed=clock.speed,
        uptime_s=snap["uptime_s"],
    )


def _abort(context: grpc.ServicerContext, exc: StarBridgeError) -> None:
    context.abort(getattr(grpc.StatusCode, exc.grpc_status), exc.message)


class BridgeServicer(bridge_pb2_grpc.BridgeServicer):
    def __init__(self, config: ServerConfig, store: SceneStore, manager: SessionManager, engine_endpoint: str) -> None:
        self.config = config
        self.engine_endpoint = engine_endpoint
        self.store = store
        self.manager = manager
        # Sessions made by OpenSession: a stream attached to one may end without Goodbye and leave
        # it open for re-attach (weak: a closed session drops out once the manager forgets it).
        self._opened: weakref.WeakSet[Session] = weakref.WeakSet()
        self._opened_lock = threading.Lock()

    # ------------------------------------------------------------------ server and scenes

    def GetServerInfo(self, request, context):  # noqa: N802 (gRPC method names)
        gen = self.manager.generator
        cfg = self.config
        return bpb.ServerInfo(
            protocol=protocol_version(),
            backend_version=__version__,
            generator=gen.name,
            execution_provider=gen.execution_provider,
            engine_endpoint=self.engine_endpoint,
            default_scene_id=cfg.default_scene,
            default_width=cfg.default_width,
            default_height=cfg.default_height,
            default_fps=cfg.default_fps,
            token_required=bool(cfg.token),
        )

    def ListScenes(self, request, context):  # noqa: N802
        scenes = []
        for meta in self.store.list():
            try:
                scenes.append(scene_info(self.store.get(meta.scene_id)))
            except StarBridgeError:
                continue  # deleted meanwhile
        return bpb.ListScenesResponse(scenes=scenes)

    def DescribeScene(self, request, context):  # noqa: N802
        try:
            return scene_info(self.store.get(request.scene_id))
        except StarBridgeError as exc:
            _abort(context, exc)

    def ImportScene(self, request, context):  # noqa: N802
        updates: queue.Queue[bpb.ImportProgress | BaseException | None] = queue.Queue()

        def progress(stage: str, done: int, total: int) -> None:
            updates.put(bpb.ImportProgress(stage=stage, done=done, total=total))

        def work() -> None:
            try:
                from ..scenes.importer import DEFAULT_FOV_DEG, DEFAULT_MAX_SIDE  # PyAV: only when a video is imported

                bundle = self.store.import_video(
                    Path(request.video_path),
                    scene_id=request.scene_id or None,
                    depth_dir=Path(request.depth_dir) if request.depth_dir else None,
                    depth_model=Path(request.depth_model) if request.depth_model else None,
                    max_side=request.max_side or DEFAULT_MAX_SIDE,  # proto3: 0 = not set
                    max_frames=request.max_frames,  # 0: every frame
                    vertical_fov_deg=request.vertical_fov_deg or DEFAULT_FOV_DEG,  # 0: estimated
                    lens_mm=request.lens_mm or None,  # 0: not given
                    shot=request.shot or None,  # 0: the longest
                    overwrite=request.overwrite,
                    progress=progress,
                )
                updates.put(bpb.ImportProgress(stage="done", done=1, total=1, scene=scene_info(bundle)))
                updates.put(None)
            except BaseException as exc:  # reported to the client below
                updates.put(exc)

        if not request.video_path:
            _abort(context, InvalidArgument("video_path is empty: give the path of a video file on the backend"))
        threading.Thread(target=work, name="scene-import", daemon=True).start()
        while True:
            item = updates.get()
            if item is None:
                return
            if isinstance(item, StarBridgeError):
                _abort(context, item)
            if isinstance(item, BaseException):
                log.exception("scene import failed", exc_info=item)
                context.abort(grpc.StatusCode.INTERNAL, f"import failed: {type(item).__name__}: {item}")
            yield item

    def DeleteScene(self, request, context):  # noqa: N802
        try:
            if self.manager.scene_in_use(request.scene_id):
                raise SceneInUse(f"scene {request.scene_id!r} is used by a live session; close it first")
            self.store.delete(request.scene_id)
            return bpb.DeleteSceneResponse()
        except StarBridgeError as exc:
            _abort(context, exc)

    # ------------------------------------------------------------------ sessions

    def OpenSession(self, request, context):  # noqa: N802
        try:
            session = self.manager.open(request, "grpc", NullSink())
        except StarBridgeError as exc:
            _abort(context, exc)
        with self._opened_lock:
            self._opened.add(session)
        return session.welcome(self.config.heartbeat_timeout_s, self.manager.generator.name).welcome

    def CloseSession(self, request, context):  # noqa: N802
        session_id = request.session_id
        ended = NoSession(
            f"session {session_id!r} was closed by CloseSession (a gRPC client of this backend ended it); "
            "send Hello to start a new session"
        )
        try:
            # Answer once the session is freed (unlisted, ring file gone), so a DeleteScene or
            # OpenSession right after sees it gone.
            self.manager.close(
                session_id, "closed by CloseSession", error_message(ended, fatal=True), wait_s=CLOSE_WAIT_S
            )
            return bpb.CloseSessionResponse()
        except NoSession as exc:
            _abort(context, exc)

    def ListSessions(self, request, context):  # noqa: N802
        return bpb.ListSessionsResponse(sessions=[session_stats(s) for s in self.manager.sessions()])

    def GetSessionStats(self, request, context):  # noqa: N802
        try:
            return session_stats(self.manager.get(request.session_id))
        except NoSession as exc:
            _abort(context, exc)

    def Stream(self, request_iterator, context):  # noqa: N802
        """The engine protocol over gRPC (lifecycle in bridge.proto, at the Stream RPC).

        The call ends (status OK) after a fatal Error, which is its last message; after Goodbye;
        or when the client half-closes. A reader thread feeds the requests to a Connection; this
        generator yields what the session and the reader queue on the sink.
        """
        sink = StreamSink()
        conn = Connection(self.manager, "grpc", sink)

        def read() -> None:
            try:
                for message in request_iterator:
                    reply = conn.handle(message)
                    if reply is not None:
                        sink.send(reply)
                    if sink.finished or message.WhichOneof("body") == "goodbye":
                        break  # a fatal Error ended the call, or the client is leaving
            except grpc.RpcError:
                pass  # the client went away
            except Exception:
                log.exception("gRPC stream reader failed")
            finally:
                self._stream_ended(conn)
                sink.finish()

        context.add_callback(sink.finish)
        threading.Thread(target=read, name="grpc-stream-reader", daemon=True).start()
        yield from sink

    def _stream_ended(self, conn: Connection) -> None:
        """The stream ended without Goodbye (client half-closed, cancelled or gone, or a fatal Error).

        A session made by OpenSession stays open for re-attach until its heartbeat timeout (its
        frames are dropped meanwhile); one made by this stream's own Hello is closed. A session
        another stream took over is not this stream's any more and is left alone (Connection.drop).
        """
        session = conn.session
        if session is not None and not session.closed and session.sink is conn.sink:
            with self._opened_lock:
                keep = session in self._opened
            if keep:
                conn.session = None
                log.info(
                    "session %s: its gRPC stream ended without Goodbye; open for re-attach until the heartbeat timeout",
                    session.session_id,
                )
                return
        conn.drop("gRPC stream ended without Goodbye")


def build_grpc_server(
    config: ServerConfig, store: SceneStore, manager: SessionManager, engine_endpoint: str
) -> tuple[grpc.Server, health.HealthServicer, int]:
    """A bound, not yet started gRPC server. Returns (server, health servicer, bound port)."""
    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.so_reuseport", 0),
        *config.grpc_options,
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="grpc"), options=options
    )
    bridge_pb2_grpc.add_BridgeServicer_to_server(BridgeServicer(config, store, manager, engine_endpoint), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    service_names = (
        bpb.DESCRIPTOR.services_by_name["Bridge"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(service_names, server)
    try:
        port = server.add_insecure_port(config.grpc_address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise OSError(f"could not bind gRPC to {config.grpc_address}: is another starbridge serve running?")
    for name in service_names[:2]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return server, health_servicer, port
