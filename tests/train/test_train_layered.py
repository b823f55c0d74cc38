"""Training a layered preset (star-world-test): samples with out-of-view regions conditioned as the runtime
conditions them, the residual target, hole weighting, and a run under a wall-clock budget that checkpoints every
stage, logs its progress and exports a bundle the runtime serves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from starbridge.model.presets import get_preset  # noqa: E402
from starbridge.scenes.procedural.samples import SampleConfig  # noqa: E402
from starbridge.train.data import MOTIONS, layered_samples, motion_config  # noqa: E402
from starbridge.train.trainer import (  # noqa: E402
    STAGES,
    BlockPool,
    StageRandom,
    TrainConfig,
    Trainer,
    encode_block,
    hole_weights,
    load_checkpoint,
)

PRESET = "star-world-test"


@pytest.fixture(scope="module")
def pool():
    # sample 2 has the widest turn of MOTIONS: large out-of-view regions
    return BlockPool(get_preset(PRESET), pool=1, seed=2)


def test_samples_have_realistic_out_of_view_regions(pool):
    assert [motion_config(k, SampleConfig()).max_yaw_deg for k in range(len(MOTIONS))] == [m[0] for m in MOTIONS]
    (sample,) = pool.samples
    holes = 1.0 - sample.masks.mean(axis=(1, 2))
    assert holes.max() > 0.2  # a good part of a frame beyond everything the video saw
    # the holes of the condition are filled (push-pull), not left black
    hole = ~sample.masks[int(holes.argmax())]
    assert sample.renders[int(holes.argmax())][hole].mean() > 20
    # the same call gives the same sample (training data is reproducible)
    (again,) = layered_samples(1, start=2)
    assert np.array_equal(again.renders, sample.renders) and np.array_equal(again.masks, sample.masks)


def test_hole_weights():
    pooled = torch.ones(2, 1, 2, 3, 4)
    pooled[0, :, :, 0] = 0.0  # a row of holes in sample 0
    w = hole_weights(pooled, 4.0)
    assert w.shape == (2, 1, 2, 3, 4)
    assert torch.allclose(w.mean(dim=(1, 2, 3, 4)), torch.ones(2))
    assert w[0, 0, 0, 0, 0] == pytest.approx(5 * w[0, 0, 0, 1, 0].item())
    assert torch.allclose(w[1], torch.ones_like(w[1]))


def test_budgeted_layered_run_exports_a_residual_bundle(tmp_path: Path, pool, demo_store: Path):
    big = {stage: 1000 for stage in STAGES}
    config = TrainConfig(out=tmp_path, preset=PRESET, steps=big, batch=1, pool=1, hole_weight=4.0, budget_s=0.0)
    trainer = Trainer(config, pool=pool)
    trainer.run()
    for stage in STAGES:  # the budget is spent: every stage stops after its first step, checkpointed
        assert load_checkpoint(tmp_path / f"{stage}.pt")["step"] == 1
    log = (tmp_path / "progress.log").read_text()
    assert log.count("time budget spent") == len(STAGES) and "layered condition" in log

    # the residual target: the ground truth's latent minus the render's
    ae = trainer.load_autoencoder()
    block = pool.blocks[0]
    x0, cond, _, _ = trainer._conditioning(ae, [block], StageRandom.for_stage(0, "teacher"))
    with torch.no_grad():
        expected = encode_block(ae, block.target) - encode_block(ae, block.render)
    assert torch.allclose(x0, expected, atol=1e-5) and cond.shape[1] == 1 + get_preset(PRESET).star.latent_channels

    from starbridge.geometry.camera import Intrinsics
    from starbridge.runtime.generator import FrameRequest
    from starbridge.runtime.star import StarGenerator
    from starbridge.scenes.store import SceneStore

    bundle = trainer.export(tmp_path / "bundle", sampler_steps=(1000,))
    gen = StarGenerator(bundle, prefer_cuda=False)
    assert gen.composite_visible and gen.info.steps == (1000,) and "student 1 steps" in gen.info.weights
    session = gen.open(SceneStore(demo_store).get("demo"), 256, 144)
    frames = session.generate_block([FrameRequest(np.eye(4), Intrinsics.from_fov(60, 256, 144), 0.0)] * 2)
    assert frames[0].shape == (144, 256, 4)


def test_warm_start_widens_the_shipped_autoencoder_without_changing_it():
    """star-tiny's 4-channel autoencoder copied into star-world's 8-channel one reconstructs the same frames."""
    from starbridge.model.autoencoder import TinyAutoencoder
    from starbridge.runtime.bundle import resolve_model
    from starbridge.runtime.star import StarGenerator
    from starbridge.scenes.procedural.samples import iter_samples
    from starbridge.train.warmstart import bundle_autoencoder_weights, widen_into

    ae = TinyAutoencoder(get_preset("star-world").autoencoder)
    assert widen_into(ae, bundle_autoencoder_weights("star-tiny")) == [
        "encoder.layers.10.weight", "encoder.layers.10.bias", "decoder.layers.0.weight",
    ]  # fmt: skip
    frames = next(iter_samples("heldout", 1)).gt_frames[:2]
    shipped = StarGenerator(resolve_model("star-tiny"), prefer_cuda=False).graphs
    expected = shipped.decode(shipped.encode(frames))[..., :3].astype(int)
    with torch.no_grad():
        out = ae(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255).permute(0, 2, 3, 1).numpy()
    assert np.abs((out * 255 + 0.5).astype(int) - expected).max() <= 1
    with pytest.raises(ValueError, match="does not fit"):
        widen_into(TinyAutoencoder(get_preset("star-world").autoencoder.__class__(latent_channels=8, width=64)),
                   bundle_autoencoder_weights("star-tiny"))  # fmt: skip


def test_layered_pool_is_cached(tmp_path: Path, pool):
    from starbridge.train.data import cached_layered_samples

    cache = tmp_path / "pool.npz"
    (first,) = cached_layered_samples(cache, 1, start=2)
    assert cache.exists() and np.array_equal(first.renders, pool.samples[0].renders)
    stamp = cache.stat().st_mtime_ns
    (again,) = cached_layered_samples(cache, 1, start=2)  # read back, not rendered again
    assert cache.stat().st_mtime_ns == stamp and again.name == first.name
    assert all(np.array_equal(getattr(again, a), getattr(first, a)) for a in ("ref_frames", "gt_frames", "masks"))
