extends Camera3D
## The demo's camera: looks around on its own, or follows the mouse while the right button is
## held (arrow keys work too). It only turns; the neural backdrop stays locked to the world.

## Degrees per second of the automatic look-around (0: still).
@export var auto_turn_speed := 8.0
## How far the automatic look-around swings left and right, degrees.
@export var auto_turn_range := 35.0
## Degrees per pixel of mouse motion.
@export var mouse_sensitivity := 0.2
## Degrees per second for the arrow keys.
@export var key_speed := 60.0

var yaw := 0.0
var pitch := 0.0
var _time := 0.0
var _manual := false


func _ready() -> void:
	yaw = rotation_degrees.y
	pitch = rotation_degrees.x


func _unhandled_input(event: InputEvent) -> void:
	var motion := event as InputEventMouseMotion
	if motion != null and (motion.button_mask & MOUSE_BUTTON_MASK_RIGHT) != 0:
		_manual = true
		yaw -= motion.relative.x * mouse_sensitivity
		pitch = clampf(pitch - motion.relative.y * mouse_sensitivity, -80.0, 80.0)


func _process(delta: float) -> void:
	var keys := Input.get_vector("ui_left", "ui_right", "ui_down", "ui_up")
	if keys != Vector2.ZERO:
		_manual = true
		yaw -= keys.x * key_speed * delta
		pitch = clampf(pitch + keys.y * key_speed * delta, -80.0, 80.0)
	if not _manual and auto_turn_speed > 0.0:
		_time += delta
		var period := 4.0 * auto_turn_range / auto_turn_speed
		yaw = auto_turn_range * sin(TAU * _time / period)
	rotation_degrees = Vector3(pitch, yaw, 0.0)
