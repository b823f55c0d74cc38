extends SceneTree
## Drives ZmtpConnection against a libzmq ROUTER that echoes every message (godot_peers.EchoRouter,
## ZMTP heartbeats on) and writes what happened as JSON.
##
## godot --headless --path P --script zmtp_echo_driver.gd -- --endpoint=tcp://127.0.0.1:N --out=F

const BackdropClient := preload("res://addons/starbridge/core/backdrop_client.gd")
const ZmtpConnection := preload("res://addons/starbridge/core/zmtp_connection.gd")

## Payload sizes: empty, short, the short/long boundary, 64 KiB, and a frame-sized 600 KB.
const SIZES := [0, 1, 255, 256, 65536, 600000]
const TIMEOUT_MS := 10000


func _initialize() -> void:
	_run()


func _run() -> void:
	await process_frame
	var options := {}
	for arg in OS.get_cmdline_user_args():
		options[arg.trim_prefix("--").get_slice("=", 0)] = arg.get_slice("=", 1)
	var parsed := BackdropClient.parse_endpoint(options["endpoint"])
	var zmtp := ZmtpConnection.new()
	var report := {"sizes": SIZES, "echoes": [], "identity": ""}
	zmtp.open(parsed[0], parsed[1])
	report["opened"] = await _until(zmtp, func() -> bool:
		return zmtp.state == ZmtpConnection.State.OPEN)
	report["identity"] = zmtp.identity.hex_encode()
	report["peer_socket_type"] = zmtp.peer_socket_type
	report["peer_version"] = zmtp.peer_version
	var crypto := Crypto.new()
	for size: int in SIZES:
		var payload := crypto.generate_random_bytes(size) if size > 0 else PackedByteArray()
		var label := ("size %d" % size).to_ascii_buffer()
		var parts: Array[PackedByteArray] = [label, payload]
		zmtp.send(parts)
		var got := []
		await _until(zmtp, func() -> bool:
			got.append_array(zmtp.take_messages())
			return not got.is_empty())
		var ok: bool = got.size() == 1 and got[0].size() == 3 and got[0][0] == zmtp.identity \
			and got[0][1] == label and got[0][2] == payload
		report["echoes"].append(ok)
	# Stay silent for longer than the peer's heartbeat timeout: only PONGs keep us connected.
	var idle_until := Time.get_ticks_msec() + 1500
	await _until(zmtp, func() -> bool: return Time.get_ticks_msec() > idle_until)
	report["open_after_idle"] = zmtp.state == ZmtpConnection.State.OPEN
	var again: Array[PackedByteArray] = ["after idle".to_ascii_buffer()]
	zmtp.send(again)
	var echoed := []
	await _until(zmtp, func() -> bool:
		echoed.append_array(zmtp.take_messages())
		return not echoed.is_empty())
	report["echo_after_idle"] = echoed.size() == 1 and echoed[0][-1] == again[0]
	report["state"] = ZmtpConnection.State.keys()[zmtp.state]
	report["error"] = zmtp.error_message
	zmtp.close()
	var out := FileAccess.open(options["out"], FileAccess.WRITE)
	out.store_string(JSON.stringify(report, "  "))
	out.close()
	quit()


func _until(zmtp: ZmtpConnection, done: Callable) -> bool:
	var deadline := Time.get_ticks_msec() + TIMEOUT_MS
	while Time.get_ticks_msec() < deadline:
		zmtp.poll()
		if done.call():
			return true
		if zmtp.state == ZmtpConnection.State.FAILED:
			return false
		await process_frame
	return false
