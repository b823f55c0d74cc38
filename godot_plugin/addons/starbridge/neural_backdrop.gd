@tool
@icon("res://addons/starbridge/icons/neural_backdrop.svg")
class_name NeuralBackdrop
extends Node3D
## A neural backdrop: the world a StarBridge backend generates for your camera, drawn behind all
## scene geometry and locked to the world while the camera turns.
##
## Add one to a 3D scene and press Play. Every frame it sends the camera pose to the backend (at
## most at the session's frame rate), uploads the newest generated frame into one reused texture,
## and draws it as the environment's sky, reprojected from the pose it was generated for to the
## current camera, so late frames still sit where the world is. When the backend goes away the
## last frame stays and the node reconnects by itself; [member status_text] says what is going on.
## [br][br]
## [b]Scene anchor[/b]: this node's transform places the neural world in the level. The reference
## video's first camera sits at this node's origin, looking down its -Z; the node's (uniform)
## scale is world metres per scene metre. Move, turn or scale the node to move the world.
## [br][br]
## [b]Runs while the game is paused[/b] (process mode Always unless you set another), since poses
## are the session's heartbeat. Nothing connects in the editor.

## The status changed (see [member status_text]).
signal status_changed(status: BackdropClient.Status, message: String)
## A session started (also after every reconnect).
signal session_started(welcome: Messages.Welcome)
## A new frame is on screen.
signal frame_presented(frame: Frame)
## The backend reported an error (fatal ones end the session; the node reconnects).
signal backend_error(error: Messages.BackendError)

## How frames travel from the backend.
enum Transport {
	## A shared-memory frame ring: fastest; the backend must run on this machine.
	SHARED_MEMORY = 1,
	## Pixels inside the ZeroMQ messages: works across machines.
	INLINE = 2,
}

## Where the frame does not reach (the camera turned past its edge before the next frame).
enum Outside {
	## The nearest edge pixel of the frame.
	EDGE = 0,
	## [member outside_color].
	COLOR = 1,
}

const BackdropClient := preload("res://addons/starbridge/core/backdrop_client.gd")
const BackdropSurface := preload("res://addons/starbridge/core/backdrop_surface.gd")
const BackdropWarnings := preload("res://addons/starbridge/core/backdrop_warnings.gd")
const Frame := preload("res://addons/starbridge/core/frame.gd")
const Messages := preload("res://addons/starbridge/core/messages.gd")
const WirePose := preload("res://addons/starbridge/core/wire_pose.gd")

## Runs after everything that moves cameras, so the pose sent is this frame's.
const PROCESS_PRIORITY := 1000
## Frame sizes and rates the backend accepts.
const MIN_SIDE := 16
const MAX_SIDE := 4096
const MAX_FPS := 120.0

@export_group("Server")
## The backend's engine channel: [code]tcp://host:port[/code] (default port 50052). Start the
## backend with [code]starbridge serve[/code].
@export var server := "tcp://127.0.0.1:50052":
	set(value):
		server = value
		update_configuration_warnings()
## Access token, when the backend runs with [code]--token[/code]. Empty: none.
@export var token := ""
## Connect when the game starts. Off: call [method connect_to_backend].
@export var autostart := true

@export_group("Scene")
## The scene to roam in. Empty: the backend's default scene ([code]demo[/code] unless it was
## started with [code]--scene[/code]).
@export var scene_id := ""
## The scene clock runs (off: frozen at the current instant; the camera can still roam).
@export var playing := true:
	set(value):
		playing = value
		if _client != null and value:
			_client.play()
		elif _client != null:
			_client.pause()
## Playback speed of the scene clock (1 = real time).
@export_range(0.05, 8.0, 0.05) var speed := 1.0:
	set(value):
		speed = value
		if _client != null:
			_client.set_speed(value)

@export_group("Frames")
## Frame width in pixels; 0 (the default): the backend's own size, as
## [code]starbridge serve --width/--height[/code] set it (512 x 288 unless given). Set both width
## and height, or neither. The backend may round a size; the texture always takes the size the
## session's Welcome agreed ([method get_client], [code]welcome.width[/code]).
@export_range(0, 4096, 1, "suffix:px") var width := 0:
	set(value):
		width = value
		update_configuration_warnings()
