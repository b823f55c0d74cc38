"""Fused attention/rotary graphs, the CPU-optimised graphs saved with a bundle, and weights read back out.

Real exports, real ONNX Runtime sessions. The fused graphs must compute what PyTorch computes to float32
rounding (1e-5 on unit-scale tensors), for a first block (half the cache is padding, masked) and later
ones, with and without cross-attention (the -test presets of both layouts)."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from starbridge.model.export import ContextGraph, StepGraph, example_inputs, export_bundle  # noqa: E402
from starbridge.model.from_bundle import load_bundle_modules  # noqa: E402
from starbridge.model.onnx_fusion import rotate_pairs  # noqa: E402
from starbridge.model.presets import get_preset  # noqa: E402
from starbridge.model.star import StarModel, apply_rope  # noqa: E402
from starbridge.runtime.bundle import read_model  # noqa: E402
from starbridge.runtime.providers import CPU, CUDA, open_graph, optimised_graph  # noqa: E402
from starbridge.runtime.star import StarGraphs  # noqa: E402

TIGHT = 1e-5


def _random_bundle(tmp: Path, preset_name: str, **kwargs) -> tuple:
    preset = get_preset(preset_name)
    torch.manual_seed(3)
    from starbridge.model.export import build_random

    model, ae = build_random(preset, seed=3)
    return preset, model.eval(), ae.eval(), export_bundle(preset, model, ae, tmp / preset.name, **kwargs)


@pytest.fixture(scope="module", params=["star-tiny-test", "inspatio-1.3b-test"])
def fused(request, tmp_path_factory):
    return _random_bundle(tmp_path_factory.mktemp("fused"), request.param)


def _ops(path: Path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def test_fused_graphs_hold_the_contrib_operators(fused):
    preset, _, _, path = fused
    layers = preset.star.num_layers
    assert read_model(path).doc["fused_attention"] is True
    for graph in ("context", "step"):
        ops = _ops(path / f"{graph}.onnx")
        # The context graph's last layer is only needed for its keys and values: no query, no attention.
        attending = layers - (graph == "context")
        assert ops["RotaryEmbedding"] == layers + attending  # k of every layer, q where it attends
        # self-attention fused in the step graph only (export.py says why); cross-attention always
        own = layers if graph == "step" else 0
        cross = attending if preset.star.text_dim else 0
        assert ops["MultiHeadAttention"] == own + cross
        assert ops["Softmax"] == attending - own  # no unfused attention left where it is fused


@pytest.fixture(scope="module", params=["star-tiny-test", "inspatio-1.3b-test"])
def fused_context(request, tmp_path_factory):
    """The context graph's own self-attention fused as well (what a CUDA bundle gets), in float32 so that the
    CPU provider runs it."""
    return _random_bundle(tmp_path_factory.mktemp("fused-context"), request.param, fused_context=True)


def test_fused_context_graph_holds_no_unfused_attention(fused_context):
    preset, _, _, path = fused_context
    assert read_model(path).doc["fused_context_attention"] is True
    ops = _ops(path / "context.onnx")
    attending = preset.star.num_layers - 1  # the last layer keeps only its keys and values
    assert ops["MultiHeadAttention"] == attending * (2 if preset.star.text_dim else 1)
    assert ops["Softmax"] == 0


def test_only_cuda_bundles_fuse_the_context_by_default(tmp_path: Path):
    """Default: plain context self-attention in a float32 bundle (the CPU's; the fixtures above), fused in a
    fused float16 bundle (CUDA's alone); never without `fused`."""
    for kwargs, want in (({"dtype": "float16", "fused": True}, True), ({"dtype": "float16"}, False),
                         ({"fused": False, "fused_context": True}, False)):  # fmt: skip
        _, _, _, path = _random_bundle(tmp_path / str(len(list(tmp_path.iterdir()))), "star-tiny-test", **kwargs)
        assert read_model(path).doc["fused_context_attention"] is want, kwargs
        assert (_ops(path / "context.onnx")["Softmax"] == 0) is want, kwargs


@pytest.mark.parametrize("graph", ["context", "step"])
def test_fused_graphs_match_pytorch_first_and_later_blocks(fused, graph):
    _match_pytorch(*fused, graph)


@pytest.mark.parametrize("graph", ["context", "step"])
def test_fused_context_graphs_match_pytorch_first_and_later_blocks(fused_context, graph):
    _match_pytorch(*fused_context, graph)


def _match_pytorch(preset, model, _, path: Path, graph: str) -> None:
    module = {"context": ContextGraph(model), "step": StepGraph(model)}[graph]
    inputs = list(example_inputs(preset)[graph])
    if preset.star.text_dim:
        inputs[-1] = torch.from_numpy(np.load(path / "text.npy"))
    session = ort.InferenceSession(str(path / f"{graph}.onnx"), providers=[CPU])
    names = [i.name for i in session.get_inputs()]
    valid_at = names.index("valid")
    for valid in (preset.star.block_tokens, preset.star.context_tokens):  # first block: cache half padding
        inputs[valid_at] = torch.tensor(valid)
        with torch.no_grad():
            want = module(*inputs)
        want = want if isinstance(want, tuple) else (want,)
        got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})
        for w, g in zip(want, got, strict=True):
            assert g.shape == tuple(w.shape)
            assert np.abs(g - w.numpy()).max() < TIGHT, (graph, valid, np.abs(g - w.numpy()).max())


