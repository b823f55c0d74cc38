extends SceneTree
## Reads a frame ring that another process keeps rewriting (test_godot_ring.py: the backend's own
## FrameRingWriter, as fast as it can) and checks every frame the seqlock let through: frame n's
## pixels are all n % 251 and its header fields are functions of n, so a torn copy shows.
##
## godot --headless --path P --script ring_reader_driver.gd -- --ring=PATH --seconds=S --out=F

const Frame := preload("res://addons/starbridge/core/frame.gd")
const FrameRingReader := preload("res://addons/starbridge/core/frame_ring_reader.gd")

var accepted := 0
var inconsistent := 0
var newest := 0
var problems: Array[String] = []


func _initialize() -> void:
	_run()


func _run() -> void:
	await process_frame
	var options := {}
	for arg in OS.get_cmdline_user_args():
		options[arg.trim_prefix("--").get_slice("=", 0)] = arg.get_slice("=", 1)
	var ring := FrameRingReader.new()
	var report := {}
	if ring.open(options["ring"]):
		var frame := Frame.new()
		var expected := PackedByteArray()
		var end := Time.get_ticks_msec() + int(float(options["seconds"]) * 1000.0)
		var slot := 0
		while Time.get_ticks_msec() < end:
			if ring.read_latest(newest, frame):
				_check(frame, expected)
				newest = frame.frame_sequence
			slot = (slot + 1) % ring.slot_count
			if ring.read_slot(slot, frame):
				_check(frame, expected)
		report["torn_reads"] = ring.torn_reads
	report["opened"] = ring.error_message.is_empty()
	report["error"] = ring.error_message
	report["accepted"] = accepted
	report["inconsistent"] = inconsistent
	report["newest"] = newest
	report["problems"] = problems.slice(0, 10)
	var out := FileAccess.open(options["out"], FileAccess.WRITE)
	out.store_string(JSON.stringify(report, "  "))
	out.close()
	quit()


func _check(frame: Frame, expected: PackedByteArray) -> void:
	accepted += 1
	var n := frame.frame_sequence
	if expected.size() != frame.pixels.size():
		expected.resize(frame.pixels.size())
	expected.fill(n % 251)
	var fields_ok := frame.pose_sequence == 3 * n and frame.engine_time_us == 1000 * n \
		and is_equal_approx(frame.scene_time_s, 0.5 * n) and frame.position.x == float(n % 1000) \
		and is_equal_approx(frame.vertical_fov_deg, 40.0 + n % 50)
	if frame.pixels != expected or not fields_ok:
		inconsistent += 1
		if problems.size() < 10:
			problems.append("frame %d: pixels %s, fields %s (pose_sequence %d)" % [
				n, "ok" if frame.pixels == expected else "torn", fields_ok, frame.pose_sequence
			])