## Frame height in pixels; 0 (the default): the backend's own (see [member width]).
@export_range(0, 4096, 1, "suffix:px") var height := 0:
	set(value):
		height = value
		update_configuration_warnings()
## Frames per second to generate; 0 (the default): the backend's own rate, as
## [code]starbridge serve --fps[/code] set it (30 unless given). Poses go out at the agreed rate.
@export_range(0.0, 120.0, 1.0, "suffix:fps") var fps := 0.0:
	set(value):
		fps = value
		update_configuration_warnings()
## Shared memory (same machine, fastest) or inline (any machine).
@export var transport: Transport = Transport.SHARED_MEMORY:
	set(value):
		transport = value
		update_configuration_warnings()

@export_group("Display")
## The camera whose pose is streamed. Empty: the viewport's current camera.
@export var camera: Camera3D:
	set(value):
		camera = value
		update_configuration_warnings()
## The WorldEnvironment whose sky shows the backdrop. Empty: the camera's environment, else the
## world's, else a new one.
@export var world_environment: WorldEnvironment
## Reproject each frame from its generation pose to the current camera, so the backdrop stays
## locked to the world while the camera turns. Off: frames are drawn as they are.
@export var reproject := true:
	set(value):
		reproject = value
		if _surface != null:
			_surface.reproject = value
## Keep showing the current frame (new frames are received but not shown). With reprojection on
## this shows how well a late frame holds up; the backend keeps running.
@export var hold_frame := false
## What shows where the camera turned past the frame's edge.
@export var outside: Outside = Outside.EDGE:
	set(value):
		outside = value
		_apply_look()
## Colour outside the frame when [member outside] is COLOR.
@export var outside_color := Color.BLACK:
	set(value):
		outside_color = value
		_apply_look()
## Colour of the sky before the first frame arrives.
@export var empty_color := Color(0.05, 0.05, 0.07):
	set(value):
		empty_color = value
		_apply_look()
## Brightness of the backdrop (1: the frame's colours, with a Linear tonemapper).
@export_range(0.0, 4.0, 0.01) var energy := 1.0:
	set(value):
		energy = value
		_apply_look()
## Let the backdrop light the scene (sky ambient light and reflections). Costs a redraw of the
## sky's radiance map every frame; off, the radiance is a flat grey.
@export var light_from_backdrop := false:
	set(value):
		light_from_backdrop = value
		_apply_look()

@export_group("Status")
## What the backdrop is doing, and why when something is wrong (read-only).
@export var status_text := "not running (press Play)"
## Frames arriving per second (read-only).
@export var frames_per_second := 0.0
## Pose-to-frame latency, median, milliseconds (read-only).
@export var latency_ms := 0.0

var _client: BackdropClient = null
var _surface: BackdropSurface = null
var _owned_environment: Environment = null
var _resume_on_enter := false


func _validate_property(property: Dictionary) -> void:
	if property.name in ["status_text", "frames_per_second", "latency_ms"]:
		property.usage = PROPERTY_USAGE_EDITOR | PROPERTY_USAGE_READ_ONLY


func _get_configuration_warnings() -> PackedStringArray:
	return BackdropWarnings.collect(self)


func _ready() -> void:
	if Engine.is_editor_hint():
		return
	if process_mode == PROCESS_MODE_INHERIT:
		process_mode = PROCESS_MODE_ALWAYS
	if process_priority == 0:
		process_priority = PROCESS_PRIORITY
	_surface = BackdropSurface.new()
	_surface.reproject = reproject
	_apply_look()
	_client = BackdropClient.new()
	_client.engine_version = "%d.%d.%s" % [
		Engine.get_version_info().major, Engine.get_version_info().minor,
		Engine.get_version_info().status
	]
	_client.status_changed.connect(_on_status_changed)
	_client.welcomed.connect(_on_welcomed)
	_client.backend_error.connect(func(e: Messages.BackendError) -> void:
		backend_error.emit(e))
	_attach_environment()
	if autostart:
		connect_to_backend()


func _enter_tree() -> void:
	if _resume_on_enter:  # moved to another parent: carry on
		_resume_on_enter = false
		connect_to_backend()


