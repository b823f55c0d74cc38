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

from .autoencoder import TinyAutoencoder
from .export import DecoderGraph, EncoderGraph
from .star import StarModel


class TorchEngine:
    """BlockEngine on PyTorch (CPU or CUDA). `compile=True` wraps the step in torch.compile."""

    def __init__(
        self,
        model: StarModel,
        autoencoder: TinyAutoencoder,
        *,
        device: str = "cpu",
        compile: bool = False,
        text: np.ndarray | None = None,
    ) -> None:
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.float_type = np.float32
        self._encoder = EncoderGraph(autoencoder.eval().to(self.device))
        self._decoder = DecoderGraph(autoencoder)
        cfg = model.config
        if cfg.text_dim and text is None:
            text = np.zeros((1, cfg.text_len, cfg.text_dim), np.float32)
        self._text = torch.from_numpy(text).to(self.device) if text is not None else None
        self._step_fn: Callable[..., torch.Tensor] = model.forward_step
        if compile:
            self._step_fn = torch.compile(model.forward_step, dynamic=False)
        self._cache: tuple[torch.Tensor, torch.Tensor] | None = None

    def _t(self, a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> np.ndarray:
        return self._encoder(self._t(frames)).cpu().numpy()

    @torch.no_grad()
    def decode(self, latents: np.ndarray) -> np.ndarray:
        return self._decoder(self._t(latents.astype(np.float32))).cpu().numpy()

    @torch.no_grad()
    def context(self, latents: np.ndarray, valid: int) -> None:
        self._cache = self.model.forward_context(self._t(latents.astype(np.float32)), torch.tensor(valid), self._text)

    @torch.no_grad()
    def step(self, x: np.ndarray, cond: np.ndarray, timestep: float, valid: int) -> np.ndarray:
        assert self._cache is not None, "context() first"
        t = torch.tensor([timestep], dtype=torch.float32, device=self.device)
        cond_t = self._t(cond.astype(np.float32))
        v = self._step_fn(self._t(x), cond_t, t, *self._cache, torch.tensor(valid), self._text)
        return v.cpu().numpy()
