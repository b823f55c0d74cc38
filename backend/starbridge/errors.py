"""One exception base class for the package, one subclass per kind of failure.

Each subclass maps to an `ErrorCode` of the wire protocol (protos/starbridge/v1/engine.proto)
and to a gRPC status code, so the engine channel and the gRPC API report the same failure the
same way. Messages name the field, the bound it broke, and the likely fix.
"""

from __future__ import annotations


class StarBridgeError(Exception):
    """Base class of every error StarBridge raises on purpose."""

    #: Name of the matching `ErrorCode` value, without the `ERROR_CODE_` prefix.
    code = "INTERNAL"
    #: Name of the matching `grpc.StatusCode`.
    grpc_status = "INTERNAL"

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidArgument(StarBridgeError):
    """A field is missing, out of range, NaN, or not a unit quaternion."""

    code = "INVALID_ARGUMENT"
    grpc_status = "INVALID_ARGUMENT"


class ProtocolMismatch(StarBridgeError):
    """The peer speaks a different protocol major version."""

    code = "PROTOCOL_MISMATCH"
    grpc_status = "FAILED_PRECONDITION"


class UnknownScene(StarBridgeError):
    """No scene with the requested id exists in the store."""

    code = "UNKNOWN_SCENE"
    grpc_status = "NOT_FOUND"


class Unauthenticated(StarBridgeError):
    """The token is missing or wrong."""

    code = "UNAUTHENTICATED"
    grpc_status = "UNAUTHENTICATED"


class Malformed(StarBridgeError):
    """A message could not be parsed as the expected envelope."""

    code = "MALFORMED"
    grpc_status = "INVALID_ARGUMENT"


class NoSession(StarBridgeError):
    """A message needs a session that does not exist (before Hello, after close, unknown id)."""

    code = "NO_SESSION"
    grpc_status = "NOT_FOUND"


class SessionTimeout(StarBridgeError):
    """The backend closed the session: no message arrived within its heartbeat timeout."""

    code = "TIMEOUT"
    grpc_status = "DEADLINE_EXCEEDED"


class BackendUnavailable(StarBridgeError):
    """No backend answered within the timeout (none running, wrong address, or too busy)."""

    code = "TIMEOUT"
    grpc_status = "UNAVAILABLE"


class Overloaded(StarBridgeError):
    """The backend cannot take another session now."""

    code = "OVERLOADED"
    grpc_status = "RESOURCE_EXHAUSTED"


class ShuttingDown(StarBridgeError):
    """The backend is stopping: not the client's fault; reconnect (it may be restarting)."""

    code = "SHUTTING_DOWN"
    grpc_status = "UNAVAILABLE"


class SceneError(StarBridgeError):
    """A scene bundle cannot be made, read or removed (bad video, bad depth, store conflicts)."""

    code = "INVALID_ARGUMENT"
    grpc_status = "INVALID_ARGUMENT"


class SceneInUse(SceneError):
    """A scene cannot be deleted: it is built in, or a live session uses it."""

    grpc_status = "FAILED_PRECONDITION"
