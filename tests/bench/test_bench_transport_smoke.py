"""Smoke test of bench/bench_transport.py: it runs end to end and writes a complete JSON report.

No assertion is about speed (tests never fail on a slow machine); only that every measurement
produced positive numbers and the report has its parts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_transport  # noqa: E402

MEASUREMENTS = {
    "memcpy",
    "memcpy_end",
    "memcpy_paced",
    "ring_write_inproc",
    "ring_read_inproc",
    "ring_handoff",
    "zmq_inline_handoff",
    "zmq_inline_handoff_copy",
    "grpc_stream_handoff",
    "grpc_stream_handoff_copy",
    "grpc_stream_roundtrip",
}


def test_bench_transport_smoke(tmp_path: Path) -> None:
    from starbridge.transport.ring import ring_dir

    rings_before = set(ring_dir().glob("starbridge-bench-transport-*"))
    returned = bench_transport.run(out_dir=tmp_path, seconds=0.2)

    files = list(tmp_path.glob("transport-*.json"))
    assert len(files) == 1
    assert files[0].name.startswith("transport-") and files[0].suffix == ".json"
    report = json.loads(files[0].read_text())
    assert report == json.loads(json.dumps(returned))

    for key in ("frame", "settings", "machine", "versions", "measurements", "ratios", "targets"):
        assert key in report, key
    assert report["frame"]["bytes"] == 1280 * 720 * 4
    for lib in ("numpy", "pyzmq", "libzmq", "grpcio", "protobuf"):
        assert report["versions"][lib], lib
    assert report["settings"]["grpc_client"]

    assert set(report["measurements"]) == MEASUREMENTS
    for name, m in report["measurements"].items():
        for stat in ("p50_ms", "p95_ms", "mean_ms"):
            assert m[stat] > 0, (name, stat)
        assert m["p95_ms"] >= m["p50_ms"], name
        assert m["n"] > 0, name
        assert report["ratios"][name] > 0, name
    for name in ("ring_handoff", "zmq_inline_handoff"):
        assert report["measurements"][name]["corrupt_frames"] == 0, name
    zmq_inline = report["measurements"]["zmq_inline_handoff"]
    assert zmq_inline["checked_frames"] == zmq_inline["sent"] + bench_transport.WARMUP_FRAMES  # every frame checked

    targets = report["targets"]
    assert isinstance(targets["ring_handoff"]["pass"], bool)
    assert isinstance(targets["zmq_inline_handoff"]["pass"], bool)
    assert targets["grpc_stream_handoff"]["pass"] is None
    # The ring file is removed afterwards.
    assert set(ring_dir().glob("starbridge-bench-transport-*")) == rings_before


def test_frame_stamps_catch_an_overwritten_buffer() -> None:
    frame = bench_transport._make_frame()
    bench_transport.stamp_frame(frame, 70000)
    assert bench_transport.frame_intact(frame, 70000)
    assert not bench_transport.frame_intact(frame, 70000 - 256)  # all 8 bytes count, not just the low one
    copy = frame.copy()
    copy.reshape(-1)[copy.size // 2 : copy.size // 2 + 8] = 0  # torn: the middle written by someone else
    assert not bench_transport.frame_intact(copy, 70000)
    bench_transport.stamp_frame(frame, 70003)  # the buffer reused for a later frame
    assert not bench_transport.frame_intact(frame, 70000)


def test_zmq_inline_never_touches_a_buffer_still_in_flight() -> None:
    """The receiver starts late, so frames queue up inside ZeroMQ, still pointing at the sender's buffers:
    a sender that rewrites a buffer before ZeroMQ let go of it corrupts nearly every frame here."""
    handoff, _ = bench_transport.bench_zmq_inline(0.05, bench_transport._make_frame(), receiver_delay_s=0.5)
    assert handoff["checked_frames"] == handoff["sent"] + bench_transport.WARMUP_FRAMES
    assert handoff["corrupt_frames"] == 0
