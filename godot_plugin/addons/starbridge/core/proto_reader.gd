extends RefCounted
## A minimal protocol buffers reader for the envelopes the backend sends.
##
## Reads the wire format of https://protobuf.dev/programming-guides/encoding/ field by field:
## [method next_field] reads a tag (the varint [code](field_number << 3) | wire_type[/code]) and
## sets [member field_number] and [member wire_type]; the caller then reads the value with the
## method for that wire type, or [method skip]s it. Unknown fields are skipped, as proto3
## requires, for every wire type but the deprecated groups (3, 4), which proto3 never writes.
## A known field arriving with another wire type is skipped too.[br]
## Malformed input (a varint longer than 10 bytes, a length past the end) never reads out of
## bounds: it stops the reader and sets [member error].[br]
## [codeblock]
## var r := ProtoReader.new(data)
## while r.next_field():
##     if r.field_number == 1 and r.wire_type == ProtoReader.WIRE_VARINT:
##         sequence = r.read_varint()
##     else:
##         r.skip()
## if not r.error.is_empty(): ...
## [/codeblock]

const ProtoReader := preload("res://addons/starbridge/core/proto_reader.gd")

## Wire types.
const WIRE_VARINT := 0
const WIRE_I64 := 1
const WIRE_LEN := 2
const WIRE_SGROUP := 3
const WIRE_EGROUP := 4
const WIRE_I32 := 5
## The longest varint: 64 bits in groups of 7.
const MAX_VARINT_BYTES := 10

## The field just read by [method next_field].
var field_number := 0
var wire_type := 0
## Empty, or what was wrong with the input (reading stops at the first error).
var error := ""
## The reader of the enclosing message, if any: an error here is reported there too, so a
## caller checks only the outermost reader.
var parent: ProtoReader = null

var _data: PackedByteArray
var _pos := 0
var _end := 0


## Reads [param data] from byte [param start] up to [param end] (-1: its end).
func _init(data: PackedByteArray, start: int = 0, end: int = -1) -> void:
	_data = data
	_pos = start
	_end = data.size() if end < 0 else end


## Reads the next tag; false at the end of the input or on an error.
func next_field() -> bool:
	if _pos >= _end or not error.is_empty():
		return false
	var tag := read_varint()
	if not error.is_empty():
		return false
	field_number = tag >> 3
	wire_type = tag & 7
	if field_number <= 0:
		_fail("field number 0 at byte %d" % _pos)
		return false
	return true


## A varint value (uint64 bits in a signed [int]).
func read_varint() -> int:
	var result := 0
	var shift := 0
	while shift < 7 * MAX_VARINT_BYTES:
		if _pos >= _end:
			_fail("varint runs past the end of the message at byte %d" % _pos)
			return 0
		var b := _data[_pos]
		_pos += 1
		result |= (b & 0x7F) << shift
		if b < 0x80:
			return result
		shift += 7
	_fail("varint longer than %d bytes at byte %d" % [MAX_VARINT_BYTES, _pos])
	return 0


## A [code]fixed32[/code] float.
func read_float() -> float:
	if not _need(4):
		return 0.0
	var value := _data.decode_float(_pos)
	_pos += 4
	return value


## A [code]fixed64[/code] double.
func read_double() -> float:
	if not _need(8):
		return 0.0
	var value := _data.decode_double(_pos)
	_pos += 8
	return value


## A [code]bool[/code] (a varint, anything but 0 is true).
func read_bool() -> bool:
	return read_varint() != 0


## A length-delimited value as bytes.
func read_bytes() -> PackedByteArray:
	var length := _read_length()
	if length < 0:
		return PackedByteArray()
	var value := _data.slice(_pos, _pos + length)
	_pos += length
	return value


## A length-delimited value as UTF-8 text.
func read_string() -> String:
	return read_bytes().get_string_from_utf8()


## A sub-message: a reader over its bytes (no copy); this reader moves past it.
func read_message() -> ProtoReader:
	var length := _read_length()
	if length < 0:
		return ProtoReader.new(PackedByteArray())
	var sub := ProtoReader.new(_data, _pos, _pos + length)
	_pos += length
	return sub


## Skips the value of the current field.
func skip() -> void:
	match wire_type:
		WIRE_VARINT:
			read_varint()
		WIRE_I64:
			if _need(8):
				_pos += 8
		WIRE_LEN:
			var length := _read_length()
			if length >= 0:
				_pos += length
		WIRE_I32:
			if _need(4):
				_pos += 4
		_:
			_fail("field %d has wire type %d, which proto3 does not use" % [
				field_number, wire_type
			])


func _read_length() -> int:
	var length := read_varint()
	if not error.is_empty():
		return -1
	if length < 0 or length > _end - _pos:
		_fail("field %d claims %d bytes, %d are left" % [field_number, length, _end - _pos])
		return -1
	return length


func _need(count: int) -> bool:
	if _end - _pos < count:
		_fail("field %d needs %d bytes, %d are left" % [field_number, count, _end - _pos])
		return false
	return true


func _fail(text: String) -> void:
	if error.is_empty():
		error = text
	if parent != null:
		parent._fail(text)
