extends RefCounted
## Frame rate and latency of a backdrop connection, over the last [constant WINDOW] frames.
##
## Latency is pose-to-frame on the engine's own clock: from sampling the camera pose a frame
## answers to the frame arriving (FrameReady echoes the pose's engine_time_us). Generation latency
## is the backend's own figure for the frame's block. Fixed-size ring buffers: nothing grows.

## Frames the statistics look back over.
const WINDOW := 64

## Totals since [method reset].
var frames := 0
var poses_sent := 0
var poses_dropped := 0
var frames_skipped := 0
var backend_errors := 0

var _arrivals := PackedInt64Array()
var _latency_ms := PackedFloat32Array()
var _generation_ms := PackedFloat32Array()
var _next := 0
var _count := 0


func _init() -> void:
	reset()


## Forgets everything (a new session).
func reset() -> void:
	frames = 0
	poses_sent = 0
	poses_dropped = 0
	frames_skipped = 0
	backend_errors = 0
	_arrivals.resize(WINDOW)
	_latency_ms.resize(WINDOW)
	_generation_ms.resize(WINDOW)
	_next = 0
	_count = 0


## Records a frame that arrived at [param received_us] answering a pose sampled at
## [param pose_time_us] (both [method Time.get_ticks_usec]).
func frame(received_us: int, pose_time_us: int, generation_latency_ms: float) -> void:
	frames += 1
	_arrivals[_next] = received_us
	_latency_ms[_next] = maxf(0.0, (received_us - pose_time_us) / 1000.0)
	_generation_ms[_next] = generation_latency_ms
	_next = (_next + 1) % WINDOW
	_count = mini(_count + 1, WINDOW)


## Frames per second over the window (0 with fewer than two frames).
func fps() -> float:
	if _count < 2:
		return 0.0
	var newest := _arrivals[(_next - 1 + WINDOW) % WINDOW]
	var oldest := _arrivals[(_next - _count + WINDOW) % WINDOW]
	if newest <= oldest:
		return 0.0
	return (_count - 1) * 1e6 / float(newest - oldest)


## Pose-to-frame latency percentile in milliseconds ([param q] in [0, 1]; 0 with no frames).
func latency_ms(q: float = 0.5) -> float:
	return _percentile(_latency_ms, q)


## Generation latency percentile in milliseconds, as the backend reports it.
func generation_ms(q: float = 0.5) -> float:
	return _percentile(_generation_ms, q)


## Seconds since the newest frame arrived at [param now_us]; INF with none.
func seconds_since_frame(now_us: int) -> float:
	if _count == 0:
		return INF
	return (now_us - _arrivals[(_next - 1 + WINDOW) % WINDOW]) / 1e6


func _percentile(values: PackedFloat32Array, q: float) -> float:
	if _count == 0:
		return 0.0
	var window := values.slice(0, _count) if _count < WINDOW else values.duplicate()
	window.sort()
	return window[clampi(roundi(q * (_count - 1)), 0, _count - 1)]
