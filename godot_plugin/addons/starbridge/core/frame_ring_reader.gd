extends RefCounted
## Reads frames from a session's shared-memory frame ring with [FileAccess], seqlock-checked.
##
## The layout is backend/starbridge/transport/ring.py's (version 1, little-endian): a 4096-byte file
## header, then [code]slot_count[/code] slots of [code]slot_bytes[/code], each a 128-byte slot
## header and [code]height[/code] rows of [code]stride[/code] bytes of RGBA8 sRGB pixels, rows top
## to bottom. A slot's header starts with a seqlock counter: odd while the backend writes it.[br]
## [b]Reading a slot[/b] (ring.py "Reader protocol"): read the counter c1 (odd or 0: being written
## or never written, try again); read the header fields and the pixels; read the counter again,
## c2; keep the copy only if c1 == c2.[br]
## [b]Why a fresh handle per counter read[/b]: FileAccess reads through the C library's stdio
## buffer, and glibc (and BSD libc) serve a seek back into the block the buffer holds from memory,
## without reading the file again. Through one handle, c2 could be the very bytes c1 came from and
## a torn copy would pass. So each read of the ring opens the file anew: a new handle has an empty
## buffer, and its first read comes from the file (a few microseconds each).[br]
## Godot cannot map a file into memory, so the pixels are copied once, by the read, into the
## array [method FileAccess.get_buffer] returns (Godot has no read-into-this-array call).

const Frame := preload("res://addons/starbridge/core/frame.gd")
const Messages := preload("res://addons/starbridge/core/messages.gd")

## Layout constants (ring.py).
const MAGIC := [0x53, 0x42, 0x52, 0x49, 0x4E, 0x47, 0x00, 0x01]
const LAYOUT_VERSION := 1
const HEADER_BYTES := 4096
const SLOT_HEADER_BYTES := 128
const SLOT_ALIGN := 4096
const MIN_SLOTS := 3
const BYTES_PER_PIXEL := 4
const PIXEL_FORMAT_RGBA8_SRGB := 1
const NO_SLOT := 0xFFFFFFFF
## Tries at a slot the backend keeps rewriting before giving up until the next frame.
const READ_ATTEMPTS := 8

# File header offsets.
const OFF_LAYOUT_VERSION := 8
const OFF_HEADER_BYTES := 12
const OFF_WIDTH := 16
const OFF_HEIGHT := 20
const OFF_STRIDE := 24
const OFF_PIXEL_FORMAT := 28
const OFF_SLOT_COUNT := 32
const OFF_SLOT_BYTES := 36
const OFF_SLOT_HEADER_BYTES := 40
const OFF_OWNER_PID := 44
const OFF_LATEST_FRAME_SEQUENCE := 48
const OFF_LATEST_SLOT := 56
const OFF_CLOSED := 60
const OFF_FILE_BYTES := 64
const FILE_HEADER_USED := 72
# Slot header offsets (relative to the slot); fields 8..88 are read as one block.
const SLOT_OFF_COUNTER := 0
const SLOT_OFF_FRAME_SEQUENCE := 8
const SLOT_OFF_POSE_SEQUENCE := 16
const SLOT_OFF_ENGINE_TIME_US := 24
const SLOT_OFF_SCENE_TIME_S := 32
const SLOT_OFF_POSITION := 40
const SLOT_OFF_ROTATION := 52
const SLOT_OFF_VERTICAL_FOV_DEG := 68
const SLOT_OFF_ASPECT := 72
const SLOT_OFF_GENERATION_LATENCY_MS := 76
const SLOT_OFF_WIDTH := 80
const SLOT_OFF_HEIGHT := 84
const SLOT_FIELDS_END := 88

## The ring file's path.
var path := ""
## From the file header (valid after a successful [method open]).
var width := 0
var height := 0
var stride := 0
var slot_count := 0
var slot_bytes := 0
var file_bytes := 0
var owner_pid := 0
## Why the last [method open] failed; empty when it worked.
var error_message := ""
## Copies rejected because the backend was writing the slot meanwhile.
var torn_reads := 0


