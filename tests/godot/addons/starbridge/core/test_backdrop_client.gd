extends RefCounted
## BackdropClient without a backend: endpoint parsing, the status it shows, and the backoff.
## With a backend: test_godot_live.py; with scripted libzmq peers: test_godot_libzmq.py.

const BackdropClient := preload("res://addons/starbridge/core/backdrop_client.gd")
const Check := preload("../../../check.gd")


func test_endpoints(t: Check) -> void:
	var cases := {
		"tcp://127.0.0.1:50052": ["127.0.0.1", 50052], "127.0.0.1:6000": ["127.0.0.1", 6000],
		"localhost": ["localhost", 50052], " tcp://example.org:1 ": ["example.org", 1],
		"tcp://[::1]:7000": ["::1", 7000], "[::1]": ["::1", 50052],
		"": [], "tcp://": [], "tcp://host:port": [], "host:0": [], "host:70000": [],
		"ipc:///tmp/x": [], "tcp://*:5": [], "[::1": [],
	}
	for text: String in cases:
		t.eq(BackdropClient.parse_endpoint(text), cases[text], "endpoint \"%s\"" % text)


func test_no_backend_shows_why_and_backs_off(t: Check) -> void:
	var server := TCPServer.new()
	server.listen(0, "127.0.0.1")
	var port := server.get_local_port()
	server.stop()  # a port nobody listens on
	var client := BackdropClient.new()
	client.endpoint = "tcp://127.0.0.1:%d" % port
	var statuses: Array = []
	client.status_changed.connect(func(s: BackdropClient.Status, _m: String) -> void:
		statuses.append(s))
	client.start()
	t.eq(client.status, BackdropClient.Status.CONNECTING, "connecting")
	var tree := Engine.get_main_loop() as SceneTree
	var now := Time.get_ticks_usec()
	for i in 100:
		client.poll(now)
		if client.status == BackdropClient.Status.RECONNECTING:
			break
		await tree.process_frame
	t.eq(client.status, BackdropClient.Status.RECONNECTING, "reconnecting")
	t.has_all(client.status_message, [str(port), "starbridge serve", "retrying in 0.2"], "why")
	t.eq(client.send_pose(Vector3.ZERO, Quaternion.IDENTITY, 60.0, 1.0), false, "no pose sent")
	# Each failed attempt doubles the wait, up to the maximum.
	var waits: Array = []
	for attempt in 6:
		now += 10 * 1000000
		client.poll(now)
		for i in 100:
			client.poll(now)
			if "retrying" in client.status_message and client._zmtp == null:
				break
			await tree.process_frame
		waits.append(client.status_message.get_slice("retrying in ", 1).to_float())
	t.eq(waits, [0.5, 1.0, 2.0, 4.0, 4.0, 4.0], "backoff")
	client.stop("test over")
	t.eq(client.status, BackdropClient.Status.STOPPED, "stopped")
	t.eq(statuses[0], BackdropClient.Status.CONNECTING, "first status")


func test_bad_endpoint_is_a_settings_error(t: Check) -> void:
	var client := BackdropClient.new()
	client.endpoint = "tcp://nowhere:notaport"
	client.start()
	t.eq(client.status, BackdropClient.Status.ERROR, "error")
	t.has_all(client.status_message, ["nowhere:notaport", "host:port"], "message")
