extends SceneTree
## Runs the demo level (res://demo/demo.tscn, the project's main scene) against a backend and
## records what its NeuralBackdrop and HUD did, for tests/godot/test_godot_fresh_checkout.py.
##
## godot --headless --path P --script demo_driver.gd -- --endpoint=tcp://127.0.0.1:N
##     --out=SUMMARY.json [--frames=N] [--seconds=S]
##
## The only change to the level is the server address (the demo's is the default port). Stops once
## --frames frames were shown (default 5) or after --seconds (default 30).

const Backdrop := preload("res://addons/starbridge/neural_backdrop.gd")
const BackdropClient := preload("res://addons/starbridge/core/backdrop_client.gd")

var frames := 0


func _initialize() -> void:
	_run()


func _run() -> void:
	await process_frame
	var options := {}
	for arg in OS.get_cmdline_user_args():
		options[arg.trim_prefix("--").get_slice("=", 0)] = arg.get_slice("=", 1)
	var started := Time.get_ticks_msec()
	var level := (load("res://demo/demo.tscn") as PackedScene).instantiate()
	var backdrop := _find_backdrop(level)
	var hud := level.get_node("HUD/Status") as Label
	backdrop.server = options["endpoint"]
	backdrop.frame_presented.connect(func(_frame: RefCounted) -> void: frames += 1)
	root.add_child(level)
	var wanted := int(options.get("frames", "5"))
	var seconds := float(options.get("seconds", "30"))
	while frames < wanted and Time.get_ticks_msec() - started < seconds * 1000.0:
		await process_frame
	await process_frame  # the HUD shows this frame's status
	var client := backdrop.get_client()
	var welcome := client.welcome
	var summary := {
		"status": BackdropClient.Status.keys()[client.status], "status_text": backdrop.status_text,
		"frames": frames, "hud": hud.text if hud != null else "",
		"welcome": [welcome.width, welcome.height] if welcome != null else [],
		"settings": [backdrop.width, backdrop.height, backdrop.fps],
		"texture_size": [0, 0] if backdrop.get_surface().texture == null else [
			backdrop.get_surface().texture.get_width(), backdrop.get_surface().texture.get_height()
		],
	}
	backdrop.disconnect_from_backend("demo driver finished")
	var out := FileAccess.open(options["out"], FileAccess.WRITE)
	out.store_string(JSON.stringify(summary, "  "))
	out.close()
	await process_frame  # the Goodbye leaves before the engine exits
	quit()


func _find_backdrop(node: Node) -> Backdrop:
	if node is Backdrop:
		return node as Backdrop
	for child in node.get_children():
		var found := _find_backdrop(child)
		if found != null:
			return found
	return null
