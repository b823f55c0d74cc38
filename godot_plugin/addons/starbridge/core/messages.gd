extends RefCounted
## The engine-channel messages of protos/starbridge/v1/engine.proto as typed GDScript objects.
##
## Field names, numbers, units and defaults are engine.proto's; engine_codec.gd writes the
## messages an engine sends ([code]Hello[/code], [code]CameraPose[/code], [code]TimeControl[/code],
## [code]Goodbye[/code]) and reads the ones the backend sends ([code]Welcome[/code],
## [code]FrameReady[/code], [code]BackendError[/code]).[br]
## Scripts reach these classes through a preload, not a global class name, so a project works
## before the editor has imported it:
## [code]const Messages := preload("res://addons/starbridge/core/messages.gd")[/code].[br]
## [b]64-bit fields[/b]: GDScript integers are signed 64-bit, so a [code]uint64[/code] above
## 2^63 - 1 (a sequence number no session reaches) reads as a negative [int] with the same bits.
## Vectors and quaternions are single precision, like the wire's [code]float[/code] fields.

## How frames reach the engine ([code]FrameTransport[/code]).
enum Transport { UNSPECIFIED = 0, SHARED_MEMORY = 1, INLINE = 2 }

## Scene clock actions ([code]TimeControl.Action[/code]).
enum TimeAction { UNSPECIFIED = 0, PLAY = 1, PAUSE = 2, SEEK = 3, SET_SPEED = 4 }

## Backend error codes ([code]ErrorCode[/code]).
enum ErrorCode {
	UNSPECIFIED = 0,
	INVALID_ARGUMENT = 1,
	PROTOCOL_MISMATCH = 2,
	UNKNOWN_SCENE = 3,
	UNAUTHENTICATED = 4,
	MALFORMED = 5,
	NO_SESSION = 6,
	TIMEOUT = 7,
	OVERLOADED = 8,
	INTERNAL = 9,
	## Protocol 1.1: the backend is stopping (sent to every session, not fatal). Not a fault: the
	## client keeps the last frame and reconnects with backoff at once.
	SHUTTING_DOWN = 10,
}

## Which body a [code]BackendMessage[/code] carries ([code]NONE[/code]: none this
## plugin knows, e.g. a newer backend's message: ignore it).
enum Body { NONE = 0, WELCOME = 1, FRAME = 2, ERROR = 3 }

## The protocol version this plugin speaks (docs/architecture.md §4).
const PROTOCOL_MAJOR := 1
const PROTOCOL_MINOR := 1
## [code]PIXEL_FORMAT_RGBA8_SRGB[/code]: 8 bits per channel, R G B A, sRGB colour.
const PIXEL_FORMAT_RGBA8_SRGB := 1


## First message of a session; the backend answers Welcome or a fatal Error.
class Hello:
	extends RefCounted
	## The protocol version the engine speaks (major 0 is refused).
	var protocol_major := PROTOCOL_MAJOR
	var protocol_minor := PROTOCOL_MINOR
	## Free text for logs, e.g. "Godot" and "4.6.stable".
	var engine_name := ""
	var engine_version := ""
	## Scene to roam in; empty: the backend's default scene.
	var scene_id := ""
	## Wanted frame size in pixels and rate in frames per second; 0: the backend's default.
	var width := 0
	var height := 0
	var fps := 0.0
	var transport: Transport = Transport.SHARED_MEMORY
	## Access token when the backend was started with one; empty: none.
	var token := ""
	## A name for the backend's logs; empty: none.
	var client_label := ""
	## gRPC only (engines leave it empty).
	var session_id := ""


## A camera pose: camera-to-world, wire convention (looks down -Z, +Y up), relative to the
## scene anchor. Also the heartbeat.
class CameraPose:
	extends RefCounted
	var sequence := 0
	## The engine's clock when the pose was sampled, microseconds.
	var engine_time_us := 0
	## Scene metres.
	var position := Vector3.ZERO
	## Unit quaternion (x, y, z, w).
	var rotation := Quaternion.IDENTITY
	## Vertical field of view in degrees, in (1, 179).
	var vertical_fov_deg := 60.0
	## Viewport width / height; 0: the session's frame aspect.
	var aspect := 0.0


