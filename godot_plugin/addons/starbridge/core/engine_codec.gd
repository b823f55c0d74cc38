extends RefCounted
## Encodes the envelopes an engine sends and decodes the ones the backend sends.
##
## Field numbers are those of protos/starbridge/v1/engine.proto; the bytes match the protobuf
## runtime's deterministic serialization, which the tests check against the golden vectors in
## tests/golden/ byte for byte. [code]EngineMessage[/code] bodies: hello 1, pose 2, time 3,
## goodbye 4. [code]BackendMessage[/code] bodies: welcome 1, frame 2, error 3.

const Messages := preload("res://addons/starbridge/core/messages.gd")
const ProtoReader := preload("res://addons/starbridge/core/proto_reader.gd")
const ProtoWriter := preload("res://addons/starbridge/core/proto_writer.gd")

# Wire types (ProtoReader's), as literals so match patterns can use them.
const _VARINT := 0
const _I64 := 1
const _LEN := 2
const _I32 := 5

const _ENGINE_HELLO := 1
const _ENGINE_POSE := 2
const _ENGINE_TIME := 3
const _ENGINE_GOODBYE := 4
const _BACKEND_WELCOME := 1
const _BACKEND_FRAME := 2
const _BACKEND_ERROR := 3


## An [code]EngineMessage[/code] holding [param hello].
static func encode_hello(hello: Messages.Hello) -> PackedByteArray:
	var w := ProtoWriter.new()
	var body := w.begin_message(_ENGINE_HELLO)
	var protocol := w.begin_message(1)
	w.write_varint(1, hello.protocol_major)
	w.write_varint(2, hello.protocol_minor)
	w.end_message(protocol)
	w.write_string(2, hello.engine_name)
	w.write_string(3, hello.engine_version)
	w.write_string(4, hello.scene_id)
	w.write_varint(5, hello.width)
	w.write_varint(6, hello.height)
	w.write_float(7, hello.fps)
	w.write_varint(8, hello.transport)
	w.write_string(9, hello.token)
	w.write_string(10, hello.client_label)
	w.write_string(11, hello.session_id)
	w.end_message(body)
	return w.bytes


## Writes an [code]EngineMessage[/code] holding [param pose] into [param w] (cleared first), so
## a caller sending a pose every tick reuses one writer.
static func write_pose(w: ProtoWriter, pose: Messages.CameraPose) -> void:
	w.clear()
	var body := w.begin_message(_ENGINE_POSE)
	w.write_varint(1, pose.sequence)
	w.write_varint(2, pose.engine_time_us)
	var camera := w.begin_message(3)
	var position := w.begin_message(1)
	w.write_float(1, pose.position.x)
	w.write_float(2, pose.position.y)
	w.write_float(3, pose.position.z)
	w.end_message(position)
	var rotation := w.begin_message(2)
	w.write_float(1, pose.rotation.x)
	w.write_float(2, pose.rotation.y)
	w.write_float(3, pose.rotation.z)
	w.write_float(4, pose.rotation.w)
	w.end_message(rotation)
	w.end_message(camera)
	w.write_float(4, pose.vertical_fov_deg)
	w.write_float(5, pose.aspect)
	w.end_message(body)


## An [code]EngineMessage[/code] holding [param pose].
static func encode_pose(pose: Messages.CameraPose) -> PackedByteArray:
	var w := ProtoWriter.new()
	write_pose(w, pose)
	return w.bytes


## An [code]EngineMessage[/code] holding [param control].
static func encode_time(control: Messages.TimeControl) -> PackedByteArray:
	var w := ProtoWriter.new()
	var body := w.begin_message(_ENGINE_TIME)
	w.write_varint(1, control.action)
	w.write_double(2, control.time_s)
	w.write_float(3, control.speed)
	w.end_message(body)
	return w.bytes


## An [code]EngineMessage[/code] holding [param goodbye] (present even with no reason).
static func encode_goodbye(goodbye: Messages.Goodbye) -> PackedByteArray:
	var w := ProtoWriter.new()
	var body := w.begin_message(_ENGINE_GOODBYE)
	w.write_string(1, goodbye.reason)
	w.end_message(body)
	return w.bytes


## Decodes a [code]BackendMessage[/code]. When the bytes are not a valid envelope the result's
## [code]BackendMessage.problem[/code] says why (and its body is NONE); an envelope
## with no body this plugin knows (a newer backend's) has body NONE and no problem.
static func decode_backend(data: PackedByteArray) -> Messages.BackendMessage:
	var msg := Messages.BackendMessage.new()
	var r := ProtoReader.new(data)
	while r.next_field():
		if r.wire_type != _LEN:
			r.skip()
			continue
		match r.field_number:
			_BACKEND_WELCOME:
				msg.welcome = _read_welcome(_sub(r))
				msg.body = Messages.Body.WELCOME
			_BACKEND_FRAME:
				msg.frame = _read_frame(_sub(r))
				msg.body = Messages.Body.FRAME
			_BACKEND_ERROR:
				msg.error = _read_error(_sub(r))
				msg.body = Messages.Body.ERROR
			_:
				r.skip()
	if not r.error.is_empty():
		msg.body = Messages.Body.NONE
		msg.problem = "%d bytes are not a BackendMessage: %s" % [data.size(), r.error]
	return msg


