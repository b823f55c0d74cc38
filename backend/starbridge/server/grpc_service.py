"""gRPC API: the `starbridge.v1.Bridge` servicer, plus the health service and reflection.

Scenes and sessions RPCs map StarBridgeError subclasses to gRPC status codes (errors.py). The
`Stream` RPC runs the engine protocol over gRPC: a reader thread feeds the client's messages to a
`Connection` (the same code the engine channel uses) while the response generator yields the
session's Welcome, Errors and frames (pixels as raw bytes).
"""

from __future__ import annotations

import logging
import queue
import threading
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
from .config import ServerConfig
from .manager import Connection, SessionManager
from .session import Session
from .wire import protocol_version

log = logging.getLogger(__name__)

#: Largest message either way: a 4096x4096 RGBA frame plus headroom.
MAX_MESSAGE_BYTES = 4096 * 4096 * 4 + (1 << 20)
#: Responses queued per stream before the oldest frame is dropped.
STREAM_QUEUE = 8
#: Threads serving RPCs (each open Stream holds one).
MAX_WORKERS = 32


class StreamSink:
    """FrameSink of a gRPC stream: a bounded queue; when full, the oldest frame is dropped."""

    #: Frames travel in the response even when the session also writes a ring.
    wants_pixels = True

    def __init__(self, maxsize: int = STREAM_QUEUE) -> None:
        self._queue: queue.Queue[bpb.StreamResponse | None] = queue.Queue(maxsize)
        self._lock = threading.Lock()
        self.dropped = 0

    def send(self, message: pb.BackendMessage, pixels: np.ndarray | None = None) -> None:
        item = bpb.StreamResponse(message=message, pixels=b"" if pixels is None else pixels.tobytes())
        with self._lock:
            while True:
                try:
                    self._queue.put_nowait(item)
                    return
                except queue.Full:
                    try:
                        self._queue.get_nowait()
                        self.dropped += 1
                    except queue.Empty:
                        pass

    def close(self) -> None:
        """The session ended; the stream stays open (the client may send Hello again)."""

    def finish(self) -> None:
        with self._lock:
            while True:
                try:
                    self._queue.put_nowait(None)  # the end
                    return
                except queue.Full:
                    self._queue.get_nowait()

    def __iter__(self) -> Iterator[bpb.StreamResponse]:
        while True:
            item = self._queue.get()
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
                bundle = self.store.import_video(
                    Path(request.video_path),
                    scene_id=request.scene_id or None,
                    depth_dir=Path(request.depth_dir) if request.depth_dir else None,
                    depth_model=Path(request.depth_model) if request.depth_model else None,
                    max_side=request.max_side or 512,
                    max_frames=request.max_frames,
                    vertical_fov_deg=request.vertical_fov_deg or 60.0,
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
            return session.welcome(self.config.heartbeat_timeout_s, self.manager.generator.name).welcome
        except StarBridgeError as exc:
            _abort(context, exc)

    def CloseSession(self, request, context):  # noqa: N802
        try:
            self.manager.close(request.session_id, "closed by CloseSession")
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
        sink = StreamSink()
        conn = Connection(self.manager, "grpc", sink)

        def read() -> None:
            try:
                for message in request_iterator:
                    reply = conn.handle(message)
                    if reply is not None:
                        sink.send(reply)
                    if message.WhichOneof("body") == "goodbye":
                        break
            except grpc.RpcError:
                pass  # the client went away
            except Exception:
                log.exception("gRPC stream reader failed")
            finally:
                conn.drop("stream ended")
                sink.finish()

        context.add_callback(sink.finish)
        threading.Thread(target=read, name="grpc-stream-reader", daemon=True).start()
        yield from sink


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