## Scene clock control.
class TimeControl:
	extends RefCounted
	var action: TimeAction = TimeAction.UNSPECIFIED
	## Target scene time in seconds, for SEEK.
	var time_s := 0.0
	## Playback speed, for SET_SPEED (0 < speed <= 8).
	var speed := 0.0


## The engine is leaving; the backend frees the session at once.
class Goodbye:
	extends RefCounted
	var reason := ""


## Where and how the backend lays out a session's shared-memory frame ring.
class SharedMemoryLayout:
	extends RefCounted
	## Absolute path of the ring file, e.g. /dev/shm/starbridge-<session>.
	var path := ""
	var layout_version := 0
	var header_bytes := 0
	var slot_count := 0
	var slot_bytes := 0
	var slot_header_bytes := 0
	## Bytes per pixel row.
	var stride := 0
	var pixel_format := 0
	var file_bytes := 0


## The answer to Hello: the session exists and frames will follow poses.
class Welcome:
	extends RefCounted
	var session_id := ""
	var protocol_major := 0
	var protocol_minor := 0
	## Agreed frame size (pixels) and rate (frames per second).
	var width := 0
	var height := 0
	var fps := 0.0
	var transport: Transport = Transport.UNSPECIFIED
	## Set when the transport is shared memory; null otherwise.
	var shared_memory: SharedMemoryLayout = null
	var scene_id := ""
	## Scene length in seconds (the clock loops at this length).
	var scene_duration_s := 0.0
	## A session silent for this long is closed.
	var heartbeat_timeout_s := 0.0
	var block_frames := 0
	## Which generator makes the frames, e.g. "explicit-fill".
	var generator := ""
	var backend_version := ""
	## Protocol 1.1: the secret that re-attaches to this session. This plugin does not use it (it
	## starts a new session after a loss); keep it private, never log it. Empty from a 1.0 backend.
	var session_secret := ""


## A new frame is ready: in ring slot [member slot], or inline as the message's second part.
class FrameReady:
	extends RefCounted
	var frame_sequence := 0
	var slot := 0
	## The latest pose the backend had when it scheduled the frame, and its engine clock.
	var pose_sequence := 0
	var engine_time_us := 0
	## The pose the frame was generated for (wire convention, scene metres).
	var position := Vector3.ZERO
	var rotation := Quaternion(0.0, 0.0, 0.0, 0.0)
	var vertical_fov_deg := 0.0
	## Width / height the frame spans; 0: the frame's own.
	var aspect := 0.0
	var scene_time_s := 0.0
	var generation_latency_ms := 0.0
	var width := 0
	var height := 0


## An error from the backend: fatal ones end the session (reconnect with Hello).
class BackendError:
	extends RefCounted
	var code: ErrorCode = ErrorCode.UNSPECIFIED
	## Human-readable: the field, the bound it broke, the likely fix.
	var message := ""
	var fatal := false
	## The offending field's path, e.g. "hello.protocol"; empty: not about one field.
	var field := ""

	## The error as one line, e.g. "PROTOCOL_MISMATCH (fatal): ...".
	func describe() -> String:
		var name: String = "code %d" % code
		if code >= 0 and code < ErrorCode.size():
			name = ErrorCode.keys()[code]
		return "%s%s: %s" % [name, " (fatal)" if fatal else "", message]


## Envelope of everything the backend sends: one of its bodies, or none.
class BackendMessage:
	extends RefCounted
	var body: Body = Body.NONE
	## Set by engine_codec.gd's [code]decode_backend[/code] when the bytes were not a valid envelope.
	var problem := ""
	var welcome: Welcome = null
	var frame: FrameReady = null
	var error: BackendError = null