func _exit_tree() -> void:
	if _client != null:
		_resume_on_enter = _client.status != BackdropClient.Status.STOPPED
		_client.stop("the NeuralBackdrop left the scene tree")
	if _surface != null:
		_surface.detach()
	if _owned_environment != null:
		var world := get_world_3d()
		if world != null and world.environment == _owned_environment:
			world.environment = null
		_owned_environment = null


func _process(_delta: float) -> void:
	if _client == null:
		return
	_client.poll()
	_attach_environment()
	var cam := active_camera()
	var pose := Transform3D.IDENTITY
	var camera_rotation := Quaternion.IDENTITY
	var aspect := 1.0
	var fov := 60.0
	if cam != null:
		aspect = _viewport_aspect(cam)
		fov = WirePose.vertical_fov_deg(cam, aspect)
		pose = WirePose.camera_to_scene(global_transform, cam.global_transform)
		camera_rotation = WirePose.rotation_of(pose)
		_client.send_pose(pose.origin, camera_rotation, fov, aspect)
	var frame := _client.take_frame()
	if frame != null and not hold_frame:
		_surface.show_frame(frame)
		frame_presented.emit(frame)
	if cam != null:
		_surface.update_view(global_basis, camera_rotation, fov, aspect)
	frames_per_second = _client.stats.fps()
	latency_ms = _client.stats.latency_ms(0.5)


## Connects (again) with the current settings. Called on start when [member autostart] is on.
func connect_to_backend() -> void:
	if _client == null:
		return
	_client.endpoint = server
	_client.token = token
	_client.scene_id = scene_id
	_client.width = width
	_client.height = height
	_client.fps = fps
	_client.transport = transport as Messages.Transport
	_client.client_label = str(get_path())
	if not playing:
		_client.pause()
	if not is_equal_approx(speed, 1.0):
		_client.set_speed(speed)
	_client.start()


## Says Goodbye and disconnects; the last frame stays on screen.
func disconnect_from_backend(reason: String = "disconnected by the game") -> void:
	if _client != null:
		_client.stop(reason)


## Jumps the scene clock to [param time_s] seconds.
func seek(time_s: float) -> void:
	if _client != null:
		_client.seek(time_s)


## The camera whose pose is streamed: [member camera], else the viewport's current camera.
func active_camera() -> Camera3D:
	if camera != null:
		return camera
	return get_viewport().get_camera_3d() if is_inside_tree() else null


## True while frames flow.
func is_streaming() -> bool:
	return _client != null and _client.status == BackdropClient.Status.STREAMING


## The connection (settings, statistics, the current Welcome); null in the editor.
func get_client() -> BackdropClient:
	return _client


## The texture and sky (for tools and tests); null in the editor.
func get_surface() -> BackdropSurface:
	return _surface


func _viewport_aspect(cam: Camera3D) -> float:
	var size := cam.get_viewport().get_visible_rect().size
	return size.x / maxf(size.y, 1.0)


func _attach_environment() -> void:
	var env := _find_environment()
	if env == null:
		var world := get_world_3d()
		if world == null:
			return
		_owned_environment = Environment.new()
		_owned_environment.tonemap_mode = Environment.TONE_MAPPER_LINEAR
		world.environment = _owned_environment
		env = _owned_environment
	_surface.attach(env)


func _find_environment() -> Environment:
	if world_environment != null:
		if world_environment.environment == null:
			world_environment.environment = Environment.new()
		return world_environment.environment
	var cam := active_camera()
	if cam != null and cam.environment != null:
		return cam.environment
	var world := get_world_3d()
	return world.environment if world != null else null


func _apply_look() -> void:
	if _surface != null:
		_surface.set_look(
			empty_color, outside as BackdropSurface.Outside, outside_color, energy,
			light_from_backdrop
		)


func _on_status_changed(status: BackdropClient.Status, message: String) -> void:
	var state: String = BackdropClient.Status.keys()[status]
	status_text = "%s: %s" % [state.to_lower(), message]
	status_changed.emit(status, message)


func _on_welcomed(welcome: Messages.Welcome) -> void:
	session_started.emit(welcome)
