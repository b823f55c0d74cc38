"""Smoke test of bench/bench_render.py: it runs and writes its JSON report (no assertion on speed)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_render  # noqa: E402


def test_bench_render_smoke(tmp_path: Path):
    result = bench_render.run(out_dir=tmp_path, seconds=0.05)
    files = list(tmp_path.glob("render-*.json"))
    assert len(files) == 1
    on_disk = json.loads(files[0].read_text())
    assert on_disk["machine"] and json.dumps(result, default=str)
    text = json.dumps(on_disk)
    assert "p50" in text and "60" in text  # timings and the DESIGN target side by side
