extends RefCounted
## One engine-channel client: Hello, poses and clock control out; Welcome, frames, errors in.
##
## What backend/starbridge/client/engine.py does, driven by polling instead of blocking: call
## [method poll] every frame (it never blocks), [method send_pose] with the camera, and
## [method take_frame] for the newest frame. It connects by itself, says Hello, checks the
## protocol version, opens the shared-memory ring, and when the backend goes away (connection
## closed, silent, the session ended, or the backend said it is shutting down) keeps the last
## frame, says why in [member status_message], and reconnects with backoff. A shutdown notice
## (protocol 1.1 [code]SHUTTING_DOWN[/code]) is not an error: no [signal backend_error], no
## [member last_error]; the status reads [constant SHUTTING_DOWN_STATUS] until a backend answers.
## Errors that only a change of settings fixes (another protocol major, a wrong token, an unknown
## scene, a ring on another machine) stop nothing either: the status says what to change and the
## client retries slowly, so a fixed backend is picked up by itself.[br]
## [codeblock]
## const BackdropClient := preload("res://addons/starbridge/core/backdrop_client.gd")
## var client := BackdropClient.new()
## client.endpoint = "tcp://127.0.0.1:50052"
## client.start()
## # every frame:
## client.poll()
## client.send_pose(position, rotation, fov_deg, aspect)
## var frame := client.take_frame()   # null: nothing new
## [/codeblock]

## A new session started.
signal welcomed(welcome: Messages.Welcome)
## The backend sent an Error (fatal ones end the session; the client handles them).
signal backend_error(error: Messages.BackendError)
## [member status] or [member status_message] changed.
signal status_changed(status: Status, message: String)

## Where the client is. ERROR: a setting must change (see [member status_message]); it still
## retries, slowly.
enum Status { STOPPED, CONNECTING, HANDSHAKING, STREAMING, RECONNECTING, ERROR }

const ClientStats := preload("res://addons/starbridge/core/client_stats.gd")
const EngineCodec := preload("res://addons/starbridge/core/engine_codec.gd")
const Frame := preload("res://addons/starbridge/core/frame.gd")
const FrameRingReader := preload("res://addons/starbridge/core/frame_ring_reader.gd")
const Messages := preload("res://addons/starbridge/core/messages.gd")
const ProtoWriter := preload("res://addons/starbridge/core/proto_writer.gd")
const ZmtpConnection := preload("res://addons/starbridge/core/zmtp_connection.gd")

## Default engine endpoint (docs/architecture.md §4).
const DEFAULT_HOST := "127.0.0.1"
const DEFAULT_PORT := 50052
## Reconnect backoff: the first retry after this many seconds, doubling up to the maximum.
const BACKOFF_MIN_S := 0.25
const BACKOFF_MAX_S := 4.0
## Retry period after an error only a setting fixes.
const SETTINGS_RETRY_S := 10.0
## No Welcome within this many seconds after Hello: reconnect.
const HELLO_TIMEOUT_S := 5.0
## A session that sends nothing for this long while we send poses is taken as lost (the
## backend hung or was paused); the Welcome's heartbeat timeout, if longer, wins.
const MIN_SILENCE_TIMEOUT_S := 3.0
## How the status starts while the backend is away after saying it is shutting down.
const SHUTTING_DOWN_STATUS := "backend shutting down - reconnecting"
## Error codes after which a new Hello on the same connection is the fix (the session ended).
const _RESUMABLE := [
	Messages.ErrorCode.TIMEOUT, Messages.ErrorCode.NO_SESSION,
	Messages.ErrorCode.INTERNAL, Messages.ErrorCode.UNSPECIFIED,
]

