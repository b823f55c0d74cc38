"""Smoke test of bench/bench_ort_threads.py on the reduced preset: each setting runs in its own process, really
applied to the sessions, and the JSON is complete."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_ort_threads  # noqa: E402


def test_bench_ort_threads_smoke(tmp_path: Path):
    bench_ort_threads.run(tmp_path, blocks=1, rounds=1, preset_name="star-tiny-test")
    report = json.loads(next(tmp_path.glob("ort-threads-*.json")).read_text())
    results = report["results"]
    assert set(results) == set(bench_ort_threads.SETTINGS)
    for r in results.values():
        assert r["fps"] > 0 and r["block_cpu_ms_mean"] > 0 and len(r["rounds"]) == 1
    shipped = results["per-session, no spinning"]["rounds"][0]["applied"]
    assert all(s["per_session_threads"] and s["spinning"] == "0" for s in shipped.values())
    pooled = results["global pool, spinning"]["rounds"][0]["applied"]
    assert not any(s["per_session_threads"] for s in pooled.values()) and pooled["step"]["spinning"] == "pool"
    step = results["per-session, step graph spinning"]["rounds"][0]["applied"]
    assert step["step"]["spinning"] == "1" and step["context"]["spinning"] == "0"
    assert results["per-session, no spinning"]["vs_shipped"] == 1.0 and report["machine"]
