"""The GDScript ring reader against the backend's own FrameRingWriter rewriting the ring as fast as
it can in another process: the seqlock must never let a torn frame through (FileAccess reads through
stdio buffers; see frame_ring_reader.gd on why it opens a fresh handle per counter read)."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import godot_tool as tool  # noqa: E402

from starbridge.transport.frame import FrameMeta  # noqa: E402
from starbridge.transport.ring import FrameRingWriter  # noqa: E402

READ_SECONDS = 2.0


@pytest.mark.parametrize("size", [(256, 144), (16, 16)], ids=["256x144", "16x16"])
def test_seqlock_reader_never_accepts_a_torn_frame(
    godot: tool.Godot, godot_project: Path, tmp_path: Path, size: tuple[int, int]
):
    """16 x 16: a whole slot fits in one 4 KiB stdio block, where reading the counter twice through
    one FileAccess would compare a value with itself and refuse nothing; the reader must still see
    the writer (torn copies refused > 0)."""
    WIDTH, HEIGHT = size  # noqa: N806
    path = tmp_path / "starbridge-ringtest"
    out = tmp_path / "ring.json"
    writer = FrameRingWriter(path, WIDTH, HEIGHT, slot_count=3)
    stop = threading.Event()
    written = [0]

    def write_forever() -> None:
        pixels = np.empty((HEIGHT, WIDTH, 4), np.uint8)
        n = 0
        while not stop.is_set():
            n += 1
            pixels.fill(n % 251)
            writer.write(pixels, FrameMeta(
                frame_sequence=n, slot=0, pose_sequence=3 * n, engine_time_us=1000 * n, scene_time_s=0.5 * n,
                position=(float(n % 1000), 0.0, 0.0), rotation=(0.0, 0.0, 0.0, 1.0),
                vertical_fov_deg=40.0 + n % 50, aspect=0.0, generation_latency_ms=1.0, width=WIDTH, height=HEIGHT,
            ))  # fmt: skip
            written[0] = n

    thread = threading.Thread(target=write_forever, daemon=True)
    thread.start()
    try:
        proc = tool.run_script(
            godot, godot_project, tool.TESTS_DIR / "drivers" / "ring_reader_driver.gd",
            [f"--ring={path}", f"--seconds={READ_SECONDS}", f"--out={out}"], timeout=60,
        )  # fmt: skip
    finally:
        stop.set()
        thread.join(5)
        writer.close()
    assert out.exists(), (proc.stdout + proc.stderr)[-4000:]
    report = tool.read_json(out)
    assert report["opened"], report["error"]
    assert report["inconsistent"] == 0, report["problems"]
    assert report["accepted"] >= 20, report
    assert written[0] > report["accepted"] / 2, (written[0], report)
    assert report["torn_reads"] > 0, f"the seqlock never refused a copy while the writer ran flat out: {report}"
    print(
        f"ring: {written[0]} frames written, {report['accepted']} read intact, {report['torn_reads']} torn copies "
        "refused"
    )
