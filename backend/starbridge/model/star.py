"""STAR: the spatiotemporal autoregressive video diffusion transformer of INSPATIO-WORLD, in PyTorch.

A Wan2.1-style diffusion transformer over latent video blocks (docs/architecture.md §6). Module names
follow the published InSpatio-World 1.3B checkpoint (a Wan2.1-T2V-1.3B transformer), so its weights
load without renaming once a leading ``model.`` is stripped.

Per latent pixel the input concatenates [noisy latent | validity mask | latent of the explicit
render] (16 + 4 + 16 = 36 channels in the published layout). Generation is block by block:

1. **context pass** (`forward_context`): the clean latents of the reference video at the block's
   scene times (temporal positions 0..F-1) and the previous block's generated latents (F..2F-1) go
   through the network at timestep 0 with their condition channels zeroed; every layer's rotated
   keys and values land in a fixed-shape cache ``(layers, batch, heads, context_tokens, head_dim)``.
   The very first block has no previous block: `valid` says how many cache tokens are real.
2. **denoising steps** (`forward_step`): the noisy block (temporal positions 2F..3F-1) attends to
   [cache ; its own tokens] and predicts the flow-matching velocity v = noise - x0.

Reference, previous and current frames share spatial positions, so rotary embeddings align
reference and target tokens pixel for pixel. Everything is real-valued (ONNX has no complex type):
rotary embeddings use precomputed cos/sin tables.

Tensor layouts: latents ``(B, C, F, h, w)``; tokens ``(B, N, dim)`` ordered (frame, row, column);
heads ``(B, heads, N, head_dim)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from . import onnx_fusion
from .config import StarConfig

# ---------------------------------------------------------------------------- embeddings


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) timesteps in [0, 1000] -> float64 (B, dim) as [cos | sin] with frequencies 10000^(-i / (dim/2)).

    Computed in float64 as the official Wan code does (`sinusoidal_embedding_1d`): at t ~ 1000 the angles are
    ~1e3 rad, where float32's rounding (~6e-5 rad) is the largest difference left against the official
    model; the caller casts the result to the model's dtype."""
    half = dim // 2
    freqs = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64, device=t.device) / half)
    angles = t.double()[:, None] * freqs[None]
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def rope_axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Head-dimension split (temporal, height, width): d - 4*(d//6), 2*(d//6), 2*(d//6) (44/42/42 for 128)."""
    s = head_dim // 6
    return head_dim - 4 * s, 2 * s, 2 * s


def rope_tables(config: StarConfig, frames: int, t_offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables (N, head_dim // 2) for a token grid of `frames` x rows x columns, temporal
    positions starting at `t_offset`. Slot i of a token rotates the pair (2i, 2i+1) of each head."""
    _, gh, gw = config.grid
    gf = frames // config.patch[0]
    tables = []
    for axis_dim, positions in zip(
        rope_axis_dims(config.head_dim),
        (torch.arange(gf) + t_offset, torch.arange(gh), torch.arange(gw)),
        strict=True,
    ):
        freqs = torch.pow(config.rope_theta, -torch.arange(0, axis_dim, 2, dtype=torch.float64) / axis_dim)
        tables.append(positions.double()[:, None] * freqs[None])  # (positions, axis_dim / 2)
    t_ang, h_ang, w_ang = tables
    angles = torch.cat(
        [
            t_ang[:, None, None, :].expand(gf, gh, gw, -1),
            h_ang[None, :, None, :].expand(gf, gh, gw, -1),
            w_ang[None, None, :, :].expand(gf, gh, gw, -1),
        ],
        dim=-1,
    ).reshape(gf * gh * gw, -1)
    return torch.cos(angles).float(), torch.sin(angles).float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs of x (B, heads, N, head_dim) by per-token angles (N, head_dim // 2)."""
    b, h, n, d = x.shape
    pairs = x.reshape(b, h, n, d // 2, 2)
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return rotated.reshape(b, h, n, d)


# ---------------------------------------------------------------------------- layers


class RMSNorm(nn.Module):
    """RMS norm over the last dimension, computed in float32, with a learned scale."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class Attention(nn.Module):
    """Projections q, k, v, o and RMSNorm over the full width on q and k (checkpoint names)."""

    def __init__(self, dim: int, num_heads: int, eps: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.norm_q = RMSNorm(dim, eps)
        self.norm_k = RMSNorm(dim, eps)


class SelfAttention(Attention):
    """Self-attention over [cached keys/values ; the block's own], 3D rotary positions on q and k."""

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.reshape(b, n, self.num_heads, d // self.num_heads).transpose(1, 2)  # (B, heads, N, hd)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor] | None = None,
        key_bias: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, N, dim) -> (out (B, N, dim), k, v (B, heads, N, hd) of these tokens, rotated).

        `cache` (k, v) each (B, heads, M, hd) is prepended to the keys; `key_bias` (1, 1, 1, keys)
        is added to the attention logits (0 for valid keys, a large negative for padding)."""
        if onnx_fusion.active():  # exporting: the same maths as ONNX Runtime's fused operators
            return onnx_fusion.self_attention(self, x, cos, sin, cache, key_bias)
        q = apply_rope(self._heads(self.norm_q(self.q(x))), cos, sin)
        k = apply_rope(self._heads(self.norm_k(self.k(x))), cos, sin)
        v = self._heads(self.v(x))
        keys, values = k, v
        if cache is not None:
            keys = torch.cat([cache[0], k], dim=2)
            values = torch.cat([cache[1], v], dim=2)
        out = F.scaled_dot_product_attention(q, keys, values, attn_mask=key_bias)  # (B, heads, N, hd)
        b, _, n, _ = out.shape
        return self.o(out.transpose(1, 2).reshape(b, n, -1)), k, v


class CrossAttention(Attention):
    """Attention from video tokens to the (fixed) text embedding; no positions."""

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        if onnx_fusion.active():  # exporting: one fused attention operator
            return onnx_fusion.cross_attention(self, x, context)
        b, n, d = x.shape
        h = self.num_heads
        q = self.norm_q(self.q(x)).reshape(b, n, h, d // h).transpose(1, 2)
        k = self.norm_k(self.k(context)).reshape(b, -1, h, d // h).transpose(1, 2)
        v = self.v(context).reshape(b, -1, h, d // h).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.o(out.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    """adaLN-modulated transformer block: self-attention, optional cross-attention, tanh-GELU FFN."""

    def __init__(self, config: StarConfig) -> None:
        super().__init__()
        dim, eps = config.dim, config.eps
        self.norm1 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.self_attn = SelfAttention(dim, config.num_heads, eps)
        self.norm3: nn.Module | None = None
        self.cross_attn: CrossAttention | None = None
        if config.text_dim:
            self.norm3 = nn.LayerNorm(dim, eps=eps, elementwise_affine=True)
            self.cross_attn = CrossAttention(dim, config.num_heads, eps)
        self.norm2 = nn.LayerNorm(dim, eps=eps, elementwise_affine=False)
        self.ffn = nn.Sequential(
            nn.Linear(dim, config.ffn_dim), nn.GELU(approximate="tanh"), nn.Linear(config.ffn_dim, dim)
        )
        self.modulation = nn.Parameter(torch.randn(1, 6, dim) / dim**0.5)

    def forward(
        self,
        x: torch.Tensor,
        e0: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        text: torch.Tensor | None,
        cache: tuple[torch.Tensor, torch.Tensor] | None,
        key_bias: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, N, dim), e0 (B, 6, dim) -> (x, k, v) with this block's rotated keys and values."""
        shift1, scale1, gate1, shift2, scale2, gate2 = (self.modulation + e0).unbind(dim=1)  # each (B, dim)
        y, k, v = self.self_attn(self.norm1(x) * (1 + scale1[:, None]) + shift1[:, None], cos, sin, cache, key_bias)
        x = x + y * gate1[:, None]
        if self.cross_attn is not None and self.norm3 is not None and text is not None:
            x = x + self.cross_attn(self.norm3(x), text)
        y = self.ffn(self.norm2(x) * (1 + scale2[:, None]) + shift2[:, None])
        return x + y * gate2[:, None], k, v


class Head(nn.Module):
    def __init__(self, config: StarConfig) -> None:
        super().__init__()
        dim = config.dim
        self.norm = nn.LayerNorm(dim, eps=config.eps, elementwise_affine=False)
        self.head = nn.Linear(dim, config.out_dim * math.prod(config.patch))
        self.modulation = nn.Parameter(torch.randn(1, 2, dim) / dim**0.5)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        shift, scale = (self.modulation + e[:, None]).unbind(dim=1)
        return self.head(self.norm(x) * (1 + scale[:, None]) + shift[:, None])


# ---------------------------------------------------------------------------- model


class StarModel(nn.Module):
    """The STAR transformer. See the module docstring for the context pass / denoising step split."""

    def __init__(self, config: StarConfig) -> None:
        super().__init__()
        self.config = config
        dim = config.dim
        self.patch_embedding = nn.Conv3d(config.in_dim, dim, kernel_size=config.patch, stride=config.patch)
        self.text_embedding: nn.Module | None = None
        if config.text_dim:
            self.text_embedding = nn.Sequential(
                nn.Linear(config.text_dim, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim)
            )
        self.time_embedding = nn.Sequential(nn.Linear(config.freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.time_projection = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        self.blocks = nn.ModuleList([Block(config) for _ in range(config.num_layers)])
        self.head = Head(config)
        f = config.block_frames
        for name, offset, frames in (("ctx", 0, 2 * f), ("step", 2 * f, f)):
            cos, sin = rope_tables(config, frames, offset)
            self.register_buffer(f"{name}_cos", cos, persistent=False)
            self.register_buffer(f"{name}_sin", sin, persistent=False)

    # ------------------------------------------------------------------ pieces

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_dim, F, h, w) -> tokens (B, N, dim) in (frame, row, column) order."""
        return self.patch_embedding(x).flatten(2).transpose(1, 2)

    def time(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) timesteps -> e (B, dim) for the head, e0 (B, 6, dim) for the blocks."""
        dtype = self.patch_embedding.weight.dtype
        e = self.time_embedding(sinusoidal_embedding(t, self.config.freq_dim).to(dtype))
        return e, self.time_projection(e).unflatten(1, (6, self.config.dim))

    def unpatchify(self, tokens: torch.Tensor, frames: int) -> torch.Tensor:
        """(B, N, out * pt*ph*pw) -> (B, out, frames, h, w); head channels ordered (pt, ph, pw, c) as in Wan."""
        c = self.config.out_dim
        pt, ph, pw = self.config.patch
        _, gh, gw = self.config.grid
        b = tokens.shape[0]
        u = tokens.reshape(b, frames // pt, gh, gw, pt, ph, pw, c)
        u = u.permute(0, 7, 1, 4, 2, 5, 3, 6)  # (B, c, f, pt, gh, ph, gw, pw)
        return u.reshape(b, c, frames, gh * ph, gw * pw)

    def key_bias(self, valid: torch.Tensor, own_tokens: int) -> torch.Tensor:
        """(1, 1, 1, M + own) attention bias: 0 for the first `valid` cache keys and all own keys,
        a large negative for the padding after them."""
        m = self.config.context_tokens
        weight = self.patch_embedding.weight  # the model's device and dtype, wherever `valid` was made
        dtype, device = weight.dtype, weight.device
        keep = torch.arange(m, device=device) < valid.to(device)
        bias = torch.where(keep, 0.0, torch.finfo(dtype).min / 2).to(dtype)
        own = torch.zeros(own_tokens, device=device, dtype=dtype)
        return torch.cat([bias, own]).reshape(1, 1, 1, -1)

    def text_context(self, text: torch.Tensor | None) -> torch.Tensor | None:
        if self.text_embedding is None:
            return None
        if text is None:
            raise ValueError("this layout has cross-attention: pass a text embedding (B, text_len, text_dim)")
        return self.text_embedding(text)

    # ------------------------------------------------------------------ the two passes

    def forward_context(
        self, latents: torch.Tensor, valid: torch.Tensor, text: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Clean context latents (B, C, 2F, h, w): reference block then previous block; `valid` (int64
        scalar) real context tokens (block_tokens without a previous block, else context_tokens).
        Returns cache_k, cache_v (layers, B, heads, context_tokens, head_dim)."""
        cfg = self.config
        b, c, frames, h, w = latents.shape
        expected = (cfg.latent_channels, 2 * cfg.block_frames, cfg.latent_height, cfg.latent_width)
        assert (c, frames, h, w) == expected, f"context latents {tuple(latents.shape)}, want (B, *{expected})"
        cond = latents.new_zeros(b, cfg.mask_channels + cfg.latent_channels, frames, h, w)
        x = self.embed(torch.cat([latents, cond], dim=1))
        _, e0 = self.time(torch.zeros(b, device=latents.device))
        bias = self.key_bias(valid, 0)  # context tokens attend among themselves, padding masked
        ctx = self.text_context(text)
        keys, values = [], []
        for block in self.blocks:
            x, k, v = block(x, e0, self.ctx_cos, self.ctx_sin, ctx, None, bias)
            keys.append(k)
            values.append(v)
        return torch.stack(keys), torch.stack(values)

    def forward_step(
        self,
        noisy: torch.Tensor,
        cond: torch.Tensor,
        t: torch.Tensor,
        cache_k: torch.Tensor,
        cache_v: torch.Tensor,
        valid: torch.Tensor,
        text: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity (B, C, F, h, w) for noisy latents (B, C, F, h, w) at timesteps t (B,) in [0, 1000].

        `cond` (B, mask_channels + C, F, h, w) is [validity mask | latent of the explicit render]."""
        cfg = self.config
        expected = (cfg.latent_channels, cfg.block_frames, cfg.latent_height, cfg.latent_width)
        assert tuple(noisy.shape[1:]) == expected, f"noisy latents {tuple(noisy.shape)}, want (B, *{expected})"
        x = self.embed(torch.cat([noisy, cond], dim=1))
        e, e0 = self.time(t)
        bias = self.key_bias(valid, x.shape[1])
        ctx = self.text_context(text)
        for i, block in enumerate(self.blocks):
            x, _, _ = block(x, e0, self.step_cos, self.step_sin, ctx, (cache_k[i], cache_v[i]), bias)
        return self.unpatchify(self.head(x, e), cfg.block_frames)
