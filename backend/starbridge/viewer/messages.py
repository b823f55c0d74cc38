"""The browser viewer's messages <-> the engine protocol's envelopes (docs/architecture.md §4).

The page speaks JSON text messages (and receives frames as binary messages); the gateway turns each into the
`EngineMessage` an engine would send, so the session manager's `Connection` handles it exactly as it handles
the engine channel's, and turns each `BackendMessage` back into JSON. Errors keep the engine protocol's typed
codes (ERROR_CODE_* without the prefix: "NO_SESSION", "SHUTTING_DOWN", ...).

Page -> backend (text):
    {"type": "hello", "scene": id, "width": w, "height": h, "fps": f, "token": t, "encoding": e, "coverage": bool}
    {"type": "pose", "seq": n, "t_us": µs, "position": [x, y, z], "rotation": [x, y, z, w], "fov": deg, "aspect": a}
    {"type": "time", "action": "play" | "pause" | "seek" | "speed", "time_s": s, "speed": k}
    {"type": "options", "encoding": e, "coverage": bool}      (changes how frames come, no new session)
    {"type": "goodbye", "reason": text}
Backend -> page: text {"type": "welcome" | "error", ...}; binary frames (frame.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidArgument, Malformed
from ..protocol import engine_pb2 as pb
from ..transport.convert import protocol_version
from ..transport.error_codes import PREFIX

#: Largest text message the page may send, bytes (poses are ~200 bytes).
MAX_TEXT_BYTES = 16 * 1024
#: Frame encodings a page may ask for; "auto": raw RGBA on loopback, JPEG otherwise.
ENCODINGS = ("auto", "raw", "jpeg", "webp")

_ACTIONS = {
    "play": pb.TimeControl.ACTION_PLAY,
    "pause": pb.TimeControl.ACTION_PAUSE,
    "seek": pb.TimeControl.ACTION_SEEK,
    "speed": pb.TimeControl.ACTION_SET_SPEED,
}


@dataclass(frozen=True)
class FrameOptions:
    """How a page wants its frames: the encoding it asked for and whether it wants the coverage mask."""

    encoding: str = "auto"
    coverage: bool = False


def parse(text: str | bytes) -> dict[str, Any]:
    """A page message as a dict with a "type"; raises Malformed naming what is wrong."""
    if isinstance(text, bytes):
        raise Malformed("the viewer sends JSON text messages, got a binary message")
    if len(text) > MAX_TEXT_BYTES:
        raise Malformed(f"message of {len(text)} characters is larger than the viewer's limit of {MAX_TEXT_BYTES}")
    try:
        message = json.loads(text)
    except ValueError:
        raise Malformed("could not parse the message as JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise Malformed('a viewer message is a JSON object with a "type"')
    return message


def _number(message: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = message.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"{key} must be a finite number, got {value!r}", field=key)
    return float(value)


def _vector(message: dict[str, Any], key: str, size: int) -> list[float]:
    value = message.get(key)
    if not isinstance(value, list) or len(value) != size:
        raise InvalidArgument(f"{key} must be a list of {size} numbers, got {value!r}", field=key)
    return [_number({key: v}, key) for v in value]


def frame_options(message: dict[str, Any], default: FrameOptions = FrameOptions()) -> FrameOptions:  # noqa: B008
    """The frame options a hello or options message sets (keys it leaves out keep `default`'s)."""
    encoding = message.get("encoding", default.encoding)
    if encoding not in ENCODINGS:
        raise InvalidArgument(f"encoding must be one of {', '.join(ENCODINGS)}, got {encoding!r}", field="encoding")
    return FrameOptions(encoding=encoding, coverage=bool(message.get("coverage", default.coverage)))


def to_engine(message: dict[str, Any]) -> pb.EngineMessage:
    """The EngineMessage for a page's hello, pose, time or goodbye; raises InvalidArgument / Malformed."""
    kind = message["type"]
    out = pb.EngineMessage()
    if kind == "hello":
        h = out.hello
        h.protocol.CopyFrom(protocol_version())
        h.engine_name, h.engine_version = "browser-viewer", str(message.get("browser", ""))[:64]
        h.scene_id = str(message.get("scene", "") or "")
        h.width, h.height = int(_number(message, "width")), int(_number(message, "height"))
        h.fps = _number(message, "fps")
        h.transport = pb.FRAME_TRANSPORT_INLINE  # never a shared-memory ring: the page is not a local process
        h.token = str(message.get("token", "") or "")
        h.client_label = "viewer"
    elif kind == "pose":
        p = out.pose
        p.sequence = int(_number(message, "seq"))
        p.engine_time_us = int(_number(message, "t_us"))
        x, y, z = _vector(message, "position", 3)
        qx, qy, qz, qw = _vector(message, "rotation", 4)
        p.pose.position.x, p.pose.position.y, p.pose.position.z = x, y, z
        p.pose.rotation.x, p.pose.rotation.y, p.pose.rotation.z, p.pose.rotation.w = qx, qy, qz, qw
        p.vertical_fov_deg = _number(message, "fov")
        p.aspect = _number(message, "aspect")
        if p.sequence < 0 or p.engine_time_us < 0:
            raise InvalidArgument("seq and t_us must be >= 0", field="seq")
    elif kind == "time":
        action = message.get("action")
        if action not in _ACTIONS:
            raise InvalidArgument(f"action must be one of {', '.join(_ACTIONS)}, got {action!r}", field="action")
        out.time.action = _ACTIONS[action]
        out.time.time_s = _number(message, "time_s")
        out.time.speed = _number(message, "speed")
    elif kind == "goodbye":
        out.goodbye.reason = str(message.get("reason", "viewer closed"))[:200]
    else:
        raise Malformed(f"unknown message type {kind!r}: hello, pose, time, options or goodbye")
    return out


def from_backend(message: pb.BackendMessage) -> dict[str, Any]:
    """A Welcome or Error as the JSON the page reads (frames go as binary messages: frame.py)."""
    kind = message.WhichOneof("body")
    if kind == "welcome":
        w = message.welcome
        return {
            "type": "welcome",
            "session": w.session_id,
            "scene": w.scene_id,
            "width": w.width,
            "height": w.height,
            "fps": w.fps,
            "duration_s": w.scene_duration_s,
            "heartbeat_timeout_s": w.heartbeat_timeout_s,
            "generator": w.generator,
            "backend_version": w.backend_version,
        }
    if kind == "error":
        e = message.error
        return {
            "type": "error",
            "code": pb.ErrorCode.Name(e.code).removeprefix(PREFIX),
            "message": e.message,
            "field": e.field,
            "fatal": e.fatal,
        }
    raise ValueError(f"no JSON form for a {kind} message")
