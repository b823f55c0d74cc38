"""Two CPU-only variants of a bundle's graphs, derived from its portable ONNX graphs (no PyTorch, no weights
re-read: any bundle can be given them, the shipped one included). model/onnx_optimize.py writes them.

* ``step_full``: the step graph for calls whose whole cache is valid (every block after the first): the
  attention bias input of each fused MultiHeadAttention node is dropped (it is all zeros then), and with it
  the nodes that built it from `valid` and the `valid` input itself. ONNX Runtime's CPU attention kernel then
  skips the bias add. Measured on the shipped star-tiny (other processes paused, alternating rounds in one
  process): a step call 12.4 -> 12.0 ms (int8: 12.0 -> 11.5); whole blocks 1.04x the frames/s with step_full,
  1.09x with step_full and int8 (21.4 -> 23.3 fps).
* int8: dynamic quantisation (ONNX Runtime's quantize_dynamic: int8 weights per output channel, activations
  quantised per call) of the MatMul nodes that `INT8_NODES` names per graph. Which ones is a measured choice:
  the quality benchmark (`bench/bench_quality.py --samples 4`, 4 held-out worlds, star-tiny) with every
  MatMul of step + context int8 lost 0.53 dB in disoccluded pixels and 0.30 dB overall; the step graph's
  transformer blocks alone, or the feed-forward layers of both graphs, lost nothing (+0.03 / -0.01 dB, noise);
  the context graph's attention projections are what cost (its keys and values are reused by every step).
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
