"""The CPU variants saved with a bundle (model/onnx_cpu_variants.py, onnx_optimize.py): the bias-free step
graph for calls whose whole cache is valid, and graphs with int8 weights. Real exports, real ONNX Runtime
sessions, the shipped bundle's own files."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from starbridge.cli import main as cli_main  # noqa: E402
from starbridge.errors import InvalidArgument  # noqa: E402
from starbridge.geometry.camera import Intrinsics  # noqa: E402
from starbridge.model.export import build_random, example_inputs, export_bundle  # noqa: E402
from starbridge.model.onnx_cpu_variants import full_step_graph, split_branch  # noqa: E402
from starbridge.model.onnx_optimize import optimize_bundle  # noqa: E402
from starbridge.model.presets import get_preset  # noqa: E402
from starbridge.runtime.bundle import packaged_models, read_model  # noqa: E402
from starbridge.runtime.generator import FrameRequest  # noqa: E402
from starbridge.runtime.providers import CPU  # noqa: E402
from starbridge.runtime.star import StarGenerator, StarGraphs, StarSession  # noqa: E402
from starbridge.scenes.store import SceneStore  # noqa: E402

TIGHT = 1e-5
#: int8 weights (per output channel) and int8 activations (per call) against float32, on a step graph's
#: velocity: the error relative to the velocity's own scale (measured 0.5-1.5% on these random models).
INT8_RELATIVE = 0.05


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    preset = get_preset("star-tiny-test")
    model, ae = build_random(preset, seed=4)
    with torch.no_grad():  # trained weights are all different; fresh norm scales are ones
        for p in [*model.parameters(), *ae.parameters()]:
            p.add_(0.02 * torch.randn_like(p))
    return preset, export_bundle(preset, model, ae, tmp_path_factory.mktemp("variants") / "b")


def _step_feeds(session: ort.InferenceSession, preset, valid: int | None = None) -> dict[str, np.ndarray]:
    names = ["noisy", "cond", "timestep", "cache_k", "cache_v", "valid"]  # (star-tiny-test has no text input)
    inputs = dict(zip(names, example_inputs(preset)["step"], strict=True))
    feeds = {n: t.numpy() for n, t in inputs.items()}
    if valid is not None:
        feeds["valid"] = np.array(valid, np.int64)
    names = {i.name for i in session.get_inputs()}
    return {n: v for n, v in feeds.items() if n in names}


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=[CPU])


def _full_feeds(session: ort.InferenceSession, preset, time_graph: Path) -> dict[str, np.ndarray]:
    """step_full's feeds: the step's, with the timestep branch's outputs (step_time) for its timestep."""
    feeds = _step_feeds(session, preset)
    timestep = {"timestep": example_inputs(preset)["step"][2].numpy()}
    branch = _session(time_graph)
    feeds.update(zip([o.name for o in branch.get_outputs()], branch.run(None, timestep), strict=True))
    return feeds


def test_bundle_records_its_cpu_variants(bundle):
    preset, path = bundle
    entry = read_model(path).doc["cpu_graphs"]
    assert entry["graphs"]["step_full"] == "step_full.cpu.onnx" and entry["graphs"]["step_time"] == "step_time.cpu.onnx"
    assert entry["int8"] == {g: f"{g}.cpu-int8.onnx" for g in ("step", "step_full", "context")}
    layers = preset.star.num_layers
    # q, k, v, o and two feed-forward MatMuls per block in the step graphs; the feed-forward ones in the context's
    # (whose last block is there only for its keys and values: no feed-forward)
    assert entry["int8_nodes"] == {"step": 6 * layers, "step_full": 6 * layers, "context": 2 * (layers - 1)}
    for file in (*entry["graphs"].values(), *entry["int8"].values()):
        assert (path / file).is_file()
    for file in ("step.cpu.onnx", "step_full.cpu-int8.onnx", "context.cpu.onnx"):  # every FFN's tanh-GELU fused
        ops = Counter(n.op_type for n in onnx.load(str(path / file)).graph.node)
        assert ops["FastGelu"] == layers - file.startswith("context") and ops["Tanh"] == 0, (file, ops)
    ops = Counter(n.op_type for n in onnx.load(str(path / "step.cpu-int8.onnx")).graph.node)
    # (ONNX Runtime fuses them: one activation quantisation shared by q, k and v, its MatMuls MatMulIntegerToFloat)
    assert ops["DynamicQuantizeMatMul"] + ops["MatMulIntegerToFloat"] == 6 * layers


