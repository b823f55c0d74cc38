"""The same block loop in PyTorch: a `BlockEngine` backed by the PyTorch modules.

`runtime.star.StarSession(generator, scene, engine=TorchEngine(model, autoencoder))` generates a block
exactly as the ONNX Runtime engine does (same renders, same reference latents, same noise), so the
parity test compares whole blocks and the model benchmark times PyTorch eager / torch.compile against
ONNX Runtime on the same machine.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .autoencoder import TinyAutoencoder
from .export import DecoderGraph, EncoderGraph
from .star import StarModel
from .taehv import StreamDecoderGraph, StreamEncoderGraph, Taehv


class TorchEngine:
    """BlockEngine on PyTorch (CPU or CUDA). `compile=True` wraps the step in torch.compile.

    Everything it makes lives on `device`. A TAEHV autoencoder streams: its encoder and decoder memory is
    carried from block to block (as the ONNX engine does) until `reset()`."""

    def __init__(
        self,
        model: StarModel,
        autoencoder: TinyAutoencoder | Taehv,
        *,
        device: str = "cpu",
        compile: bool = False,
        text: np.ndarray | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.float_type = np.float32  # what it returns, whatever the model's own precision
        #: the model's precision (float16 / bfloat16 on a GPU): every floating input is cast to it
        self.dtype = next(model.parameters()).dtype
        autoencoder = autoencoder.eval().to(self.device)
        self._streaming = isinstance(autoencoder, Taehv)
        if isinstance(autoencoder, Taehv):
            self._encoder: nn.Module = StreamEncoderGraph(autoencoder)
            self._decoder: nn.Module = StreamDecoderGraph(autoencoder)
        else:
            self._encoder, self._decoder = EncoderGraph(autoencoder), DecoderGraph(autoencoder)
        self._memory: dict[str, tuple[torch.Tensor, ...]] = {}
        cfg = model.config
        if cfg.text_dim and text is None:
            text = np.zeros((1, cfg.text_len, cfg.text_dim), np.float32)
        self._text = self._t(text) if text is not None else None
        self._step_fn: Callable[..., torch.Tensor] = model.forward_step
        if compile:
            self._step_fn = torch.compile(model.forward_step, dynamic=False)
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def _t(self, a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a)).to(self.device)
        return t.to(self.dtype) if t.is_floating_point() else t

    def _run_ae(self, part: str, graph: nn.Module, x: torch.Tensor) -> np.ndarray:
        if x.is_floating_point():  # the autoencoder's own precision, which may differ from the model's
            x = x.to(next(graph.parameters()).dtype)
        if not self._streaming:
            return graph(x).float().cpu().numpy()
        ae = graph.ae
        assert isinstance(ae, Taehv)
        out, *memory = graph(x, *self._memory.get(part, self._zero_memory(part, ae, x)))
        self._memory[part] = tuple(memory)
        return out.float().cpu().numpy()

    def _zero_memory(self, part: str, ae: Taehv, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if part == "encoder":
            height, width = x.shape[1:3]
        else:
            height, width = 8 * x.shape[-2], 8 * x.shape[-1]
        dtype = next(ae.parameters()).dtype
        return tuple(m.to(self.device, dtype) for m in ae.zero_memory(part, height, width))

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> np.ndarray:
        return self._run_ae("encoder", self._encoder, self._t(frames))

    @torch.no_grad()
    def decode(self, latents: np.ndarray) -> np.ndarray:
        return self._run_ae("decoder", self._decoder, self._t(latents.astype(np.float32)))

    def reset(self) -> None:
        """A new stream: the autoencoder memory starts from zeros again."""
        self._memory.clear()

    @torch.no_grad()
    def context(self, latents: np.ndarray, valid: int) -> None:
        valid_t = torch.tensor(valid, device=self.device)
        self._cache = self.model.forward_context(self._t(latents.astype(np.float32)), valid_t, self._text)

    @torch.no_grad()
    def step(self, x: np.ndarray, cond: np.ndarray, timestep: float, valid: int) -> np.ndarray:
        assert self._cache is not None, "context() first"
        t = torch.tensor([timestep], dtype=torch.float32, device=self.device)
        cond_t = self._t(cond.astype(np.float32))
        v = self._step_fn(self._t(x), cond_t, t, *self._cache, torch.tensor(valid, device=self.device), self._text)
        return v.float().cpu().numpy()