## "tcp://host:port", "host:port" or "host" (default port 50052).
var endpoint := "tcp://%s:%d" % [DEFAULT_HOST, DEFAULT_PORT]
## Hello fields: scene ("" = the backend's default), size and rate (0 = the backend's default,
## as [code]starbridge serve --width/--height/--fps[/code] set it), transport. The agreed size
## and rate are the [member welcome]'s.
var scene_id := ""
var width := 0
var height := 0
var fps := 0.0
var transport: Messages.Transport = Messages.Transport.SHARED_MEMORY
var token := ""
var client_label := ""
var engine_name := "Godot"
var engine_version := ""
## The protocol version sent in Hello (tests send other majors to see the refusal).
var protocol_major := Messages.PROTOCOL_MAJOR
var protocol_minor := Messages.PROTOCOL_MINOR

## Where the client is, and why (human-readable; names the fix when something is wrong).
var status: Status = Status.STOPPED
var status_message := "stopped"
## The current session's Welcome; null between sessions.
var welcome: Messages.Welcome = null
## The last Error the backend sent (null: none).
var last_error: Messages.BackendError = null
## Frame rate, latency and counters.
var stats := ClientStats.new()
## Sessions started (the first Welcome makes 1; each reconnect adds one).
var sessions := 0

var _zmtp: ZmtpConnection = null
var _ring: FrameRingReader = null
var _host := DEFAULT_HOST
var _port := DEFAULT_PORT
var _hello_sent := false
var _hello_deadline_us := 0
var _retry_at_us := 0
var _backoff_s := BACKOFF_MIN_S
var _last_received_us := 0
var _pose := Messages.CameraPose.new()
var _pose_writer := ProtoWriter.new()
var _pose_sequence := 0
var _last_pose_us := 0
var _pending: Messages.FrameReady = null
var _pending_pixels := PackedByteArray()
var _pending_received_us := 0
var _frame: Frame = null
var _buffers: Array[Frame] = [Frame.new(), Frame.new()]
var _fill := 0
var _reported_error := ""
var _frames_ever := 0
var _last_frame_sequence := 0
var _last_scene_time_s := -1.0
var _clock_playing := true
var _clock_speed := 1.0
var _backend_leaving := false


## Starts connecting (again). Settings are read now; change them, then call start() again.
func start() -> void:
	var parsed := parse_endpoint(endpoint)
	if parsed.is_empty():
		_set_status(Status.ERROR, "server address %s is not host:port (e.g. tcp://127.0.0.1:50052)"
			% endpoint)
		return
	_host = parsed[0]
	_port = parsed[1]
	_drop_connection()
	_backend_leaving = false
	_backoff_s = BACKOFF_MIN_S
	_connect()


## Says Goodbye (when in a session) and disconnects. [param reason] goes to the backend's log.
func stop(reason: String = "stopped") -> void:
	if _zmtp != null and welcome != null:
		var goodbye := Messages.Goodbye.new()
		goodbye.reason = reason
		_send([EngineCodec.encode_goodbye(goodbye)])
	_drop_connection()
	_set_status(Status.STOPPED, reason)


## Does the work of one frame: connection, handshake, incoming messages, timeouts, reconnects.
## [param now_us]: [method Time.get_ticks_usec] (tests pass their own clock).
func poll(now_us: int = -1) -> void:
	var now := Time.get_ticks_usec() if now_us < 0 else now_us
	if status == Status.STOPPED:
		return
	if _zmtp == null:
		if now >= _retry_at_us:
			_connect()
		return
	_zmtp.poll()
	if _zmtp.state == ZmtpConnection.State.OPEN and not _hello_sent:
		_send_hello(now)
	# Messages that arrived before a connection broke still count (e.g. the Error saying why).
	for message: Array in _zmtp.take_messages():
		_last_received_us = now
		_on_message(message, now)
		if _zmtp == null:
			return
	if _zmtp.state == ZmtpConnection.State.FAILED:
		_materialise()
		_lost(_zmtp.error_message, now)
		return
	if _zmtp.state == ZmtpConnection.State.OPEN:
		_check_timeouts(now)
		_materialise()


