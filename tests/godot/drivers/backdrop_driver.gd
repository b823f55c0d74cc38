extends SceneTree
## Runs a NeuralBackdrop (the whole node: client, ring reader, texture upload) headless against a
## backend and records what happens, for tests/godot/test_godot_live.py and test_godot_libzmq.py.
##
## godot --headless --path P --script backdrop_driver.gd -- --endpoint=tcp://127.0.0.1:N
##     --out=SUMMARY.json --events=EVENTS.jsonl [--transport=shm|inline] [--label=TEXT]
##     [--protocol=M.m] [--size=WxH] [--fps=F] [--yaw=DEG] [--pause] [--seconds=S]
##     [--frames=N] [--sessions=N] [--until-error] [--dump=DIR]
##
## Without --size and --fps the node keeps its defaults (0: the backend's size and rate).
##
## Stops after --seconds, or once --sessions sessions started and the last one delivered --frames
## frames, or (--until-error) when the status is ERROR. Events are JSON lines, flushed at once so a
## test can act on them while this runs; --dump writes the newest frame of each session
## (frame-<session>.rgba, .json).

const Backdrop := preload("res://addons/starbridge/neural_backdrop.gd")
const BackdropClient := preload("res://addons/starbridge/core/backdrop_client.gd")
const Frame := preload("res://addons/starbridge/core/frame.gd")
const Messages := preload("res://addons/starbridge/core/messages.gd")

var options := {}
var events: FileAccess = null
var backdrop: Backdrop = null
var started_ms := 0
var frames_this_session := 0
var sessions := 0
var errors: Array = []
var latest: Frame = null
var latest_session := ""


func _initialize() -> void:
	_run()


func _run() -> void:
	await process_frame
	for arg in OS.get_cmdline_user_args():
		var key := arg.trim_prefix("--").get_slice("=", 0)
		options[key] = arg.get_slice("=", 1) if "=" in arg else "true"
	events = FileAccess.open(options["events"], FileAccess.WRITE)
	started_ms = Time.get_ticks_msec()
	var level := Node3D.new()
	var camera := Camera3D.new()
	camera.fov = 60.0
	camera.position = Vector3(0.0, 1.6, 0.0)
	camera.rotation_degrees = Vector3(0.0, float(options.get("yaw", "0")), 0.0)
	level.add_child(camera)
	backdrop = Backdrop.new()
	backdrop.autostart = false
	backdrop.camera = camera
	backdrop.position = Vector3(0.0, 1.6, 0.0)
	backdrop.server = options["endpoint"]
	backdrop.transport = (Backdrop.Transport.INLINE if options.get("transport") == "inline"
		else Backdrop.Transport.SHARED_MEMORY)
	if options.has("size"):
		backdrop.width = options["size"].get_slice("x", 0).to_int()
		backdrop.height = options["size"].get_slice("x", 1).to_int()
	if options.has("fps"):
		backdrop.fps = float(options["fps"])
	backdrop.playing = not options.has("pause")
	level.add_child(backdrop)
	root.add_child(level)
	var client := backdrop.get_client()
	client.client_label = options.get("label", "")
	if options.has("protocol"):
		client.protocol_major = options["protocol"].get_slice(".", 0).to_int()
		client.protocol_minor = options["protocol"].get_slice(".", 1).to_int()
	backdrop.status_changed.connect(_on_status)
	backdrop.session_started.connect(_on_session)
	backdrop.frame_presented.connect(_on_frame)
	backdrop.backend_error.connect(_on_error)
	backdrop.connect_to_backend()
	if options.has("label"):
		client.client_label = options["label"]
	var seconds := float(options.get("seconds", "20"))
	while Time.get_ticks_msec() - started_ms < seconds * 1000.0 and not _done():
		await process_frame
	_finish()


func _done() -> bool:
	if options.has("until-error") and backdrop.get_client().status == BackdropClient.Status.ERROR:
		return true
	if options.has("frames"):
		return sessions >= int(options.get("sessions", "1")) \
			and frames_this_session >= int(options["frames"])
	return false


func _emit(kind: String, data: Dictionary) -> void:
	data["event"] = kind
	data["t_ms"] = Time.get_ticks_msec() - started_ms
	events.store_line(JSON.stringify(data))
	events.flush()


func _on_status(status: BackdropClient.Status, message: String) -> void:
	_emit("status", {"status": BackdropClient.Status.keys()[status], "message": message})


