"""Server configuration: one frozen dataclass, defaults that work on a fresh machine."""

from __future__ import annotations

import errno
import math
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidArgument, StarBridgeError
from ..transport.defaults import (
    DEFAULT_ENGINE_PORT,
    DEFAULT_GRPC_PORT,
    DEFAULT_HOST,
    DEFAULT_VIEWER_PORT,
    MAX_SIDE,
    MIN_SIDE,
    engine_endpoint,
    host_port,
)


class CannotBind(StarBridgeError):
    """An endpoint cannot be bound: the port is taken, or the host is not an address of this machine.

    `field` names the setting to change: "grpc_port", "engine_port" or "host"."""

    grpc_status = "UNAVAILABLE"


def bind_error(what: str, address: str, host: str, port: int, port_field: str, err: int | None) -> CannotBind:
    """The CannotBind for a failed bind of `what` ("gRPC API", "engine channel") at `address`, from its errno.

    Messages name the setting to change (`port_field` or "host")."""
    where = f"cannot bind the {what} to {address}"
    if err == errno.EADDRINUSE:
        return CannotBind(
            f"{where}: port {port} is in use (another `starbridge serve`?); stop that or choose another {port_field}",
            field=port_field,
        )
    if err in (errno.EADDRNOTAVAIL, errno.ENODEV, errno.EAFNOSUPPORT, errno.EINVAL, socket.EAI_NONAME):
        return CannotBind(
            f"{where}: {host} is not an address of this machine; set host to one of its addresses "
            "(127.0.0.1: this machine only, 0.0.0.0: every interface)",
            field="host",
        )
    if err == errno.EACCES:
        return CannotBind(
            f"{where}: permission denied (ports below 1024 need privileges); choose another {port_field}",
            field=port_field,
        )
    reason = f": {os.strerror(err)}" if err else ""
    return CannotBind(f"{where}{reason}; check host and {port_field}", field=port_field)


def probe_bind(host: str, port: int) -> int | None:
    """Why a TCP listener at (host, port) cannot be bound now, as an errno; None when it can.

    For servers that do not say why (gRPC's add_insecure_port only fails, and logs noise on stderr): probing
    first gives a one-line reason. Like such servers, it binds every address `host` resolves to and fails only
    when none can be bound (then with EADDRINUSE if one was in use)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return socket.EAI_NONAME
    errors: list[int] = []
    for family, kind, proto, _, addr in infos:
        try:
            with socket.socket(family, kind, proto) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no conflict
                s.bind(addr)
                s.listen(1)
            return None
        except OSError as exc:
            errors.append(exc.errno or 0)
    if errno.EADDRINUSE in errors:
        return errno.EADDRINUSE
    return errors[0] if errors else None


@dataclass(frozen=True)
class ServerConfig:
    #: Interface to bind. 127.0.0.1 by default: nothing outside this machine can connect.
    host: str = DEFAULT_HOST
    grpc_port: int = DEFAULT_GRPC_PORT
    engine_port: int = DEFAULT_ENGINE_PORT
    #: Browser viewer (the page and its WebSocket, viewer/gateway.py); `viewer` False: not served.
    viewer_port: int = DEFAULT_VIEWER_PORT
    viewer: bool = True
    #: Scene store folder; None: STARBRIDGE_HOME/scenes or ~/.local/share/starbridge/scenes.
    store_root: Path | None = None
    #: Scene served when Hello.scene_id is empty.
    default_scene: str = "demo"
    #: Frame size and rate of sessions that ask for 0.
    default_width: int = 512
    default_height: int = 288
    default_fps: float = 30.0
    #: Highest frame rate a session may ask for.
    max_fps: float = 120.0
    #: A session with no message for this long is closed and its resources freed.
    heartbeat_timeout_s: float = 10.0
    #: If set, Hello must carry this token.
    token: str = ""
    #: Sessions at once; more are refused with OVERLOADED.
    max_sessions: int = 8
    #: Blocks generated at once across all sessions (taken in turns, first come first served, so
    #: every session gets a fair share under overload); 0: one per CPU core.
    generation_slots: int = 0
    #: Slots per shared-memory frame ring (>= 3).
    ring_slots: int = 3
    #: Poses are extrapolated at most this far ahead (a stalled engine does not fling the camera).
    max_extrapolation_s: float = 0.25
    #: Graceful shutdown: how long to wait for sessions and RPCs before cancelling.
    shutdown_grace_s: float = 2.0
    #: Extra gRPC channel options (name, value).
    grpc_options: tuple[tuple[str, int], ...] = field(default_factory=tuple)

    @property
    def grpc_address(self) -> str:
        return host_port(self.host, self.grpc_port)

    @property
    def engine_endpoint(self) -> str:
        return engine_endpoint(self.host, self.engine_port)

    def validate(self) -> ServerConfig:
        """Refuse settings no session could work with, naming the field and its bound (InvalidArgument).

        `Backend.start` calls it, so a bad setting fails at start-up rather than in every client's Hello.
        Returns self."""

        def bad(name: str, rule: str, value: object) -> InvalidArgument:
            return InvalidArgument(f"{name} must be {rule}, got {value!r}", field=name)

        if not self.host or self.host != self.host.strip():
            raise bad("host", "an IP address or host name of this machine", self.host)
        for name, port in (("grpc_port", self.grpc_port), ("engine_port", self.engine_port),
                           ("viewer_port", self.viewer_port)):  # fmt: skip
            if not 0 <= port <= 65535:
                raise bad(name, "a TCP port in [0, 65535] (0: any free port)", port)
        if self.viewer and self.viewer_port and self.viewer_port in (self.grpc_port, self.engine_port):
            other = "grpc_port" if self.viewer_port == self.grpc_port else "engine_port"
            raise InvalidArgument(
                f"viewer_port and {other} are both {self.viewer_port}: the browser viewer needs a port of its own",
                field="viewer_port",
            )
        if self.grpc_port and self.grpc_port == self.engine_port:
            raise InvalidArgument(
                f"grpc_port and engine_port are both {self.grpc_port}: the gRPC API and the engine channel "
                "need a port each",
                field="engine_port",
            )
        for name, side in (("default_width", self.default_width), ("default_height", self.default_height)):
            if not MIN_SIDE <= side <= MAX_SIDE:
                raise bad(name, f"in [{MIN_SIDE}, {MAX_SIDE}] pixels", side)
        if not (math.isfinite(self.max_fps) and self.max_fps > 0):
            raise bad("max_fps", "> 0", self.max_fps)
        if not (math.isfinite(self.default_fps) and 0 < self.default_fps <= self.max_fps):
            raise bad("default_fps", f"in (0, {self.max_fps:g}] frames per second", self.default_fps)
        if not (math.isfinite(self.heartbeat_timeout_s) and self.heartbeat_timeout_s > 0):
            raise bad("heartbeat_timeout_s", "> 0 seconds", self.heartbeat_timeout_s)
        if self.max_sessions < 1:
            raise bad("max_sessions", ">= 1", self.max_sessions)
        if self.generation_slots < 0:
            raise bad("generation_slots", ">= 0 (0: one per CPU core)", self.generation_slots)
        if self.ring_slots < 3:
            raise bad("ring_slots", ">= 3", self.ring_slots)
        for name, seconds in (("max_extrapolation_s", self.max_extrapolation_s),
                              ("shutdown_grace_s", self.shutdown_grace_s)):  # fmt: skip
            if not (math.isfinite(seconds) and seconds >= 0):
                raise bad(name, ">= 0 seconds", seconds)
        return self