def test_rotary_reference_is_the_models_rotation():
    """The fused path's reference maths (3D, heads packed) is apply_rope's (per head) exactly."""
    preset = get_preset("star-tiny-test")
    model = StarModel(preset.star)
    n, h, hd = model.step_cos.shape[0], preset.star.num_heads, preset.star.head_dim
    x = torch.randn(1, n, h * hd)
    per_head = apply_rope(x.reshape(1, n, h, hd).transpose(1, 2), model.step_cos, model.step_sin)
    packed = rotate_pairs(x, model.step_cos, model.step_sin, h)
    assert torch.equal(per_head.transpose(1, 2).reshape(1, n, h * hd), packed)


def test_cpu_graphs_are_saved_and_used_on_the_cpu(fused):
    preset, _, _, path = fused
    info = read_model(path)
    entry = info.doc["cpu_graphs"]
    assert entry["provider"] == CPU and entry["onnxruntime"] == ort.__version__
    assert set(entry["graphs"]) == {"encoder", "decoder", "context", "step", "step_full", "step_time"}
    graphs = StarGraphs(info, (CPU,), int8=False)
    for name, file in entry["graphs"].items():
        assert (path / file).is_file()
        session = {"step_full": graphs.step_full, "step_time": graphs.step_time}.get(name) or graphs.sessions[name]
        assert Path(session._model_path).name == file  # the saved optimised graph was loaded
    # the optimised step graph computes what the portable one does
    inputs = example_inputs(preset)["step"]
    portable = ort.InferenceSession(str(path / "step.onnx"), providers=[CPU])
    names = [i.name for i in portable.get_inputs()]
    if preset.star.text_dim:
        inputs = (*inputs[:-1], torch.from_numpy(np.load(path / "text.npy")))
    feeds = {n: t.numpy() for n, t in zip(names, inputs, strict=True)}
    a, b = portable.run(None, feeds)[0], graphs.sessions["step"].run(None, feeds)[0]
    assert np.abs(a - b).max() < TIGHT


def test_other_providers_load_the_portable_graphs(fused):
    """Fusions are made for the provider a node is assigned to: CUDA never gets the CPU-optimised copy."""
    info = read_model(fused[3])
    assert optimised_graph(info, "step", CPU, int8=False) == info.path / "step.cpu.onnx"
    assert optimised_graph(info, "step", CPU) == info.path / "step.cpu-int8.onnx"
    for provider in (CUDA, "TensorrtExecutionProvider"):
        assert optimised_graph(info, "step", provider) is None


@pytest.mark.parametrize("int8", [True, False])
def test_unloadable_cpu_graph_falls_back_to_the_portable_one(tmp_path: Path, caplog, int8: bool):
    _, _, _, path = _random_bundle(tmp_path, "star-tiny-test")
    info = read_model(path)
    (path / info.doc["cpu_graphs"]["int8" if int8 else "graphs"]["step"]).write_bytes(b"not an onnx graph")
    with caplog.at_level(logging.WARNING, logger="starbridge.runtime.providers"):
        session = open_graph(info, "step", ort.SessionOptions(), [CPU], int8)
    assert Path(session._model_path).name == "step.onnx"
    assert "does not load" in caplog.text and "step.onnx" in caplog.text


def test_float16_bundles_keep_the_plain_graph(tmp_path: Path):
    _, _, _, path = _random_bundle(tmp_path, "star-tiny-test", dtype="float16")
    assert read_model(path).doc["fused_attention"] is False
    ops = _ops(path / "step.onnx")
    assert ops["MultiHeadAttention"] == 0 and ops["Softmax"] > 0


@pytest.mark.parametrize("fused_graphs", [True, False])
def test_weights_read_back_out_of_a_bundle(tmp_path: Path, fused_graphs: bool):
    """Trained weights are all different; fresh ones are not (every norm scale is ones, which the exporter
    stores once), so the weights are jittered first, as training would."""
    from starbridge.model.export import build_random

    preset = get_preset("star-tiny-test")
    model, ae = build_random(preset, seed=5)
    with torch.no_grad():
        for p in [*model.parameters(), *ae.parameters()]:
            p.add_(0.01 * torch.randn_like(p))
    path = export_bundle(preset, model, ae, tmp_path / "b", fused=fused_graphs)
    got_model, got_ae, got_preset = load_bundle_modules(path)
    assert got_preset == preset
    for want, got in ((model, got_model), (ae, got_ae)):
        want_state, got_state = want.state_dict(), got.state_dict()
        assert set(want_state) == set(got_state)
        for key, value in want_state.items():
            assert torch.equal(value, got_state[key]), key


def test_shipped_star_tiny_is_its_weights_exported_fused():
    """The packaged bundle's graphs (fused, CPU-optimised) compute what its own weights do in PyTorch."""
    from starbridge.runtime.bundle import packaged_models

    path = packaged_models()["star-tiny"]
    info = read_model(path)
    assert info.doc["fused_attention"] is True and info.doc["cpu_graphs"]["graphs"]["step"] == "step.cpu.onnx"
    model, _, preset = load_bundle_modules(path)
    inputs = example_inputs(preset)["step"]
    graphs = StarGraphs(info, (CPU,), int8=False)  # (the int8 copies: tests/model/test_cpu_variants.py)
    names = [i.name for i in graphs.sessions["step"].get_inputs()]
    got = graphs.sessions["step"].run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})[0]
    with torch.no_grad():
        want = StepGraph(model)(*inputs).numpy()
    assert np.abs(got - want).max() < TIGHT