def test_full_step_drops_the_bias_and_computes_what_the_step_does(bundle):
    preset, path = bundle
    full = onnx.load(str(path / "step_full.cpu.onnx")).graph
    assert "valid" not in {i.name for i in full.input}
    attention = [n for n in full.node if n.op_type == "MultiHeadAttention"]
    assert len(attention) == preset.star.num_layers
    assert all(len(n.input) <= 5 or not n.input[5] for n in attention)  # no attention bias
    step, step_full = _session(path / "step.cpu.onnx"), _session(path / "step_full.cpu.onnx")
    whole = preset.star.context_tokens
    a = step.run(None, _step_feeds(step, preset, valid=whole))[0]
    b = step_full.run(None, _full_feeds(step_full, preset, path / "step_time.cpu.onnx"))[0]
    assert np.abs(a - b).max() < TIGHT
    # ... and is not what the first block (half the cache padding) computes: the runtime must not use it there
    first = step.run(None, _step_feeds(step, preset, valid=preset.star.block_tokens))[0]
    assert np.abs(first - b).max() > 1e-3


def test_int8_graphs_stay_close_to_float32(bundle):
    preset, path = bundle
    for name in ("step", "step_full"):
        f32, i8 = _session(path / f"{name}.cpu.onnx"), _session(path / f"{name}.cpu-int8.onnx")
        feeds = _step_feeds if name == "step" else lambda s, p: _full_feeds(s, p, path / "step_time.cpu.onnx")
        a, b = f32.run(None, feeds(f32, preset))[0], i8.run(None, feeds(i8, preset))[0]
        relative = np.abs(a - b).max() / np.abs(a).max()
        assert 0 < relative < INT8_RELATIVE, (name, relative)  # different (int8 really ran) but close


def test_runtime_loads_int8_unless_told_not_to(bundle):
    _, path = bundle
    info = read_model(path)
    on = StarGraphs(info, (CPU,))
    off = StarGraphs(info, (CPU,), int8=False)
    assert Path(on.sessions["step"]._model_path).name == "step.cpu-int8.onnx"
    assert Path(on.sessions["context"]._model_path).name == "context.cpu-int8.onnx"
    assert Path(on.step_full._model_path).name == "step_full.cpu-int8.onnx"
    assert Path(off.sessions["step"]._model_path).name == "step.cpu.onnx"
    assert Path(off.step_full._model_path).name == "step_full.cpu.onnx"
    assert Path(on.step_time._model_path).name == Path(off.step_time._model_path).name == "step_time.cpu.onnx"
    assert Path(on.sessions["decoder"]._model_path).name == "decoder.cpu.onnx"  # no int8 copy: float32


class _Counting:
    """An InferenceSession whose runs (plain or with IO binding) are counted."""

    def __init__(self, session) -> None:
        self.session, self.calls = session, 0

    def io_binding(self):
        return self.session.io_binding()

    def get_outputs(self):
        return self.session.get_outputs()

    def run(self, *args):
        self.calls += 1
        return self.session.run(*args)

    def run_with_iobinding(self, *args):
        self.calls += 1
        return self.session.run_with_iobinding(*args)


