extends RefCounted
## The backdrop's pixels on the GPU and the sky that draws them behind all geometry.
##
## One [Image] and one [ImageTexture], made for the first frame and again only when the frame size
## changes; every other frame is handed to the same Image ([method Image.set_data] takes the
## frame's array by reference, no copy) and uploaded into the same texture with
## [method ImageTexture.update]. The [Sky] uses backdrop_sky.gdshader, which reprojects the frame
## from its generation pose to the current camera per pixel. [method attach] puts the sky into an
## [Environment] (background mode Sky) and [method detach] puts back what was there.

## What the sky draws where the frame does not reach.
enum Outside { EDGE = 0, COLOR = 1 }

const Frame := preload("res://addons/starbridge/core/frame.gd")
const WirePose := preload("res://addons/starbridge/core/wire_pose.gd")

## The sky shader.
const SHADER := preload("res://addons/starbridge/backdrop_sky.gdshader")

## The sky and its material (the material's parameters are the shader's uniforms).
var sky := Sky.new()
var material := ShaderMaterial.new()
## The frame's texture; null until the first frame.
var texture: ImageTexture = null
## Frames uploaded, and textures made (1 for any number of frames of one size).
var uploads := 0
var textures_made := 0
## Reproject from the generation pose (true) or draw the frame as if generated for the current
## camera (false: the backdrop then turns with the camera until the next frame).
var reproject := true

var _image: Image = null
var _environment: Environment = null
var _saved_background := Environment.BG_CLEAR_COLOR
var _saved_sky: Sky = null
var _saved_sky_rotation := Vector3.ZERO
var _generation_rotation := Quaternion.IDENTITY
var _generation_tan_half_fov := tan(deg_to_rad(30.0))
var _generation_aspect := 16.0 / 9.0


func _init() -> void:
	material.shader = SHADER
	sky.sky_material = material
	sky.radiance_size = Sky.RADIANCE_SIZE_64


## Draws the sky as [param environment]'s background (remembering what it had). Null detaches.
func attach(environment: Environment) -> void:
	if environment == _environment:
		return
	detach()
	if environment == null:
		return
	_environment = environment
	_saved_background = environment.background_mode
	_saved_sky = environment.sky
	_saved_sky_rotation = environment.sky_rotation
	environment.background_mode = Environment.BG_SKY
	environment.sky = sky
	environment.sky_rotation = Vector3.ZERO


## Gives the environment its own background back.
func detach() -> void:
	if _environment == null:
		return
	if _environment.sky == sky:
		_environment.sky = _saved_sky
		_environment.background_mode = _saved_background
		_environment.sky_rotation = _saved_sky_rotation
	_environment = null


## The environment the sky is attached to, or null.
func attached_environment() -> Environment:
	return _environment


## Uploads [param frame]'s pixels and takes its generation pose for the reprojection.
func show_frame(frame: Frame) -> void:
	if _image == null or _image.get_width() != frame.width or _image.get_height() != frame.height:
		_image = Image.create_from_data(
			frame.width, frame.height, false, Image.FORMAT_RGBA8, frame.pixels
		)
		texture = ImageTexture.create_from_image(_image)
		textures_made += 1
		material.set_shader_parameter("frame_texture", texture)
	else:
		_image.set_data(frame.width, frame.height, false, Image.FORMAT_RGBA8, frame.pixels)
		texture.update(_image)
	uploads += 1
	_generation_rotation = frame.rotation
	_generation_tan_half_fov = tan(deg_to_rad(frame.vertical_fov_deg) * 0.5)
	_generation_aspect = frame.effective_aspect()
	material.set_shader_parameter("has_frame", true)


## Shows [param color] instead of the frame (before the first frame, or to mask the backdrop out);
## [method show_frame] brings the frame back.
func show_flat(color: Color) -> void:
	material.set_shader_parameter("has_frame", false)
	material.set_shader_parameter("empty_color", color)


## Brings back the last frame after [method show_flat]; false if there is none.
func show_last_frame() -> bool:
	material.set_shader_parameter("has_frame", texture != null)
	return texture != null


## Updates the reprojection for this render: [param anchor_basis] is the scene anchor's global
## basis; [param camera_rotation], [param camera_fov_deg] and [param camera_aspect] describe the
## current camera in scene space (used when [member reproject] is off).
func update_view(
	anchor_basis: Basis, camera_rotation: Quaternion, camera_fov_deg: float, camera_aspect: float
) -> void:
	var rotation := _generation_rotation
	var tan_half := _generation_tan_half_fov
	var aspect := _generation_aspect
	if not reproject:
		rotation = camera_rotation
		tan_half = tan(deg_to_rad(camera_fov_deg) * 0.5)
		aspect = camera_aspect
	material.set_shader_parameter(
		"world_to_generation", WirePose.world_to_generation(anchor_basis, rotation)
	)
	material.set_shader_parameter("tan_half_fov", tan_half)
	material.set_shader_parameter("frame_aspect", aspect)


## Appearance: what shows before the first frame, outside the frame, and the backdrop's energy.
func set_look(
	empty: Color, outside: Outside, outside_color: Color, energy: float, light_from_backdrop: bool
) -> void:
	if texture == null:
		material.set_shader_parameter("has_frame", false)
	material.set_shader_parameter("empty_color", empty)
	material.set_shader_parameter("outside_mode", outside)
	material.set_shader_parameter("outside_color", outside_color)
	material.set_shader_parameter("energy", energy)
	material.set_shader_parameter("light_from_backdrop", light_from_backdrop)
