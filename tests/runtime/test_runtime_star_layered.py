"""A layered STAR bundle (star-world): its condition is the explicit generator's own layered render, it writes
what it showed in the holes into the session memory, and a revisit on a frozen clock shows the same; bundles
from before it keep the reference-frame condition."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from starbridge.geometry.camera import Intrinsics  # noqa: E402
from starbridge.model.export import build_random, export_bundle  # noqa: E402
from starbridge.model.presets import get_preset  # noqa: E402
from starbridge.runtime.explicit import ExplicitGenerator  # noqa: E402
from starbridge.runtime.generator import FrameRequest  # noqa: E402
from starbridge.runtime.star import StarGenerator, model_condition, model_residual, model_scene  # noqa: E402
from starbridge.scenes.procedural.paths import pose  # noqa: E402
from starbridge.scenes.store import SceneStore  # noqa: E402


@pytest.fixture(scope="module")
def world_bundle(tmp_path_factory) -> Path:
    preset = get_preset("star-world-test")
    model, ae = build_random(preset, seed=5)
    return export_bundle(preset, model, ae, tmp_path_factory.mktemp("model") / "world", composite_visible=True)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 100.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def test_condition_is_the_explicit_render(world_bundle: Path, demo_store: Path):
    gen = StarGenerator(world_bundle, prefer_cuda=False)
    assert model_condition(gen.info) == "layered" and model_residual(gen.info) and gen.composite_visible
    scene = SceneStore(demo_store).get("demo")
    gen.prepare(scene)
    intr = Intrinsics.from_fov(60, 256, 144)
    request = FrameRequest(pose(50.0, 0.0, (0.0, 0.0, 0.0)), intr, 0.25)  # half the view beyond the frame
    renders, masks, _ = gen.open(scene, 256, 144).layered.render([request])
    # the explicit generator on the scene as the model sees it (its reference frames at 256x144)
    explicit = ExplicitGenerator(worlds=gen.worlds).open(model_scene(scene, gen.render_source(scene)), 256, 144)
    assert np.array_equal(masks[0], explicit.splat(request).mask)  # before render(): its memory is still empty
    assert np.array_equal(renders[0], explicit.render(request)[..., :3])
    assert 0.3 < masks[0].mean() < 1.0  # the fused world covers some of what the frame does not, not all


def test_revisit_after_turning_away_shows_the_same(world_bundle: Path, demo_store: Path):
    """Frozen clock: look 100 degrees left (holes the model fills), turn 180 degrees away, come back: the frames
    at the first pose come back from the memory the model wrote."""
    gen = StarGenerator(world_bundle, prefer_cuda=False)
    scene = SceneStore(demo_store).get("demo")
    session = gen.open(scene, 256, 144)
    intr = Intrinsics.from_fov(60, 256, 144)

    def block(yaw: float) -> list[np.ndarray]:
        return session.generate_block([FrameRequest(pose(yaw, 0.0, (0.0, 0.0, 0.0)), intr, 0.0)] * 2)

    first = block(100.0)
    assert len(session.layered.memory) > 0.2 * 256 * 144  # the holes went into the memory
    for yaw in (140.0, -80.0, 140.0):
        block(yaw)
    again = block(100.0)
    assert _psnr(again[0][..., :3], first[0][..., :3]) >= 35.0
    session.close()


def test_the_later_frame_of_a_block_shows_what_the_first_remembered(world_bundle: Path, demo_store: Path):
    """A block's frames are splatted before any is remembered: where the second frame looks into holes the
    first one just filled, it shows what the first remembered (one answer per direction, as a revisit shows)."""
    gen = StarGenerator(world_bundle, prefer_cuda=False)
    session = gen.open(SceneStore(demo_store).get("demo"), 256, 144)
    request = FrameRequest(pose(100.0, 0.0, (0.0, 0.0, 0.0)), Intrinsics.from_fov(60, 256, 144), 0.0)
    a, b = session.generate_block([request, request])
    assert len(session.layered.memory) > 0.2 * 256 * 144  # the holes went into the memory, once
    differ = (a[..., :3] != b[..., :3]).any(axis=-1)
    assert differ.mean() < 0.02  # (the seams of the holes blend each frame's own output)
    session.close()


def test_reference_bundles_keep_their_condition(tmp_path: Path, demo_store: Path):
    preset = get_preset("star-tiny-test")
    model, ae = build_random(preset, seed=1)
    gen = StarGenerator(export_bundle(preset, model, ae, tmp_path / "tiny"), prefer_cuda=False)
    assert model_condition(gen.info) == "reference" and not model_residual(gen.info)
    session = gen.open(SceneStore(demo_store).get("demo"), 256, 144)
    assert session.layered is None
    frames = session.generate_block([FrameRequest(np.eye(4), Intrinsics.from_fov(60, 256, 144), 0.0)] * 2)
    assert frames[1].shape == (144, 256, 4)


def test_a_compositing_reference_bundle_keeps_the_world_and_revisits_show_the_same(tmp_path: Path, demo_store: Path):
    """star-tiny's kind (reference condition, composited): its condition stays the same-time frame's splat, but
    what is composited over its output is the layered render (fused world, memory), and what it showed in the
    holes is remembered: after turning 180 degrees away and back on a frozen clock the frame is the same."""
    preset = get_preset("star-tiny-test")
    model, ae = build_random(preset, seed=2)
    gen = StarGenerator(export_bundle(preset, model, ae, tmp_path / "tiny", composite_visible=True), prefer_cuda=False)
    assert model_condition(gen.info) == "reference" and gen.keeps_world
    scene = SceneStore(demo_store).get("demo")
    session = gen.open(scene, 256, 144)
    intr = Intrinsics.from_fov(60, 256, 144)
    request = FrameRequest(pose(100.0, 0.0, (0.0, 0.0, 0.0)), intr, 0.0)
    renders, masks, _ = session._render([request])  # the condition: the same-time frame only
    shown = session.layered.splat(request).mask  # the layered render covers more (the fused world)
    assert shown.mean() > masks[0].mean() + 0.05

    def block(yaw: float) -> list[np.ndarray]:
        return session.generate_block([FrameRequest(pose(yaw, 0.0, (0.0, 0.0, 0.0)), intr, 0.0)] * 2)

    first = block(100.0)
    assert len(session.layered.memory) > 0.05 * 256 * 144  # the model's output in the holes was remembered
    for yaw in (140.0, -80.0, 140.0):
        block(yaw)
    again = block(100.0)
    assert _psnr(again[0][..., :3], first[0][..., :3]) >= 35.0
    session.close()