def test_the_timestep_branch_is_split_off_exactly(bundle, tmp_path: Path):
    preset, path = bundle
    whole, main, branch = tmp_path / "whole.onnx", tmp_path / "main.onnx", tmp_path / "time.onnx"
    assert full_step_graph(path / "step.onnx", whole)
    boundary = split_branch(whole, main, branch)
    layers = preset.star.num_layers
    assert len(boundary) == 6 * layers + 2  # each block's six modulation vectors, the head's two
    main_graph, branch_graph = onnx.load(str(main)).graph, onnx.load(str(branch)).graph
    assert "timestep" not in {i.name for i in main_graph.input} and [i.name for i in branch_graph.input] == ["timestep"]
    assert {"Sin", "Cos"} <= {n.op_type for n in branch_graph.node}
    assert not {"Sin", "Cos"} & {n.op_type for n in main_graph.node}
    s_whole, s_main, s_branch = _session(whole), _session(main), _session(branch)
    for timestep in (1000.0, 250.0):
        feeds = _step_feeds(s_whole, preset)
        feeds["timestep"] = np.array([timestep], np.float32)
        split = {k: v for k, v in feeds.items() if k != "timestep"}
        split.update(zip(boundary, s_branch.run(None, {"timestep": feeds["timestep"]}), strict=True))
        assert np.array_equal(s_whole.run(None, feeds)[0], s_main.run(None, split)[0])


def test_a_graph_that_reads_the_input_itself_is_not_split(tmp_path: Path):
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Sin", ["timestep"], ["s"]), helper.make_node("Add", ["x", "s"], ["a"]),
             helper.make_node("Mul", ["a", "timestep"], ["y"])]  # fmt: skip
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in ("x", "timestep")],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    src = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(src))
    assert split_branch(src, tmp_path / "m.onnx", tmp_path / "b.onnx") == []
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "b.onnx").exists()


def test_timestep_inputs_are_computed_once_per_timestep(bundle):
    _, path = bundle
    graphs = StarGraphs(read_model(path), (CPU,))
    counted = graphs.step_time = _Counting(graphs.step_time)
    first = graphs.time_inputs(750.0)
    assert graphs.time_inputs(750.0) is first and counted.calls == 1
    other = graphs.time_inputs(250.0)
    assert counted.calls == 2 and not np.array_equal(first[0][1].numpy(), other[0][1].numpy())


def test_blocks_after_the_first_run_the_full_step_with_the_same_frames(bundle, demo_store):
    preset, path = bundle
    scene = SceneStore(demo_store).get("demo")
    intr = Intrinsics.from_fov(60, preset.width, preset.height)
    c2w = np.eye(4)
    c2w[0, 3] = 0.2
    requests = [FrameRequest(c2w, intr, i / 24) for i in range(preset.frames_per_block)]
    with_full = StarGenerator(path, prefer_cuda=False, int8=False)
    counted = with_full.graphs.step_full = _Counting(with_full.graphs.step_full)
    without = StarGenerator(path, prefer_cuda=False, int8=False)
    without.graphs.step_full = None
    a, b = StarSession(with_full, scene, seed=3), StarSession(without, scene, seed=3)
    steps = len(a.schedule.sigmas)
    for block in range(3):
        fa, fb = np.stack(a.generate_block(requests)), np.stack(b.generate_block(requests))
        assert counted.calls == steps * block  # the first block (half the cache padding) ran `step`
        assert np.abs(fa.astype(int) - fb.astype(int)).max() <= 1, block
        assert np.abs(a.prev - b.prev).max() < 1e-4


def test_optimize_rewrites_a_bundle_in_place(bundle, tmp_path: Path):
    _, src = bundle
    path = tmp_path / "copy"
    shutil.copytree(src, path)
    entry = optimize_bundle(path, int8=False)
    assert "int8" not in entry and not list(path.glob("*.cpu-int8.onnx"))  # the old int8 copies are gone
    assert "int8" not in read_model(path).doc["cpu_graphs"]
    assert cli_main(["model", "optimize", str(path)]) == 0
    doc = read_model(path).doc
    assert set(doc["cpu_graphs"]["int8"]) == {"step", "step_full", "context"}
    assert json.loads((src / "model.json").read_text())["preset"] == doc["preset"]  # the rest as it was
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp or trash folder left