func _on_session(welcome: Messages.Welcome) -> void:
	_dump_latest()
	sessions += 1
	frames_this_session = 0
	latest_session = welcome.session_id
	var ring := welcome.shared_memory.path if welcome.shared_memory != null else ""
	_emit("welcome", {
		"session_id": welcome.session_id, "width": welcome.width, "height": welcome.height,
		"fps": welcome.fps, "transport": Messages.Transport.keys()[welcome.transport],
		"ring": ring, "protocol": "%d.%d" % [welcome.protocol_major, welcome.protocol_minor],
		"generator": welcome.generator, "heartbeat_timeout_s": welcome.heartbeat_timeout_s,
	})


func _on_frame(frame: Frame) -> void:
	frames_this_session += 1
	latest = Frame.new()
	for property: String in [
		"frame_sequence", "slot", "pose_sequence", "engine_time_us", "position", "rotation",
		"vertical_fov_deg", "aspect", "scene_time_s", "generation_latency_ms", "width", "height",
		"received_time_us", "transport", "pixels",
	]:
		latest.set(property, frame.get(property))
	var q := frame.rotation
	_emit("frame", {
		"session_id": latest_session, "frame_sequence": frame.frame_sequence,
		"pose_sequence": frame.pose_sequence, "slot": frame.slot,
		"transport": Messages.Transport.keys()[frame.transport],
		"rotation": [q.x, q.y, q.z, q.w],
		"position": [frame.position.x, frame.position.y, frame.position.z],
		"fov": frame.vertical_fov_deg, "aspect": frame.aspect, "scene_time_s": frame.scene_time_s,
		"latency_ms": (frame.received_time_us - frame.engine_time_us) / 1000.0,
		"bytes": frame.pixels.size(), "first_byte": frame.pixels[0] if frame.pixels.size() else -1,
		"uploads": backdrop.get_surface().uploads,
	})


func _on_error(error: Messages.BackendError) -> void:
	errors.append(error.describe())
	_emit("error", {
		"code": Messages.ErrorCode.keys()[error.code], "message": error.message,
		"fatal": error.fatal, "field": error.field,
	})


func _dump_latest() -> void:
	if latest == null or not options.has("dump"):
		return
	var base: String = options["dump"].path_join("frame-" + latest_session)
	var raw := FileAccess.open(base + ".rgba", FileAccess.WRITE)
	raw.store_buffer(latest.pixels)
	raw.close()
	var q := latest.rotation
	var meta := FileAccess.open(base + ".json", FileAccess.WRITE)
	meta.store_string(JSON.stringify({
		"session_id": latest_session, "frame_sequence": latest.frame_sequence,
		"width": latest.width, "height": latest.height, "fov": latest.vertical_fov_deg,
		"aspect": latest.aspect, "scene_time_s": latest.scene_time_s,
		"position": [latest.position.x, latest.position.y, latest.position.z],
		"rotation": [q.x, q.y, q.z, q.w],
		"transport": Messages.Transport.keys()[latest.transport],
	}))
	meta.close()


func _finish() -> void:
	_dump_latest()
	var client := backdrop.get_client()
	var surface := backdrop.get_surface()
	var summary := {
		"status": BackdropClient.Status.keys()[client.status],
		"status_message": client.status_message, "status_text": backdrop.status_text,
		"sessions": sessions, "frames": client.stats.frames, "poses_sent": client.stats.poses_sent,
		"fps": client.stats.fps(), "latency_p50_ms": client.stats.latency_ms(0.5),
		"latency_p95_ms": client.stats.latency_ms(0.95), "uploads": surface.uploads,
		"textures_made": surface.textures_made, "errors": errors,
		"texture_size": [surface.texture.get_width(), surface.texture.get_height()]
			if surface.texture != null else [0, 0],
		"settings": [backdrop.width, backdrop.height, backdrop.fps],
		"has_frame": surface.material.get_shader_parameter("has_frame") == true,
		"environment_sky": surface.attached_environment() != null
			and surface.attached_environment().sky == surface.sky,
		"seconds": (Time.get_ticks_msec() - started_ms) / 1000.0,
		"viewport_aspect": root.get_visible_rect().size.x / root.get_visible_rect().size.y,
	}
	backdrop.disconnect_from_backend("driver finished")
	var out := FileAccess.open(options["out"], FileAccess.WRITE)
	out.store_string(JSON.stringify(summary, "  "))
	out.close()
	events.close()
	# One more frame so the Goodbye leaves before the engine exits.
	await process_frame
	quit()
