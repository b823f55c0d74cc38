extends RefCounted
## A minimal ZeroMQ DEALER peer over [StreamPeerTCP]: ZMTP 3.1 with the NULL mechanism.
##
## Enough of the ZeroMQ Message Transport Protocol (37/ZMTP, https://rfc.zeromq.org/spec/37/;
## 23/ZMTP for 3.0) to talk to the backend's libzmq ROUTER with no native library. Nothing
## blocks: [method poll] does a bounded amount of work and returns; call it every frame.[br]
## [b]Greeting[/b] (64 octets, both peers): signature [code]%xFF[/code], 8 octets padding,
## [code]%x7F[/code]; version [code]%x03 %x01[/code]; mechanism [code]"NULL"[/code] padded with
## zeros to 20 octets; as-server [code]%x00[/code]; 31 octets filler.[br]
## [b]Handshake[/b] (NULL mechanism): each peer sends a READY command whose metadata holds
## [code]Socket-Type[/code] ([code]"DEALER"[/code] here) and [code]Identity[/code] (the routing id
## the ROUTER uses; fresh per connection, so a reconnect never collides with the half-closed old
## one). A peer that refuses us sends an ERROR command instead.[br]
## [b]Traffic[/b]: frames of one flags octet (bit 0 MORE: another frame of the same message
## follows; bit 1 LONG: an 8-octet size in network byte order follows instead of one octet, used
## for bodies over 255 octets; bit 2 COMMAND), the size, the body. A command body is a name (one
## length octet, then the name) and data; a property is a name (one length octet) and a value
## (four length octets, network byte order). Commands may arrive between messages: PING (ZMTP 3.1
## heartbeats, sent by libzmq with ZMQ_HEARTBEAT_IVL) is answered with PONG echoing its context,
## ERROR closes the connection, others are ignored.[br]
## [b]Flow control[/b]: sends go to a send queue drained with
## [method StreamPeer.put_partial_data] (never [method StreamPeer.put_data], which blocks). When
## the queue holds more than [constant SEND_QUEUE_LIMIT] bytes a whole message is dropped instead,
## like libzmq's high-water mark; received messages wait in an inbox of at most
## [constant INBOX_LIMIT] messages, the oldest dropped first.[br]
## [codeblock]
## var zmtp := ZmtpConnection.new()
## zmtp.open("127.0.0.1", 50052)
## # every frame:
## zmtp.poll()
## if zmtp.state == ZmtpConnection.State.OPEN:
##     zmtp.send([envelope])
## for message in zmtp.take_messages():   # each an Array of PackedByteArray parts
##     ...
## [/codeblock]

## Connection states. [code]FAILED[/code] and [code]CLOSED[/code] are final: make a new connection.
enum State { CLOSED, RESOLVING, CONNECTING, GREETING, HANDSHAKE, OPEN, FAILED }

## Greeting size in octets.
const GREETING_BYTES := 64
## Frame flag bits.
const FLAG_MORE := 1
const FLAG_LONG := 2
const FLAG_COMMAND := 4
## Largest frame body accepted: a 4096 x 4096 RGBA frame. Bigger sizes mean a broken stream.
const MAX_FRAME_BYTES := 4096 * 4096 * 4
## Largest command body accepted (READY, PING, ERROR are tiny).
const MAX_COMMAND_BYTES := 65536
## Bytes queued for sending before whole messages are dropped.
const SEND_QUEUE_LIMIT := 262144
## Received messages kept before the oldest is dropped.
const INBOX_LIMIT := 256
## Most bytes read from the socket per [method poll], so one call stays short.
const READ_BUDGET_BYTES := 16 * 1048576
## Connect and handshake must finish within this many seconds.
const DEFAULT_TIMEOUT_S := 3.0
## Socket types a DEALER may talk to (37/ZMTP, "Socket Types").
const _COMPATIBLE_PEERS := ["ROUTER", "DEALER", "REP"]

## Where the connection is.
var state: State = State.CLOSED
## Why the connection failed or closed (for the status readout); empty while all is well.
var error_message := ""
## The peer's socket type from its READY, e.g. "ROUTER".
var peer_socket_type := ""
## The peer's ZMTP version from its greeting, e.g. "3.1".
var peer_version := ""
## The routing id declared in our READY.
var identity := PackedByteArray()
## "tcp://host:port", for messages.
var endpoint := ""
## Messages dropped because the send queue or the inbox was full.
var dropped_sends := 0
var dropped_receives := 0

var _tcp: StreamPeerTCP = null
var _host := ""
var _port := 0
var _resolve_id := -1
var _deadline_ms := 0
var _rx := PackedByteArray()
var _rx_pos := 0
var _tx := PackedByteArray()
var _parts: Array[PackedByteArray] = []
var _inbox: Array = []


