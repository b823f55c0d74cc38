extends RefCounted
## ProtoReader and the decoder on input the golden vectors do not cover: unknown fields
## of every wire type (a newer backend's), bodies this plugin does not know, and malformed bytes.

const Check := preload("../../../check.gd")
const EngineCodec := preload("res://addons/starbridge/core/engine_codec.gd")
const Messages := preload("res://addons/starbridge/core/messages.gd")
const ProtoReader := preload("res://addons/starbridge/core/proto_reader.gd")
const ProtoWriter := preload("res://addons/starbridge/core/proto_writer.gd")

## Fields no .proto defines: field 100 (bytes), field 101 (fixed64), field 102 (varint), field
## 103 (fixed32).
const UNKNOWN := [
	0xA2, 0x06, 0x03, 0x61, 0x62, 0x63,
	0xA9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8,
	0xB0, 0x06, 0x2A,
	0xBD, 0x06, 1, 2, 3, 4,
]


func test_varints_up_to_ten_bytes(t: Check) -> void:
	var cases := {
		"00": 0, "01": 1, "7f": 127, "8001": 128, "ac02": 300,
		"ffffffff0f": 4294967295, "8080808010": 4294967296,
		"ffffffffffffffffff01": -1, "80808080808080808001": -9223372036854775807 - 1,
	}
	for hex: String in cases:
		var r := ProtoReader.new(hex.hex_decode())
		t.eq(r.read_varint(), cases[hex], "varint " + hex)
		t.eq(r.error, "", "varint %s reads cleanly" % hex)
		var w := ProtoWriter.new()
		w.write_raw_varint(cases[hex])
		t.eq(w.bytes.hex_encode(), hex, "written back")


func test_unknown_fields_and_bodies_are_skipped(t: Check) -> void:
	# A FrameReady with unknown fields inside, an unknown body (field 9) before it, and unknown
	# fields after it: what a newer backend may send.
	var body := PackedByteArray([0x08, 0x07, 0x10, 0x02])
	body.append_array(PackedByteArray(UNKNOWN))
	body.append_array(PackedByteArray([0x50, 0x40, 0x58, 0x24]))  # width 64, height 36
	var data := PackedByteArray([0x4A, 0x02, 0x08, 0x01])  # BackendMessage field 9: unknown body
	data.append_array(PackedByteArray([0x12, body.size()]))
	data.append_array(body)
	data.append_array(PackedByteArray(UNKNOWN))
	var msg := EngineCodec.decode_backend(data)
	t.eq(msg.problem, "", "decodes")
	t.eq(msg.body, Messages.Body.FRAME, "the body is the frame")
	t.eq(msg.frame.frame_sequence, 7, "frame_sequence")
	t.eq(msg.frame.slot, 2, "slot")
	t.eq([msg.frame.width, msg.frame.height], [64, 36], "size after the unknown fields")


func test_an_envelope_with_only_unknown_bodies_has_no_body(t: Check) -> void:
	var msg := EngineCodec.decode_backend(PackedByteArray([0x4A, 0x02, 0x08, 0x01]))
	t.eq(msg.problem, "", "no problem")
	t.eq(msg.body, Messages.Body.NONE, "no body this plugin knows")
	t.eq(EngineCodec.decode_backend(PackedByteArray()).body, Messages.Body.NONE,
		"empty envelope")


func test_known_field_with_another_wire_type_is_skipped(t: Check) -> void:
	# Welcome.width (3) as fixed32 instead of a varint; width must stay 0, height is read.
	var body := PackedByteArray([0x1D, 1, 2, 3, 4, 0x20, 0xA0, 0x02])
	var data := PackedByteArray([0x0A, body.size()])
	data.append_array(body)
	var msg := EngineCodec.decode_backend(data)
	t.eq(msg.problem, "", "decodes")
	t.eq(msg.welcome.width, 0, "mistyped width skipped")
	t.eq(msg.welcome.height, 288, "height read")


func test_malformed_input_is_refused_without_reading_past_the_end(t: Check) -> void:
	var cases := {
		"length past the end": PackedByteArray([0x12, 0x05, 0x08]),
		"varint cut short": PackedByteArray([0x12, 0x02, 0x08, 0x80]),
		"eleven-byte varint": PackedByteArray(
			[0x12, 0x0C, 0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]
		),
		"nested length past its parent": PackedByteArray([0x12, 0x03, 0x2A, 0x09, 0x0A]),
		"group wire type": PackedByteArray([0x12, 0x02, 0x0B, 0x0C]),
		"field number 0": PackedByteArray([0x02, 0x00]),
		"fixed32 cut short": PackedByteArray([0x1A, 0x03, 0x25, 0x00, 0x00]),
	}
	for name: String in cases:
		var msg := EngineCodec.decode_backend(cases[name])
		t.ok(not msg.problem.is_empty(), name + " is refused")
		t.eq(msg.body, Messages.Body.NONE, name + " has no body")


func test_garbage_never_crashes_the_decoder(t: Check) -> void:
	var rng := RandomNumberGenerator.new()
	rng.seed = 20240607
	var decoded := 0
	for i in 500:
		var data := PackedByteArray()
		for k in rng.randi_range(0, 40):
			data.append(rng.randi_range(0, 255))
		var msg := EngineCodec.decode_backend(data)
		decoded += 1 if msg.problem.is_empty() else 0
	t.ok(decoded < 500, "random bytes are mostly refused (%d of 500 decoded)" % decoded)
