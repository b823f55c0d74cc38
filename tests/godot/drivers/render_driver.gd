extends SceneTree
## Renders the demo level with the neural backdrop on a (virtual) screen and saves screenshots for
## tests/godot/test_godot_rendered.py, with what it needs to check them (camera poses, the frames
## shown, masks of where the level covers the backdrop).
##
## godot --rendering-driver opengl3 --resolution 640x360 --path P --script render_driver.gd --
##     --endpoint=tcp://127.0.0.1:N --out=DIR [--transport=shm|inline] [--size=WxH]
##
## Shots (DIR/*.png), camera A = yaw 0, camera B = yaw 12 and pitch 4 degrees:
##   a_fresh: a frame generated for camera A, seen from A;  a_mask: the same with the backdrop flat
##   magenta (where it shows = background);  b_late_reprojected / b_late_plain: camera turned to B
##   while still showing A's frame, with and without reprojection;  b_mask;  b_fresh: a frame made
##   for B;  turn_0..3: the camera turning with frames flowing.
## DIR/report.json: camera fov, viewport size, per-shot camera rotation (scene space, x y z w),
## and the frames shown (DIR/frame_a.*, DIR/frame_b.*: raw RGBA + JSON).

const Backdrop := preload("res://addons/starbridge/neural_backdrop.gd")
const Frame := preload("res://addons/starbridge/core/frame.gd")
const WirePose := preload("res://addons/starbridge/core/wire_pose.gd")

const MASK_COLOR := Color(1.0, 0.0, 1.0)
const CAMERA_A := Vector2(0.0, 0.0)
const CAMERA_B := Vector2(12.0, 4.0)
const TURN := [-16.0, -6.0, 6.0, 16.0]
const WAIT_FRAMES := 600

var options := {}
var report := {"shots": {}, "frames": {}}
var backdrop: Backdrop = null
var camera: Camera3D = null
var latest: Frame = null
var frames_seen := 0


func _initialize() -> void:
	_run()


func _run() -> void:
	await process_frame
	for arg in OS.get_cmdline_user_args():
		options[arg.trim_prefix("--").get_slice("=", 0)] = arg.get_slice("=", 1)
	var level: Node = load("res://demo/demo.tscn").instantiate()
	level.get_node("HUD").visible = false
	camera = level.get_node("Camera")
	backdrop = level.get_node("NeuralBackdrop")
	backdrop.server = options["endpoint"]
	backdrop.transport = (Backdrop.Transport.INLINE if options.get("transport") == "inline"
		else Backdrop.Transport.SHARED_MEMORY)
	var size: String = options.get("size", "320x180")
	backdrop.width = size.get_slice("x", 0).to_int()
	backdrop.height = size.get_slice("x", 1).to_int()
	backdrop.playing = false  # a frozen instant: frames differ only by the camera
	backdrop.frame_presented.connect(_on_frame)
	root.add_child(level)
	camera.set_process(false)  # the demo's look-around: this script turns the camera
	camera.set_process_unhandled_input(false)
	report["viewport"] = [root.get_visible_rect().size.x, root.get_visible_rect().size.y]
	report["camera_fov"] = camera.fov
	report["ok"] = await _shoot_all()
	report["status_text"] = backdrop.status_text
	report["uploads"] = backdrop.get_surface().uploads
	report["textures_made"] = backdrop.get_surface().textures_made
	var out := FileAccess.open(options["out"].path_join("report.json"), FileAccess.WRITE)
	out.store_string(JSON.stringify(report, "  "))
	out.close()
	backdrop.disconnect_from_backend("render test done")
	await process_frame
	quit()


func _shoot_all() -> bool:
	_aim(CAMERA_A)
	if not await _fresh_frame("frame_a"):
		return false
	await _shot("a_fresh")
	await _mask("a_mask")
	_aim(CAMERA_B)  # the frame on screen is still A's: a late frame
	await _shot("b_late_reprojected")
	backdrop.reproject = false
	await _shot("b_late_plain")
	backdrop.reproject = true
	await _mask("b_mask")
	if not await _fresh_frame("frame_b"):
		return false
	await _shot("b_fresh")
	backdrop.hold_frame = false
	for k in TURN.size():
		_aim(Vector2(TURN[k], 0.0))
		for i in 12:
			await process_frame
		await _shot("turn_%d" % k)
	return true


func _aim(yaw_pitch: Vector2) -> void:
	camera.rotation_degrees = Vector3(yaw_pitch.y, yaw_pitch.x, 0.0)


## Waits for a frame generated for the camera as it is now (and the same scene instant as the
## frame before), keeps it on screen, and dumps it.
func _fresh_frame(name: String) -> bool:
	backdrop.hold_frame = false
	var want := WirePose.rotation_of(
		WirePose.camera_to_scene(backdrop.global_transform, camera.global_transform)
	)
	var previous_time := -1.0
	var seen := frames_seen
	for i in WAIT_FRAMES:
		await process_frame
		if frames_seen == seen or latest == null:
			continue
		seen = frames_seen
		var matches := absf(latest.rotation.dot(want)) > 1.0 - 1e-7
		if matches and is_equal_approx(latest.scene_time_s, previous_time):
			backdrop.hold_frame = true  # this frame stays on screen from now on
			_dump(name, latest)
			return true
		previous_time = latest.scene_time_s
	report["failed"] = "no frame for the camera within %d frames: %s" % [
		WAIT_FRAMES, backdrop.status_text
	]
	return false


func _on_frame(frame: Frame) -> void:
	frames_seen += 1
	latest = frame


func _shot(name: String) -> void:
	for i in 3:
		await RenderingServer.frame_post_draw
	root.get_texture().get_image().save_png(options["out"].path_join(name + ".png"))
	var q := WirePose.rotation_of(
		WirePose.camera_to_scene(backdrop.global_transform, camera.global_transform)
	)
	report["shots"][name] = {"rotation": [q.x, q.y, q.z, q.w], "reproject": backdrop.reproject}


func _mask(name: String) -> void:
	backdrop.get_surface().show_flat(MASK_COLOR)
	await _shot(name)
	backdrop.get_surface().show_last_frame()


func _dump(name: String, frame: Frame) -> void:
	var base: String = options["out"].path_join(name)
	var raw := FileAccess.open(base + ".rgba", FileAccess.WRITE)
	raw.store_buffer(frame.pixels)
	raw.close()
	var q := frame.rotation
	var meta := {
		"frame_sequence": frame.frame_sequence, "width": frame.width, "height": frame.height,
		"fov": frame.vertical_fov_deg, "aspect": frame.aspect, "scene_time_s": frame.scene_time_s,
		"position": [frame.position.x, frame.position.y, frame.position.z],
		"rotation": [q.x, q.y, q.z, q.w],
	}
	var f := FileAccess.open(base + ".json", FileAccess.WRITE)
	f.store_string(JSON.stringify(meta))
	f.close()
	report["frames"][name] = meta
