"""Wire `ErrorCode` <-> exception, both ways, from one table (docs/architecture.md §3).

Each `StarBridgeError` subclass names its code (`code`, starbridge/errors.py). `RAISED` lists the
classes an Error received from the wire is raised as, one per code; the backend sends any exception
with its class's code (INTERNAL for exceptions that are not ours). Several classes share a code
(`SceneError` is sent as INVALID_ARGUMENT, `BackendUnavailable` is the client's own TIMEOUT); the
received Error is raised as the one listed here.
"""

from __future__ import annotations

from ..errors import (
    InvalidArgument,
    Malformed,
    NoSession,
    Overloaded,
    ProtocolMismatch,
    SessionTimeout,
    ShuttingDown,
    StarBridgeError,
    Unauthenticated,
    UnknownScene,
)
from ..protocol import engine_pb2 as pb

#: The exception classes Errors from the wire are raised as, one per ErrorCode (the base class: INTERNAL).
RAISED: tuple[type[StarBridgeError], ...] = (
    StarBridgeError,
    InvalidArgument,
    ProtocolMismatch,
    UnknownScene,
    Unauthenticated,
    Malformed,
    NoSession,
    SessionTimeout,
    Overloaded,
    ShuttingDown,
)
#: ErrorCode name (without ERROR_CODE_) -> the exception raised for it. Codes not listed
#: (UNSPECIFIED, or one newer than this build) raise the base class.
ERROR_CLASSES: dict[str, type[StarBridgeError]] = {cls.code: cls for cls in RAISED}

PREFIX = "ERROR_CODE_"


def code_of(exc: BaseException) -> pb.ErrorCode:
    """The wire code of an exception: its class's for ours, INTERNAL for anything else."""
    if isinstance(exc, StarBridgeError):
        return pb.ErrorCode.Value(PREFIX + exc.code)
    return pb.ERROR_CODE_INTERNAL


def error_message(exc: BaseException, *, fatal: bool) -> pb.BackendMessage:
    """An Error envelope for an exception: typed for ours, INTERNAL for anything else."""
    msg = pb.BackendMessage()
    msg.error.code = code_of(exc)
    if isinstance(exc, StarBridgeError):
        msg.error.message = exc.message
        msg.error.field = exc.field
    else:
        msg.error.message = f"internal error: {type(exc).__name__}: {exc}"
    msg.error.fatal = fatal
    return msg


def error_from_proto(error: pb.Error) -> StarBridgeError:
    """The exception for an Error message: its class from the code, the backend's message and field."""
    try:
        name = pb.ErrorCode.Name(error.code).removeprefix(PREFIX)
    except ValueError:  # a code newer than this build
        name = f"code {error.code}"
    cls = ERROR_CLASSES.get(name, StarBridgeError)
    return cls(f"backend error {name}: {error.message}", field=error.field)
