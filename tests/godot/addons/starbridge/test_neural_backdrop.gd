extends RefCounted
## The NeuralBackdrop node in a scene tree (no backend): configuration warnings, the sky it puts
## into the environment and gives back, the pose it derives from the camera and the anchor.

const Backdrop := preload("res://addons/starbridge/neural_backdrop.gd")
const BackdropClient := preload("res://addons/starbridge/core/backdrop_client.gd")
const Check := preload("../../check.gd")
const WirePose := preload("res://addons/starbridge/core/wire_pose.gd")


static func make_level(with_environment: bool) -> Node3D:
	var level := Node3D.new()
	level.name = "Level"
	var camera := Camera3D.new()
	camera.name = "Camera"
	camera.position = Vector3(3.0, 1.6, 0.0)
	camera.rotation_degrees = Vector3(0.0, 40.0, 0.0)
	level.add_child(camera)
	if with_environment:
		var world_env := WorldEnvironment.new()
		world_env.name = "WorldEnvironment"
		world_env.environment = Environment.new()
		world_env.environment.background_mode = Environment.BG_COLOR
		level.add_child(world_env)
	var backdrop := Backdrop.new()
	backdrop.name = "NeuralBackdrop"
	backdrop.autostart = false
	backdrop.camera = camera
	backdrop.position = Vector3(3.0, 1.6, 0.0)
	backdrop.rotation_degrees = Vector3(0.0, 10.0, 0.0)
	level.add_child(backdrop)
	return level


func test_configuration_warnings_name_the_fix(t: Check) -> void:
	var backdrop := Backdrop.new()
	t.eq(backdrop._get_configuration_warnings(), PackedStringArray(), "defaults are fine")
	t.eq([backdrop.width, backdrop.height, backdrop.fps], [0, 0, 0.0], "0: the backend's defaults")
	var cases := [
		["server", "http://x/y", "not an address"],
		["server", "tcp://10.0.0.5:50052", "INLINE"],
		["width", 320, "both width and height"],
		["height", -5, "cannot be negative"],
		["fps", -1.0, "Frames per second"],
		["width", 8, "16 to 4096"],
		["fps", 500.0, "Frames per second"],
		["scale", Vector3(1.0, 2.0, 1.0), "uniform"],
		["scale", Vector3(-1.0, 1.0, 1.0), "positive"],
	]
	for case: Array in cases:
		var node := Backdrop.new()
		node.set(case[0], case[1])
		var text := "\n".join(node._get_configuration_warnings())
		t.has_all(text, [case[2]], "%s = %s" % [case[0], case[1]])
		node.free()
	var ortho := Camera3D.new()
	ortho.projection = Camera3D.PROJECTION_ORTHOGONAL
	backdrop.camera = ortho
	t.has_all("\n".join(backdrop._get_configuration_warnings()), ["perspective"], "orthogonal")
	ortho.free()
	backdrop.free()


func test_two_backdrops_in_one_scene_are_flagged(t: Check) -> void:
	var tree := Engine.get_main_loop() as SceneTree
	var level := make_level(true)
	var second := Backdrop.new()
	second.autostart = false
	level.add_child(second)
	second.owner = level
	level.get_node("NeuralBackdrop").owner = level
	tree.root.add_child(level)
	t.has_all("\n".join(second._get_configuration_warnings()), ["More than one"], "two backdrops")
	level.queue_free()
	await tree.process_frame


func test_sky_goes_into_the_environment_and_back(t: Check) -> void:
	var tree := Engine.get_main_loop() as SceneTree
	var level := make_level(true)
	var env: Environment = level.get_node("WorldEnvironment").environment
	tree.root.add_child(level)
	await tree.process_frame
	var backdrop: Backdrop = level.get_node("NeuralBackdrop")
	t.eq(env.background_mode, Environment.BG_SKY, "the world environment shows the sky")
	t.ok(env.sky == backdrop.get_surface().sky, "the backdrop's sky")
	t.eq(backdrop.process_mode, Node.PROCESS_MODE_ALWAYS, "keeps running while paused")
	t.eq(backdrop.process_priority, Backdrop.PROCESS_PRIORITY, "after the cameras")
	t.eq(backdrop.get_client().status, BackdropClient.Status.STOPPED, "autostart off")
	level.remove_child(backdrop)
	t.eq(env.background_mode, Environment.BG_COLOR, "background given back on exit")
	backdrop.free()
	level.queue_free()
	await tree.process_frame


func test_a_world_without_environment_gets_one(t: Check) -> void:
	var tree := Engine.get_main_loop() as SceneTree
	var level := make_level(false)
	var viewport := SubViewport.new()
	viewport.own_world_3d = true
	viewport.add_child(level)
	tree.root.add_child(viewport)
	await tree.process_frame
	var world := viewport.find_world_3d()
	t.ok(world.environment != null, "an environment was made")
	t.eq(world.environment.background_mode, Environment.BG_SKY, "showing the backdrop")
	t.eq(world.environment.tonemap_mode, Environment.TONE_MAPPER_LINEAR, "linear tonemapper")
	viewport.queue_free()
	await tree.process_frame


func test_pose_is_the_camera_relative_to_the_anchor(t: Check) -> void:
	var tree := Engine.get_main_loop() as SceneTree
	var level := make_level(true)
	tree.root.add_child(level)
	await tree.process_frame
	var backdrop: Backdrop = level.get_node("NeuralBackdrop")
	var camera: Camera3D = level.get_node("Camera")
	t.ok(backdrop.active_camera() == camera, "the configured camera")
	var pose := WirePose.camera_to_scene(backdrop.global_transform, camera.global_transform)
	t.ok(pose.origin.is_zero_approx(), "camera at the anchor's origin")
	var q := WirePose.rotation_of(pose)
	t.near(absf(q.dot(Quaternion(Vector3.UP, deg_to_rad(30.0)))), 1.0, 1e-5, "30 degrees of yaw")
	level.queue_free()
	await tree.process_frame
