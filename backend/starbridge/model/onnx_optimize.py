"""ONNX Runtime's graph optimisation done once, at export, and saved with the bundle for the CPU provider.

    entry = optimize_for_cpu(bundle_dir, ["encoder", "decoder", "context", "step"])
    # -> {"provider": "CPUExecutionProvider", "level": "extended", "onnxruntime": "1.31.1",
    #     "graphs": {"step": "step.cpu.onnx", "step_full": "step_full.cpu.onnx", ...},
    #     "int8": {"step": "step.cpu-int8.onnx", "step_full": ..., "context": ...}, "int8_nodes": {...}}
    #                                                                 (model.json "cpu_graphs")

Each `<name>.onnx` is loaded on the CPU provider at ORT_ENABLE_EXTENDED and the optimised graph written
beside it as `<name>.cpu.onnx` (constant folding, RMSNorm/LayerNorm/GELU fusions, MatMul+Add -> Gemm),
so a CPU session starts from it instead of redoing that work (measured: star-tiny's step session opens in
0.20 s instead of 0.42 s, context 0.12 instead of 0.22). Why EXTENDED and not ALL: ALL adds layout
transforms for the CPU it runs on (NCHWc blocking for its vector width), which ONNX Runtime warns make a
saved graph specific to that machine; the runtime still applies them when it loads the saved graph.
Why only for the CPU: fusions are made for the provider the nodes are assigned to, so an optimised graph is
provider-specific; CUDA sessions keep loading the portable `<name>.onnx` (runtime/providers.py
`optimised_graph`). Graphs with external data (past 2 GB) are left alone: they are GPU-sized models.

In float32 graphs the tanh-GELUs are first fused into ONNX Runtime's FastGelu (model/onnx_cpu_variants.py).
Beside them, for float32 graphs: `step_full.cpu.onnx`, the step graph for calls whose whole cache is valid (no
attention bias), its timestep branch split off as `step_time.cpu.onnx`, and `<name>.cpu-int8.onnx`, the graphs
with int8 weights where the quality benchmark measured no loss. The runtime uses the int8 copies on the CPU unless
told not to (`serve --no-int8`): runtime/star.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from ..runtime.bundle import FULL_STEP, STEP_TIME
from .onnx_cpu_variants import full_step_graph, fuse_tanh_gelu, int8_nodes, is_float32, quantize_int8, split_branch

CPU = "CPUExecutionProvider"
SUFFIX = ".cpu.onnx"
INT8_SUFFIX = ".cpu-int8.onnx"


def _optimise(src: Path, dst: Path) -> None:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    opts.optimized_model_filepath = str(dst)
    opts.log_severity_level = 3
    ort.InferenceSession(str(src), sess_options=opts, providers=[CPU])


def optimize_for_cpu(folder: Path, graphs: Iterable[str], int8: bool = True) -> dict | None:
    """Write `<name>.cpu.onnx` for each inline graph in `folder` (and, for float32 graphs, the step_full
    and int8 variants: `int8` False skips the latter); the model.json entry, or None if none."""
    import onnxruntime as ort

    folder = Path(folder)
    written: dict[str, str] = {}
    quantised: dict[str, str] = {}
    policy: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="starbridge-cpu-graphs-") as scratch:
        sources: dict[str, Path] = {}
        for name in graphs:
            src = folder / f"{name}.onnx"
            if Path(f"{src}.data").exists():
                continue
            sources[name] = src
            full = Path(scratch) / f"{FULL_STEP}.whole.onnx"
            if name == "step" and is_float32(src) and full_step_graph(src, full):
                sources[FULL_STEP] = full
                main, branch = Path(scratch) / f"{FULL_STEP}.onnx", Path(scratch) / f"{STEP_TIME}.onnx"
                if split_branch(full, main, branch):
                    sources[FULL_STEP], sources[STEP_TIME] = main, branch
        for name, src in list(sources.items()):
            gelu = Path(scratch) / f"{name}.gelu.onnx"
            if is_float32(src) and fuse_tanh_gelu(src, gelu):
                sources[name] = gelu
        for name, src in sources.items():
            _optimise(src, folder / f"{name}{SUFFIX}")
            written[name] = f"{name}{SUFFIX}"
            nodes = int8_nodes(src, name) if int8 and is_float32(src) else []
            if nodes:
                tmp = Path(scratch) / f"{name}.int8.onnx"
                quantize_int8(src, tmp, nodes)
                _optimise(tmp, folder / f"{name}{INT8_SUFFIX}")
                quantised[name] = f"{name}{INT8_SUFFIX}"
                policy[name] = nodes
    if not written:
        return None
    entry: dict = {"provider": CPU, "level": "extended", "onnxruntime": ort.__version__, "graphs": written}
    if quantised:
        entry["int8"] = quantised
        entry["int8_nodes"] = {name: len(nodes) for name, nodes in policy.items()}
    return entry


def optimize_bundle(path: Path | str, int8: bool = True) -> dict | None:
    """(Re)write the CPU graphs of the bundle at `path` (its portable graphs untouched), e.g. to give a bundle
    exported by an older StarBridge the step_full and int8 variants. Atomic: the bundle is assembled in a
    sibling folder and swapped in; a failure leaves it as it was. Returns the new "cpu_graphs" entry."""
    import json
    import os
    import shutil

    from ..errors import InvalidArgument
    from ..runtime.bundle import GRAPHS, MODEL_JSON, read_model

    info = read_model(path)
    path = info.path
    if any(Path(f"{info.graph(g)}.data").exists() for g in GRAPHS):
        raise InvalidArgument(f"{path}: graphs with external data (GPU-sized) get no CPU copies", field="model")
    old = info.doc.get("cpu_graphs") or {}
    derived = {*old.get("graphs", {}).values(), *old.get("int8", {}).values()}
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        tmp.chmod(0o755)
        for item in path.iterdir():
            if item.name not in derived and item.name != MODEL_JSON:
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        doc = dict(info.doc)
        entry = optimize_for_cpu(tmp, GRAPHS, int8)
        doc.pop("cpu_graphs", None)
        if entry:
            doc["cpu_graphs"] = entry
        (tmp / MODEL_JSON).write_text(json.dumps(doc, indent=2) + "\n")
        read_model(tmp)  # what is swapped in reads as a bundle
        trash = path.with_name(f".{path.name}.trash-{os.getpid()}")
        os.replace(path, trash)
        os.replace(tmp, path)
        shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return entry
