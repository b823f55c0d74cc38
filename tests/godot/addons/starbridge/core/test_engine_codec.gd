extends RefCounted
## EngineCodec against the golden byte vectors of tests/golden (made by the real protobuf
## runtime): every message an engine sends is encoded from the manifest's fields and compared byte
## for byte; every message the backend sends is decoded and compared field by field.

const Check := preload("../../../check.gd")
const EngineCodec := preload("res://addons/starbridge/core/engine_codec.gd")
const Messages := preload("res://addons/starbridge/core/messages.gd")
const ProtoWriter := preload("res://addons/starbridge/core/proto_writer.gd")


func test_every_engine_message_matches_its_golden_bytes(t: Check) -> void:
	var manifest := _manifest(t)
	var seen := 0
	for entry: Dictionary in manifest["messages"]:
		if entry["direction"] != "engine_to_backend":
			continue
		seen += 1
		var name: String = entry["name"]
		var golden := _golden_bytes(t, name)
		t.eq(golden.hex_encode(), entry["hex"], name + ": .bin matches the manifest's hex")
		t.bytes_eq(_encode(entry["fields"]), golden, name)
	t.eq(seen, 12, "engine-to-backend vectors in the manifest")


func test_every_backend_message_decodes_to_its_golden_fields(t: Check) -> void:
	var manifest := _manifest(t)
	var seen := 0
	for entry: Dictionary in manifest["messages"]:
		if entry["direction"] != "backend_to_engine":
			continue
		seen += 1
		var name: String = entry["name"]
		var msg := EngineCodec.decode_backend(_golden_bytes(t, name))
		t.eq(msg.problem, "", name + " decodes")
		t.eq(_fields_of(msg), entry["fields"], name)
	t.eq(seen, 8, "backend-to-engine vectors in the manifest")


func test_protocol_1_1_vectors(t: Check) -> void:
	var notice := EngineCodec.decode_backend(_golden_bytes(t, "error_shutting_down"))
	t.eq(notice.body, Messages.Body.ERROR, "error_shutting_down is an Error")
	t.eq(notice.error.code, Messages.ErrorCode.SHUTTING_DOWN, "code 10")
	t.eq(int(Messages.ErrorCode.SHUTTING_DOWN), 10, "ERROR_CODE_SHUTTING_DOWN = 10")
	t.eq(notice.error.fatal, false, "not fatal")
	t.has_all(notice.error.describe(), ["SHUTTING_DOWN: the backend is shutting down"], "describe")
	var msg := EngineCodec.decode_backend(_golden_bytes(t, "welcome_session_secret"))
	t.eq(msg.problem, "", "welcome_session_secret decodes")
	t.eq(msg.welcome.session_secret, "k3Y-9fQx_2b7Ws0pLr4TzA", "field 14")
	t.eq([msg.welcome.width, msg.welcome.height, msg.welcome.backend_version], [320, 180, "0.2.0"],
		"the fields around it")
	t.eq([Messages.PROTOCOL_MAJOR, Messages.PROTOCOL_MINOR], [1, 1], "this plugin speaks 1.1")


func test_pose_writer_is_reusable(t: Check) -> void:
	var w := ProtoWriter.new()
	var pose := Messages.CameraPose.new()
	pose.sequence = 128
	pose.rotation = Quaternion(0.0, 0.0, 0.0, 1.0)
	pose.vertical_fov_deg = 45.0
	EngineCodec.write_pose(w, pose)
	var first := w.bytes.duplicate()
	pose.sequence = 4294967301
	EngineCodec.write_pose(w, pose)
	EngineCodec.write_pose(w, pose)
	pose.sequence = 128
	EngineCodec.write_pose(w, pose)
	t.bytes_eq(w.bytes, first, "the same pose written again after others")
	t.bytes_eq(first, _golden_bytes(t, "pose_origin"), "pose_origin through write_pose")


func test_long_sub_message_gets_a_two_byte_length(t: Check) -> void:
	# Bodies of 128 bytes or more need a multi-byte length varint inserted before them.
	var hello := Messages.Hello.new()
	hello.client_label = "x".repeat(300)
	var data := EngineCodec.encode_hello(hello)
	var body_length := 6 + 2 + 3 + 300
	var want := PackedByteArray([0x0A, (body_length & 0x7F) | 0x80, body_length >> 7])
	# protocol {major 1, minor 1}, transport SHARED_MEMORY (the default Hello), client_label
	want.append_array(PackedByteArray([0x0A, 0x04, 0x08, 0x01, 0x10, 0x01, 0x40, 0x01]))
	want.append_array(PackedByteArray([0x52, 0xAC, 0x02]))
	want.append_array("x".repeat(300).to_utf8_buffer())
	t.bytes_eq(data, want, "hello with a 300-byte label")
	_dump(t, "hello_long_label.bin", data)