# A reader over the sub-message at the position of r; its errors are also r's (see parent).
static func _sub(r: ProtoReader) -> ProtoReader:
	var sub := r.read_message()
	sub.parent = r
	return sub


static func _read_version(r: ProtoReader) -> Vector2i:
	var version := Vector2i.ZERO
	while r.next_field():
		if r.field_number == 1 and r.wire_type == _VARINT:
			version.x = r.read_varint()
		elif r.field_number == 2 and r.wire_type == _VARINT:
			version.y = r.read_varint()
		else:
			r.skip()
	return version


static func _read_welcome(r: ProtoReader) -> Messages.Welcome:
	var w := Messages.Welcome.new()
	while r.next_field():
		match [r.field_number, r.wire_type]:
			[1, _LEN]:
				w.session_id = r.read_string()
			[2, _LEN]:
				var version := _read_version(_sub(r))
				w.protocol_major = version.x
				w.protocol_minor = version.y
			[3, _VARINT]:
				w.width = r.read_varint()
			[4, _VARINT]:
				w.height = r.read_varint()
			[5, _I32]:
				w.fps = r.read_float()
			[6, _VARINT]:
				w.transport = r.read_varint() as Messages.Transport
			[7, _LEN]:
				w.shared_memory = _read_layout(_sub(r))
			[8, _LEN]:
				w.scene_id = r.read_string()
			[9, _I64]:
				w.scene_duration_s = r.read_double()
			[10, _I32]:
				w.heartbeat_timeout_s = r.read_float()
			[11, _VARINT]:
				w.block_frames = r.read_varint()
			[12, _LEN]:
				w.generator = r.read_string()
			[13, _LEN]:
				w.backend_version = r.read_string()
			[14, _LEN]:
				w.session_secret = r.read_string()
			_:
				r.skip()
	return w


static func _read_layout(r: ProtoReader) -> Messages.SharedMemoryLayout:
	var s := Messages.SharedMemoryLayout.new()
	while r.next_field():
		if r.field_number == 1 and r.wire_type == _LEN:
			s.path = r.read_string()
		elif r.field_number >= 2 and r.field_number <= 9 and r.wire_type == _VARINT:
			var value := r.read_varint()
			match r.field_number:
				2:
					s.layout_version = value
				3:
					s.header_bytes = value
				4:
					s.slot_count = value
				5:
					s.slot_bytes = value
				6:
					s.slot_header_bytes = value
				7:
					s.stride = value
				8:
					s.pixel_format = value
				9:
					s.file_bytes = value
		else:
			r.skip()
	return s


static func _read_pose(r: ProtoReader, frame: Messages.FrameReady) -> void:
	while r.next_field():
		if r.wire_type != _LEN or r.field_number > 2:
			r.skip()
			continue
		var sub := _sub(r)
		var values := PackedFloat64Array([0.0, 0.0, 0.0, 0.0])
		while sub.next_field():
			if sub.wire_type == _I32 and sub.field_number >= 1 and sub.field_number <= 4:
				values[sub.field_number - 1] = sub.read_float()
			else:
				sub.skip()
		if r.field_number == 1:
			frame.position = Vector3(values[0], values[1], values[2])
		else:
			frame.rotation = Quaternion(values[0], values[1], values[2], values[3])


static func _read_frame(r: ProtoReader) -> Messages.FrameReady:
	var f := Messages.FrameReady.new()
	while r.next_field():
		match [r.field_number, r.wire_type]:
			[1, _VARINT]:
				f.frame_sequence = r.read_varint()
			[2, _VARINT]:
				f.slot = r.read_varint()
			[3, _VARINT]:
				f.pose_sequence = r.read_varint()
			[4, _VARINT]:
				f.engine_time_us = r.read_varint()
			[5, _LEN]:
				_read_pose(_sub(r), f)
			[6, _I32]:
				f.vertical_fov_deg = r.read_float()
			[7, _I32]:
				f.aspect = r.read_float()
			[8, _I64]:
				f.scene_time_s = r.read_double()
			[9, _I32]:
				f.generation_latency_ms = r.read_float()
			[10, _VARINT]:
				f.width = r.read_varint()
			[11, _VARINT]:
				f.height = r.read_varint()
			_:
				r.skip()
	return f


static func _read_error(r: ProtoReader) -> Messages.BackendError:
	var e := Messages.BackendError.new()
	while r.next_field():
		match [r.field_number, r.wire_type]:
			[1, _VARINT]:
				e.code = r.read_varint() as Messages.ErrorCode
			[2, _LEN]:
				e.message = r.read_string()
			[3, _VARINT]:
				e.fatal = r.read_bool()
			[4, _LEN]:
				e.field = r.read_string()
			_:
				r.skip()
	return e
