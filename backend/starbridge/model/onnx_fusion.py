"""Fused attention and rotary embeddings in exported graphs: ONNX Runtime's contrib operators.

    with fused_export():            # model/export.py wraps torch.onnx.export in this
        torch.onnx.export(...)      # SelfAttention / CrossAttention now export as fused nodes

Traced with the TorchScript exporter, `F.scaled_dot_product_attention` and our pairwise rotary embedding
unroll into ~40 small nodes per layer (reshapes, transposes, splits, concats, element-wise products), and
on a model as small as star-tiny those, not the arithmetic, set the speed. While `fused_export()` is
active (and only while exporting: training, eager and torch.compile never see it), the attention modules
of model/star.py call the functions below, which compute exactly what the plain code computes in PyTorch
(so tracing sees the right values and shapes) and export as single ONNX Runtime operators
(com.microsoft domain, kernels on the CPU and CUDA providers):

* ``RotaryEmbedding`` (interleaved=1: pair (2i, 2i+1) rotates by angle i, our convention) on the
  (B, N, heads * head_dim) projections, `num_heads` set, with our precomputed cos/sin tables as its cache
  and positions 0..N-1;
* ``MultiHeadAttention`` with the (B, N, dim) query/key/value, the additive key bias expanded to
  (1, 1, N, keys), the cache as ``past_key``/``past_value`` (the step graph) and the rotated keys/values
  of these tokens read back from ``present_key``/``present_value``; in the context graph (no cache) a
  one-output node, the keys and values taken from the projections. Export.py fuses the context graph's
  self-attention only in a CUDA bundle (`fused_export(attention=False)` elsewhere: on the CPU the fused
  kernel was slower than the plain operators on its masked 2N x 2N attention; on a GPU the plain graph
  materialises that attention); cross-attention (no mask) always.

Why the contrib operators and not ONNX's opset-23 Attention/RotaryEmbedding: on ONNX Runtime 1.31's CPU
provider the two attention kernels take the same time on our shapes (measured: 2.9 vs 3.3 ms for one
star-tiny layer, one thread), the TorchScript exporter stops at opset 20, and the contrib
MultiHeadAttention has float32 CPU and float16 CUDA kernels with past/present and an additive bias.
The contrib CPU attention kernel is float32 only, so float16 bundles keep the plain graph (see export.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F  # noqa: N812

MS_DOMAIN = "com.microsoft"

#: Set by `fused_export()`. A plain module flag (torch.onnx.export is process-global anyway), which
#: torch.compile reads as a constant False without a graph break.
_ON = False
#: Whether self-attention exports as MultiHeadAttention (else only its rotary embeddings are fused).
_ATTENTION = True


@contextlib.contextmanager
def fused_export(attention: bool = True) -> Iterator[None]:
    """Within this block, exporting attention modules emit the fused contrib operators (`attention`
    False: rotary embeddings only, self-attention as plain ONNX operators)."""
    global _ON, _ATTENTION
    before = _ON, _ATTENTION
    _ON, _ATTENTION = True, attention
    try:
        yield
    finally:
        _ON, _ATTENTION = before


def active() -> bool:
    """True while a fused export traces (inside `fused_export()` and `torch.onnx.export`)."""
    return _ON and torch.onnx.is_in_onnx_export()


def _optional(g):
    """An absent optional input (an empty name in the ONNX node)."""
    from torch.onnx import symbolic_helper

    return symbolic_helper._optional_input_placeholder_tensor(g)


# ---------------------------------------------------------------------------- reference maths


def rotate_pairs(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, N, heads * hd) with each head's pairs (2i, 2i+1) rotated by per-token angles (N, hd // 2)."""
    b, n, d = x.shape
    pairs = x.reshape(b, n, num_heads, d // num_heads // 2, 2)
    even, odd = pairs[..., 0], pairs[..., 1]
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    return torch.stack([even * c - odd * s, even * s + odd * c], dim=-1).reshape(b, n, d)


def _heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    b, n, d = x.shape
    return x.reshape(b, n, num_heads, d // num_heads).transpose(1, 2)


# ---------------------------------------------------------------------------- exported operators


class _Rotary(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, positions, cos, sin, num_heads: int):  # noqa: ARG004 - positions: 0..N-1
        return rotate_pairs(x, cos, sin, num_heads)

    @staticmethod
    def symbolic(g, x, positions, cos, sin, num_heads: int):
        out = g.op(f"{MS_DOMAIN}::RotaryEmbedding", x, positions, cos, sin, interleaved_i=1, num_heads_i=num_heads)
        out.setType(x.type())
        return out


class _Attention(torch.autograd.Function):
    """(q, k, v) (B, N, dim), bias (1, 1, N, keys), optional past (B, heads, M, hd) ->
    out (B, N, dim), present k, v (B, heads, M + N, hd)."""

    @staticmethod
    def forward(ctx, q, k, v, bias, past_k, past_v, num_heads: int):
        keys, values = _heads(k, num_heads), _heads(v, num_heads)
        if past_k is not None:
            keys, values = torch.cat([past_k, keys], dim=2), torch.cat([past_v, values], dim=2)
        out = F.scaled_dot_product_attention(_heads(q, num_heads), keys, values, attn_mask=bias)
        b, _, n, _ = out.shape
        return out.transpose(1, 2).reshape(b, n, -1), keys, values

    @staticmethod
    def symbolic(g, q, k, v, bias, past_k, past_v, num_heads: int):
        def given(value):
            return _optional(g) if value is None or value.node().mustBeNone() else value

        inputs = [q, k, v, _optional(g), _optional(g), given(bias), given(past_k), given(past_v)]
        out, present_k, present_v = g.op(f"{MS_DOMAIN}::MultiHeadAttention", *inputs, num_heads_i=num_heads,
                                         outputs=3)  # fmt: skip
        # Contrib operators have no shape inference in the exporter: state the output types.
        out.setType(q.type())
        b, n, d = k.type().sizes()
        past = 0 if past_k is None or past_k.node().mustBeNone() else past_k.type().sizes()[2]
        present = k.type().with_sizes([b, num_heads, past + n, d // num_heads])
        present_k.setType(present)
        present_v.setType(present)
        return out, present_k, present_v


class _MaskedAttention(torch.autograd.Function):
    """(q, k, v) (B, N, dim), bias (1, 1, N, N) -> out (B, N, dim): no cache (the context graph), one output,
    so a node whose output is unused (the last layer's: only its keys and values are kept) is dropped whole."""

    @staticmethod
    def forward(ctx, q, k, v, bias, num_heads: int):
        out = F.scaled_dot_product_attention(_heads(q, num_heads), _heads(k, num_heads), _heads(v, num_heads),
                                             attn_mask=bias)  # fmt: skip
        b, _, n, _ = out.shape
        return out.transpose(1, 2).reshape(b, n, -1)

    @staticmethod
    def symbolic(g, q, k, v, bias, num_heads: int):
        given = _optional(g) if bias is None or bias.node().mustBeNone() else bias
        out = g.op(f"{MS_DOMAIN}::MultiHeadAttention", q, k, v, _optional(g), _optional(g), given,
                   num_heads_i=num_heads)  # fmt: skip
        out.setType(q.type())
        return out


class _CrossAttention(torch.autograd.Function):
    """(q (B, N, dim), k, v (B, L, dim)) -> (B, N, dim): no bias, no cache (the CPU kernel's flash path)."""

    @staticmethod
    def forward(ctx, q, k, v, num_heads: int):
        out = F.scaled_dot_product_attention(_heads(q, num_heads), _heads(k, num_heads), _heads(v, num_heads))
        b, _, n, _ = out.shape
        return out.transpose(1, 2).reshape(b, n, -1)

    @staticmethod
    def symbolic(g, q, k, v, num_heads: int):
        out = g.op(f"{MS_DOMAIN}::MultiHeadAttention", q, k, v, num_heads_i=num_heads)
        out.setType(q.type())
        return out


# ---------------------------------------------------------------------------- what model/star.py calls


def self_attention(
    module,
    x: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    cache: tuple[torch.Tensor, torch.Tensor] | None,
    key_bias: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`SelfAttention.forward` as fused operators: same inputs, same outputs (k, v rotated, per head)."""
    h = module.num_heads
    positions = torch.arange(x.shape[1], device=x.device)[None]
    q = _Rotary.apply(module.norm_q(module.q(x)), positions, cos, sin, h)
    k = _Rotary.apply(module.norm_k(module.k(x)), positions, cos, sin, h)
    v = module.v(x)
    if not _ATTENTION:
        k, v = _heads(k, h), _heads(v, h)
        keys, values = k, v
        if cache is not None:
            keys, values = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        out = F.scaled_dot_product_attention(_heads(q, h), keys, values, attn_mask=key_bias)
        return module.o(out.transpose(1, 2).reshape(x.shape)), k, v
    n_keys = x.shape[1] + (cache[0].shape[2] if cache is not None else 0)
    bias = None if key_bias is None else key_bias.expand(1, 1, x.shape[1], n_keys)
    if cache is None:
        # (the context graph) the keys and values from the projections, the attention a node of its own: the
        # last layer's attention output is unused there, and the exporter drops that node with its query
        out = _MaskedAttention.apply(q, k, v, bias, h)
        return module.o(out), _heads(k, h), _heads(v, h)
    out, present_k, present_v = _Attention.apply(q, k, v, bias, cache[0], cache[1], h)
    # present = [cache ; these tokens]: keep these tokens' keys and values
    return module.o(out), present_k[:, :, -x.shape[1] :], present_v[:, :, -x.shape[1] :]


def cross_attention(module, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """`CrossAttention.forward` as one fused attention node (no mask, no cache)."""
    q = module.norm_q(module.q(x))
    k = module.norm_k(module.k(context))
    return module.o(_CrossAttention.apply(q, k, module.v(context), module.num_heads))
