extends RefCounted
## BackdropSurface: one texture reused for every frame of a size, the sky put into an
## environment and taken out again.

const BackdropSurface := preload("res://addons/starbridge/core/backdrop_surface.gd")
const Check := preload("../../../check.gd")
const Frame := preload("res://addons/starbridge/core/frame.gd")
const WirePose := preload("res://addons/starbridge/core/wire_pose.gd")


static func frame_of(width: int, height: int, value: int) -> Frame:
	var frame := Frame.new()
	frame.width = width
	frame.height = height
	frame.vertical_fov_deg = 50.0
	frame.rotation = Quaternion(Vector3.UP, 0.3)
	frame.pixels.resize(width * height * 4)
	frame.pixels.fill(value)
	return frame


func test_one_texture_for_every_frame_of_a_size(t: Check) -> void:
	var surface := BackdropSurface.new()
	surface.show_frame(frame_of(32, 18, 10))
	var texture := surface.texture
	var rid := texture.get_rid()
	for i in 20:
		surface.show_frame(frame_of(32, 18, 20 + i))
	t.eq(surface.uploads, 21, "uploads")
	t.eq(surface.textures_made, 1, "one texture for 21 frames")
	t.ok(surface.texture == texture and surface.texture.get_rid() == rid, "same texture and RID")
	t.eq([texture.get_width(), texture.get_height()], [32, 18], "texture size")
	surface.show_frame(frame_of(64, 36, 1))
	t.eq(surface.textures_made, 2, "a new texture when the size changes")
	t.eq(surface.material.get_shader_parameter("frame_texture"), surface.texture, "bound")
	t.eq(surface.material.get_shader_parameter("has_frame"), true, "has_frame")
	t.eq(surface.material.get_shader_parameter("tan_half_fov"), null,
		"the projection waits for update_view")


func test_update_view_sets_the_reprojection(t: Check) -> void:
	var surface := BackdropSurface.new()
	surface.show_frame(frame_of(32, 16, 10))
	var anchor := Basis(Vector3.UP, 0.1)
	surface.update_view(anchor, Quaternion.IDENTITY, 70.0, 1.0)
	var m: Basis = surface.material.get_shader_parameter("world_to_generation")
	var want := WirePose.world_to_generation(anchor, Quaternion(Vector3.UP, 0.3))
	t.ok(m.is_equal_approx(want), "from the generation rotation")
	t.near(surface.material.get_shader_parameter("tan_half_fov"), tan(deg_to_rad(25.0)), 1e-6,
		"generation fov")
	t.near(surface.material.get_shader_parameter("frame_aspect"), 2.0, 1e-6,
		"aspect 0 means the frame's own")
	surface.reproject = false
	surface.update_view(anchor, Quaternion(Vector3.RIGHT, 0.2), 70.0, 1.5)
	m = surface.material.get_shader_parameter("world_to_generation")
	want = WirePose.world_to_generation(anchor, Quaternion(Vector3.RIGHT, 0.2))
	t.ok(m.is_equal_approx(want), "without reprojection: the current camera")
	t.near(surface.material.get_shader_parameter("frame_aspect"), 1.5, 1e-6, "camera aspect")


func test_attach_and_detach_restore_the_environment(t: Check) -> void:
	var env := Environment.new()
	var old_sky := Sky.new()
	env.background_mode = Environment.BG_COLOR
	env.sky = old_sky
	env.sky_rotation = Vector3(0.1, 0.2, 0.3)
	var surface := BackdropSurface.new()
	surface.attach(env)
	t.eq(env.background_mode, Environment.BG_SKY, "sky background")
	t.ok(env.sky == surface.sky, "our sky")
	t.eq(env.sky_rotation, Vector3.ZERO, "no sky rotation (it would turn the backdrop)")
	t.ok(surface.sky.sky_material == surface.material, "the backdrop material")
	surface.detach()
	t.eq(env.background_mode, Environment.BG_COLOR, "background restored")
	t.ok(env.sky == old_sky, "sky restored")
	t.eq(env.sky_rotation, Vector3(0.1, 0.2, 0.3), "rotation restored")
	surface.attach(null)
	t.eq(surface.attached_environment(), null, "attached to nothing")
