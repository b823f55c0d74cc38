"""Server configuration: one frozen dataclass, defaults that work on a fresh machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

#: gRPC API and engine channel ports (DESIGN.md section 4).
DEFAULT_GRPC_PORT = 50051
DEFAULT_ENGINE_PORT = 50052


@dataclass(frozen=True)
class ServerConfig:
    #: Interface to bind. 127.0.0.1 by default: nothing outside this machine can connect.
    host: str = "127.0.0.1"
    grpc_port: int = DEFAULT_GRPC_PORT
    engine_port: int = DEFAULT_ENGINE_PORT
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
        return f"{self.host}:{self.grpc_port}"

    @property
    def engine_endpoint(self) -> str:
        return f"tcp://{self.host}:{self.engine_port}"