## Sends a camera pose (wire convention, relative to the scene anchor) unless the last one left
## less than a frame interval ago. Returns true if it went out.
func send_pose(
	position: Vector3, rotation: Quaternion, vertical_fov_deg: float, aspect: float,
	now_us: int = -1
) -> bool:
	if welcome == null or status != Status.STREAMING:
		return false
	var now := Time.get_ticks_usec() if now_us < 0 else now_us
	var interval_us := int(0.9e6 / maxf(welcome.fps, 1.0))
	if _last_pose_us != 0 and now - _last_pose_us < interval_us:
		return false
	_pose_sequence += 1
	_pose.sequence = _pose_sequence
	_pose.engine_time_us = now
	_pose.position = position
	_pose.rotation = rotation
	_pose.vertical_fov_deg = vertical_fov_deg
	_pose.aspect = aspect
	EngineCodec.write_pose(_pose_writer, _pose)
	if not _send([_pose_writer.bytes]):
		stats.poses_dropped += 1
		return false
	_last_pose_us = now
	stats.poses_sent += 1
	return true


## Scene clock: play from the current time.
func play() -> void:
	_clock_playing = true
	_send_time(Messages.TimeAction.PLAY, 0.0, 0.0)


## Scene clock: freeze the scene at the current instant (the camera can still roam).
func pause() -> void:
	_clock_playing = false
	_send_time(Messages.TimeAction.PAUSE, 0.0, 0.0)


## Scene clock: jump to [param time_s] seconds.
func seek(time_s: float) -> void:
	_last_scene_time_s = time_s
	_send_time(Messages.TimeAction.SEEK, time_s, 0.0)


## Scene clock: playback speed (1 = real time, 0 < speed <= 8).
func set_speed(speed: float) -> void:
	_clock_speed = speed
	_send_time(Messages.TimeAction.SET_SPEED, 0.0, speed)


## The newest frame not taken yet, or null. The returned object is the client's: it is reused
## two frames later, so copy what you keep (the backdrop uploads the pixels at once).
func take_frame() -> Frame:
	var frame := _frame
	_frame = null
	return frame


## (host, port) of an endpoint string, or an empty array when it is not one.
static func parse_endpoint(text: String) -> Array:
	var rest := text.strip_edges()
	if rest.begins_with("tcp://"):
		rest = rest.substr(6)
	if rest.is_empty() or "/" in rest:
		return []
	var host := rest
	var port := DEFAULT_PORT
	if rest.begins_with("["):
		var close := rest.find("]")
		if close < 0:
			return []
		host = rest.substr(1, close - 1)
		rest = rest.substr(close + 1)
		if rest.begins_with(":"):
			if not rest.substr(1).is_valid_int():
				return []
			port = rest.substr(1).to_int()
		elif not rest.is_empty():
			return []
	elif rest.count(":") == 1:
		host = rest.get_slice(":", 0)
		var port_text := rest.get_slice(":", 1)
		if not port_text.is_valid_int():
			return []
		port = port_text.to_int()
	if host.is_empty() or host == "*" or port <= 0 or port > 65535:
		return []
	return [host, port]


func _connect() -> void:
	_zmtp = ZmtpConnection.new()
	_zmtp.open(_host, _port)
	_hello_sent = false
	var what := "connecting to %s" % _zmtp.endpoint
	if _backend_leaving:
		what = "%s: %s" % [SHUTTING_DOWN_STATUS, what]
	_set_status(Status.CONNECTING if sessions == 0 else Status.RECONNECTING, what)


func _send_hello(now: int) -> void:
	var hello := Messages.Hello.new()
	hello.protocol_major = protocol_major
	hello.protocol_minor = protocol_minor
	hello.engine_name = engine_name
	hello.engine_version = engine_version
	hello.scene_id = scene_id
	hello.width = width
	hello.height = height
	hello.fps = fps
	hello.transport = transport
	hello.token = token
	hello.client_label = client_label
	_close_ring()
	welcome = null
	_hello_sent = _send([EngineCodec.encode_hello(hello)])
	_hello_deadline_us = now + int(HELLO_TIMEOUT_S * 1e6)
	_set_status(Status.HANDSHAKING, "waiting for Welcome from %s" % _zmtp.endpoint)


