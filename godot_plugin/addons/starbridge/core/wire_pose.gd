extends RefCounted
## Camera poses between Godot and the wire, and the reprojection rotation of the backdrop.
##
## The wire convention (docs/architecture.md §3) is Godot's: right-handed, +Y up, metres, a camera
## looks down its local -Z with +Y up, a pose is camera-to-world. So no axis conversion is
## needed, only the scene anchor: poses travel relative to the anchor's transform, in scene units
## (the anchor's scale is world metres per scene metre). Rotations drop any scale.


## The camera-to-scene pose of a camera at [param camera] (global transform) for a scene anchor
## at [param anchor] (global transform, uniform scale): origin in scene metres, an orthonormal
## basis.
static func camera_to_scene(anchor: Transform3D, camera: Transform3D) -> Transform3D:
	var relative := anchor.affine_inverse() * camera
	return Transform3D(relative.basis.orthonormalized(), relative.origin)


## The unit quaternion of a pose's rotation, w >= 0 (either sign is the same rotation).
static func rotation_of(pose: Transform3D) -> Quaternion:
	var q := pose.basis.get_rotation_quaternion().normalized()
	if q.w < 0.0:
		q = -q
	return q


## The vertical field of view in degrees of [param camera] on a viewport of [param aspect]
## (width / height): Camera3D.fov is vertical with KEEP_HEIGHT and horizontal with KEEP_WIDTH.
static func vertical_fov_deg(camera: Camera3D, aspect: float) -> float:
	if camera.keep_aspect == Camera3D.KEEP_HEIGHT or aspect <= 0.0:
		return camera.fov
	var half := deg_to_rad(camera.fov) * 0.5
	return rad_to_deg(2.0 * atan(tan(half) / aspect))


## The rotation that takes a world-space direction into the camera frame a backdrop frame was
## generated in: world -> scene (inverse of the anchor's rotation) -> generation camera (inverse
## of the generation rotation). The sky shader applies it to each pixel's view ray.
static func world_to_generation(anchor_basis: Basis, generation_rotation: Quaternion) -> Basis:
	var generation := Basis(generation_rotation.normalized())
	return generation.transposed() * anchor_basis.orthonormalized().transposed()


## Where a world-space direction lands in a frame generated with [param world_to_camera] (see
## [method world_to_generation]), vertical FOV [param fov_deg] and [param aspect]: UV in [0, 1]^2
## with v down (rows top to bottom); a negative z in the result means behind the camera.
## The same projection the sky shader does, for tests and tools.
static func project(
	direction: Vector3, world_to_camera: Basis, fov_deg: float, aspect: float
) -> Vector3:
	var d := world_to_camera * direction
	var depth := -d.z
	if depth <= 0.0:
		return Vector3(0.0, 0.0, -1.0)
	var tan_half := tan(deg_to_rad(fov_deg) * 0.5)
	var x := d.x / depth / (tan_half * aspect)
	var y := d.y / depth / tan_half
	return Vector3(0.5 + 0.5 * x, 0.5 - 0.5 * y, depth)