func test_negative_zero_and_unicode_are_written(t: Check) -> void:
	# Zeros made at run time: GDScript folds the literals 0.0 and -0.0 into one constant.
	var zero := float(t.count) * 0.0
	var w := ProtoWriter.new()
	w.write_float(1, -zero)
	w.write_float(2, zero)
	w.write_string(3, "Kamera — Süd")
	w.write_double(4, -zero)
	var want := PackedByteArray([0x0D, 0, 0, 0, 0x80, 0x1A, 15])
	want.append_array("Kamera — Süd".to_utf8_buffer())
	want.append_array(PackedByteArray([0x21, 0, 0, 0, 0, 0, 0, 0, 0x80]))
	t.bytes_eq(w.bytes, want, "-0.0 kept, +0.0 omitted, UTF-8 text")


func test_time_controls_cover_every_action(t: Check) -> void:
	var actions := {
		"time_play": Messages.TimeAction.PLAY,
		"time_pause": Messages.TimeAction.PAUSE,
		"time_seek": Messages.TimeAction.SEEK,
		"time_set_speed": Messages.TimeAction.SET_SPEED,
	}
	for name: String in actions:
		var control := Messages.TimeControl.new()
		control.action = actions[name]
		control.time_s = 12.625 if name == "time_seek" else 0.0
		control.speed = 0.5 if name == "time_set_speed" else 0.0
		t.bytes_eq(EngineCodec.encode_time(control), _golden_bytes(t, name), name)


# ---------------------------------------------------------------- manifest plumbing


func _manifest(t: Check) -> Dictionary:
	var path: String = t.context["golden"].path_join("golden.json")
	var parsed: Variant = JSON.parse_string(FileAccess.get_file_as_string(path))
	t.ok(parsed is Dictionary, "golden.json parses (%s)" % path)
	return parsed if parsed is Dictionary else {"messages": []}


func _golden_bytes(t: Check, name: String) -> PackedByteArray:
	var data := FileAccess.get_file_as_bytes(t.context["golden"].path_join(name + ".bin"))
	t.ok(not data.is_empty() or name == "", "golden %s.bin exists" % name)
	return data


func _dump(t: Check, file: String, data: PackedByteArray) -> void:
	if not t.context.has("tmp"):
		return
	var f := FileAccess.open(t.context["tmp"].path_join(file), FileAccess.WRITE)
	f.store_buffer(data)


## A uint64 from its decimal text (the proto3 JSON mapping writes 64-bit integers as strings),
## as the signed int with the same 64 bits. Two 32-bit limbs: no overflow on the way.
static func u64(text: String) -> int:
	var low := 0
	var high := 0
	for c in text:
		low = low * 10 + c.to_int()
		high = high * 10 + (low >> 32)
		low &= 0xFFFFFFFF
		high &= 0xFFFFFFFF
	var bytes := PackedByteArray()
	bytes.resize(8)
	bytes.encode_u32(0, low)
	bytes.encode_u32(4, high)
	return bytes.decode_s64(0)


## The decimal text of a uint64 held in a signed int.
static func u64_text(value: int) -> String:
	if value >= 0:
		return str(value)
	# u = 2h + b with h = u >> 1 (fits in 63 bits); u / 10 = h / 5, u % 10 = 2 (h % 5) + b.
	var h := (value >> 1) & 0x7FFFFFFFFFFFFFFF
	return str(h / 5) + str(2 * (h % 5) + (value & 1))


func _encode(fields: Dictionary) -> PackedByteArray:
	if fields.has("hello"):
		var h: Dictionary = fields["hello"]
		var hello := Messages.Hello.new()
		hello.protocol_major = int(h.get("protocol", {}).get("major", 0))
		hello.protocol_minor = int(h.get("protocol", {}).get("minor", 0))
		hello.engine_name = h.get("engine_name", "")
		hello.engine_version = h.get("engine_version", "")
		hello.scene_id = h.get("scene_id", "")
		hello.width = int(h.get("width", 0))
		hello.height = int(h.get("height", 0))
		hello.fps = h.get("fps", 0.0)
		hello.transport = _enum(Messages.Transport, h.get("transport", ""), "FRAME_TRANSPORT_")
		hello.token = h.get("token", "")
		hello.client_label = h.get("client_label", "")
		hello.session_id = h.get("session_id", "")
		return EngineCodec.encode_hello(hello)
	if fields.has("pose"):
		var p: Dictionary = fields["pose"]
		var pose := Messages.CameraPose.new()
		pose.sequence = u64(p.get("sequence", "0"))
		pose.engine_time_us = u64(p.get("engine_time_us", "0"))
		var position: Dictionary = p["pose"].get("position", {})
		var rotation: Dictionary = p["pose"].get("rotation", {})
		pose.position = Vector3(
			position.get("x", 0.0), position.get("y", 0.0), position.get("z", 0.0)
		)
		pose.rotation = Quaternion(
			rotation.get("x", 0.0), rotation.get("y", 0.0), rotation.get("z", 0.0),
			rotation.get("w", 0.0)
		)
		pose.vertical_fov_deg = p.get("vertical_fov_deg", 0.0)
		pose.aspect = p.get("aspect", 0.0)
		return EngineCodec.encode_pose(pose)
	if fields.has("time"):
		var c: Dictionary = fields["time"]
		var control := Messages.TimeControl.new()
		control.action = _enum(Messages.TimeAction, c.get("action", ""), "ACTION_")
		control.time_s = c.get("time_s", 0.0)
		control.speed = c.get("speed", 0.0)
		return EngineCodec.encode_time(control)
	var goodbye := Messages.Goodbye.new()
	goodbye.reason = fields["goodbye"].get("reason", "")
	return EngineCodec.encode_goodbye(goodbye)


