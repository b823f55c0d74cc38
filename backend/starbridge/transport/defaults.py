"""Where the backend listens unless told otherwise, and how large a frame may be (docs/architecture.md §4).

Both ends use these: the server binds them, the client and `starbridge fly` connect to them. The Unity
and Godot plugins carry the same numbers in their own code.
"""

from __future__ import annotations

#: Interface the backend binds by default: this machine only.
DEFAULT_HOST = "127.0.0.1"
#: gRPC API port.
DEFAULT_GRPC_PORT = 50051
#: Engine channel (ZeroMQ ROUTER) port.
DEFAULT_ENGINE_PORT = 50052
#: Browser viewer (HTTP + WebSocket) port.
DEFAULT_VIEWER_PORT = 50053


def host_port(host: str, port: int) -> str:
    """HOST:PORT as gRPC and ZeroMQ addresses write it: an IPv6 literal in brackets ([::1]:50052)."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


def engine_endpoint(host: str, port: int) -> str:
    """The ZeroMQ address of an engine channel: tcp://HOST:PORT (tcp://[::1]:PORT for an IPv6 host)."""
    return f"tcp://{host_port(host, port)}"


#: Where a client finds the engine channel of a backend started with the defaults.
DEFAULT_ENGINE_ENDPOINT = engine_endpoint(DEFAULT_HOST, DEFAULT_ENGINE_PORT)

#: Smallest and largest side of a session's frames, pixels (Hello.width / Hello.height; 0 asks for the default).
MIN_SIDE = 16
MAX_SIDE = 4096
