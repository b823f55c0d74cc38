extends RefCounted
## ZmtpConnection framing against a scripted peer written here byte by byte (a TCPServer in this
## engine): greeting, READY, short and long frames, multipart messages split across reads, PING,
## ERROR, and peers that are not ZMTP 3 NULL at all. The same client against real libzmq is
## tests/godot/test_godot_libzmq.py.

const Check := preload("../../../check.gd")
const ZmtpConnection := preload("res://addons/starbridge/core/zmtp_connection.gd")


## A peer speaking raw bytes to the client under test.
class Peer:
	extends RefCounted
	var server := TCPServer.new()
	var stream: StreamPeerTCP = null
	var received := PackedByteArray()

	func _init() -> void:
		server.listen(0, "127.0.0.1")

	func port() -> int:
		return server.get_local_port()

	## Pumps the client and this peer for up to [param frames] frames until [param done].
	func pump(client: ZmtpConnection, frames: int, done: Callable) -> bool:
		var tree := Engine.get_main_loop() as SceneTree
		for i in frames:
			client.poll()
			if stream == null and server.is_connection_available():
				stream = server.take_connection()
			if stream != null:
				stream.poll()
			if stream != null and stream.get_status() == StreamPeerTCP.STATUS_CONNECTED:
				var n := stream.get_available_bytes()
				if n > 0:
					received.append_array(stream.get_data(n)[1])
			if done.call():
				return true
			await tree.process_frame
		return false

	func write(data: PackedByteArray) -> void:
		stream.put_data(data)

	func close() -> void:
		if stream != null:
			stream.disconnect_from_host()
		server.stop()


static func router_ready() -> PackedByteArray:
	var greeting := ZmtpConnection.greeting()
	greeting.append_array(ZmtpConnection.ready_command("ROUTER", PackedByteArray()))
	return greeting


func test_greeting_and_ready_bytes(t: Check) -> void:
	var g := ZmtpConnection.greeting()
	var want := PackedByteArray([0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 1])
	want.append_array("NULL".to_ascii_buffer())
	want.resize(64)
	t.bytes_eq(g, want, "greeting: signature, 3.1, NULL, as-server 0, zero filler")
	var ready := ZmtpConnection.ready_command("DEALER", "SBabcd".to_ascii_buffer())
	var body := PackedByteArray([5])
	body.append_array("READY".to_ascii_buffer())
	body.append_array(PackedByteArray([11]))
	body.append_array("Socket-Type".to_ascii_buffer())
	body.append_array(PackedByteArray([0, 0, 0, 6]))
	body.append_array("DEALER".to_ascii_buffer())
	body.append_array(PackedByteArray([8]))
	body.append_array("Identity".to_ascii_buffer())
	body.append_array(PackedByteArray([0, 0, 0, 6]))
	body.append_array("SBabcd".to_ascii_buffer())
	var frame := PackedByteArray([0x04, body.size()])
	frame.append_array(body)
	t.bytes_eq(ready, frame, "READY command")
	var metadata: Dictionary = ZmtpConnection.parse_metadata(body.slice(6))
	t.eq(metadata["socket-type"].get_string_from_ascii(), "DEALER", "Socket-Type read back")
	t.eq(ZmtpConnection.parse_metadata(PackedByteArray([11, 0x53])), null, "truncated metadata")


func test_frame_sizes_switch_to_long_above_255(t: Check) -> void:
	var short := PackedByteArray()
	short.resize(255)
	var long := PackedByteArray()
	long.resize(256)
	t.bytes_eq(ZmtpConnection.encode_frame(short, true, false).slice(0, 2),
		PackedByteArray([0x01, 0xFF]), "255 bytes: short size, MORE")
	t.bytes_eq(ZmtpConnection.encode_frame(long, false, false).slice(0, 9),
		PackedByteArray([0x02, 0, 0, 0, 0, 0, 0, 1, 0]), "256 bytes: LONG, 8-octet size")
	t.eq(ZmtpConnection.encode_frame(long, false, false).size(), 265, "header + body")


