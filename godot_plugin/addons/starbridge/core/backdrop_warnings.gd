extends RefCounted
## The setup mistakes a [NeuralBackdrop] shows in the editor (its configuration warnings).

const Backdrop := preload("res://addons/starbridge/neural_backdrop.gd")
const BackdropClient := preload("res://addons/starbridge/core/backdrop_client.gd")


## Every warning for [param node], each saying what to change.
static func collect(node: Backdrop) -> PackedStringArray:
	var warnings := PackedStringArray()
	var endpoint := BackdropClient.parse_endpoint(node.server)
	if endpoint.is_empty():
		warnings.append("Server \"%s\" is not an address like tcp://127.0.0.1:50052." % node.server)
	elif node.transport == Backdrop.Transport.SHARED_MEMORY:
		var host: String = endpoint[0]
		if not _is_local(host):
			warnings.append("Shared memory works only with a backend on this machine; the server is "
				+ "%s. Use the INLINE transport for a remote backend." % host)
	# 0 is valid everywhere here: it asks for the backend's default size or rate.
	if (node.width == 0) != (node.height == 0):
		warnings.append("Set both width and height, or both to 0 (the backend's default size).")
	for side: int in [node.width, node.height]:
		if side < 0:
			warnings.append("Frame sides cannot be negative (got %d); 0 asks for the backend's size."
				% side)
		elif side != 0 and (side < Backdrop.MIN_SIDE or side > Backdrop.MAX_SIDE):
			warnings.append("Frame sides must be %d to %d pixels (or 0 for the default); got %d."
				% [Backdrop.MIN_SIDE, Backdrop.MAX_SIDE, side])
	if node.fps < 0.0 or node.fps > Backdrop.MAX_FPS:
		warnings.append("Frames per second must be 0 (the backend's rate) up to %s; got %s."
			% [Backdrop.MAX_FPS, node.fps])
	var scale := node.global_basis.get_scale() if node.is_inside_tree() else node.basis.get_scale()
	if scale.x <= 0.0 or scale.y <= 0.0 or scale.z <= 0.0 or node.basis.determinant() <= 0.0:
		warnings.append("The node's scale must be positive: it is the scene anchor's scale.")
	elif not (is_equal_approx(scale.x, scale.y) and is_equal_approx(scale.y, scale.z)):
		warnings.append("The node's scale must be uniform (it is metres per scene metre); got %s."
			% scale)
	if node.camera != null and node.camera.projection != Camera3D.PROJECTION_PERSPECTIVE:
		warnings.append("The camera must use a perspective projection: the backend renders a "
			+ "perspective view.")
	var env := node.world_environment.environment if node.world_environment != null else null
	if env != null and env.tonemap_mode != Environment.TONE_MAPPER_LINEAR:
		warnings.append("The environment's tonemapper is not Linear: the backdrop's colours will "
			+ "differ from the frames the backend made.")
	if node.is_inside_tree() and _count_backdrops(node) > 1:
		warnings.append("More than one NeuralBackdrop in this scene: they would fight over the sky. "
			+ "Keep one.")
	return warnings


static func _is_local(host: String) -> bool:
	return host in ["localhost", "127.0.0.1", "::1"] or host.begins_with("127.")


static func _count_backdrops(node: Node) -> int:
	var root := node.get_tree().edited_scene_root if Engine.is_editor_hint() else node.owner
	if root == null:
		root = node.get_tree().current_scene
	return 1 if root == null else _count_in(root)


static func _count_in(node: Node) -> int:
	var count := 1 if node is Backdrop else 0
	for child in node.get_children():
		count += _count_in(child)
	return count