## Opens and validates the ring at [param ring_path]. When [param expected] (Welcome's layout)
## is given, the file must agree with it. False (and [member error_message]) when it cannot be
## read: missing (the session ended, or the backend runs on another machine), truncated, or
## not a version-1 ring.
func open(
	ring_path: String, expected: Messages.SharedMemoryLayout = null,
	expected_width: int = 0, expected_height: int = 0
) -> bool:
	path = ring_path
	error_message = ""
	var f := FileAccess.open(path, FileAccess.READ)
	if f == null:
		error_message = ("frame ring %s cannot be opened (%s): the session ended, or the backend "
			% [path, error_string(FileAccess.get_open_error())]
			+ "runs on another machine; use the INLINE transport there")
		return false
	var why := _check_header(f.get_buffer(FILE_HEADER_USED), f.get_length())
	if why.is_empty() and expected != null:
		why = _check_welcome(expected, expected_width, expected_height)
	if not why.is_empty():
		error_message = "frame ring %s %s" % [path, why]
	return why.is_empty()


# Why the file header is not a readable version-1 ring; empty when it is.
func _check_header(head: PackedByteArray, size: int) -> String:
	if head.size() < FILE_HEADER_USED:
		return "is truncated: %d bytes, the header alone needs %d" % [size, HEADER_BYTES]
	for i in MAGIC.size():
		if head[i] != MAGIC[i]:
			return "is not a StarBridge frame ring (wrong magic)"
	var version := head.decode_u32(OFF_LAYOUT_VERSION)
	if version != LAYOUT_VERSION:
		return ("has layout version %d, this plugin reads version %d: update the plugin or the "
			% [version, LAYOUT_VERSION] + "backend so they match")
	width = head.decode_u32(OFF_WIDTH)
	height = head.decode_u32(OFF_HEIGHT)
	stride = head.decode_u32(OFF_STRIDE)
	slot_count = head.decode_u32(OFF_SLOT_COUNT)
	slot_bytes = head.decode_u32(OFF_SLOT_BYTES)
	owner_pid = head.decode_u32(OFF_OWNER_PID)
	file_bytes = head.decode_u64(OFF_FILE_BYTES)
	if width == 0 or height == 0 or slot_count < MIN_SLOTS:
		return "has frame size %dx%d and %d slots" % [width, height, slot_count]
	var want_slot := _round_up(SLOT_HEADER_BYTES + width * BYTES_PER_PIXEL * height, SLOT_ALIGN)
	var checks := [
		["header_bytes", head.decode_u32(OFF_HEADER_BYTES), HEADER_BYTES],
		["slot_header_bytes", head.decode_u32(OFF_SLOT_HEADER_BYTES), SLOT_HEADER_BYTES],
		["pixel_format", head.decode_u32(OFF_PIXEL_FORMAT), PIXEL_FORMAT_RGBA8_SRGB],
		["stride", stride, width * BYTES_PER_PIXEL],
		["slot_bytes", slot_bytes, want_slot],
		["file_bytes", file_bytes, HEADER_BYTES + slot_count * want_slot],
		["file size", size if size < file_bytes else file_bytes, file_bytes],
	]
	for check: Array in checks:
		if check[1] != check[2]:
			return "has %s = %d, expected %d for a %dx%d ring" % [
				check[0], check[1], check[2], width, height
			]
	return ""


# Why the file disagrees with Welcome's layout; empty when it agrees.
func _check_welcome(
	expected: Messages.SharedMemoryLayout, expected_width: int, expected_height: int
) -> String:
	var ours := [slot_count, slot_bytes, stride, file_bytes, width, height]
	var theirs := [
		expected.slot_count, expected.slot_bytes, expected.stride, expected.file_bytes,
		expected_width if expected_width > 0 else width,
		expected_height if expected_height > 0 else height,
	]
	if ours == theirs:
		return ""
	return ("does not match Welcome: the file has (slots, slot bytes, stride, file bytes, width, "
		+ "height) = %s, Welcome says %s" % [str(ours), str(theirs)])


