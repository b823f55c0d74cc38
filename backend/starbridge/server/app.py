"""The backend process: scene store + generator + session manager + engine channel + gRPC + browser viewer.

Lifecycle: `Backend(config).start()` removes stale ring files, makes sure the demo scene
exists, binds its endpoints and starts their threads; `stop()` refuses new work, closes every
session (ring files removed) and stops the servers within the grace period. `serve()` runs it
in the foreground until SIGINT/SIGTERM, restoring the previous signal handlers afterwards.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import TYPE_CHECKING

from ..runtime.generator import Generator
from ..scenes.store import SceneStore, default_store_root
from ..transport.defaults import host_port
from ..transport.ring import cleanup_stale_rings
from .config import ServerConfig
from .engine_channel import EngineChannel
from .grpc_service import build_grpc_server
from .manager import SessionManager

if TYPE_CHECKING:
    from ..viewer.gateway import ViewerGateway  # imported when started: `websockets` only loads with the viewer

log = logging.getLogger(__name__)


def default_generator() -> Generator:
    """The generator new sessions get: explicit render + hole fill (the STAR runtime plugs in here)."""
    from ..runtime.explicit import ExplicitGenerator

    return ExplicitGenerator()


class Backend:
    def __init__(self, config: ServerConfig, generator: Generator | None = None) -> None:
        self.config = config
        self.store = SceneStore(config.store_root or default_store_root())
        self.generator = generator or default_generator()
        self.manager = SessionManager(config, self.store, self.generator)
        self.channel: EngineChannel | None = None
        self.viewer: ViewerGateway | None = None  # while serving, unless config.viewer is False
        self._grpc = None
        self._health = None
        self.grpc_port = 0

    @property
    def engine_endpoint(self) -> str:
        return self.channel.endpoint if self.channel else self.config.engine_endpoint

    @property
    def grpc_address(self) -> str:
        return host_port(self.config.host, self.grpc_port)

    def start(self) -> Backend:
        """Check the config, bind both endpoints and start serving. Raises InvalidArgument for a bad setting
        and CannotBind (naming the port or host to change) when an endpoint cannot be bound."""
        import zmq

        from .config import bind_error, probe_bind

        if self.channel is not None:
            return self  # already started
        cfg = self.config.validate()
        removed = cleanup_stale_rings()
        if removed:
            log.info("removed %d stale frame ring file(s) of dead processes", len(removed))
        if cfg.default_scene == "demo":
            scene = self.store.ensure_demo()
        else:
            scene = self.store.get(cfg.default_scene)  # fail early on a typo
        try:
            channel = EngineChannel(self.manager, cfg.engine_endpoint)
        except zmq.ZMQError as exc:
            raise bind_error(
                "engine channel", cfg.engine_endpoint, cfg.host, cfg.engine_port, "engine_port", exc.errno
            ) from None
        try:
            # gRPC does not say why a bind fails (and logs noise to stderr): find out first, in one line.
            why = probe_bind(cfg.host, cfg.grpc_port) if cfg.grpc_port else None
            if why is not None:
                raise bind_error("gRPC API", cfg.grpc_address, cfg.host, cfg.grpc_port, "grpc_port", why)
            grpc_server, self._health, self.grpc_port = build_grpc_server(
                cfg, self.store, self.manager, channel.endpoint
            )
        except OSError:
            channel.close()
            why = probe_bind(cfg.host, cfg.grpc_port)
            raise bind_error("gRPC API", cfg.grpc_address, cfg.host, cfg.grpc_port, "grpc_port", why) from None
        except BaseException:
            channel.close()
            raise
        viewer = None
        try:
            if cfg.viewer:
                from ..viewer.gateway import ViewerGateway

                viewer = ViewerGateway(self.manager, self.store, cfg.host, cfg.viewer_port, [self.generator.name])
            # Once the endpoints are ours: e.g. fuse the default scene's world now, not in a first frame.
            self.generator.prepare(scene)
        except BaseException:
            channel.close()
            grpc_server.stop(0)
            if viewer is not None:
                viewer.stop(0)
            raise
        self.channel, self._grpc, self.viewer = channel, grpc_server, viewer
        self.manager.start()
        channel.start()
        grpc_server.start()
        if viewer is not None:
            viewer.start()
        return self

    def stop(self) -> None:
        """Stop in the order clients can follow: notice, channel, sessions, RPCs.

        Every session is first told the backend is going away (a non-fatal SHUTTING_DOWN Error: the
        plugins keep their last frame and reconnect); the engine channel then delivers that notice
        and closes, so closing the sessions afterwards answers nobody with a misleading NO_SESSION.
        """
        grace = self.config.shutdown_grace_s
        if self._health is not None:
            self._health.enter_graceful_shutdown()
        self.manager.announce_shutdown()
        if self.channel is not None:
            self.channel.stop(grace)
        if self.viewer is not None:
            self.viewer.stop(grace)  # delivers the notice to each page, then closes its connection
        stopped = self._grpc.stop(grace) if self._grpc is not None else None
        self.manager.shutdown(grace)
        if stopped is not None:
            stopped.wait(grace)

    def __enter__(self) -> Backend:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(config: ServerConfig, generator: Generator | None = None, ready=None) -> None:
    """Run the backend until SIGINT/SIGTERM. `ready(backend)` is called once it is listening."""
    done = threading.Event()
    previous = {s: signal.signal(s, lambda *_: done.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        backend = Backend(config, generator).start()
        try:
            if ready is not None:
                ready(backend)
            done.wait()
            log.info("shutting down")
        finally:
            backend.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
