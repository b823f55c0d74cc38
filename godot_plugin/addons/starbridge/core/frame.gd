extends RefCounted
## One received frame: its pixels and what the backend said about it.
##
## [member pixels] holds [member height] rows of [member width] RGBA8 sRGB pixels, rows top to
## bottom, tightly packed: exactly what [method Image.set_data] takes with
## [constant Image.FORMAT_RGBA8]. The pose is the one the frame was generated for (wire
## convention, relative to the scene anchor): the backdrop reprojects from it to the current camera.

const Messages := preload("res://addons/starbridge/core/messages.gd")

var frame_sequence := 0
## Ring slot it was read from (shared memory); 0 for inline frames.
var slot := 0
var pose_sequence := 0
## The engine clock of the pose it answers (microseconds, [method Time.get_ticks_usec]).
var engine_time_us := 0
## The generation pose: scene metres and a unit quaternion, wire convention.
var position := Vector3.ZERO
var rotation := Quaternion.IDENTITY
var vertical_fov_deg := 60.0
## Width / height the frame spans; 0: width / height of the frame itself.
var aspect := 0.0
var scene_time_s := 0.0
var generation_latency_ms := 0.0
var width := 0
var height := 0
## When the FrameReady arrived, [method Time.get_ticks_usec].
var received_time_us := 0
var transport: Messages.Transport = Messages.Transport.UNSPECIFIED
var pixels := PackedByteArray()


## The horizontal-over-vertical aspect the frame spans.
func effective_aspect() -> float:
	if aspect > 0.0:
		return aspect
	return float(width) / float(maxi(height, 1))


## Takes the metadata of a FrameReady (inline frames; ring frames read theirs from the slot).
func set_from_ready(ready: Messages.FrameReady) -> void:
	frame_sequence = ready.frame_sequence
	slot = ready.slot
	pose_sequence = ready.pose_sequence
	engine_time_us = ready.engine_time_us
	position = ready.position
	rotation = ready.rotation
	vertical_fov_deg = ready.vertical_fov_deg
	aspect = ready.aspect
	scene_time_s = ready.scene_time_s
	generation_latency_ms = ready.generation_latency_ms
	width = ready.width
	height = ready.height
