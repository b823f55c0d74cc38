extends RefCounted
## WirePose: scene anchor, field of view, and the reprojection rotation, checked against
## the geometry they describe.

const Check := preload("../../../check.gd")
const WirePose := preload("res://addons/starbridge/core/wire_pose.gd")


func test_camera_pose_is_relative_to_the_anchor_in_scene_units(t: Check) -> void:
	var anchor := Transform3D(Basis(Vector3.UP, deg_to_rad(90.0)).scaled(Vector3.ONE * 2.0),
		Vector3(10.0, 1.0, 0.0))
	var camera := Transform3D(Basis(Vector3.UP, deg_to_rad(120.0)), Vector3(10.0, 1.0, -4.0))
	var pose := WirePose.camera_to_scene(anchor, camera)
	# World offset (0, 0, -4) in an anchor turned 90 degrees left with 2 m per scene metre:
	# the anchor's -Z points to world -X, its +X to world -Z, so the camera is 2 scene metres +X.
	t.ok(pose.origin.is_equal_approx(Vector3(2.0, 0.0, 0.0)), "origin %s" % pose.origin)
	var q := WirePose.rotation_of(pose)
	var want := Quaternion(Vector3.UP, deg_to_rad(30.0))
	t.near(absf(q.dot(want)), 1.0, 1e-5, "30 degrees relative yaw (%s)" % q)
	t.ok(q.w >= 0.0, "w >= 0")
	t.ok(pose.basis.is_equal_approx(pose.basis.orthonormalized()), "orthonormal basis")


func test_vertical_fov_from_either_keep_aspect(t: Check) -> void:
	var camera := Camera3D.new()
	camera.fov = 60.0
	t.near(WirePose.vertical_fov_deg(camera, 16.0 / 9.0), 60.0, 1e-9, "KEEP_HEIGHT")
	camera.keep_aspect = Camera3D.KEEP_WIDTH
	camera.fov = 90.0
	var vertical := WirePose.vertical_fov_deg(camera, 2.0)
	t.near(tan(deg_to_rad(vertical) / 2.0) * 2.0, 1.0, 1e-6, "KEEP_WIDTH 90 at aspect 2")
	camera.free()


func test_projection_of_the_generation_view(t: Check) -> void:
	var anchor := Basis(Vector3.UP, deg_to_rad(-30.0))
	var generation := Quaternion(Vector3.RIGHT, deg_to_rad(10.0))
	var to_camera := WirePose.world_to_generation(anchor, generation)
	var camera_to_world := anchor * Basis(generation)
	var fov := 50.0
	var aspect := 2.0
	var tan_half := tan(deg_to_rad(fov) / 2.0)
	var cases := {
		Vector2(0.5, 0.5): Vector3(0.0, 0.0, -1.0),
		Vector2(1.0, 0.0): Vector3(tan_half * aspect, tan_half, -1.0),
		Vector2(0.0, 1.0): Vector3(-tan_half * aspect, -tan_half, -1.0),
		Vector2(0.75, 0.5): Vector3(0.5 * tan_half * aspect, 0.0, -1.0),
	}
	for uv: Vector2 in cases:
		var world_dir: Vector3 = camera_to_world * cases[uv].normalized()
		var p := WirePose.project(world_dir, to_camera, fov, aspect)
		t.ok(Vector2(p.x, p.y).is_equal_approx(uv), "%s projects to %s, got %s" % [
			cases[uv], uv, Vector2(p.x, p.y)
		])
	var behind := WirePose.project(camera_to_world * Vector3.BACK, to_camera, fov, aspect)
	t.ok(behind.z < 0.0, "a ray behind the generation camera is flagged")