## Starts connecting to [param host] (an IP address or a name, resolved without blocking) and
## [param port]; [param timeout_s] bounds the connect and the handshake. [param routing_id]:
## 0 to 255 octets, not starting with a zero octet (libzmq reserves those); empty: a fresh
## random one.
func open(
	host: String, port: int, timeout_s: float = DEFAULT_TIMEOUT_S,
	routing_id: PackedByteArray = PackedByteArray()
) -> void:
	close()
	_host = host
	_port = port
	endpoint = "tcp://%s:%d" % [host, port]
	error_message = ""
	peer_socket_type = ""
	peer_version = ""
	identity = routing_id if not routing_id.is_empty() else random_identity()
	if identity.size() > 255 or identity[0] == 0:
		_fail("routing id must be 1 to 255 octets and not start with a zero octet")
		return
	_deadline_ms = Time.get_ticks_msec() + int(timeout_s * 1000.0)
	if host.is_valid_ip_address():
		_connect(host)
	else:
		_resolve_id = IP.resolve_hostname_queue_item(host, IP.TYPE_IPV4)
		state = State.RESOLVING


## Advances the connection: connect, handshake, read and parse what arrived, send what is
## queued. Never blocks.
func poll() -> void:
	match state:
		State.RESOLVING:
			_poll_resolve()
		State.CONNECTING:
			_poll_connect()
		State.GREETING, State.HANDSHAKE, State.OPEN:
			_poll_stream()
	if state in [State.RESOLVING, State.CONNECTING, State.GREETING, State.HANDSHAKE]:
		if Time.get_ticks_msec() > _deadline_ms:
			var what := "no ZeroMQ handshake from" if state >= State.GREETING else "could not connect to"
			_fail("%s %s in time: is the StarBridge backend running there (engine port, default 50052)?"
				% [what, endpoint])


## Queues a message (its parts, in order) for sending; false when the connection is not open
## or the send queue is full (the message is dropped, a newer one follows).
func send(parts: Array[PackedByteArray]) -> bool:
	if state != State.OPEN or parts.is_empty():
		return false
	if _tx.size() > SEND_QUEUE_LIMIT:
		dropped_sends += 1
		return false
	for i in parts.size():
		_tx.append_array(encode_frame(parts[i], i < parts.size() - 1, false))
	_flush()
	return state == State.OPEN


## The messages received since the last call, oldest first; each an Array of PackedByteArray.
func take_messages() -> Array:
	var messages := _inbox
	_inbox = []
	return messages


## Bytes still waiting to be sent.
func pending_send_bytes() -> int:
	return _tx.size()


## Sends what is queued as far as the socket takes it now, then closes. Idempotent.
func close() -> void:
	if _tcp != null:
		if state == State.OPEN and not _tx.is_empty():
			_tcp.put_partial_data(_tx)
		_tcp.disconnect_from_host()
		_tcp = null
	if _resolve_id >= 0:
		IP.erase_resolve_item(_resolve_id)
		_resolve_id = -1
	if state != State.FAILED:
		state = State.CLOSED
	_rx = PackedByteArray()
	_rx_pos = 0
	_tx = PackedByteArray()
	_parts.clear()


## A fresh routing id: "SB" and 4 random octets.
static func random_identity() -> PackedByteArray:
	var id := PackedByteArray([0x53, 0x42])
	for i in 4:
		id.append(randi() & 0xFF)
	return id


## Our greeting: ZMTP 3.1, NULL mechanism, as-server 0.
static func greeting() -> PackedByteArray:
	var g := PackedByteArray()
	g.resize(GREETING_BYTES)
	g.fill(0)
	g[0] = 0xFF
	g[9] = 0x7F
	g[10] = 3
	g[11] = 1
	var mechanism := "NULL".to_ascii_buffer()
	for i in mechanism.size():
		g[12 + i] = mechanism[i]
	return g


## One frame: flags, a 1- or 8-octet size (network byte order), the body.
static func encode_frame(body: PackedByteArray, more: bool, command: bool) -> PackedByteArray:
	var size := body.size()
	var flags := (FLAG_MORE if more else 0) | (FLAG_COMMAND if command else 0)
	var frame := PackedByteArray()
	if size <= 255:
		frame.append(flags)
		frame.append(size)
	else:
		frame.append(flags | FLAG_LONG)
		for shift: int in [56, 48, 40, 32, 24, 16, 8, 0]:
			frame.append((size >> shift) & 0xFF)
	frame.append_array(body)
	return frame


