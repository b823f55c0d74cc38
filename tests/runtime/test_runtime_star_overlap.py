"""A STAR block's explicit renders run on the session's render thread beside the context pass and the denoising
steps: the frames are exactly those of the same work done in turn, for every kind of bundle; reference latents
kept per frame equal those encoded a block at a time."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from starbridge.geometry.camera import Intrinsics  # noqa: E402
from starbridge.model.export import build_random, export_bundle  # noqa: E402
from starbridge.model.presets import get_preset  # noqa: E402
from starbridge.runtime.generator import FrameRequest  # noqa: E402
from starbridge.runtime.star import StarGenerator, StarSession  # noqa: E402
from starbridge.scenes.procedural.paths import pose  # noqa: E402
from starbridge.scenes.store import SceneStore  # noqa: E402

PACKAGED = Path(__file__).resolve().parents[2] / "backend" / "starbridge" / "models" / "star-tiny"


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    """A reference-condition bundle that composites nothing, a layered one, and the shipped star-tiny (reference
    condition, composites the layered render)."""
    out = {"star-tiny (shipped)": PACKAGED}
    for name, preset, composite in (("reference", "star-tiny-test", False), ("layered", "star-world-test", True)):
        model, ae = build_random(get_preset(preset), seed=3)
        folder = tmp_path_factory.mktemp("model") / name
        out[name] = export_bundle(get_preset(preset), model, ae, folder, composite_visible=composite)
    return out


def _requests(n_blocks: int, fpb: int) -> list[list[FrameRequest]]:
    """A turn into what the reference frame did not see and back, a sideways drift, the clock playing."""
    out = []
    for b in range(n_blocks):
        block = []
        for k in range(fpb):
            i = b * fpb + k
            yaw = 60.0 * np.sin(i / 5.0)
            c2w = pose(yaw, 0.0, (0.1 * np.sin(i / 3.0), 0.0, 0.0))
            block.append(FrameRequest(c2w, Intrinsics.from_fov(60, 256, 144), i / 24.0))
        out.append(block)
    return out


@pytest.mark.parametrize("kind", ["reference", "layered", "star-tiny (shipped)"])
def test_overlapped_blocks_equal_blocks_made_in_turn(bundles: dict[str, Path], demo_store: Path, kind: str):
    gen = StarGenerator(bundles[kind], prefer_cuda=False)
    scene = SceneStore(demo_store).get("demo")
    gen.prepare(scene)
    overlapped = StarSession(gen, scene, seed=7)
    in_turn = StarSession(gen, scene, seed=7, overlap=False)
    threads: dict[str, set[str]] = {"encode": set(), "context": set()}
    for name in threads:  # record which thread runs the session's encode and context calls
        method = getattr(overlapped.engine, name)

        def recorded(*args, _method=method, _name=name):
            threads[_name].add(threading.current_thread().name)
            return _method(*args)

        setattr(overlapped.engine, name, recorded)
    try:
        for k, requests in enumerate(_requests(6, gen.info.frames_per_block)):
            a = overlapped.generate_block(requests)
            b = in_turn.generate_block(requests)
            for fa, fb in zip(a, b, strict=True):
                assert np.array_equal(fa, fb), f"block {k} differs"
        if overlapped.layered is not None:
            assert len(overlapped.layered.memory) == len(in_turn.layered.memory) > 0
    finally:
        overlapped.close()
        in_turn.close()
    assert threads["context"] == {threading.current_thread().name}
    assert len(threads["encode"]) == 1 and next(iter(threads["encode"])).startswith("star-render")


def test_an_error_on_the_render_thread_reaches_the_caller_and_the_session_goes_on(bundles, demo_store: Path):
    gen = StarGenerator(bundles["reference"], prefer_cuda=False)
    session = gen.open(SceneStore(demo_store).get("demo"), 256, 144)
    blocks = _requests(2, gen.info.frames_per_block)
    encode = session.engine.encode
    session.engine.encode = lambda frames: (_ for _ in ()).throw(RuntimeError("encoder failed"))
    with pytest.raises(RuntimeError, match="encoder failed"):
        session.generate_block(blocks[0])
    session.engine.encode = encode
    assert len(session.generate_block(blocks[1])) == gen.info.frames_per_block
    session.close()
    assert session._pool is None  # the render thread is gone with the session


def test_reference_latents_kept_per_frame_equal_block_encodes(bundles: dict[str, Path], demo_store: Path):
    gen = StarGenerator(bundles["reference"], prefer_cuda=False)
    scene = SceneStore(demo_store).get("demo")
    assert gen._per_frame  # star-tiny's autoencoder: one latent per frame, no memory
    for indices in ([3, 4], [4, 9], [9, 9], [0, scene.meta.frame_count - 1]):
        got = gen.reference_latents(scene, indices)
        frames = np.stack([gen._reference_frame(scene, j) for j in indices])
        np.testing.assert_allclose(got, gen.graphs.encode(frames), rtol=0, atol=1e-5)
    gen.prepare(scene)  # every reference frame encoded at start-up
    assert len(gen._frames[str(scene.path)]) == scene.meta.frame_count