def test_optimize_leaves_a_bundle_as_it_was_when_it_fails(bundle, tmp_path: Path):
    _, src = bundle
    path = tmp_path / "broken"
    shutil.copytree(src, path)
    (path / "step.onnx").write_bytes(b"not an onnx graph")
    before = {p.name: p.read_bytes() for p in path.iterdir()}
    with pytest.raises(Exception):  # noqa: B017 - onnx's own error for a file that is not a graph
        optimize_bundle(path)
    assert {p.name: p.read_bytes() for p in path.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(InvalidArgument, match="not a model bundle"):
        optimize_bundle(tmp_path / "nothing-here")


def test_float16_bundles_get_no_variants(tmp_path: Path):
    preset = get_preset("star-tiny-test")
    model, ae = build_random(preset)
    entry = read_model(export_bundle(preset, model, ae, tmp_path / "h", dtype="float16")).doc["cpu_graphs"]
    assert "int8" not in entry and "step_full" not in entry["graphs"]


def test_the_shipped_bundle_has_its_variants():
    """...made from its own graphs: the int8 step computes what its float32 step does, within int8's error."""
    info = read_model(packaged_models()["star-tiny"])
    entry = info.doc["cpu_graphs"]
    assert set(entry["int8"]) == {"step", "step_full", "context"} and {"step_full", "step_time"} <= set(entry["graphs"])
    preset = get_preset("star-tiny")
    f32, i8 = _session(info.path / "step.onnx"), _session(info.path / entry["int8"]["step"])
    a, b = f32.run(None, _step_feeds(f32, preset))[0], i8.run(None, _step_feeds(i8, preset))[0]
    assert 0 < np.abs(a - b).max() / np.abs(a).max() < INT8_RELATIVE


def _gelu_graph(tmp: Path, extra_reader: bool) -> Path:
    """The tanh-GELU as torch.onnx writes it (constants as Constant nodes), on a (4, 8) input; with
    `extra_reader`, the tanh's output is also a graph output (then the chain must stay)."""
    from onnx import TensorProto, helper

    def const(name: str, value: float):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.FLOAT, [], [value]))

    nodes = [
        helper.make_node("Mul", ["x", "x"], ["sq"]),
        helper.make_node("Mul", ["x", "sq"], ["cube"]),
        const("c3", 0.044715), helper.make_node("Mul", ["c3", "cube"], ["cubic"]),
        helper.make_node("Add", ["x", "cubic"], ["inner"]),
        const("c1", 0.7978845834732056), helper.make_node("Mul", ["c1", "inner"], ["scaled"]),
        helper.make_node("Tanh", ["scaled"], ["t"]),
        const("one", 1.0), helper.make_node("Add", ["one", "t"], ["plus"]),
        helper.make_node("Mul", ["x", "plus"], ["xt"]),
        const("half", 0.5), helper.make_node("Mul", ["half", "xt"], ["y"]),
    ]  # fmt: skip
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])]
    if extra_reader:
        outputs.append(helper.make_tensor_value_info("t", TensorProto.FLOAT, [4, 8]))
    graph = helper.make_graph(nodes, "gelu", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])], outputs)
    path = tmp / f"gelu-{extra_reader}.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9), str(path))
    return path


def test_tanh_gelu_fuses_only_when_the_whole_chain_is_its_own(tmp_path: Path):
    from starbridge.model.onnx_cpu_variants import fuse_tanh_gelu

    x = np.linspace(-4, 4, 32, dtype=np.float32).reshape(4, 8)
    src = _gelu_graph(tmp_path, extra_reader=False)
    assert fuse_tanh_gelu(src, tmp_path / "fused.onnx") == 1
    ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "fused.onnx")).graph.node)
    assert ops == Counter({"FastGelu": 1})
    want = _session(src).run(None, {"x": x})[0]
    got = _session(tmp_path / "fused.onnx").run(None, {"x": x})[0]
    assert np.abs(got - want).max() < TIGHT
    assert np.abs(want - torch.nn.functional.gelu(torch.from_numpy(x), approximate="tanh").numpy()).max() < TIGHT
    shared = _gelu_graph(tmp_path, extra_reader=True)
    assert fuse_tanh_gelu(shared, tmp_path / "not.onnx") == 0 and not (tmp_path / "not.onnx").exists()
