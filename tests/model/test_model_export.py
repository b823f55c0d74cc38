"""Each exported graph in ONNX Runtime (CPU) against its PyTorch module, and one whole block both ways.

Tolerances: float32 graphs agree to 1e-4 absolute on unit-scale tensors (ONNX Runtime fuses and
reorders float sums); uint8 frames to 1 level per channel for single graphs and 2 levels for a whole
block (the four denoising steps amplify float differences a little)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from starbridge.geometry.camera import Intrinsics  # noqa: E402
from starbridge.model.autoencoder import TinyAutoencoder  # noqa: E402
from starbridge.model.export import IO_NAMES, example_inputs, export_bundle  # noqa: E402
from starbridge.model.pipeline import TorchEngine  # noqa: E402
from starbridge.model.presets import get_preset  # noqa: E402
from starbridge.model.star import StarModel  # noqa: E402
from starbridge.runtime.bundle import read_model  # noqa: E402
from starbridge.runtime.generator import FrameRequest  # noqa: E402
from starbridge.runtime.star import StarGenerator, StarSession  # noqa: E402
from starbridge.scenes.store import SceneStore  # noqa: E402

ATOL = 1e-4


@pytest.fixture(scope="module", params=["star-tiny-test", "inspatio-1.3b-test"])
def exported(request, tmp_path_factory):
    preset = get_preset(request.param)
    torch.manual_seed(1)
    model, ae = StarModel(preset.star).eval(), TinyAutoencoder(preset.autoencoder).eval()
    path = export_bundle(preset, model, ae, tmp_path_factory.mktemp("bundles") / preset.name)
    return preset, model, ae, path


def test_bundle_files_and_model_json(exported):
    preset, _, _, path = exported
    info = read_model(path)
    assert (info.width, info.height, info.frames_per_block) == (preset.width, preset.height, preset.frames_per_block)
    assert info.cache_shape == (preset.star.num_layers, 1, preset.star.num_heads, preset.star.context_tokens,
                                preset.star.head_dim)  # fmt: skip
    assert info.sigmas == pytest.approx((1.0, 0.9375, 0.8333333, 0.625))
    assert info.has_text == bool(preset.star.text_dim)
    assert not list(path.parent.glob(".*tmp*"))  # written atomically


@pytest.mark.parametrize("graph", ["encoder", "decoder", "context", "step"])
def test_graph_parity(exported, graph):
    preset, model, ae, path = exported
    from starbridge.model.export import ContextGraph, DecoderGraph, EncoderGraph, StepGraph

    module = {"encoder": EncoderGraph(ae), "decoder": DecoderGraph(ae), "context": ContextGraph(model),
              "step": StepGraph(model)}[graph]  # fmt: skip
    inputs = example_inputs(preset)[graph]
    info = read_model(path)
    if info.has_text and graph in ("context", "step"):
        text = torch.from_numpy(np.load(path / "text.npy"))
        inputs = (*inputs[: len(inputs) - 1], text)
    with torch.no_grad():
        want = module(*inputs)
    want = want if isinstance(want, tuple) else (want,)
    session = ort.InferenceSession(str(path / f"{graph}.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == IO_NAMES[graph][0][: len(names)]
    got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})
    for w, g in zip(want, got, strict=True):
        w = w.numpy()
        assert g.shape == w.shape and g.dtype == w.dtype
        if w.dtype == np.uint8:
            assert np.abs(g.astype(int) - w.astype(int)).max() <= 1
        else:
            assert np.abs(g - w).max() < ATOL, np.abs(g - w).max()


def test_whole_block_both_ways(exported, demo_store):
    preset, model, ae, path = exported
    scene = SceneStore(demo_store).get("demo")
    generator = StarGenerator(path, prefer_cuda=False, int8=False)  # the float32 graphs: parity to rounding
    intr = Intrinsics.from_fov(60, preset.width, preset.height)
    n = preset.frames_per_block
    c2w = np.eye(4)
    c2w[0, 3] = 0.2  # a little to the right: holes to fill
    requests = [FrameRequest(c2w, intr, i / 24) for i in range(n)]
    text = np.load(path / "text.npy") if preset.star.text_dim else None
    ours = StarSession(generator, scene, seed=7)
    theirs = StarSession(generator, scene, seed=7, engine=TorchEngine(model, ae, text=text))
    for block in range(2):  # the second block has a previous block in its context
        a, b = ours.generate_block(requests), theirs.generate_block(requests)
        assert len(a) == n and a[0].shape == (preset.height, preset.width, 4) and a[0].dtype == np.uint8
        diff = np.abs(np.stack(a).astype(int) - np.stack(b).astype(int))
        assert diff.max() <= 2, (block, diff.max())
        assert np.abs(ours.prev - theirs.prev).max() < 1e-3


def test_float16_export_runs(tmp_path: Path, demo_store):
    preset = get_preset("star-tiny-test")
    torch.manual_seed(0)
    path = export_bundle(preset, StarModel(preset.star), TinyAutoencoder(preset.autoencoder), tmp_path / "fp16",
                         dtype="float16")  # fmt: skip
    generator = StarGenerator(path, prefer_cuda=False)
    session = generator.open(SceneStore(demo_store).get("demo"), preset.width, preset.height)
    intr = Intrinsics.from_fov(60, preset.width, preset.height)
    frames = session.generate_block([FrameRequest(np.eye(4), intr, 0.0)] * preset.frames_per_block)
    assert frames[0].dtype == np.uint8 and np.isfinite(session.prev).all()


def test_external_data_for_big_graphs(tmp_path: Path, demo_store):
    """Graphs over the threshold (2 GB in practice; tiny here) keep weights in .onnx.data files that load."""
    preset = get_preset("star-tiny-test")
    torch.manual_seed(0)
    path = export_bundle(preset, StarModel(preset.star), TinyAutoencoder(preset.autoencoder), tmp_path / "ext",
                         external_over=10_000)  # fmt: skip
    assert (path / "step.onnx.data").stat().st_size > (path / "step.onnx").stat().st_size
    generator = StarGenerator(path, prefer_cuda=False)
    session = generator.open(SceneStore(demo_store).get("demo"), preset.width, preset.height)
    intr = Intrinsics.from_fov(60, preset.width, preset.height)
    assert len(session.generate_block([FrameRequest(np.eye(4), intr, 0.0)] * preset.frames_per_block)) == 2
