"""Export a STAR model + tiny autoencoder to a model bundle of four ONNX graphs (runtime/bundle.py).

    bundle = export_bundle(preset, model, autoencoder, out_dir, dtype="float32", weights="random")

The graphs wrap the PyTorch modules so the runtime does no tensor reshuffling of its own: the encoder
takes uint8 RGB frames as the renderer makes them, the decoder returns uint8 RGBA frames as the frame
ring wants them, and the context/step graphs take and return the fixed-shape KV cache. Graphs are
written to a temporary folder and renamed into place; graphs over 2 GB keep their weights as external
data beside them.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..errors import InvalidArgument
from ..runtime.bundle import FORMAT_VERSION, MODEL_JSON
from ..runtime.condition import MASK_POOL
from ..runtime.sampler import FlowSchedule
from .autoencoder import TinyAutoencoder
from .onnx_fusion import fused_export
from .onnx_optimize import optimize_for_cpu
from .presets import Preset
from .star import StarModel
from .taehv import STARTUP_FRAMES, Taehv, build_autoencoder, stream_graphs

log = logging.getLogger(__name__)

OPSET = 18
#: Protobuf's limit on one ONNX file; past it weights go to external data.
MAX_INLINE_BYTES = 2**31 - 1


class EncoderGraph(nn.Module):
    """uint8 (fpb, H, W, 3) -> (1, C, F, h, w)."""

    def __init__(self, ae: TinyAutoencoder) -> None:
        super().__init__()
        self.ae = ae

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 255.0
        dtype = next(self.ae.parameters()).dtype
        return self.ae.encode(x.to(dtype)).permute(1, 0, 2, 3).unsqueeze(0)


class DecoderGraph(nn.Module):
    """(1, C, F, h, w) -> uint8 (fpb, H, W, 4), alpha 255."""

    def __init__(self, ae: TinyAutoencoder) -> None:
        super().__init__()
        self.ae = ae

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        rgb = self.ae.decode(latents[0].permute(1, 0, 2, 3)).float()  # (fpb, 3, H, W) in [0, 1]
        rgb = torch.round(rgb * 255.0).permute(0, 2, 3, 1)
        alpha = torch.full_like(rgb[..., :1], 255.0)
        return torch.cat([rgb, alpha], dim=-1).to(torch.uint8)


class ContextGraph(nn.Module):
    def __init__(self, model: StarModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, latents: torch.Tensor, valid: torch.Tensor, *text: torch.Tensor):
        return self.model.forward_context(latents, valid, text[0] if text else None)


class StepGraph(nn.Module):
    def __init__(self, model: StarModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, noisy, cond, timestep, cache_k, cache_v, valid, *text: torch.Tensor):
        return self.model.forward_step(noisy, cond, timestep, cache_k, cache_v, valid, text[0] if text else None)


def example_inputs(
    preset: Preset, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> dict[str, tuple[torch.Tensor, ...]]:
    """Inputs of each graph with the right shapes (random values), keyed by graph name, on `device`
    (default CPU; a GPU export traces with the inputs on the model's device)."""
    if device is not None:
        cpu = example_inputs(preset, dtype)
        return {name: tuple(t.to(device) for t in ts) for name, ts in cpu.items()}
    s = preset.star
    c, f, h, w = s.latent_channels, s.block_frames, s.latent_height, s.latent_width
    fpb = preset.frames_per_block
    cache = (s.num_layers, 1, s.num_heads, s.context_tokens, s.head_dim)
    text = (torch.randn(1, s.text_len, s.text_dim, dtype=dtype),) if s.text_dim else ()
    gen = torch.Generator().manual_seed(0)
    return {
        "encoder": (torch.randint(0, 256, (fpb, preset.height, preset.width, 3), dtype=torch.uint8, generator=gen),),
        "decoder": (torch.randn(1, c, f, h, w, generator=gen).to(dtype),),
        "context": (torch.randn(1, c, 2 * f, h, w, generator=gen).to(dtype), torch.tensor(s.block_tokens), *text),
        "step": (
            torch.randn(1, c, f, h, w, generator=gen).to(dtype),
            torch.randn(1, s.mask_channels + c, f, h, w, generator=gen).to(dtype),
            torch.tensor([937.5], dtype=dtype),
            torch.randn(*cache, generator=gen).to(dtype),
            torch.randn(*cache, generator=gen).to(dtype),
            torch.tensor(s.context_tokens),
            *text,
        ),
    }


IO_NAMES = {
    "encoder": (["frames"], ["latents"]),
    "decoder": (["latents"], ["frames"]),
    "context": (["latents", "valid", "text"], ["cache_k", "cache_v"]),
    "step": (["noisy", "cond", "timestep", "cache_k", "cache_v", "valid", "text"], ["velocity"]),
}


def _export_graph(
    module: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    names,
    path: Path,
    external_over: int = MAX_INLINE_BYTES // 2,
    fused: bool = False,
    fused_attention: bool = True,
) -> None:
    """Export one graph; weights past `external_over` bytes go to `<graph>.onnx.data` beside it. `fused`:
    rotary embeddings and (with `fused_attention`) self-attention as ONNX Runtime's fused operators
    (model/onnx_fusion.py)."""
    in_names, out_names = names
    big = sum(p.numel() * p.element_size() for p in module.parameters()) > external_over
    # TorchScript's constant folding fails on a module traced on a GPU (it folds the CUDA weights with constants
    # the trace made on the CPU: "found at least two devices", measured on an H200); ONNX Runtime folds the same
    # constants itself when it loads the graph
    on_gpu = any(p.device.type != "cpu" for p in module.parameters())
    fusion = fused_export(fused_attention) if fused else contextlib.nullcontext()
    with warnings.catch_warnings(), torch.no_grad(), fusion:
        warnings.simplefilter("ignore")  # the TorchScript exporter's tracer warnings are about Python control flow
        torch.onnx.export(
            module,
            inputs,
            str(path),
            input_names=in_names[: len(inputs)],
            output_names=out_names,
            opset_version=OPSET,
            do_constant_folding=not on_gpu,
            dynamo=False,
        )
    if big:  # keep the weights beside the graph (protobuf files stop at 2 GB)
        import onnx

        proto = onnx.load(str(path))
        onnx.save_model(proto, str(path), save_as_external_data=True, location=path.name + ".data",
                        convert_attribute=True)  # fmt: skip


def model_json(
    preset: Preset,
    dtype: str,
    weights: str,
    has_text: bool,
    composite_visible: bool = False,
    conventions: dict | None = None,
) -> dict:
    s = preset.star
    schedule = FlowSchedule(preset.steps, preset.shift)
    return {
        "format_version": FORMAT_VERSION,
        "preset": preset.to_json(),
        "dtype": dtype,
        "frames_per_block": preset.frames_per_block,
        "latent": {
            "channels": s.latent_channels,
            "block_frames": s.block_frames,
            "height": s.latent_height,
            "width": s.latent_width,
            "mask_channels": s.mask_channels,
            "temporal_stride": preset.autoencoder.temporal_stride,
            "block_tokens": s.block_tokens,
            "context_tokens": s.context_tokens,
            "layout": "(1, C, F, h, w); context = [reference block | previous block] along F",
        },
        "cache": {"shape": [s.num_layers, 1, s.num_heads, s.context_tokens, s.head_dim]},
        "schedule": {
            "steps": list(schedule.steps),
            "shift": schedule.shift,
            "sigmas": list(schedule.sigmas),
            "timesteps": list(schedule.timesteps),
        },
        "graphs": {name: f"{name}.onnx" for name in IO_NAMES},
        "text": "text.npy" if has_text else None,
        "weights": weights,
        # Serve the explicit render's valid pixels and the model's output in the holes (runtime.star).
        "composite_visible": composite_visible,
        # How the condition is made and how the autoencoder streams (runtime/bundle.py).
        "conventions": conventions or {"mask": MASK_POOL, "autoencoder": "tiny", "startup_frames": 0},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "starbridge_version": __version__,
    }


def export_bundle(
    preset: Preset,
    model: StarModel,
    autoencoder: TinyAutoencoder | Taehv,
    out_dir: Path,
    *,
    dtype: str = "float32",
    weights: str = "random",
    text_embedding: np.ndarray | None = None,
    overwrite: bool = False,
    progress=None,
    external_over: int = MAX_INLINE_BYTES // 2,
    composite_visible: bool = False,
    mask_convention: str = MASK_POOL,
    fused: bool | None = None,
    fused_context: bool | None = None,
) -> Path:
    """Write a bundle to `out_dir` (atomically: temp folder, then rename). Returns the path.

    Graphs whose weights pass `external_over` bytes keep them in external data files beside them. `fused`
    (default: float32 bundles) exports attention and rotary embeddings as ONNX Runtime's fused contrib
    operators; float16 bundles keep the plain graph by default because the CPU provider's fused attention
    is float32 only (pass fused=True for a CUDA-only float16 bundle). `fused_context`: the context graph's
    own self-attention fused too (default: only in a fused float16 bundle, which is CUDA's alone: there the
    plain graph materialises the context's masked 2N x 2N attention, where the CPU ran the fused operator 13%
    slower; cross-attention and rotary embeddings fuse wherever `fused` does). A TAEHV
    autoencoder (taehv.py) exports as streaming graphs: its memory is extra inputs and outputs."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise InvalidArgument(f"{out_dir} exists; pass --overwrite to replace it", field="out")
    torch_dtype = {"float32": torch.float32, "float16": torch.float16}[dtype]
    fused = dtype == "float32" if fused is None else fused
    fused_context = fused and dtype != "float32" if fused_context is None else fused_context and fused
    model = model.eval().to(torch_dtype)
    autoencoder = autoencoder.eval().to(torch_dtype)
    device = next(model.parameters()).device
    inputs = example_inputs(preset, torch_dtype, device)
    s = preset.star
    if s.text_dim and text_embedding is None:
        text_embedding = np.zeros((1, s.text_len, s.text_dim), np.float32)  # an empty prompt's stand-in
    if text_embedding is not None:
        text = torch.from_numpy(text_embedding).to(device, torch_dtype)
        inputs["context"] = (*inputs["context"][:2], text)
        inputs["step"] = (*inputs["step"][:6], text)
    modules: dict[str, nn.Module] = {"context": ContextGraph(model), "step": StepGraph(model)}
    if isinstance(autoencoder, TinyAutoencoder):
        modules.update(encoder=EncoderGraph(autoencoder), decoder=DecoderGraph(autoencoder))
    io_names = dict(IO_NAMES)
    conventions = {"mask": mask_convention, "autoencoder": "tiny", "startup_frames": 0}
    if isinstance(autoencoder, Taehv):
        streams = stream_graphs(autoencoder, preset.height, preset.width, inputs["encoder"][0], inputs["decoder"][0])
        for name, (module, graph_inputs, names) in streams.items():
            modules[name], inputs[name], io_names[name] = module, graph_inputs, names
        conventions.update(autoencoder="taehv", startup_frames=STARTUP_FRAMES)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a bundle is shared read-only data
    try:
        for i, (name, module) in enumerate(modules.items()):
            if progress:
                progress("export", i, len(modules))
            # The context graph keeps plain self-attention unless `fused_context`: its 2N x 2N masked attention
            # ran 13% slower as the fused operator on the CPU (23.6 vs 20.0 ms, star-tiny, one thread); its
            # rotary embeddings fuse.
            _export_graph(module, inputs[name], io_names[name], tmp / f"{name}.onnx", external_over, fused,
                          fused_attention=name != "context" or fused_context)  # fmt: skip
        if text_embedding is not None:
            np.save(tmp / "text.npy", text_embedding.astype(np.float32))
        doc = model_json(preset, dtype, weights, text_embedding is not None, composite_visible, conventions)
        doc["fused_attention"] = fused  # com.microsoft RotaryEmbedding (+ MultiHeadAttention in step)
        doc["fused_context_attention"] = fused_context  # ...and in the context graph's own self-attention
        cpu_graphs = optimize_for_cpu(tmp, modules)  # <name>.cpu.onnx: graph optimisation done once (CPU only)
        if cpu_graphs:
            doc["cpu_graphs"] = cpu_graphs
        (tmp / MODEL_JSON).write_text(json.dumps(doc, indent=2) + "\n")
        if out_dir.exists():
            trash = out_dir.with_name(f".{out_dir.name}.trash-{os.getpid()}")
            os.replace(out_dir, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if progress:
        progress("export", len(modules), len(modules))
    log.info("exported %s (%s, %s weights) to %s", preset.name, dtype, weights, out_dir)
    return out_dir


def build_random(preset: Preset, seed: int = 0) -> tuple[StarModel, TinyAutoencoder | Taehv]:
    """Freshly initialised modules of a preset (for speed benchmarks and tests)."""
    torch.manual_seed(seed)
    return StarModel(preset.star), build_autoencoder(preset.autoencoder)
