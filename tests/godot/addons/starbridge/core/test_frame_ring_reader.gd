extends RefCounted
## FrameRingReader on ring files written here in ring.py's layout: validation, the seqlock
## rules (never-written and in-progress slots), metadata and pixels, read_latest. The reader
## against the real Python FrameRingWriter writing concurrently is test_godot_ring.py.

const Check := preload("../../../check.gd")
const Frame := preload("res://addons/starbridge/core/frame.gd")
const FrameRingReader := preload("res://addons/starbridge/core/frame_ring_reader.gd")
const Messages := preload("res://addons/starbridge/core/messages.gd")
const W := 8
const H := 4
const SLOTS := 3

var context := {}


## Writes a version-1 ring file of SLOTS slots of W x H, like FrameRingWriter, and returns its
## layout as Welcome would state it.
func make_ring(path: String) -> Messages.SharedMemoryLayout:
	var slot_bytes := FrameRingReader._round_up(128 + W * 4 * H, 4096)
	var layout := Messages.SharedMemoryLayout.new()
	layout.path = path
	layout.layout_version = 1
	layout.header_bytes = 4096
	layout.slot_count = SLOTS
	layout.slot_bytes = slot_bytes
	layout.slot_header_bytes = 128
	layout.stride = W * 4
	layout.pixel_format = 1
	layout.file_bytes = 4096 + SLOTS * slot_bytes
	var data := PackedByteArray()
	data.resize(layout.file_bytes)
	data.fill(0)
	var magic := PackedByteArray(FrameRingReader.MAGIC)
	for i in 8:
		data[i] = magic[i]
	var words := [1, 4096, W, H, W * 4, 1, SLOTS, slot_bytes, 128, 4242]
	for i in words.size():
		data.encode_u32(8 + 4 * i, words[i])
	data.encode_u32(56, FrameRingReader.NO_SLOT)
	data.encode_u64(64, layout.file_bytes)
	var f := FileAccess.open(path, FileAccess.WRITE)
	f.store_buffer(data)
	f.close()
	return layout


## Writes frame [param sequence] into [param slot] with the given counter value, every pixel
## byte = sequence, except byte 1 of each pixel = its column (so a wrong stride shows).
func write_slot(path: String, slot: int, sequence: int, counter: int, publish: bool) -> void:
	var f := FileAccess.open(path, FileAccess.READ_WRITE)
	var slot_bytes := FrameRingReader._round_up(128 + W * 4 * H, 4096)
	var at := 4096 + slot * slot_bytes
	var fields := PackedByteArray()
	fields.resize(80)
	fields.fill(0)
	fields.encode_u64(0, sequence)
	fields.encode_u64(8, sequence + 100)
	fields.encode_u64(16, 1700000000123456)
	fields.encode_double(24, 1.25 * sequence)
	var values := [-1.5, 0.25, -4.0, -0.5, 0.5, 0.5, 0.5, 60.0, 1.75, 12.5]
	for i in values.size():
		fields.encode_float(32 + 4 * i, values[i])
	fields.encode_u32(72, W)
	fields.encode_u32(76, H)
	f.seek(at)
	f.store_64(counter)
	f.store_buffer(fields)
	f.seek(at + 128)
	f.store_buffer(pixels_of(sequence))
	if publish:
		f.seek(48)
		f.store_64(sequence)
		f.store_32(slot)
	f.close()


static func pixels_of(sequence: int) -> PackedByteArray:
	var pixels := PackedByteArray()
	pixels.resize(W * H * 4)
	pixels.fill(sequence % 251)
	for y in H:
		for x in W:
			pixels[(y * W + x) * 4 + 1] = x
	return pixels


func _path(name: String) -> String:
	return context.get("tmp", OS.get_user_data_dir()).path_join(name)


