"""CPU-only variants of a bundle's graphs, derived from its portable ONNX graphs (no PyTorch, no weights
re-read: any bundle can be given them, the shipped one included). model/onnx_optimize.py writes them.

* FastGelu: every tanh-GELU (nine element-wise nodes as the TorchScript exporter writes it, which ONNX
  Runtime's own fusion does not recognise) as one com.microsoft FastGelu node: on two cores each of those
  nodes cost 60-85 us (a thread-pool wake-up apiece), ~0.6 ms per feed-forward layer.
* ``step_full``: the step graph for calls whose whole cache is valid (every block after the first): the
  attention bias input of each fused MultiHeadAttention node is dropped (it is all zeros then), and with it
  the nodes that built it from `valid` and the `valid` input itself. ONNX Runtime's CPU attention kernel then
  skips the bias add.
* the timestep branch of ``step_full`` (`split_branch`): the nodes that depend on the timestep alone (its
  sinusoidal embedding, the time MLP, each block's modulation vectors: 69 of star-tiny's 157 nodes, each a
  small operator with its own dispatch) as a graph of their own, ``step_time``, run once per distinct
  timestep of a session (a few-step schedule has four); ``step_full`` takes its outputs as inputs instead of
  the timestep. Measured side by side (CPU time per call, one process, 20 rounds under load): 14.5 -> 13.4 ms.
* int8: dynamic quantisation (ONNX Runtime's quantize_dynamic: int8 weights per output channel, activations
  quantised per call) of the MatMul nodes that `INT8_NODES` names per graph. Which ones is a measured choice:
  the quality benchmark (`bench/bench_quality.py --samples 4`, 4 held-out worlds, star-tiny) with every
  MatMul of step + context int8 lost 0.53 dB in disoccluded pixels and 0.30 dB overall; the step graph's
  transformer blocks alone, or the feed-forward layers of both graphs, lost nothing (+0.03 / -0.01 dB, noise);
  the context graph's attention projections are what cost (its keys and values are reused by every step).

Measured on the shipped star-tiny (other processes paused, alternating rounds in one process, /tmp/prof
scripts of session 6): a step call 12.4 ms -> 12.0 (step_full) -> 11.5 (+ int8); in a later round 12.1 ->
11.1 with FastGelu too, a context call 14.2 -> 12.9; whole blocks of the shipped bundle 1.09x the frames/s
with step_full and int8, 1.13x with FastGelu too (24.3 -> 27.4 fps). Quality against the float32 graphs
(bench/results/quality-int8-vm.json, then quality-fastgelu-vm.json): equal PSNR, SSIM within 0.004.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..errors import InvalidArgument

#: Which MatMul nodes each graph quantises (by node name, as torch.onnx names them after the module path).
#: The time embedding, patch embedding and output head stay float.
INT8_NODES: dict[str, str] = {
    "step": r"^/blocks\.\d+/(self_attn/[qkvo]|ffn/ffn\.\d+)/MatMul$",
    "step_full": r"^/blocks\.\d+/(self_attn/[qkvo]|ffn/ffn\.\d+)/MatMul$",
    "context": r"^/blocks\.\d+/ffn/ffn\.\d+/MatMul$",
}
ATTENTION = "MultiHeadAttention"
BIAS_INPUT = 5  # com.microsoft MultiHeadAttention: query, key, value, bias, key_padding_mask, attention_bias, ...


def _onnx():
    try:
        import onnx
    except ImportError as exc:  # the serving install has no onnx: graph surgery is an export-time job
        raise InvalidArgument(
            "deriving CPU graphs needs the onnx package (pip install 'starbridge[train]' or pip install onnx)",
            field="model",
        ) from exc
    return onnx


def full_step_graph(src: Path, dst: Path) -> bool:
    """Write the `step_full` variant of step graph `src` to `dst`; False (nothing written) when `src` has no
    fused attention with a bias to drop (a plain-graph bundle: its masking is ordinary operators)."""
    onnx = _onnx()
    model = onnx.load(str(src))
    graph = model.graph
    attention = [n for n in graph.node if n.op_type == ATTENTION and len(n.input) > BIAS_INPUT and n.input[BIAS_INPUT]]
    if not attention:
        return False
    for node in attention:
        node.input[BIAS_INPUT] = ""
    _drop_dead(graph)
    # (its present key/value outputs stay, read or not: without them ONNX Runtime 1.31's CPU kernel leaves the
    # past keys out of the attention — measured: NaN velocities)
    read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    unused = [i for i in graph.input if i.name not in read]
    for value in unused:
        graph.input.remove(value)
    onnx.checker.check_model(model)
    onnx.save(model, str(dst))
    return True


#: tanh-GELU's constants as torch.onnx writes them (x + C3 * x^3, scaled by C1 inside the tanh).
_GELU_CONSTANTS = {"cubic": 0.044715, "scale": 0.7978845608, "one": 1.0, "half": 0.5}


def fuse_tanh_gelu(src: Path, dst: Path) -> int:
    """Write graph `src` to `dst` with every tanh-approximated GELU, which the TorchScript exporter writes as
    nine element-wise nodes (0.5 * (x * (1 + tanh(0.79788 * (x + 0.044715 * x * (x * x)))))) and ONNX Runtime
    does not fuse in this form, as one com.microsoft FastGelu node (the same formula; its CPU kernel is one
    vectorised pass). Returns how many were fused (0: `dst` not written)."""
    onnx = _onnx()
    from onnx import numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node if n.op_type == "Constant"}
    constants.update({i.name: numpy_helper.to_array(i) for i in graph.initializer})

    def scalar(name: str, value: float) -> bool:
        c = constants.get(name)
        return c is not None and c.size == 1 and abs(float(c.reshape(())) - value) < 1e-6 * max(1.0, abs(value))

    def split(node, value: float) -> str | None:
        """The other operand of a binary node whose one operand is the scalar `value`."""
        if node is None or len(node.input) != 2:
            return None
        a, b = node.input
        return b if scalar(a, value) else a if scalar(b, value) else None

    def only(name: str, op: str):
        users = consumers.get(name, [])
        return users[0] if len(users) == 1 and users[0].op_type == op else None

    graph_outputs = {o.name for o in graph.output}

    def mul_by(name: str, value: float):
        """(node, other operand) if `name` is made by a Mul of the scalar `value`, else (None, None)."""
        node = producer.get(name)
        other = split(node, value) if node is not None and node.op_type == "Mul" else None
        return (node, other) if other is not None else (None, None)

    def chain_from(tanh) -> tuple | None:
        """The nine nodes of one tanh-GELU around `tanh`, ending with its output node, and x; None if not one."""
        scaled, inner_name = mul_by(tanh.input[0], _GELU_CONSTANTS["scale"])
        inner = producer.get(inner_name or "")
        if inner is None or inner.op_type != "Add":
            return None
        for x, cubic_name in (inner.input, reversed(inner.input)):
            cubic_term, cube_name = mul_by(cubic_name, _GELU_CONSTANTS["cubic"])
            cube = producer.get(cube_name or "")
            if cube is None or cube.op_type != "Mul" or x not in cube.input:
                continue
            square = producer.get(cube.input[1] if cube.input[0] == x else cube.input[0])
            if square is None or square.op_type != "Mul" or list(square.input) != [x, x]:
                continue
            plus_one = only(tanh.output[0], "Add")
            one_plus = plus_one is not None and split(plus_one, _GELU_CONSTANTS["one"])
            times_x = only(plus_one.output[0], "Mul") if one_plus else None
            half = only(times_x.output[0], "Mul") if times_x is not None and x in times_x.input else None
            if half is None or not split(half, _GELU_CONSTANTS["half"]):
                return None
            return (square, cube, cubic_term, inner, scaled, tanh, plus_one, times_x, half), x
        return None

    fused, doomed, added = 0, set[int](), []
    for tanh in [n for n in graph.node if n.op_type == "Tanh"]:
        found = chain_from(tanh)
        if found is None:
            continue
        chain, x = found
        inside = {o for n in chain[:-1] for o in n.output}
        if inside & graph_outputs or any(u not in chain for o in inside for u in consumers.get(o, [])):
            continue  # an intermediate value is read elsewhere: leave it
        half = chain[-1]
        doomed.update(id(n) for n in chain)
        gelu = onnx.helper.make_node("FastGelu", [x], [half.output[0]], name=f"{tanh.name}_FastGelu",
                                     domain="com.microsoft")  # fmt: skip
        added.append((half, gelu))
        fused += 1
    if not fused:
        return 0
    nodes = []
    for n in graph.node:
        if id(n) not in doomed:
            nodes.append(n)
        for last, new in added:
            if n is last:
                nodes.append(new)  # where the chain ended: every input is defined before it
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_dead(graph)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    onnx.save(model, str(dst))
    return fused


#: The input the step graph's time branch hangs on (`split_branch`).
TIME_INPUT = "timestep"


def split_branch(src: Path, main_dst: Path, branch_dst: Path, input_name: str = TIME_INPUT) -> list[str]:
    """Split graph `src` in two: the nodes that depend on input `input_name` alone (and on constants) as
    `branch_dst` (that input in, the tensors the rest reads out) and the rest as `main_dst` (those tensors as
    inputs instead of `input_name`). Returns their names; [] and nothing written when there is no such branch,
    or when the rest also reads `input_name` itself or a graph output comes from the branch. The branch tensors'
    shapes are ONNX's shape inference's, or where it has none, what the branch gives for a zero input."""
    onnx = _onnx()
    model = onnx.shape_inference.infer_shapes(onnx.load(str(src)))
    graph = model.graph
    if input_name not in {i.name for i in graph.input}:
        return []
    constant = {i.name for i in graph.initializer}
    in_branch = {input_name}
    branch, rest, constant_nodes = [], [], []
    for node in graph.node:  # (in topological order, as ONNX requires)
        inputs = [x for x in node.input if x]
        if all(x in constant for x in inputs):
            constant_nodes.append(node)  # (e.g. Constant: copied into whichever graph reads it)
            constant.update(node.output)
        elif all(x in constant or x in in_branch for x in inputs):
            branch.append(node)
            in_branch.update(node.output)
        else:
            rest.append(node)
    read_by_rest = {x for n in rest for x in n.input} | {o.name for o in graph.output}
    boundary = [t for n in branch for t in n.output if t in read_by_rest]
    outputs_from_branch = {o.name for o in graph.output} & in_branch
    if not branch or not boundary or input_name in read_by_rest or outputs_from_branch:
        return []

    def part(nodes, inputs, outputs, name: str, check: bool = True):
        read = {x for n in nodes for x in n.input}
        for node in reversed(constant_nodes):  # (reversed topological order: a chain of them closes in one pass)
            if any(o in read for o in node.output):
                read.update(node.input)
        consts = [n for n in constant_nodes if any(o in read for o in n.output)]
        sub = onnx.helper.make_graph(
            [*consts, *nodes], name, inputs, outputs, [i for i in graph.initializer if i.name in read]
        )  # fmt: skip
        out = onnx.helper.make_model(sub, opset_imports=model.opset_import, ir_version=model.ir_version)
        if check:
            onnx.checker.check_model(out)
        return out

    time_input = [i for i in graph.input if i.name == input_name]
    other_inputs = [i for i in graph.input if i.name != input_name]
    typed = {v.name: v for v in graph.value_info if v.type.tensor_type.HasField("shape")}
    if any(t not in typed for t in boundary):
        typed = _run_for_shapes(part(branch, time_input, [_untyped(t) for t in boundary], "probe", check=False))
    branch_model = part(branch, time_input, [typed[t] for t in boundary], f"{graph.name}_{input_name}")
    main_model = part(rest, [*other_inputs, *(typed[t] for t in boundary)], list(graph.output), graph.name)
    onnx.save(branch_model, str(branch_dst))
    onnx.save(main_model, str(main_dst))
    return boundary


def _untyped(name: str):
    """A float32 graph output of unknown shape (for `_run_for_shapes`)."""
    onnx = _onnx()
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)


def _run_for_shapes(model) -> dict:
    """Run `model` on ONNX Runtime (CPU) with zero inputs; a typed value info per output."""
    import numpy as np
    import onnxruntime as ort

    onnx = _onnx()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {
        i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32) for i in session.get_inputs()
    }
    values = session.run(None, feeds)
    return {
        o.name: onnx.helper.make_tensor_value_info(o.name, onnx.helper.np_dtype_to_tensor_dtype(v.dtype), list(v.shape))
        for o, v in zip(session.get_outputs(), values, strict=True)
    }


def _drop_dead(graph) -> None:
    """Remove nodes none of whose outputs is read (repeatedly: a chain dies from its end)."""
    while True:
        read = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
        dead = [n for n in graph.node if not any(o and o in read for o in n.output)]
        if not dead:
            return
        for node in dead:
            graph.node.remove(node)


def is_float32(src: Path) -> bool:
    """Whether graph `src` computes in float32: its floating-point inputs and outputs all are (a float16
    bundle's are not; its CPU graphs get no variants)."""
    onnx = _onnx()
    graph = onnx.load(str(src), load_external_data=False).graph
    floating = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16, onnx.TensorProto.DOUBLE}
    types = [v.type.tensor_type.elem_type for v in (*graph.input, *graph.output)]
    types = [t for t in types if t in floating]
    return bool(types) and all(t == onnx.TensorProto.FLOAT for t in types)


def int8_nodes(src: Path, graph_name: str) -> list[str]:
    """The MatMul nodes of graph `src` that the int8 policy quantises (empty: none for this graph)."""
    pattern = INT8_NODES.get(graph_name)
    if pattern is None:
        return []
    onnx = _onnx()
    model = onnx.load(str(src), load_external_data=False)
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and re.match(pattern, n.name)]


def quantize_int8(src: Path, dst: Path, nodes: list[str]) -> None:
    """Dynamic int8 quantisation of `nodes` (MatMuls) of float32 graph `src` into `dst` (ONNX Runtime's
    quantiser writes intermediate files beside `dst`: give it a scratch folder)."""
    onnx = _onnx()
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # its advice and per-tensor notes go to the root logger: not the user's business
    try:
        quantize_dynamic(
            str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, nodes_to_quantize=nodes,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )  # fmt: skip
    finally:
        logging.disable(logging.NOTSET)
