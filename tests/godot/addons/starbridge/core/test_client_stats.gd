extends RefCounted
## ClientStats: frame rate and latency percentiles over a fixed window.

const Check := preload("../../../check.gd")
const ClientStats := preload("res://addons/starbridge/core/client_stats.gd")


func test_fps_and_latency(t: Check) -> void:
	var stats := ClientStats.new()
	t.eq(stats.fps(), 0.0, "no frames")
	t.eq(stats.latency_ms(), 0.0, "no latency")
	t.eq(stats.seconds_since_frame(0), INF, "never")
	for i in 10:
		# 25 frames per second, latency 40 + i ms.
		stats.frame(1000000 + i * 40000, 1000000 + i * 40000 - (40 + i) * 1000, 5.0)
	t.near(stats.fps(), 25.0, 1e-6, "fps")
	t.near(stats.latency_ms(0.5), 44.0, 1.0, "median latency")
	t.near(stats.latency_ms(1.0), 49.0, 1e-6, "max latency")
	t.near(stats.generation_ms(), 5.0, 1e-6, "generation")
	t.near(stats.seconds_since_frame(1000000 + 9 * 40000 + 500000), 0.5, 1e-9, "since last")


func test_window_wraps(t: Check) -> void:
	var stats := ClientStats.new()
	for i in ClientStats.WINDOW * 3:
		stats.frame(i * 10000, i * 10000 - (1000 if i < ClientStats.WINDOW * 2 else 9000), 0.0)
	t.eq(stats.frames, ClientStats.WINDOW * 3, "all counted")
	t.near(stats.fps(), 100.0, 1e-6, "fps over the window")
	t.near(stats.latency_ms(0.0), 9.0, 1e-6, "only the newest window counts")
	stats.reset()
	t.eq([stats.frames, stats.fps()], [0, 0.0], "reset")
