"""Weights back out of a bundle: the PyTorch modules whose export a bundle's graphs are.

    model, autoencoder = load_bundle_modules(bundle_dir)

For re-exporting a bundle when the graph format changes (fused operators, a new opset) while its weights
must stay the trained ones. Named initializers map straight back (``model.<param>`` in the context and
step graphs, ``ae.<param>`` in the encoder and decoder). The exporter stores a Linear weight that a
MatMul reads transposed under an anonymous name (``onnx::MatMul_123``); those are matched by position:
an export of freshly initialised modules of the same preset, traced the same way, holds its anonymous
weights in the same order, and their values say which parameter each one is. Every parameter must be
found exactly once with its shape, or RecoveryError says which ones are not (the exporter stores tensors
with identical values once, as with untrained all-ones norm scales: such a bundle cannot be read back).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import InvalidArgument
from ..runtime.bundle import read_model
from .autoencoder import TinyAutoencoder
from .presets import Preset
from .star import StarModel

#: Prefixes the export wrappers (model/export.py) put before parameter names.
STAR_PREFIX, AE_PREFIX = "model.", "ae."


class RecoveryError(InvalidArgument):
    """A bundle's graphs do not hold the parameters of its preset."""


def _initializers(path: Path) -> list[tuple[str, np.ndarray]]:
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path), load_external_data=True)
    return [(t.name, numpy_helper.to_array(t)) for t in proto.graph.initializer]


def _anonymous(inits: list[tuple[str, np.ndarray]]) -> list[tuple[str, np.ndarray]]:
    return [(n, a) for n, a in inits if n.startswith("onnx::") and a.ndim == 2]


def _anonymous_names(preset: Preset, fused: bool) -> list[str]:
    """Parameter names of the step graph's anonymous (transposed) weights, in initializer order."""
    from .export import IO_NAMES, StepGraph, _export_graph, example_inputs

    torch.manual_seed(0)
    model = StarModel(preset.star).eval()
    params = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    inputs = example_inputs(preset)["step"]
    if preset.star.text_dim:
        inputs = (*inputs[:6], torch.zeros(1, preset.star.text_len, preset.star.text_dim))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "step.onnx"
        _export_graph(StepGraph(model), inputs, IO_NAMES["step"], path, fused=fused)
        names = []
        for _, value in _anonymous(_initializers(path)):
            hits = [k for k, p in params.items() if p.shape == value.T.shape and np.array_equal(p, value.T)]
            if len(hits) != 1:
                raise RecoveryError(f"reference export: {len(hits)} parameters match an anonymous weight")
            names.append(hits[0])
    return names


def load_bundle_modules(bundle: Path | str) -> tuple[StarModel, TinyAutoencoder, Preset]:
    """(StarModel, TinyAutoencoder, preset) holding exactly the weights of a float32 bundle's graphs."""
    info = read_model(bundle)
    if info.doc.get("conventions", {}).get("autoencoder", "tiny") != "tiny":
        raise RecoveryError(f"{info.path}: recovering weights reads the tiny autoencoder's graphs only")
    if info.dtype != "float32":
        raise RecoveryError(f"{info.path}: recovering weights needs a float32 bundle, this one is {info.dtype}")
    preset = Preset.from_json(info.doc["preset"])
    model, ae = StarModel(preset.star), TinyAutoencoder(preset.autoencoder)
    star_state: dict[str, torch.Tensor] = {}
    step = _initializers(info.graph("step"))
    for name, value in step:
        if name.startswith(STAR_PREFIX):
            star_state[name[len(STAR_PREFIX) :]] = torch.from_numpy(value.copy())
    anonymous = _anonymous(step)
    names = _anonymous_names(preset, bool(info.doc.get("fused_attention", False)))
    if len(names) != len(anonymous):
        raise RecoveryError(f"{info.graph('step')}: {len(anonymous)} anonymous weights, an export of "
                            f"{preset.name} has {len(names)}")  # fmt: skip
    for name, (_, value) in zip(names, anonymous, strict=True):
        star_state[name] = torch.from_numpy(value.T.copy())
    ae_state = {}
    for graph in ("encoder", "decoder"):
        for name, value in _initializers(info.graph(graph)):
            if name.startswith(AE_PREFIX):
                ae_state[name[len(AE_PREFIX) :]] = torch.from_numpy(value.copy())
    for module, state, what in ((model, star_state, "transformer"), (ae, ae_state, "autoencoder")):
        expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        missing = sorted(set(expected) - set(state))
        wrong = sorted(k for k in set(expected) & set(state) if tuple(state[k].shape) != expected[k])
        if missing or wrong or set(state) - set(expected):
            raise RecoveryError(f"{info.path}: the {what} weights do not fit preset {preset.name}: missing "
                                f"{missing[:8]}, mis-shaped {wrong[:8]}, unexpected "
                                f"{sorted(set(state) - set(expected))[:8]}")  # fmt: skip
        module.load_state_dict(state, strict=True)
    return model.eval(), ae.eval(), preset
