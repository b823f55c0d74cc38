"""`serve --model`: a STAR bundle behind the generator interface serves `fly` through shared memory and
inline, unchanged; sizes the graphs cannot make are refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from starbridge.client.engine import EngineClient  # noqa: E402
from starbridge.client.fly import FlyConfig, fly  # noqa: E402
from starbridge.errors import InvalidArgument  # noqa: E402
from starbridge.model.export import build_random, export_bundle  # noqa: E402
from starbridge.model.presets import get_preset  # noqa: E402
from starbridge.runtime.star import StarGenerator  # noqa: E402
from starbridge.server.app import Backend  # noqa: E402


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    preset = get_preset("star-tiny-test")
    model, ae = build_random(preset, seed=3)
    return export_bundle(preset, model, ae, tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture
def served(bundle: Path, make_backend) -> Backend:
    generator = StarGenerator(bundle, prefer_cuda=False)
    return make_backend(generator, default_width=generator.info.width, default_height=generator.info.height)


@pytest.mark.parametrize("inline", [False, True], ids=["shared-memory", "inline"])
def test_fly_through_star(served: Backend, tmp_path: Path, inline: bool):
    report = fly(FlyConfig(endpoint=served.engine_endpoint, path="orbit", seconds=2.0, fps=12, inline=inline,
                           out=tmp_path / "star.mp4"))  # fmt: skip
    assert report.generator == "star-tiny-test" and (report.width, report.height) == (256, 144)
    assert report.frames >= 6
    assert (tmp_path / "star.mp4").stat().st_size > 0


def test_size_the_model_cannot_make(served: Backend):
    with EngineClient(served.engine_endpoint) as client, pytest.raises(InvalidArgument, match="256x144"):
        client.hello(width=512, height=288, timeout_s=5)


def test_frames_are_pixels(bundle: Path, demo_store: Path):
    from starbridge.geometry.camera import Intrinsics
    from starbridge.runtime.generator import FrameRequest
    from starbridge.scenes.store import SceneStore

    gen = StarGenerator(bundle, prefer_cuda=False)
    session = gen.open(SceneStore(demo_store).get("demo"), 256, 144)
    intr = Intrinsics.from_fov(60, 256, 144)
    frames = session.generate_block([FrameRequest(np.eye(4), intr, 0.5)] * session.block_frames)
    assert len(frames) == 2 and frames[0].shape == (144, 256, 4) and (frames[0][..., 3] == 255).all()
    session.reset()
    assert session.prev is None


def _composite_numpy(frames: np.ndarray, renders: np.ndarray, masks: np.ndarray) -> None:
    """The formula composite_visible compiles (runtime/star.py, geometry/kernels.py), in NumPy."""
    m = masks.astype(np.float32)
    soft = m.copy()
    soft[:, 1:-1, :] = (m[:, :-2, :] + m[:, 1:-1, :] + m[:, 2:, :]) / 3
    m2 = soft.copy()
    m2[:, :, 1:-1] = (soft[:, :, :-2] + soft[:, :, 1:-1] + soft[:, :, 2:]) / 3
    w = (m2 * m)[..., None]
    frames[..., :3] = (w * renders + (1 - w) * frames[..., :3] + 0.5).astype(np.uint8)


def test_composite_is_the_numpy_formula_bit_for_bit():
    from starbridge.runtime.star import composite_visible

    rng = np.random.default_rng(5)
    frames = rng.integers(0, 256, (2, 37, 53, 4), dtype=np.uint8)
    renders = rng.integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    masks = rng.random((2, 37, 53)) > 0.3
    masks[1, :4] = False  # a hole along the first rows, and a valid last column
    masks[1, :, -1] = True
    want, got = frames.copy(), frames.copy()
    _composite_numpy(want, renders, masks)
    composite_visible(got, renders, masks)
    assert np.array_equal(got, want)
    assert not np.array_equal(got, frames)
    strided = np.asfortranarray(frames)  # an engine may hand over a non-contiguous array: composited in place
    composite_visible(strided, renders, masks)
    assert np.array_equal(strided, want)


def test_composite_keeps_valid_render_pixels(bundle: Path, demo_store: Path):
    from starbridge.geometry.camera import Intrinsics
    from starbridge.runtime.generator import FrameRequest
    from starbridge.runtime.star import composite_visible
    from starbridge.scenes.store import SceneStore

    frames = np.zeros((1, 6, 6, 4), np.uint8)
    renders = np.full((1, 6, 6, 3), 200, np.uint8)
    masks = np.ones((1, 6, 6), bool)
    masks[0, 3, 3] = False
    composite_visible(frames, renders, masks)
    assert frames[0, 0, 0, 0] == 200 and frames[0, 3, 3, 0] == 0 and 0 < frames[0, 2, 2, 0] < 200

    gen = StarGenerator(bundle, prefer_cuda=False, composite=True)
    session = gen.open(SceneStore(demo_store).get("demo"), 256, 144)
    intr = Intrinsics.from_fov(60, 256, 144)
    out = session.generate_block([FrameRequest(np.eye(4), intr, 0.0)] * 2)[0]
    renders, masks, _ = session._render([FrameRequest(np.eye(4), intr, 0.0)])
    m = masks[0]
    # valid pixels whose 3x3 neighbourhood is valid too: exactly the render there (the seams are feathered)
    inner = np.zeros_like(m)
    inner[1:-1, 1:-1] = np.all([m[1 + dy : m.shape[0] - 1 + dy, 1 + dx : m.shape[1] - 1 + dx]
                                for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)  # fmt: skip
    assert inner.sum() > 0.5 * m.size
    assert np.abs(out[..., :3][inner].astype(int) - renders[0][inner].astype(int)).max() <= 1


def test_prepare_warms_up_once_and_changes_no_frame(bundle: Path, demo_store: Path):
    """`prepare` makes one block and throws it away (ONNX Runtime's first-run work done before a client waits),
    keeps the engine that ran it for the first session, does it for the first scene only; the first
    session's frames are those of a generator that did not warm up."""
    from starbridge.geometry.camera import Intrinsics
    from starbridge.runtime.generator import FrameRequest
    from starbridge.runtime.star import StarSession
    from starbridge.scenes.store import SceneStore

    scene = SceneStore(demo_store).get("demo")
    warm, cold = StarGenerator(bundle, prefer_cuda=False), StarGenerator(bundle, prefer_cuda=False, warm_up=False)
    warm.prepare(scene)
    cold.prepare(scene)
    assert len(warm._idle) == 1 and not cold._idle
    engine = warm._idle[0]
    warm.prepare(scene)
    assert warm._idle == [engine]  # once per generator
    intr = Intrinsics.from_fov(60, 256, 144)
    c2w = np.eye(4)
    c2w[0, 3] = 0.1
    blocks = [[FrameRequest(c2w, intr, (b * 2 + k) / 24) for k in range(2)] for b in range(2)]
    a, b = StarSession(warm, scene, seed=4), StarSession(cold, scene, seed=4)
    assert a.engine is engine
    for requests in blocks:
        assert np.array_equal(np.stack(a.generate_block(requests)), np.stack(b.generate_block(requests)))
