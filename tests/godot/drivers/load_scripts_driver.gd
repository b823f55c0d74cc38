extends SceneTree
## Compiles scripts and reports which fail (test_godot_unit.py runs it in a copy of the project
## where every GDScript warning about types is an error, addons included).
##
## godot --headless --path P --script load_scripts_driver.gd -- --out=F res://a.gd res://b.gd ...


func _initialize() -> void:
	var out_path := ""
	var failed: Array[String] = []
	var loaded: Array[String] = []
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--out="):
			out_path = arg.trim_prefix("--out=")
			continue
		var script := load(arg) as GDScript
		if script == null or not script.can_instantiate():
			failed.append(arg)
		else:
			loaded.append(arg)
	var out := FileAccess.open(out_path, FileAccess.WRITE)
	out.store_string(JSON.stringify({"failed": failed, "loaded": loaded}))
	out.close()
	quit()