static func _enum(values: Dictionary, name: String, prefix: String) -> int:
	if name.is_empty():
		return 0
	return values[name.trim_prefix(prefix)]


## The decoded message in the proto3 JSON mapping MessageToDict uses: defaults absent, 64-bit
## integers as strings, enums by name.
func _fields_of(msg: Messages.BackendMessage) -> Dictionary:
	match msg.body:
		Messages.Body.WELCOME:
			return {"welcome": _welcome_fields(msg.welcome)}
		Messages.Body.FRAME:
			return {"frame": _frame_fields(msg.frame)}
		Messages.Body.ERROR:
			var e := msg.error
			var out := {}
			_put(out, "code", "ERROR_CODE_" + Messages.ErrorCode.keys()[e.code], e.code != 0)
			_put(out, "message", e.message, not e.message.is_empty())
			_put(out, "fatal", e.fatal, e.fatal)
			_put(out, "field", e.field, not e.field.is_empty())
			return {"error": out}
	return {}


func _welcome_fields(w: Messages.Welcome) -> Dictionary:
	var out := {}
	_put(out, "session_id", w.session_id, not w.session_id.is_empty())
	var protocol := {}
	_put(protocol, "major", w.protocol_major, w.protocol_major != 0)
	_put(protocol, "minor", w.protocol_minor, w.protocol_minor != 0)
	out["protocol"] = protocol
	_put(out, "width", w.width, w.width != 0)
	_put(out, "height", w.height, w.height != 0)
	_put(out, "fps", w.fps, w.fps != 0.0)
	var transport: String = Messages.Transport.keys()[w.transport]
	_put(out, "transport", "FRAME_TRANSPORT_" + transport, w.transport != 0)
	if w.shared_memory != null:
		var s := w.shared_memory
		var shm := {"path": s.path}
		for key: String in [
			"layout_version", "header_bytes", "slot_count", "slot_bytes", "slot_header_bytes",
			"stride"
		]:
			_put(shm, key, s.get(key), s.get(key) != 0)
		_put(shm, "pixel_format", "PIXEL_FORMAT_RGBA8_SRGB", s.pixel_format == 1)
		_put(shm, "file_bytes", u64_text(s.file_bytes), s.file_bytes != 0)
		out["shared_memory"] = shm
	_put(out, "scene_id", w.scene_id, not w.scene_id.is_empty())
	_put(out, "scene_duration_s", w.scene_duration_s, w.scene_duration_s != 0.0)
	_put(out, "heartbeat_timeout_s", w.heartbeat_timeout_s, w.heartbeat_timeout_s != 0.0)
	_put(out, "block_frames", w.block_frames, w.block_frames != 0)
	_put(out, "generator", w.generator, not w.generator.is_empty())
	_put(out, "backend_version", w.backend_version, not w.backend_version.is_empty())
	_put(out, "session_secret", w.session_secret, not w.session_secret.is_empty())
	return out


func _frame_fields(f: Messages.FrameReady) -> Dictionary:
	var out := {}
	_put(out, "frame_sequence", u64_text(f.frame_sequence), f.frame_sequence != 0)
	_put(out, "slot", f.slot, f.slot != 0)
	_put(out, "pose_sequence", u64_text(f.pose_sequence), f.pose_sequence != 0)
	_put(out, "engine_time_us", u64_text(f.engine_time_us), f.engine_time_us != 0)
	var position := {}
	var p := f.position
	_put(position, "x", p.x, p.x != 0.0)
	_put(position, "y", p.y, p.y != 0.0)
	_put(position, "z", p.z, p.z != 0.0)
	var rotation := {}
	var q := f.rotation
	_put(rotation, "x", q.x, q.x != 0.0)
	_put(rotation, "y", q.y, q.y != 0.0)
	_put(rotation, "z", q.z, q.z != 0.0)
	_put(rotation, "w", q.w, q.w != 0.0)
	out["pose"] = {"position": position, "rotation": rotation}
	_put(out, "vertical_fov_deg", f.vertical_fov_deg, f.vertical_fov_deg != 0.0)
	_put(out, "aspect", f.aspect, f.aspect != 0.0)
	_put(out, "scene_time_s", f.scene_time_s, f.scene_time_s != 0.0)
	_put(out, "generation_latency_ms", f.generation_latency_ms, f.generation_latency_ms != 0.0)
	_put(out, "width", f.width, f.width != 0)
	_put(out, "height", f.height, f.height != 0)
	return out


static func _put(out: Dictionary, key: String, value: Variant, present: bool) -> void:
	if present:
		out[key] = float(value) if value is int else value
