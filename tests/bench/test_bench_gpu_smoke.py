"""Smoke test of bench/bench_gpu.py, the GPU run, on the CPU at reduced size: every stage runs and lands in the JSON."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_gpu  # noqa: E402


def test_bench_gpu_dry_run_on_the_cpu(tmp_path: Path):
    report = bench_gpu.run(tmp_path, preset="inspatio-1.3b-test", dtype="float32", seconds=0.2, parity_blocks=1,
                           compile_=False)  # fmt: skip
    assert report["errors"] == {}
    saved = json.loads(next(tmp_path.glob("gpu-*.json")).read_text())
    assert saved["environment"]["provider"].endswith("ExecutionProvider")
    assert saved["parity"]["pass"] and saved["parity"]["blocks"] == 1  # (CPU against CPU here: identical)
    preset = saved["preset"]
    assert preset["preset"] == "inspatio-1.3b-test" and preset["frames_per_block"] == 12
    for engine in ("onnxruntime", "torch eager"):
        e = preset["engines"][engine]
        assert e["fps"] > 0 and e["first_block_s"] > 0
        calls = preset["breakdown_ms_per_block"][engine]
        assert set(calls) == set(bench_gpu.CALLS) and all(ms > 0 for ms in calls.values())
    assert preset["served"]["first_block_s"] > 0 and preset["served"]["next_client_first_block_s"] > 0
