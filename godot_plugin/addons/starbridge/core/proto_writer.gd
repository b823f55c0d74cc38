extends RefCounted
## A minimal protocol buffers writer: the encoding the engine-channel envelopes need.
##
## Implements the wire format of https://protobuf.dev/programming-guides/encoding/ for the field
## kinds engine.proto lets an engine send: varints ([code]uint32[/code], [code]uint64[/code],
## [code]bool[/code], enums), [code]fixed32[/code] floats, [code]fixed64[/code] doubles and
## length-delimited strings and sub-messages. A field is its tag, the varint
## [code](field_number << 3) | wire_type[/code], then its value; varints are little-endian groups
## of 7 bits with the high bit set on every group but the last; floats and doubles are IEEE 754,
## little-endian. Like proto3's own serializers, scalar fields holding their default value (0,
## +0.0, "", false) are omitted; sub-messages are always written, empty ones included.[br]
## Sub-messages are written in place: [method begin_message] reserves one length byte,
## [method end_message] fills it in and, for bodies of 128 bytes or more, inserts the extra
## length bytes; no temporary buffers.[br]
## [codeblock]
## var w := ProtoWriter.new()
## var body := w.begin_message(2)   # EngineMessage.pose
## w.write_varint(1, sequence)
## w.end_message(body)
## socket.send([w.bytes])
## [/codeblock]

## Wire types (the low three bits of a tag).
const WIRE_VARINT := 0
const WIRE_I64 := 1
const WIRE_LEN := 2
const WIRE_I32 := 5
## Bits 7..63 of a value shifted right by 7: masks off the sign extension of [code]>>[/code].
const _LOW_57_BITS := 0x01FFFFFFFFFFFFFF

## The encoded bytes so far.
var bytes := PackedByteArray()


## Forgets what was written.
func clear() -> void:
	bytes.clear()


## A tag: field number and wire type.
func write_tag(field_number: int, wire_type: int) -> void:
	write_raw_varint((field_number << 3) | wire_type)


## A bare varint. Negative values are written as their 64-bit two's complement (10 bytes), which
## is how a [code]uint64[/code] above 2^63 - 1 is held in a GDScript [int].
func write_raw_varint(value: int) -> void:
	var v := value
	while v < 0 or v >= 0x80:
		bytes.append((v & 0x7F) | 0x80)
		v = (v >> 7) & _LOW_57_BITS
	bytes.append(v)


## A varint field ([code]uint32[/code], [code]uint64[/code], enum); omitted when 0.
func write_varint(field_number: int, value: int) -> void:
	if value == 0:
		return
	write_tag(field_number, WIRE_VARINT)
	write_raw_varint(value)


## A [code]bool[/code] field; omitted when false.
func write_bool(field_number: int, value: bool) -> void:
	write_varint(field_number, 1 if value else 0)


## A [code]float[/code] field (fixed32, single precision); omitted when +0.0.
func write_float(field_number: int, value: float) -> void:
	if _is_positive_zero(value):
		return
	write_tag(field_number, WIRE_I32)
	var at := bytes.size()
	bytes.resize(at + 4)
	bytes.encode_float(at, value)


## A [code]double[/code] field (fixed64); omitted when +0.0.
func write_double(field_number: int, value: float) -> void:
	if _is_positive_zero(value):
		return
	write_tag(field_number, WIRE_I64)
	var at := bytes.size()
	bytes.resize(at + 8)
	bytes.encode_double(at, value)


## A [code]string[/code] field, UTF-8; omitted when empty.
func write_string(field_number: int, value: String) -> void:
	if value.is_empty():
		return
	write_bytes(field_number, value.to_utf8_buffer())


## A [code]bytes[/code] field; written even when empty (callers decide about defaults).
func write_bytes(field_number: int, value: PackedByteArray) -> void:
	write_tag(field_number, WIRE_LEN)
	write_raw_varint(value.size())
	bytes.append_array(value)


## Starts a sub-message field; returns the mark to pass to [method end_message].
func begin_message(field_number: int) -> int:
	write_tag(field_number, WIRE_LEN)
	bytes.append(0)
	return bytes.size() - 1


## Ends the sub-message started at [param mark]: writes its length before its body.
func end_message(mark: int) -> void:
	var length := bytes.size() - mark - 1
	if length < 0x80:
		bytes[mark] = length
		return
	var extra := PackedByteArray()
	var v := length
	while v >= 0x80:
		extra.append((v & 0x7F) | 0x80)
		v >>= 7
	extra.append(v)
	bytes[mark] = extra[0]
	for i in range(1, extra.size()):
		bytes.insert(mark + i, extra[i])


static func _is_positive_zero(value: float) -> bool:
	# -0.0 == 0.0, but proto3 writes -0.0 (its bits are not zero); 1 / -0.0 is -inf.
	return value == 0.0 and 1.0 / value > 0.0
