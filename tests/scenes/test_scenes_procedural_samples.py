"""Procedural samples (training and benchmark data): deterministic, disjoint splits, ground truth that agrees
with our renderer, and samples that round-trip through a scene bundle."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from starbridge.errors import InvalidArgument
from starbridge.geometry.splat import splat
from starbridge.runtime.explicit import ExplicitGenerator
from starbridge.runtime.generator import FrameRequest
from starbridge.scenes.bundle import SCENE_MEDIAN_DEPTH_M, SceneBundle, median_finite_depth
from starbridge.scenes.procedural.samples import (
    SAMPLE_FILE,
    Sample,
    SampleConfig,
    iter_samples,
    make_sample,
    render_truth,
    sample_to_bundle,
)
from starbridge.scenes.procedural.styles import HELDOUT_SEED_BASE, HELDOUT_STYLES, TRAIN_STYLES

#: A small config for tests that only look at seeds, styles and shapes.
TINY = SampleConfig(width=32, height=18, frames=2)
ARRAYS = ("times", "ref_frames", "ref_depth", "ref_poses", "novel_poses", "gt_frames", "gt_depth", "renders",
          "masks", "filled")  # fmt: skip


def masked_psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    d = a.astype(np.float64) - b.astype(np.float64)
    return 10 * math.log10(255.0**2 / float((d[mask] ** 2).mean()))


@pytest.fixture(scope="module")
def sample() -> Sample:
    return make_sample(HELDOUT_SEED_BASE + 7, "backlit")


def test_same_seed_and_style_give_identical_arrays(sample: Sample):
    again = make_sample(sample.seed, sample.style)
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(again, name), getattr(sample, name), err_msg=name)
    assert (again.world, again.look, again.scale, again.time_offset_s) == (
        sample.world, sample.look, sample.scale, sample.time_offset_s)  # fmt: skip
    other = make_sample(sample.seed, "dusk", TINY)
    assert other.world != make_sample(sample.seed, "backlit", TINY).world  # the style changes the world


def test_layout_of_a_sample(sample: Sample):
    n, h, w = 8, 144, 256
    assert sample.frame_count == n and sample.intrinsics.width == w and sample.intrinsics.height == h
    assert abs(sample.intrinsics.vertical_fov_deg - 60.0) < 1e-9
    for name in ("ref_frames", "gt_frames", "renders", "filled"):
        arr = getattr(sample, name)
        assert arr.shape == (n, h, w, 3) and arr.dtype == np.uint8, name
    for name in ("ref_depth", "gt_depth"):
        arr = getattr(sample, name)
        assert arr.shape == (n, h, w) and arr.dtype == np.float32, name
        assert not np.isnan(arr).any() and (arr > 0).all()
    assert sample.masks.shape == (n, h, w) and sample.masks.dtype == bool
    assert sample.ref_poses.shape == sample.novel_poses.shape == (n, 4, 4)
    np.testing.assert_allclose(sample.times, np.arange(n) / 12.0)
    # normalised like a bundle: first camera at the identity, median depth SCENE_MEDIAN_DEPTH_M
    np.testing.assert_array_equal(sample.ref_poses[0], np.eye(4))
    assert median_finite_depth(sample.ref_depth) == pytest.approx(SCENE_MEDIAN_DEPTH_M, rel=1e-5)
    assert sample.world.world_scale == sample.scale
    # renders are black in the holes; the fill keeps every visible pixel
    assert not sample.renders[~sample.masks].any()
    np.testing.assert_array_equal(sample.filled[sample.masks], sample.renders[sample.masks])
    assert 0.5 < sample.masks.mean() < 1.0  # parallax: some disocclusion, mostly visible


def test_novel_path_offsets_stay_in_bounds():
    c = SampleConfig()
    for s in iter_samples("train", 6, config=SampleConfig(width=32, height=18)):
        rel = np.einsum("nji,njk->nik", s.ref_poses[:, :3, :3], s.novel_poses[:, :3, :3])
        local = np.einsum("nji,nj->ni", s.ref_poses[:, :3, :3], s.novel_poses[:, :3, 3] - s.ref_poses[:, :3, 3])
        assert (np.linalg.norm(local, axis=1) <= c.max_offset_m + 1e-9).all()
        yaw = np.degrees(np.arctan2(rel[:, 0, 2], rel[:, 2, 2]))
        assert (np.abs(yaw) <= c.max_yaw_deg + 1e-6).all()
        steps = np.linalg.norm(np.diff(local, axis=0), axis=1)
        assert steps.max() <= 0.5 * c.max_offset_m  # smooth: no jumps between frames


def test_explicit_render_agrees_with_ground_truth(sample: Sample):
    """Where the splat has a reference point, it shows what the ray-caster sees from the novel camera."""
    assert masked_psnr(sample.renders, sample.gt_frames, sample.masks) > 25.0
    # the ground truth is the world the reference was rendered from: re-rendering the reference is exact
    frames, depth = render_truth(sample, sample.ref_poses[:2], sample.times[:2])
    np.testing.assert_array_equal(frames, sample.ref_frames[:2])
    np.testing.assert_allclose(depth, sample.ref_depth[:2], rtol=1e-5)
    frames, _ = render_truth(sample, sample.novel_poses[-1:], sample.times[-1:])
    np.testing.assert_array_equal(frames[0], sample.gt_frames[-1])


def test_splits_are_disjoint_in_seeds_and_styles():
    assert not set(TRAIN_STYLES) & set(HELDOUT_STYLES)
    train = list(iter_samples("train", len(TRAIN_STYLES) + 1, config=TINY))
    held = list(iter_samples("heldout", len(HELDOUT_STYLES) + 1, config=TINY))
    assert all(s.seed < HELDOUT_SEED_BASE and s.style in TRAIN_STYLES and s.split == "train" for s in train)
    assert all(s.seed >= HELDOUT_SEED_BASE and s.style in HELDOUT_STYLES and s.split == "heldout" for s in held)
    assert {s.style for s in train} == set(TRAIN_STYLES) and {s.style for s in held} == set(HELDOUT_STYLES)
    assert [s.seed for s in iter_samples("train", 2, start=5, config=TINY)] == [5, 6]
    assert make_sample(3, "dusk", TINY).split == "mixed"
    with pytest.raises(InvalidArgument):
        list(iter_samples("train", 2, start=HELDOUT_SEED_BASE - 1, config=TINY))
    with pytest.raises(InvalidArgument, match="style"):
        make_sample(1, "neon", TINY)
    with pytest.raises(InvalidArgument, match="seed"):
        make_sample(-1, "day", TINY)


def test_sample_to_bundle_round_trip(sample: Sample, tmp_path: Path):
    bundle = sample_to_bundle(sample, tmp_path / "scene")
    again = SceneBundle(bundle.path)
    assert again.meta.scene_id == "scene" and again.meta.frame_count == 8 and again.meta.fps == 12.0
    assert again.meta.intrinsics == sample.intrinsics and again.meta.scale == sample.scale
    np.testing.assert_array_equal(again.frames, sample.ref_frames)
    np.testing.assert_array_equal(again.depth, sample.ref_depth)
    np.testing.assert_array_equal(again.poses, sample.ref_poses)
    assert (bundle.path / SAMPLE_FILE).exists()
    # the baseline generator on the bundle makes exactly the sample's renders where the same-time reference
    # frame sees (elsewhere it now adds the fused world and its memory to the sample's plain fill)
    session = ExplicitGenerator().open(again, 256, 144)
    requests = [FrameRequest(p, sample.intrinsics, float(t)) for p, t in zip(sample.novel_poses, sample.times,
                                                                              strict=True)]  # fmt: skip
    out = np.stack(session.generate_block(requests))
    for k, request in enumerate(requests):
        i = again.frame_index(request.scene_time_s)
        seen = splat(again.frames[i], again.depth[i], again.meta.intrinsics, again.poses[i], request.intrinsics,
                     request.c2w).mask  # fmt: skip
        np.testing.assert_array_equal(out[k, ..., :3][seen], sample.filled[k][seen])