func _on_message(parts: Array, now: int) -> void:
	var envelope: PackedByteArray = parts[0]
	var msg := EngineCodec.decode_backend(envelope)
	match msg.body:
		Messages.Body.WELCOME:
			_on_welcome(msg.welcome, now)
		Messages.Body.FRAME:
			if welcome != null and msg.frame.frame_sequence > _last_frame_sequence:
				if _pending != null:
					stats.frames_skipped += 1
				_pending = msg.frame
				_pending_pixels = parts[1] if parts.size() >= 2 else PackedByteArray()
				_pending_received_us = now
		Messages.Body.ERROR:
			_on_error(msg.error, now)
		_:
			if not msg.problem.is_empty():
				push_warning("StarBridge: %s" % msg.problem)


func _on_welcome(w: Messages.Welcome, now: int) -> void:
	if welcome != null or not _hello_sent:
		return  # a Welcome nobody asked for (an earlier Hello's); the session we have stands
	if w.protocol_major != Messages.PROTOCOL_MAJOR:
		var goodbye := Messages.Goodbye.new()
		goodbye.reason = "protocol mismatch"
		_send([EngineCodec.encode_goodbye(goodbye)])
		_settings_error("protocol mismatch: this plugin speaks %d.%d, the backend %d.%d; update the "
			% [protocol_major, protocol_minor, w.protocol_major, w.protocol_minor]
			+ "plugin or the backend so the major versions match", now)
		return
	if w.transport == Messages.Transport.SHARED_MEMORY:
		var ring := FrameRingReader.new()
		if w.shared_memory == null or not ring.open(
			w.shared_memory.path, w.shared_memory, w.width, w.height
		):
			var why := "Welcome has no shared-memory layout" if w.shared_memory == null \
				else ring.error_message
			var goodbye := Messages.Goodbye.new()
			goodbye.reason = "cannot read the frame ring"
			_send([EngineCodec.encode_goodbye(goodbye)])
			_settings_error(why, now)
			return
		_ring = ring
	welcome = w
	sessions += 1
	_reported_error = ""
	_backend_leaving = false
	stats.reset()
	_backoff_s = BACKOFF_MIN_S
	_last_frame_sequence = 0
	_last_pose_us = 0
	_last_received_us = now
	_set_status(Status.STREAMING, "streaming %dx%d @ %s fps from %s (%s, session %s)" % [
		w.width, w.height, w.fps, _zmtp.endpoint, w.generator, w.session_id
	])
	_restore_clock()
	welcomed.emit(w)


func _restore_clock() -> void:
	# A new session (after a reconnect) starts playing at time 0: put the clock back as it was.
	if _last_scene_time_s >= 0.0:
		_send_time(Messages.TimeAction.SEEK, _last_scene_time_s, 0.0)
	if not _clock_playing:
		_send_time(Messages.TimeAction.PAUSE, 0.0, 0.0)
	if not is_equal_approx(_clock_speed, 1.0):
		_send_time(Messages.TimeAction.SET_SPEED, 0.0, _clock_speed)


func _on_error(error: Messages.BackendError, now: int) -> void:
	if error.code == Messages.ErrorCode.SHUTTING_DOWN:
		# Not a fault of anyone's: the backend is stopping. Reconnect with backoff at once, keeping
		# the last frame, rather than waiting to notice the silence.
		var where := _zmtp.endpoint
		_backend_leaving = true
		_lost("%s to %s" % [SHUTTING_DOWN_STATUS, where], now)
		return
	last_error = error
	stats.backend_errors += 1
	backend_error.emit(error)
	if not error.fatal:
		push_warning("StarBridge backend: %s" % error.describe())
		return
	welcome = null
	_close_ring()
	if error.code in _RESUMABLE:
		# The session ended (e.g. closed for silence): start a new one on this connection.
		_hello_sent = false
		_set_status(Status.RECONNECTING, "session ended: %s; starting a new one" % error.message)
		return
	_settings_error("the backend refused the session: %s" % error.describe(), now)


