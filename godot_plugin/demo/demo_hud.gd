extends Label
## Shows the backdrop's status, frame rate and latency in a corner of the demo.

const Backdrop := preload("res://addons/starbridge/neural_backdrop.gd")

## The backdrop to report on.
@export var backdrop: Backdrop


func _process(_delta: float) -> void:
	if backdrop == null:
		text = "no NeuralBackdrop"
		return
	text = "%s\n%.1f frames/s, latency %.0f ms" % [
		backdrop.status_text, backdrop.frames_per_second, backdrop.latency_ms
	]