func test_handshake_multipart_split_reads_ping_and_error(t: Check) -> void:
	var peer := Peer.new()
	var client := ZmtpConnection.new()
	client.open("127.0.0.1", peer.port(), 3.0, "SBtest".to_ascii_buffer())
	t.ok(await peer.pump(client, 200, func() -> bool: return peer.received.size() >= 64),
		"client greeting arrives")
	t.bytes_eq(peer.received.slice(0, 64), ZmtpConnection.greeting(), "client greeting")
	peer.write(router_ready())
	var ready := ZmtpConnection.ready_command("DEALER", "SBtest".to_ascii_buffer())
	var open := func() -> bool: return client.state == ZmtpConnection.State.OPEN
	t.ok(await peer.pump(client, 200, open), "handshake completes")
	t.eq(client.peer_socket_type, "ROUTER", "peer socket type")
	t.eq(client.peer_version, "3.1", "peer version")
	t.bytes_eq(peer.received.slice(64), ready, "client READY")
	# A 2-part message (envelope, 300-byte pixels) sent one byte at a time.
	var pixels := PackedByteArray()
	for i in 300:
		pixels.append(i % 251)
	var wire := ZmtpConnection.encode_frame("envelope".to_ascii_buffer(), true, false)
	wire.append_array(ZmtpConnection.encode_frame(pixels, false, false))
	var messages := []
	for i in wire.size():
		peer.write(wire.slice(i, i + 1))
		if i % 37 == 0:
			await peer.pump(client, 1, func() -> bool: return false)
			messages.append_array(client.take_messages())
	await peer.pump(client, 50, func() -> bool:
		messages.append_array(client.take_messages())
		return not messages.is_empty())
	t.eq(messages.size(), 1, "one message")
	if messages.size() == 1:
		t.eq(messages[0].size(), 2, "two parts")
		t.bytes_eq(messages[0][0], "envelope".to_ascii_buffer(), "part 1")
		t.bytes_eq(messages[0][1], pixels, "part 2 (long frame)")
	# PING with TTL 0x0102 and context "ctx" -> PONG "ctx".
	var before := peer.received.size()
	var ping := PackedByteArray([1, 2])
	ping.append_array("ctx".to_ascii_buffer())
	peer.write(ZmtpConnection.encode_command("PING", ping))
	t.ok(await peer.pump(client, 200, func() -> bool: return peer.received.size() > before),
		"PONG arrives")
	t.bytes_eq(peer.received.slice(before),
		ZmtpConnection.encode_command("PONG", "ctx".to_ascii_buffer()), "PONG echoes the context")
	# A message from the client.
	before = peer.received.size()
	t.ok(client.send([PackedByteArray([1, 2, 3])]), "send")
	t.ok(await peer.pump(client, 200, func() -> bool: return peer.received.size() > before),
		"message arrives")
	t.bytes_eq(peer.received.slice(before), PackedByteArray([0, 3, 1, 2, 3]), "one short frame")
	# ERROR ends the connection with the peer's reason.
	var reason := PackedByteArray([9])
	reason.append_array("go away!!".to_ascii_buffer())
	peer.write(ZmtpConnection.encode_command("ERROR", reason))
	t.ok(await peer.pump(client, 200, func() -> bool:
		return client.state == ZmtpConnection.State.FAILED), "ERROR fails the connection")
	t.has_all(client.error_message, ["refused", "go away!!"], "error message")
	t.eq(client.send([PackedByteArray([1])]), false, "no sends after failure")
	peer.close()


func test_a_peer_that_is_not_zmtp_is_named(t: Check) -> void:
	var peer := Peer.new()
	var client := ZmtpConnection.new()
	client.open("127.0.0.1", peer.port())
	await peer.pump(client, 100, func() -> bool: return peer.stream != null)
	peer.write("HTTP/1.1 400 Bad Request\r\n\r\n".repeat(4).to_ascii_buffer())
	t.ok(await peer.pump(client, 200, func() -> bool:
		return client.state == ZmtpConnection.State.FAILED), "fails")
	t.has_all(client.error_message, ["does not speak ZeroMQ", "engine port"], "message")
	peer.close()


func test_security_mechanisms_and_socket_types_are_refused(t: Check) -> void:
	var greeting := ZmtpConnection.greeting()
	var plain := "PLAIN".to_ascii_buffer()
	for i in plain.size():
		greeting[12 + i] = plain[i]
	var cases := {
		"CURVE/PLAIN peer": [greeting, ["PLAIN", "NULL only"]],
		"PUB peer": [_greeting_then_ready("PUB"), ["PUB socket", "ROUTER"]],
	}
	for name: String in cases:
		var peer := Peer.new()
		var client := ZmtpConnection.new()
		client.open("127.0.0.1", peer.port())
		await peer.pump(client, 100, func() -> bool: return peer.stream != null)
		peer.write(cases[name][0])
		t.ok(await peer.pump(client, 200, func() -> bool:
			return client.state == ZmtpConnection.State.FAILED), name + " fails")
		t.has_all(client.error_message, cases[name][1], name)
		peer.close()


func test_silent_peer_times_out_and_refused_port_fails_fast(t: Check) -> void:
	var peer := Peer.new()
	var client := ZmtpConnection.new()
	client.open("127.0.0.1", peer.port(), 0.3)
	t.ok(await peer.pump(client, 600, func() -> bool:
		return client.state == ZmtpConnection.State.FAILED), "times out")
	t.has_all(client.error_message, ["no ZeroMQ handshake", "50052"], "timeout message")
	var port := peer.port()
	peer.close()
	var refused := ZmtpConnection.new()
	refused.open("127.0.0.1", port, 3.0)
	var started := Time.get_ticks_msec()
	t.ok(await peer.pump(refused, 600, func() -> bool:
		return refused.state == ZmtpConnection.State.FAILED), "refused")
	t.ok(Time.get_ticks_msec() - started < 2500, "refusal is noticed before the timeout")
	t.has_all(refused.error_message, ["could not connect", "starbridge serve"], "refusal message")


func test_host_names_resolve_without_blocking(t: Check) -> void:
	var peer := Peer.new()
	var client := ZmtpConnection.new()
	client.open("localhost", peer.port())
	t.eq(client.state, ZmtpConnection.State.RESOLVING, "resolving first")
	t.ok(await peer.pump(client, 300, func() -> bool: return peer.stream != null),
		"connects by name")
	peer.close()


func _greeting_then_ready(socket_type: String) -> PackedByteArray:
	var data := ZmtpConnection.greeting()
	data.append_array(ZmtpConnection.ready_command(socket_type, PackedByteArray()))
	return data
