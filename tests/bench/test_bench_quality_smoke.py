"""Smoke test of bench/bench_quality.py: one held-out sample through the baseline, an extra generator and a
random STAR bundle; the JSON, the charts and the strips are written. Plus the metrics themselves."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import bench_quality  # noqa: E402
from starbridge.runtime.explicit import ExplicitGenerator  # noqa: E402


def test_metrics():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (36, 40, 3), dtype=np.uint8)
    noisy = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    np.testing.assert_allclose(bench_quality.ssim_map(a, a), 1.0)
    s = bench_quality.ssim_map(a, noisy)
    assert s.shape == (36, 40) and 0.0 < s.mean() < 0.99
    np.testing.assert_allclose(s, bench_quality.ssim_map(noisy, a))  # symmetric
    assert bench_quality.psnr(0.0) == bench_quality.MAX_PSNR_DB
    assert bench_quality.psnr(255.0**2 / 100) == pytest.approx(20.0)
    masks = np.zeros((1, 36, 40), bool)
    masks[:, :, :20] = True
    m = bench_quality.image_metrics(noisy[None], a[None], masks)
    assert m["disoccluded_fraction"] == 0.5 and 0 < m["psnr"]["visible"] < 40
    assert bench_quality.image_metrics(a[None], a[None], np.ones_like(masks))["psnr"]["disoccluded"] is None


class _ThreeFrameBlocks:
    """The baseline behind blocks of 3 frames: exercises padding of the last block and extra generators."""

    block_frames = 3

    def __init__(self, scene, width: int, height: int) -> None:
        self.inner = ExplicitGenerator().open(scene, width, height)

    def generate_block(self, requests):
        assert len(requests) == 3
        return self.inner.generate_block(requests)


def test_bench_quality_smoke(tmp_path: Path):
    report = bench_quality.run(tmp_path, samples=1, extra_generators={"explicit-x3": _ThreeFrameBlocks}, strips=1)
    on_disk = json.loads(next(tmp_path.glob("quality-*.json")).read_text())
    assert on_disk["machine"] and on_disk == json.loads(json.dumps(report))
    base, x3 = on_disk["summary"]["explicit-fill"], on_disk["summary"]["explicit-x3"]
    assert base["psnr"]["visible"] > 25.0 and base["psnr"]["visible"] > base["psnr"]["disoccluded"]
    assert 0.0 < base["disoccluded_fraction"] < 0.5
    # the explicit generator remembers what it invented, so a revisit shows (nearly) the same frame
    assert base["revisit_psnr_db"] >= 35.0
    assert x3["psnr"] == base["psnr"] and x3["flicker"] == base["flicker"]  # same frames, other block size
    assert on_disk["vs_baseline"]["explicit-x3"]["psnr"]["visible"] == 0.0
    names = {p.name.split("-", 2)[-1] for p in tmp_path.glob("*.png")}
    assert {"psnr.png", "ssim.png", "consistency.png", "strip-explicit-fill-0.png", "strip-explicit-x3-0.png"} <= names


def test_bench_quality_with_a_model_bundle(tmp_path: Path):
    pytest.importorskip("torch")
    from starbridge.model.export import build_random, export_bundle
    from starbridge.model.presets import get_preset

    preset = get_preset("star-tiny-test")
    model, ae = build_random(preset, seed=1)
    bundle = export_bundle(preset, model, ae, tmp_path / "model")
    report = bench_quality.run(tmp_path / "out", samples=1, models=(bundle,), strips=1)
    star = report["summary"]["star-tiny-test"]
    for value in (star["psnr"]["all"], star["ssim"]["all"], star["revisit_psnr_db"], star["flicker"]):
        assert value is not None and np.isfinite(value)
    assert list((tmp_path / "out").glob("*-strip-star-tiny-test-0.png"))