## A command frame: the name (one length octet, then the name) and the data.
static func encode_command(name: String, data: PackedByteArray) -> PackedByteArray:
	var body := PackedByteArray([name.length()])
	body.append_array(name.to_ascii_buffer())
	body.append_array(data)
	return encode_frame(body, false, true)


## The READY command: metadata Socket-Type and Identity.
static func ready_command(socket_type: String, routing_id: PackedByteArray) -> PackedByteArray:
	var data := PackedByteArray()
	data.append_array(_property("Socket-Type", socket_type.to_ascii_buffer()))
	data.append_array(_property("Identity", routing_id))
	return encode_command("READY", data)


## Metadata of a READY command as a Dictionary of lower-case name -> PackedByteArray value, or
## null when it is malformed.
static func parse_metadata(data: PackedByteArray) -> Variant:
	var properties := {}
	var i := 0
	while i < data.size():
		var name_length := data[i]
		if name_length == 0 or i + 1 + name_length + 4 > data.size():
			return null
		var name := data.slice(i + 1, i + 1 + name_length).get_string_from_ascii().to_lower()
		i += 1 + name_length
		var value_length := _read_be(data, i, 4)
		i += 4
		if value_length > data.size() - i:
			return null
		properties[name] = data.slice(i, i + value_length)
		i += value_length
	return properties


static func _property(name: String, value: PackedByteArray) -> PackedByteArray:
	var p := PackedByteArray([name.length()])
	p.append_array(name.to_ascii_buffer())
	var size := value.size()
	p.append_array(PackedByteArray([
		(size >> 24) & 0xFF, (size >> 16) & 0xFF, (size >> 8) & 0xFF, size & 0xFF
	]))
	p.append_array(value)
	return p


static func _read_be(data: PackedByteArray, at: int, count: int) -> int:
	var value := 0
	for k in count:
		value = (value << 8) | data[at + k]
	return value


func _connect(address: String) -> void:
	_tcp = StreamPeerTCP.new()
	var err := _tcp.connect_to_host(address, _port)
	if err != OK:
		_fail("could not connect to %s: %s" % [endpoint, error_string(err)])
		return
	state = State.CONNECTING


func _poll_resolve() -> void:
	match IP.get_resolve_item_status(_resolve_id):
		IP.RESOLVER_STATUS_DONE:
			var address := IP.get_resolve_item_address(_resolve_id)
			IP.erase_resolve_item(_resolve_id)
			_resolve_id = -1
			_connect(address)
		IP.RESOLVER_STATUS_ERROR, IP.RESOLVER_STATUS_NONE:
			IP.erase_resolve_item(_resolve_id)
			_resolve_id = -1
			_fail("host name %s does not resolve" % _host)


func _poll_connect() -> void:
	_tcp.poll()
	match _tcp.get_status():
		StreamPeerTCP.STATUS_CONNECTED:
			_tcp.set_no_delay(true)
			state = State.GREETING
			_tx.append_array(greeting())
			_poll_stream()
		StreamPeerTCP.STATUS_ERROR, StreamPeerTCP.STATUS_NONE:
			_fail("could not connect to %s (connection refused): is `starbridge serve` running?"
				% endpoint)


func _poll_stream() -> void:
	_tcp.poll()
	var status := _tcp.get_status()
	var budget := READ_BUDGET_BYTES
	# poll() closes the stream only once nothing is left to read, so nothing is lost here.
	var available := _tcp.get_available_bytes() if status == StreamPeerTCP.STATUS_CONNECTED else 0
	while available > 0 and budget > 0:
		var got := _tcp.get_partial_data(mini(available, budget))
		var err: Error = got[0]
		if err != OK:
			_fail("reading from %s failed: %s" % [endpoint, error_string(err)])
			return
		var chunk: PackedByteArray = got[1]
		_rx.append_array(chunk)
		budget -= chunk.size()
		available = _tcp.get_available_bytes()
	_parse()
	if state in [State.FAILED, State.CLOSED]:
		return
	if status != StreamPeerTCP.STATUS_CONNECTED:
		_fail("the connection to %s was closed by the other side" % endpoint)
		return
	_flush()


func _flush() -> void:
	if _tx.is_empty() or _tcp == null:
		return
	var result := _tcp.put_partial_data(_tx)
	var err: Error = result[0]
	if err != OK:
		_fail("sending to %s failed: %s" % [endpoint, error_string(err)])
		return
	var sent: int = result[1]
	if sent >= _tx.size():
		_tx.clear()
	elif sent > 0:
		_tx = _tx.slice(sent)


