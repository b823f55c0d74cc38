"""Benchmarks never write into the committed bench/results/ unless asked: `--out DIR`, default ./bench-results."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_model, bench_quality, bench_render, bench_soak, bench_transport  # noqa: E402

COMMITTED = REPO_ROOT / "bench" / "results"


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*")) if p.is_file()}


@pytest.mark.parametrize("module", [bench_transport, bench_render, bench_model, bench_quality, bench_soak])
def test_default_out_is_a_folder_in_the_current_directory(module, tmp_path: Path, monkeypatch, capsys):
    calls: list[Path] = []
    monkeypatch.setattr(module, "run", lambda out_dir, *a, **k: calls.append(Path(out_dir)))
    monkeypatch.chdir(tmp_path)
    assert module.main([]) == 0
    assert calls == [tmp_path / "bench-results"]
    assert f"results will be written to {tmp_path / 'bench-results'}" in capsys.readouterr().out
    assert module.main(["--out", str(tmp_path / "mine")]) == 0
    assert calls[-1] == tmp_path / "mine"


def test_render_run_from_its_command_line_leaves_committed_results_alone(tmp_path: Path, monkeypatch):
    before = _digest(COMMITTED)
    monkeypatch.chdir(tmp_path)
    assert bench_render.main(["--seconds", "0.05"]) == 0
    (written,) = (tmp_path / "bench-results").glob("render-*.json")
    report = json.loads(written.read_text())
    assert report["machine"]["cpu_count"] and report["versions"]["numpy"] and report["provider"]
    assert _digest(COMMITTED) == before


def test_numpy_scalars_are_written_as_what_they_hold(tmp_path: Path):
    """A verdict computed on NumPy numbers is a NumPy bool: written as true / false (it was 0.0 once)."""
    import numpy as np

    from bench._machine import write_json

    path = write_json(tmp_path / "r.json", {"pass": np.float64(15.5) >= 24.0, "n": np.int64(3), "x": np.float32(0.5)})
    assert json.loads(path.read_text()) == {"pass": False, "n": 3, "x": 0.5}


def test_a_report_goes_into_a_folder_not_made_yet(tmp_path: Path):
    """`--out DIR` naming a new folder: the report is written there (a 10-minute run once lost it at the end)."""
    from bench._machine import write_json

    path = write_json(tmp_path / "new" / "deeper" / "r.json", {"n": 1})
    assert json.loads(path.read_text()) == {"n": 1}
    assert not list(path.parent.glob("*.tmp"))