func _check_timeouts(now: int) -> void:
	if status == Status.HANDSHAKING and now > _hello_deadline_us:
		_lost("no Welcome from %s within %s s" % [_zmtp.endpoint, HELLO_TIMEOUT_S], now)
	elif status == Status.STREAMING and _last_pose_us > _last_received_us:
		var limit := maxf(MIN_SILENCE_TIMEOUT_S, welcome.heartbeat_timeout_s)
		if (now - _last_received_us) / 1e6 > limit:
			_lost("the backend at %s sent nothing for %s s" % [_zmtp.endpoint, limit], now)


func _materialise() -> void:
	if _pending == null:
		return
	var ready := _pending
	_pending = null
	var frame := _buffers[_fill]
	if not _pending_pixels.is_empty():
		if _pending_pixels.size() != ready.width * ready.height * 4:
			push_warning("StarBridge: inline frame %d has %d bytes, expected %dx%dx4" % [
				ready.frame_sequence, _pending_pixels.size(), ready.width, ready.height
			])
			return
		frame.set_from_ready(ready)
		frame.pixels = _pending_pixels
		frame.transport = Messages.Transport.INLINE
		_pending_pixels = PackedByteArray()
	elif _ring != null:
		var ok := _ring.read_slot(ready.slot, frame)
		if not ok or frame.frame_sequence != ready.frame_sequence:
			# The slot was reused meanwhile: the newest frame is the one to show.
			ok = _ring.read_latest(_last_frame_sequence, frame)
		if not ok:
			stats.frames_skipped += 1
			return
	else:
		return
	frame.received_time_us = _pending_received_us
	_last_frame_sequence = frame.frame_sequence
	_last_scene_time_s = frame.scene_time_s
	_frames_ever += 1
	stats.frame(frame.received_time_us, frame.engine_time_us, frame.generation_latency_ms)
	# Hand this frame out; the next one is read into the other object.
	_frame = frame
	_fill = 1 - _fill


func _lost(why: String, now: int) -> void:
	if _backend_leaving and not why.begins_with(SHUTTING_DOWN_STATUS):
		why = "%s: %s" % [SHUTTING_DOWN_STATUS, why]
	_drop_connection()
	_retry_at_us = now + int(_jitter(_backoff_s) * 1e6)
	var kept := " (the last frame stays on screen)" if _frames_ever > 0 else ""
	_set_status(Status.RECONNECTING, "%s; retrying in %.1f s%s" % [why, _backoff_s, kept])
	_backoff_s = minf(_backoff_s * 2.0, BACKOFF_MAX_S)


func _settings_error(why: String, now: int) -> void:
	if why != _reported_error:
		push_error("StarBridge: %s" % why)
		_reported_error = why
	_drop_connection()
	_retry_at_us = now + int(SETTINGS_RETRY_S * 1e6)
	_set_status(Status.ERROR, why)


func _drop_connection() -> void:
	if _zmtp != null:
		_zmtp.close()
		_zmtp = null
	welcome = null
	_hello_sent = false
	_pending = null
	_pending_pixels = PackedByteArray()
	_close_ring()


func _close_ring() -> void:
	_ring = null


func _send(parts: Array[PackedByteArray]) -> bool:
	return _zmtp != null and _zmtp.send(parts)


func _send_time(action: Messages.TimeAction, time_s: float, speed: float) -> void:
	if welcome == null:
		return  # remembered; sent after the next Welcome
	var control := Messages.TimeControl.new()
	control.action = action
	control.time_s = time_s
	control.speed = speed
	_send([EngineCodec.encode_time(control)])


func _set_status(new_status: Status, message: String) -> void:
	if new_status == status and message == status_message:
		return
	status = new_status
	status_message = message
	status_changed.emit(status, message)


static func _jitter(seconds: float) -> float:
	return seconds * randf_range(0.8, 1.2)
