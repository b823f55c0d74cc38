extends RefCounted
## Assertions for the GDScript test suites: each records a failure and carries on.
##
## A test function takes one of these: [code]func test_thing(t: Check) -> void[/code]. Errors the
## engine logs during a test fail it (script errors always; push_error unless expected with
## [method expect_error]); run_tests.gd collects them.

## Failure messages, in order.
var failures: Array[String] = []
## Assertions made.
var count := 0
## Substrings of errors the test provokes on purpose.
var expected_errors: Array[String] = []
## Paths and settings from the runner (golden_dir, tmp_dir, ...).
var context := {}


## [param got] == [param want] (deep, for arrays and dictionaries).
func eq(got: Variant, want: Variant, what: String = "") -> bool:
	count += 1
	if typeof(got) == typeof(want) and got == want:
		return true
	if _both_numbers(got, want) and got == want:
		return true
	return fail("%s: got %s, want %s" % [what, _show(got), _show(want)])


## [param condition] holds.
func ok(condition: bool, what: String = "") -> bool:
	count += 1
	return true if condition else fail(what)


## |got - want| <= tolerance.
func near(got: float, want: float, tolerance: float, what: String = "") -> bool:
	count += 1
	if absf(got - want) <= tolerance:
		return true
	return fail("%s: got %s, want %s within %s" % [what, got, want, tolerance])


## Two byte arrays are equal; on failure says where they first differ.
func bytes_eq(got: PackedByteArray, want: PackedByteArray, what: String = "") -> bool:
	count += 1
	if got == want:
		return true
	var at := 0
	while at < mini(got.size(), want.size()) and got[at] == want[at]:
		at += 1
	return fail("%s: %d bytes vs %d expected, first difference at byte %d\n  got  %s\n  want %s"
		% [what, got.size(), want.size(), at, got.hex_encode(), want.hex_encode()])


## [param text] contains every one of [param parts].
func has_all(text: String, parts: Array, what: String = "") -> bool:
	count += 1
	for part: String in parts:
		if not part in text:
			return fail("%s: %s does not contain %s" % [what, _show(text), _show(part)])
	return true


## Records a failure; returns false.
func fail(what: String) -> bool:
	failures.append(what)
	return false


## An error whose text contains [param part] is expected in this test (it does not fail it).
func expect_error(part: String) -> void:
	expected_errors.append(part)


func _both_numbers(a: Variant, b: Variant) -> bool:
	return typeof(a) in [TYPE_INT, TYPE_FLOAT] and typeof(b) in [TYPE_INT, TYPE_FLOAT]


func _show(value: Variant) -> String:
	if value is String:
		return "\"%s\"" % value
	if value is PackedByteArray:
		return "bytes(%s)" % value.hex_encode()
	return str(value)