func test_reads_a_complete_slot_with_its_metadata(t: Check) -> void:
	var path := _path("ring-complete")
	var layout := make_ring(path)
	var ring := FrameRingReader.new()
	t.ok(ring.open(path, layout, W, H), "opens: " + ring.error_message)
	t.eq([ring.width, ring.height, ring.slot_count, ring.owner_pid], [W, H, SLOTS, 4242], "header")
	var frame := Frame.new()
	t.eq(ring.read_slot(1, frame), false, "a never-written slot (counter 0) is refused")
	t.eq(ring.read_latest(0, frame), false, "no frame published yet")
	write_slot(path, 1, 7, 2, true)
	t.ok(ring.read_slot(1, frame), "reads slot 1")
	t.eq(frame.frame_sequence, 7, "frame_sequence")
	t.eq(frame.pose_sequence, 107, "pose_sequence")
	t.eq(frame.engine_time_us, 1700000000123456, "engine_time_us")
	t.eq(frame.scene_time_s, 8.75, "scene_time_s")
	t.eq(frame.position, Vector3(-1.5, 0.25, -4.0), "position")
	t.eq(frame.rotation, Quaternion(-0.5, 0.5, 0.5, 0.5), "rotation")
	t.eq([frame.vertical_fov_deg, frame.aspect, frame.generation_latency_ms], [60.0, 1.75, 12.5],
		"fov, aspect, generation latency")
	t.eq([frame.width, frame.height, frame.slot], [W, H, 1], "size and slot")
	t.bytes_eq(frame.pixels, pixels_of(7), "pixels, rows top to bottom")
	t.eq(frame.transport, Messages.Transport.SHARED_MEMORY, "transport")


func test_a_slot_being_written_is_not_read(t: Check) -> void:
	var path := _path("ring-odd")
	var layout := make_ring(path)
	var ring := FrameRingReader.new()
	t.ok(ring.open(path, layout), "opens")
	write_slot(path, 0, 3, 5, true)  # odd counter: the writer is in the middle of it
	var frame := Frame.new()
	t.eq(ring.read_slot(0, frame), false, "odd counter refused")
	t.eq(ring.read_latest(0, frame), false, "read_latest refuses it too")
	write_slot(path, 0, 3, 6, true)
	t.ok(ring.read_latest(0, frame), "even counter accepted")
	t.eq(frame.frame_sequence, 3, "its frame")
	t.eq(ring.read_latest(3, frame), false, "nothing newer than 3")


func test_rereading_sees_new_bytes_through_a_fresh_handle(t: Check) -> void:
	# The stdio buffer of one FileAccess would serve the old counter again: the reader must not.
	var path := _path("ring-reread")
	var layout := make_ring(path)
	var ring := FrameRingReader.new()
	ring.open(path, layout)
	var frame := Frame.new()
	for sequence in range(1, 8):
		write_slot(path, 2, sequence, 2 * sequence, true)
		t.ok(ring.read_slot(2, frame) and frame.frame_sequence == sequence,
			"slot 2 rewritten with frame %d is read as frame %d" % [sequence, frame.frame_sequence])
		t.eq(ring.latest_frame_sequence(), sequence, "latest_frame_sequence")


func test_bad_rings_are_refused_with_the_reason(t: Check) -> void:
	var path := _path("ring-bad")
	var ring := FrameRingReader.new()
	t.eq(ring.open(_path("no-such-ring")), false, "missing file")
	t.has_all(ring.error_message, ["cannot be opened", "INLINE"], "missing file message")
	var layout := make_ring(path)
	var wrong := Messages.SharedMemoryLayout.new()
	wrong.slot_count = 4
	t.eq(ring.open(path, wrong), false, "layout differs from Welcome")
	t.has_all(ring.error_message, ["does not match Welcome"], "mismatch message")
	t.eq(ring.open(path, layout, W + 1, H), false, "size differs from Welcome")
	var f := FileAccess.open(path, FileAccess.READ_WRITE)
	f.seek(8)
	f.store_32(2)
	f.close()
	t.eq(ring.open(path), false, "layout version 2")
	t.has_all(ring.error_message, ["layout version 2", "version 1"], "version message")
	f = FileAccess.open(path, FileAccess.READ_WRITE)
	f.seek(0)
	f.store_8(0x58)
	f.close()
	t.eq(ring.open(path), false, "wrong magic")
	t.has_all(ring.error_message, ["not a StarBridge frame ring"], "magic message")
	make_ring(path)
	f = FileAccess.open(path, FileAccess.READ_WRITE)
	f.resize(5000)
	f.close()
	t.eq(ring.open(path), false, "truncated")
	t.has_all(ring.error_message, ["file size"], "truncation message")
	make_ring(path)
	t.ok(ring.open(path, layout, W, H), "a good ring again")
	t.eq(ring.writer_closed(), false, "open ring")
	DirAccess.remove_absolute(path)
	t.eq(ring.writer_closed(), true, "a removed ring counts as closed")
