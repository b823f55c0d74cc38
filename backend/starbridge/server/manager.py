"""Session manager: opens sessions from Hello, finds them by id, reaps the silent ones.

`Connection` is one peer's side of a conversation (an engine-channel identity or a gRPC stream):
it turns each incoming `EngineMessage` into an action on the manager or its session and
returns the reply, if any. The engine channel and the gRPC servicer both use it, so the two
speak the protocol the same way.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor, wait

from ..errors import (
    InvalidArgument,
    Malformed,
    NoSession,
    Overloaded,
    SessionTimeout,
    ShuttingDown,
    StarBridgeError,
    Unauthenticated,
)
from ..protocol import engine_pb2 as pb
from ..runtime.generator import Generator
from ..scenes.store import SceneStore
from ..transport.defaults import MAX_SIDE, MIN_SIDE
from ..transport.error_codes import error_message
from ..transport.version import BACKEND, check_peer_version
from .config import ServerConfig
from .fairness import FairGate, default_slots
from .session import FrameSink, Session, SessionSpec

log = logging.getLogger(__name__)


class SessionManager:
    """Thread-safe registry of live sessions."""

    def __init__(self, config: ServerConfig, store: SceneStore, generator: Generator) -> None:
        self.config = config
        self.store = store
        self.generator = generator
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self.gate = FairGate(config.generation_slots or default_slots())
        # Closing waits for a session's threads (up to a block's generation): never on the caller's
        # thread, which may be the engine channel's, serving every other peer.
        self._closer = ThreadPoolExecutor(max_workers=4, thread_name_prefix="session-close")
        self._closing: set[Future[None]] = set()
        self.shutting_down = False
        self._stop = threading.Event()
        self._reaper = threading.Thread(target=self._reap_loop, name="session-reaper", daemon=True)

    def start(self) -> None:
        self._reaper.start()

    # ------------------------------------------------------------------ open / close

    def open(self, hello: pb.Hello, channel: str, sink: FrameSink) -> Session:
        """Validate a Hello and start a session; raises a StarBridgeError naming what is wrong."""
        if self.shutting_down:
            raise ShuttingDown("the backend is shutting down: no new sessions; reconnect in a moment")
        check_peer_version(hello.protocol.major, hello.protocol.minor, BACKEND, "hello.protocol")
        self.check_token(hello.token)
        spec = self._spec(hello, channel)
        with self._lock:
            if len(self._sessions) >= self.config.max_sessions:
                raise Overloaded(
                    f"the backend already serves {len(self._sessions)} sessions (max_sessions "
                    f"{self.config.max_sessions}); close one or start the backend with more"
                )
        # The lease keeps the scene from being deleted or replaced (by any process) while the session lives.
        lease = self.store.lease(spec.scene_id)
        try:
            scene = self.store.get(spec.scene_id)
            generator_session = self.generator.open(scene, spec.width, spec.height)
            try:
                session = Session(
                    spec,
                    scene,
                    generator_session,
                    sink,
                    ring_slots=self.config.ring_slots,
                    max_extrapolation_s=self.config.max_extrapolation_s,
                    gate=self.gate,
                    lease=lease,
                )
            except BaseException:
                generator_session.close()
                raise
        except BaseException:
            lease.release()
            raise
        with self._lock:
            self._sessions[spec.session_id] = session
        session.start()
        log.info(
            "session %s opened: %s %s, scene %s, %dx%d @ %g fps, %s via %s",
            spec.session_id, spec.engine_name or "?", spec.engine_version, spec.scene_id,
            spec.width, spec.height, spec.fps, pb.FrameTransport.Name(spec.transport), channel,
        )  # fmt: skip
        return session

    def check_token(self, token: str) -> None:
        """Refuse a missing or wrong token when the backend was started with --token."""
        if self.config.token and not hmac.compare_digest(token.encode(), self.config.token.encode()):
            raise Unauthenticated(
                "hello.token is missing or wrong: this backend was started with --token; "
                "set the same token in the plugin",
                field="hello.token",
            )

    def _spec(self, hello: pb.Hello, channel: str) -> SessionSpec:
        cfg = self.config
        width = hello.width or cfg.default_width
        height = hello.height or cfg.default_height
        for name, value in (("width", width), ("height", height)):
            if not MIN_SIDE <= value <= MAX_SIDE:
                raise InvalidArgument(
                    f"hello.{name} must be in [{MIN_SIDE}, {MAX_SIDE}] pixels (0 = default), got {value}",
                    field=f"hello.{name}",
                )
        self.generator.check_size(width, height)
        fps = hello.fps or cfg.default_fps
        if not (math.isfinite(fps) and 0 < fps <= cfg.max_fps):
            raise InvalidArgument(
                f"hello.fps must be in (0, {cfg.max_fps:g}] (0 = default), got {fps}", field="hello.fps"
            )
        # Unspecified: shared memory for engines (same machine), inline for gRPC clients (maybe remote).
        transport = hello.transport or (
            pb.FRAME_TRANSPORT_INLINE if channel == "grpc" else pb.FRAME_TRANSPORT_SHARED_MEMORY
        )
        if transport not in (pb.FRAME_TRANSPORT_SHARED_MEMORY, pb.FRAME_TRANSPORT_INLINE):
            raise InvalidArgument(
                f"hello.transport must be SHARED_MEMORY or INLINE, got {transport}", field="hello.transport"
            )
        return SessionSpec(
            session_id=uuid.uuid4().hex[:16],
            scene_id=hello.scene_id or cfg.default_scene,
            width=width,
            height=height,
            fps=float(fps),
            transport=transport,
            channel=channel,
            engine_name=hello.engine_name[:64],
            engine_version=hello.engine_version[:64],
            client_label=hello.client_label[:64],
        )

    def get(self, session_id: str) -> Session:
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None or session.closed:
            raise NoSession(f"no session {session_id!r}: it was closed or never opened; send Hello again")
        return session

    def close(
        self, session_id: str, reason: str, error: pb.BackendMessage | None = None, *, wait_s: float = 0.0
    ) -> None:
        """Close a session: it stops at once, its resources are freed in the background.

        It stays listed (and counts towards max_sessions) until they are. `wait_s` > 0 waits that
        long for it (never on the engine channel's thread).
        """
        with self._lock:
            session = self._sessions.get(session_id)
        if session is None:
            raise NoSession(f"no session {session_id!r}")
        if session.begin_close(reason, error):
            future = self._free_later(session)
            if wait_s > 0:
                wait([future], timeout=wait_s)

    def _free_later(self, session: Session) -> Future[None]:
        def free() -> None:
            try:
                session.finish_close()
            except Exception:
                log.exception("session %s: freeing failed", session.session_id)
            finally:
                with self._lock:
                    if self._sessions.get(session.session_id) is session:
                        del self._sessions[session.session_id]

        with self._lock:
            future = self._closer.submit(free)
            self._closing.add(future)
        future.add_done_callback(self._closing_done)
        return future

    def _closing_done(self, future: Future[None]) -> None:
        with self._lock:
            self._closing.discard(future)

    def wait_closed(self, timeout_s: float) -> bool:
        """Wait until every session closed so far is freed; False if some were not within the timeout."""
        with self._lock:
            pending = set(self._closing)
        _, not_done = wait(pending, timeout=timeout_s)
        return not not_done

    def sessions(self) -> list[Session]:
        with self._lock:
            return list(self._sessions.values())

    def scene_in_use(self, scene_id: str) -> bool:
        return any(s.spec.scene_id == scene_id for s in self.sessions())

    # ------------------------------------------------------------------ reaping and shutdown

    def reap(self, now: float | None = None) -> list[str]:
        """Close sessions silent for longer than the heartbeat timeout (or closed by themselves)."""
        now = time.monotonic() if now is None else now
        timeout = self.config.heartbeat_timeout_s
        reaped = []
        for session in self.sessions():
            if session.closed:
                if session.freed:  # closed by itself (a generator failure) and already freed
                    with self._lock:
                        self._sessions.pop(session.session_id, None)
                    reaped.append(session.session_id)
            elif now - session.last_message > timeout:
                err = error_message(
                    SessionTimeout(
                        f"session closed: no message for {timeout:g} s (heartbeat timeout); send Hello again"
                    ),
                    fatal=True,
                )
                try:
                    self.close(session.session_id, "heartbeat timeout", err)
                except NoSession:
                    pass
                reaped.append(session.session_id)
        return reaped

    def _reap_loop(self) -> None:
        period = min(1.0, self.config.heartbeat_timeout_s / 4)
        while not self._stop.wait(period):
            try:
                self.reap()
            except Exception:
                log.exception("reaper failed")

    def announce_shutdown(self) -> None:
        """First step of stopping: refuse new sessions and tell every client the backend is going away.

        The notice is a non-fatal SHUTTING_DOWN Error: plugins keep their last frame and reconnect.
        """
        self.shutting_down = True
        notice = error_message(
            ShuttingDown("the backend is shutting down; keep the last frame and reconnect (it may be restarting)"),
            fatal=False,
        )
        for session in self.sessions():  # the notice is each session's last message: no frame follows it
            try:
                self.close(session.session_id, "backend shutting down", notice)
            except NoSession:
                pass

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Close every session and wait (up to `timeout_s`) until their resources are freed."""
        self.shutting_down = True
        self._stop.set()
        for session in self.sessions():
            try:
                self.close(session.session_id, "backend shutting down")
            except NoSession:
                pass
        if not self.wait_closed(timeout_s):
            log.warning("some sessions were not freed within %g s", timeout_s)
        self._closer.shutdown(wait=False)


class Connection:
    """One peer (engine identity or gRPC stream) and the session it opened, if any."""

    def __init__(self, manager: SessionManager, channel: str, sink: FrameSink) -> None:
        self.manager = manager
        self.channel = channel
        self.sink = sink
        self.session: Session | None = None

    def handle(self, message: pb.EngineMessage) -> pb.BackendMessage | None:
        """Act on one envelope; return the reply (Welcome or Error) or None. Never raises."""
        try:
            return self._handle(message)
        except StarBridgeError as exc:
            # Hello failures and missing sessions are fatal: the peer must start over with Hello.
            fatal = message.WhichOneof("body") == "hello" or isinstance(exc, NoSession)
            log.info("%s peer error: %s", self.channel, exc.message)
            return error_message(exc, fatal=fatal)
        except Exception as exc:
            log.exception("%s: handling %s failed", self.channel, message.WhichOneof("body"))
            return error_message(exc, fatal=False)

    def _handle(self, message: pb.EngineMessage) -> pb.BackendMessage | None:
        kind = message.WhichOneof("body")
        if kind is None:
            raise Malformed("empty envelope: set one of hello, pose, time, goodbye")
        if kind == "hello":
            self.drop("replaced by a new Hello")
            if message.hello.session_id:
                return self._attach(message.hello)
            self.session = self.manager.open(message.hello, self.channel, self.sink)
            return self.session.welcome(self.manager.config.heartbeat_timeout_s, self.manager.generator.name)
        session = self._current()
        if session is None:
            raise NoSession(f"{kind} before Hello (or after the session ended): send Hello first")
        session.touch()
        if kind == "pose":
            session.submit_pose(message.pose)
        elif kind == "time":
            session.time_control(message.time)
        elif kind == "goodbye":
            self.drop(message.goodbye.reason or "goodbye")
        return None

    def _attach(self, hello: pb.Hello) -> pb.BackendMessage:
        """Take over an existing session (its frames now come to this peer).

        A gRPC Stream attaching to a session made by OpenSession, or an engine re-attaching after
        its connection dropped. The peer must prove it is the session's client: Hello.session_secret
        must equal the Welcome.session_secret the session was made with. The previous peer, if any,
        loses the session (its next message is answered NO_SESSION).
        """
        check_peer_version(hello.protocol.major, hello.protocol.minor, BACKEND, "hello.protocol")
        self.manager.check_token(hello.token)
        session = self.manager.get(hello.session_id)
        if not hmac.compare_digest(hello.session_secret.encode(), session.secret.encode()):
            raise Unauthenticated(
                f"hello.session_secret is missing or wrong: only the client that opened session "
                f"{hello.session_id!r} (it got the secret in Welcome) can attach to it",
                field="hello.session_secret",
            )
        session.attach(self.sink)
        self.session = session
        return session.welcome(self.manager.config.heartbeat_timeout_s, self.manager.generator.name)

    @property
    def has_session(self) -> bool:
        """True while this peer owns a live session."""
        return self._current() is not None

    def heartbeat(self) -> None:
        """A message that needs no action (a superseded pose) still keeps the session alive."""
        session = self._current()
        if session is not None:
            session.touch()
            session.stats.pose(coalesced=True)

    def _current(self) -> Session | None:
        """This peer's session, or None once it ended or another peer attached to it."""
        session = self.session
        if session is not None and (session.closed or session.sink is not self.sink):
            self.session = session = None
        return session

    def drop(self, reason: str) -> None:
        """Close this peer's session, if it still has one (not if another peer took it over)."""
        session = self._current()
        self.session = None
        if session is not None:
            try:
                self.manager.close(session.session_id, reason)
            except NoSession:
                pass
