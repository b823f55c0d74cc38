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
    from starbridge.server.ring import ring_dir

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
        assert report["measurements"][name].get("corrupt_frames", 0) == 0, name

    targets = report["targets"]
    assert isinstance(targets["ring_handoff"]["pass"], bool)
    assert isinstance(targets["zmq_inline_handoff"]["pass"], bool)
    assert targets["grpc_stream_handoff"]["pass"] is None
    # The ring file is removed afterwards.
    assert set(ring_dir().glob("starbridge-bench-transport-*")) == rings_before
