extends SceneTree
## Runs GDScript test suites in a real Godot (headless) and writes the results as JSON.
##
## godot --headless --path <project> --script <this file> -- --out=RESULTS.json
##     --golden=tests/golden --tmp=DIR SUITE.gd [SUITE.gd ...]
##
## A suite is a script whose methods named test_* take a Check (check.gd); they may await. The
## runner gives each suite's optional [code]context[/code] property the paths above. Exit code:
## 0 all passed, 1 failures, 2 bad usage.

const Check := preload("check.gd")


## Collects what the engine logs while a test runs.
class Catcher:
	extends Logger
	var errors: Array[String] = []
	var script_errors: Array[String] = []

	func _log_error(
		function: String, file: String, line: int, code: String, rationale: String,
		_editor_notify: bool, error_type: int, _script_backtraces: Array[ScriptBacktrace]
	) -> void:
		var text := "%s (%s:%d in %s) %s" % [code, file, line, function, rationale]
		if error_type == ERROR_TYPE_SCRIPT or error_type == ERROR_TYPE_SHADER:
			script_errors.append(text)
		elif error_type == ERROR_TYPE_ERROR:
			errors.append(text)

	func clear() -> void:
		errors.clear()
		script_errors.clear()


func _initialize() -> void:
	_run()


func _run() -> void:
	await process_frame  # from here on the root is in the tree and frames run
	var options := {}
	var suites: Array[String] = []
	for arg in OS.get_cmdline_user_args():
		if arg.begins_with("--") and "=" in arg:
			options[arg.substr(2).get_slice("=", 0)] = arg.get_slice("=", 1)
		else:
			suites.append(arg)
	if not options.has("out") or suites.is_empty():
		printerr("usage: -- --out=RESULTS.json [--golden=DIR] [--tmp=DIR] SUITE.gd ...")
		quit(2)
		return
	var catcher := Catcher.new()
	OS.add_logger(catcher)
	var results := {}
	var failed := 0
	for path in suites:
		var suite_results := await _run_suite(path, options, catcher)
		results[path.get_file().get_basename()] = suite_results
		for name: String in suite_results:
			failed += 0 if suite_results[name]["passed"] else 1
	var out := FileAccess.open(options["out"], FileAccess.WRITE)
	out.store_string(JSON.stringify(results, "  "))
	out.close()
	print("run_tests: %d suite(s), %d failed test(s)" % [suites.size(), failed])
	quit(1 if failed else 0)


func _run_suite(path: String, options: Dictionary, catcher: Catcher) -> Dictionary:
	var results := {}
	var script: GDScript = load(path)
	if script == null or not script.can_instantiate():
		results["<load>"] = {"passed": false, "checks": 0, "failures": ["cannot load " + path]}
		return results
	for method in script.get_script_method_list():
		var name: String = method["name"]
		if not name.begins_with("test_"):
			continue
		var suite: Object = script.new()
		if "context" in suite:
			suite.set("context", options)
		var t := Check.new()
		t.context = options
		catcher.clear()
		var started := Time.get_ticks_msec()
		await suite.call(name, t)
		var failures: Array[String] = t.failures.duplicate()
		for text in catcher.script_errors:
			failures.append("script error: " + text)
		for text in catcher.errors:
			if not t.expected_errors.any(func(part: String) -> bool: return part in text):
				failures.append("unexpected error: " + text)
		if suite is Node and is_instance_valid(suite):
			suite.queue_free()
		results[name] = {
			"passed": failures.is_empty(), "checks": t.count, "failures": failures,
			"ms": Time.get_ticks_msec() - started,
		}
		print("%s %s.%s (%d checks)" % [
			"ok  " if failures.is_empty() else "FAIL", path.get_file(), name, t.count
		])
		for text in failures:
			print("      " + text)
	return results