func _parse() -> void:
	while state in [State.GREETING, State.HANDSHAKE, State.OPEN]:
		var available := _rx.size() - _rx_pos
		if state == State.GREETING:
			if available < GREETING_BYTES:
				break
			_on_greeting(_rx.slice(_rx_pos, _rx_pos + GREETING_BYTES))
			_rx_pos += GREETING_BYTES
			continue
		if available < 2:
			break
		var flags := _rx[_rx_pos]
		var header := 2
		var size := _rx[_rx_pos + 1]
		if flags & ~(FLAG_MORE | FLAG_LONG | FLAG_COMMAND):
			_fail("malformed ZMTP frame from %s (flags %02x)" % [endpoint, flags])
			return
		if flags & FLAG_LONG:
			header = 9
			if available < header:
				break
			size = _read_be(_rx, _rx_pos + 1, 8)
		var command := (flags & FLAG_COMMAND) != 0
		var limit := MAX_COMMAND_BYTES if command else MAX_FRAME_BYTES
		if size < 0 or size > limit:
			_fail("ZMTP frame of %d bytes from %s exceeds the %d byte limit" % [size, endpoint, limit])
			return
		if available < header + size:
			break
		var body := _rx.slice(_rx_pos + header, _rx_pos + header + size)
		_rx_pos += header + size
		if command:
			_on_command(body)
		elif state != State.OPEN:
			_fail("%s sent a message before its READY: not a ZMTP 3 NULL peer" % endpoint)
		else:
			_on_message_frame(body, (flags & FLAG_MORE) != 0)
	_compact()


func _compact() -> void:
	if _rx_pos == 0:
		return
	if _rx_pos >= _rx.size():
		_rx.clear()
	else:
		_rx = _rx.slice(_rx_pos)
	_rx_pos = 0


func _on_greeting(g: PackedByteArray) -> void:
	if g[0] != 0xFF or g[9] != 0x7F:
		_fail("%s does not speak ZeroMQ (bad greeting signature): is that the engine port?" % endpoint)
		return
	peer_version = "%d.%d" % [g[10], g[11]]
	if g[10] < 3:
		_fail("%s speaks ZMTP %s; this plugin needs ZMTP 3 (libzmq 4 or newer)" % [
			endpoint, peer_version
		])
		return
	var mechanism := g.slice(12, 32).get_string_from_ascii()
	if mechanism != "NULL":
		_fail("%s asks for the ZeroMQ security mechanism %s; StarBridge plugins speak NULL only" % [
			endpoint, mechanism
		])
		return
	state = State.HANDSHAKE
	_tx.append_array(ready_command("DEALER", identity))


func _on_command(body: PackedByteArray) -> void:
	if body.is_empty() or body[0] + 1 > body.size():
		_fail("malformed ZMTP command from %s" % endpoint)
		return
	var name_length := body[0]
	var name := body.slice(1, 1 + name_length).get_string_from_ascii()
	var data := body.slice(1 + name_length)
	match name:
		"READY":
			_on_ready(data)
		"ERROR":
			var reason := ""
			if data.size() >= 1:
				reason = data.slice(1, 1 + data[0]).get_string_from_utf8()
			_fail("%s refused the connection: %s" % [endpoint, reason])
		"PING":
			# ping = "PING" ttl(2 octets) context(0..16 octets); pong = "PONG" context.
			if state == State.OPEN:
				_tx.append_array(encode_command("PONG", data.slice(2, 18)))
		_:
			pass  # PONG, SUBSCRIBE, CANCEL and unknown commands mean nothing to a DEALER


func _on_ready(data: PackedByteArray) -> void:
	if state != State.HANDSHAKE:
		_fail("%s sent READY twice" % endpoint)
		return
	var parsed: Variant = parse_metadata(data)
	if parsed == null:
		_fail("%s sent a malformed READY command" % endpoint)
		return
	var metadata: Dictionary = parsed
	var socket_type: PackedByteArray = metadata.get("socket-type", PackedByteArray())
	peer_socket_type = socket_type.get_string_from_ascii()
	if peer_socket_type not in _COMPATIBLE_PEERS:
		_fail("%s is a ZeroMQ %s socket; a DEALER needs a ROUTER (the StarBridge engine port)" % [
			endpoint, peer_socket_type
		])
		return
	state = State.OPEN


func _on_message_frame(body: PackedByteArray, more: bool) -> void:
	_parts.append(body)
	if more:
		return
	if _inbox.size() >= INBOX_LIMIT:
		_inbox.pop_front()
		dropped_receives += 1
	_inbox.append(_parts)
	_parts = []


func _fail(message: String) -> void:
	if state == State.FAILED:
		return
	error_message = message
	if _tcp != null:
		_tcp.disconnect_from_host()
		_tcp = null
	state = State.FAILED