## The newest published frame sequence (a hint; 0: none yet); -1 when the file is gone.
func latest_frame_sequence() -> int:
	var f := FileAccess.open(path, FileAccess.READ)
	if f == null:
		return -1
	f.seek(OFF_LATEST_FRAME_SEQUENCE)
	return f.get_64()


## True once the backend closed the ring (no more frames) or removed its file.
func writer_closed() -> bool:
	var f := FileAccess.open(path, FileAccess.READ)
	if f == null:
		return true
	f.seek(OFF_CLOSED)
	return f.get_32() != 0


## Copies the frame in [param slot] into [param into]; false if the slot was never written or
## the backend kept rewriting it.
func read_slot(slot: int, into: Frame) -> bool:
	if slot < 0 or slot >= slot_count:
		return false
	for attempt in READ_ATTEMPTS:
		if _read_once(slot, into):
			return true
	return false


## Copies the newest complete frame with a sequence above [param newer_than] into [param into];
## false when there is none (yet) or the backend kept rewriting it.
func read_latest(newer_than: int, into: Frame) -> bool:
	for attempt in READ_ATTEMPTS:
		var f := FileAccess.open(path, FileAccess.READ)
		if f == null:
			return false
		f.seek(OFF_LATEST_FRAME_SEQUENCE)
		var latest := f.get_64()
		var slot := f.get_32()
		if latest <= newer_than or slot == NO_SLOT or slot >= slot_count:
			return false
		if _read_once(slot, into) and into.frame_sequence > newer_than:
			return true
	return false


func _read_once(slot: int, into: Frame) -> bool:
	var at := HEADER_BYTES + slot * slot_bytes
	var f := FileAccess.open(path, FileAccess.READ)
	if f == null:
		return false
	f.seek(at + SLOT_OFF_COUNTER)
	var c1 := f.get_64()
	if c1 == 0 or (c1 & 1) == 1:
		return false
	var fields := f.get_buffer(SLOT_FIELDS_END - SLOT_OFF_FRAME_SEQUENCE)
	f.seek(at + SLOT_HEADER_BYTES)
	var pixels := f.get_buffer(stride * height)
	# A second handle: its buffer cannot hold the counter bytes c1 came from (see the class doc).
	var g := FileAccess.open(path, FileAccess.READ)
	if g == null:
		return false
	g.seek(at + SLOT_OFF_COUNTER)
	var c2 := g.get_64()
	if c1 != c2 or pixels.size() != stride * height:
		torn_reads += 1
		return false
	var base := -SLOT_OFF_FRAME_SEQUENCE
	into.slot = slot
	into.frame_sequence = fields.decode_u64(base + SLOT_OFF_FRAME_SEQUENCE)
	into.pose_sequence = fields.decode_u64(base + SLOT_OFF_POSE_SEQUENCE)
	into.engine_time_us = fields.decode_u64(base + SLOT_OFF_ENGINE_TIME_US)
	into.scene_time_s = fields.decode_double(base + SLOT_OFF_SCENE_TIME_S)
	var p := base + SLOT_OFF_POSITION
	into.position = Vector3(fields.decode_float(p), fields.decode_float(p + 4),
		fields.decode_float(p + 8))
	var q := base + SLOT_OFF_ROTATION
	into.rotation = Quaternion(fields.decode_float(q), fields.decode_float(q + 4),
		fields.decode_float(q + 8), fields.decode_float(q + 12))
	into.vertical_fov_deg = fields.decode_float(base + SLOT_OFF_VERTICAL_FOV_DEG)
	into.aspect = fields.decode_float(base + SLOT_OFF_ASPECT)
	into.generation_latency_ms = fields.decode_float(base + SLOT_OFF_GENERATION_LATENCY_MS)
	into.width = fields.decode_u32(base + SLOT_OFF_WIDTH)
	into.height = fields.decode_u32(base + SLOT_OFF_HEIGHT)
	into.pixels = pixels
	into.transport = Messages.Transport.SHARED_MEMORY
	return true


static func _round_up(n: int, multiple: int) -> int:
	return n + (multiple - n % multiple) % multiple
