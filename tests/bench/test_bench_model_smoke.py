"""Smoke test of bench/bench_model.py on the reduced preset: every engine runs, the JSON is complete."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_model  # noqa: E402


def test_bench_model_smoke(tmp_path: Path):
    bench_model.run(tmp_path, seconds=0.2, presets=("star-tiny-test",), compile_=False, e2e=False)
    report = json.loads(next(tmp_path.glob("model-*.json")).read_text())
    result = report["results"][0]
    assert result["preset"] == "star-tiny-test" and result["provider"].endswith("ExecutionProvider")
    for engine in ("onnxruntime", "ort plain graph", "ort 1 thread", "ort in turn", "torch eager"):
        e = result["engines"][engine]
        assert e["fps"] > 0 and e["first_block_s"] > 0 and e["blocks"] >= 3 and e["block_cpu_ms_mean"] > 0
    assert result["ort_graphs"] == {"fused_attention": True, "cpu_graphs": True}
    served = result["served"]  # a generator of its own, prepared as `serve` does, then two clients in turn
    assert served["prepare_s"] > 0 and served["first_block_s"] > 0 and served["next_client_first_block_s"] > 0
    assert report["machine"] and report["versions"]["onnxruntime"] and len(report["load_average_1min"]) == 2
