"""A TAEHV-layout video autoencoder: the tiny autoencoder of the Wan2.1 latent space (`taew2_1`).

The published InSpatio-World real-time path encodes and decodes with TAEHV (github.com/madebyollin/taehv)
instead of the Wan2.1 VAE. This module is our own implementation of that layout: the module indices of
`encoder` and `decoder` (two ``nn.Sequential``) and every parameter shape match the published file, so its
state dict loads strictly (model/convert.py checks it key by key first).

Frames are (T, 3, H, W) float in [0, 1]; latents (T / 4, C, H / 8, W / 8), unnormalised (the official
pipeline feeds TAEHV latents to the transformer as they are). Layout, with w the encoder width (64):

- encoder: conv(3, w), ReLU, then three stages of [TPool, stride-2 conv, 3 MemBlocks] (temporal pools 2, 2,
  1: 4 frames per latent), then conv(w, C);
- decoder: Clamp (3 tanh(x / 3)), conv(C, 4w), ReLU, then three stages of [3 MemBlocks, 2x nearest upsample,
  TGrow, conv to the next width] with widths 4w, 2w, w and temporal grows 1, 2, 2; then ReLU, conv(w, 3).

**Causal memory.** A MemBlock mixes each frame with the frame before it *at its own point in the network*
(its input one time step earlier; zeros at the start of a stream). The whole network is therefore causal, and
a stream cut into blocks gives the same result as the stream at once if each MemBlock's last input frame of
one block is carried into the next: that is the `memory` argument and result of `encode_stream` and
`decode_stream` (one tensor per MemBlock, in layer order, each (1, width, h, w)). TPool and TGrow need no
state as long as a block holds a whole number of latent frames.

**Start of a stream.** The decoder turns each latent into 4 frames; of the very first latent only the last is a
real frame (Wan's first latent frame covers one video frame): TAEHV drops the first `STARTUP_FRAMES` of a
stream. `decode` returns them all; whoever shows a stream drops or covers them (runtime/star.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..runtime.stream import MEMORY_NEXT, MEMORY_PREFIX  # graph input `memory_<i>`, output `memory_<i>_next`
from .config import SPATIAL_STRIDE, AutoencoderConfig

if TYPE_CHECKING:
    from .autoencoder import TinyAutoencoder

#: Decoded frames at the start of a stream that are not real frames (4x temporal grow minus one).
STARTUP_FRAMES = 3
#: Temporal pool of the encoder's three stages and temporal grow of the decoder's three stages (taew2_1).
ENCODER_TIME_POOL = (2, 2, 1)
DECODER_TIME_GROW = (1, 2, 2)


def _conv(cin: int, cout: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)


class Clamp(nn.Module):
    """Soft clamp of the latents to (-3, 3)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3.0) * 3.0


class MemBlock(nn.Module):
    """Residual block over [frame | the same point's previous frame]: relu(convs(cat) + frame)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv(2 * width, width), nn.ReLU(), _conv(width, width), nn.ReLU(), _conv(width, width)
        )

    def forward(self, x: torch.Tensor, past: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(torch.cat([x, past], dim=1)) + x)


class TPool(nn.Module):
    """(T, C, H, W) -> (T / s, C, H, W): s consecutive frames side by side in channels, mixed by a 1x1 conv."""

    def __init__(self, width: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(width * stride, width, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, c, h, w = x.shape
        return self.conv(x.reshape(t // self.stride, self.stride * c, h, w))


class TGrow(nn.Module):
    """(T, C, H, W) -> (T * s, C, H, W): a 1x1 conv to s * C channels, channel group k becoming frame k."""

    def __init__(self, width: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(width, width * stride, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, c, h, w = x.shape
        return self.conv(x).reshape(t * self.stride, c, h, w)


def _run(layers: nn.Sequential, x: torch.Tensor, memory: list[torch.Tensor] | None):
    """All frames of a block through `layers`; each MemBlock sees [its memory ; the block's frames but the
    last] as the previous frames. Returns (output, the memory for the next block)."""
    carried = iter(memory) if memory is not None else None
    following: list[torch.Tensor] = []
    for layer in layers:
        if isinstance(layer, MemBlock):
            first = next(carried) if carried is not None else torch.zeros_like(x[:1])
            past = torch.cat([first, x[:-1]], dim=0)
            following.append(x[-1:])
            x = layer(x, past)
        else:
            x = layer(x)
    return x, following


class Taehv(nn.Module):
    """encode (T, 3, H, W) in [0, 1] -> (T / 4, C, H/8, W/8); decode back to 4 frames per latent."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        if config.kind != "taehv":
            raise ValueError(f"Taehv needs an autoencoder config of kind 'taehv', got {config.kind!r}")
        self.config = config
        w, c = config.width, config.latent_channels
        enc: list[nn.Module] = [_conv(3, w), nn.ReLU()]
        for pool in ENCODER_TIME_POOL:
            enc += [TPool(w, pool), _conv(w, w, stride=2, bias=False), MemBlock(w), MemBlock(w), MemBlock(w)]
        enc.append(_conv(w, c))
        self.encoder = nn.Sequential(*enc)
        widths = (4 * w, 2 * w, w, w)
        dec: list[nn.Module] = [Clamp(), _conv(c, widths[0]), nn.ReLU()]
        for stage, grow in enumerate(DECODER_TIME_GROW):
            n = widths[stage]
            dec += [MemBlock(n), MemBlock(n), MemBlock(n), nn.Upsample(scale_factor=2, mode="nearest"),
                    TGrow(n, grow), _conv(n, widths[stage + 1], bias=False)]  # fmt: skip
        dec += [nn.ReLU(), _conv(widths[3], 3)]
        self.decoder = nn.Sequential(*dec)

    # ------------------------------------------------------------------ streaming memory

    @staticmethod
    def memory_layers(layers: nn.Sequential) -> list[int]:
        """Indices of the MemBlocks of `layers` (the order of a memory list)."""
        return [i for i, layer in enumerate(layers) if isinstance(layer, MemBlock)]

    def memory_shapes(self, part: str, height: int, width: int) -> dict[int, tuple[int, int, int, int]]:
        """{MemBlock index: (1, channels, h, w)} of the encoder or decoder memory for H x W video frames."""
        layers = self.encoder if part == "encoder" else self.decoder
        shapes = {}
        if part == "encoder":
            scale, channels = 1, 3
            for i, layer in enumerate(layers):
                if isinstance(layer, nn.Conv2d):
                    scale, channels = scale * layer.stride[0], layer.out_channels
                if isinstance(layer, MemBlock):
                    shapes[i] = (1, channels, height // scale, width // scale)
        else:
            scale = SPATIAL_STRIDE
            for i, layer in enumerate(layers):
                if isinstance(layer, nn.Upsample):
                    scale //= 2
                if isinstance(layer, MemBlock):
                    channels = int(layer.conv[0].out_channels)  # type: ignore[arg-type]
                    shapes[i] = (1, channels, height // scale, width // scale)
        return shapes

    def zero_memory(self, part: str, height: int, width: int, like: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The memory at the start of a stream (zeros), on `like`'s device and dtype."""
        device, dtype = (like.device, like.dtype) if like is not None else (None, None)
        return [torch.zeros(s, device=device, dtype=dtype) for s in self.memory_shapes(part, height, width).values()]

    # ------------------------------------------------------------------ encode / decode

    def encode_stream(
        self, frames: torch.Tensor, memory: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """A block of frames (T, 3, H, W) in [0, 1], T a multiple of 4, and the encoder memory after the
        previous block (None: the stream starts here) -> latents (T / 4, C, H/8, W/8), the memory after it."""
        t, c, h, w = frames.shape
        ts = self.config.temporal_stride
        assert c == 3 and h % SPATIAL_STRIDE == 0 and w % SPATIAL_STRIDE == 0 and t % ts == 0, (
            f"frames {tuple(frames.shape)}: want (T, 3, H, W) with H, W multiples of 8 and T a multiple of {ts}"
        )
        return _run(self.encoder, frames, memory)

    def decode_stream(
        self, latents: torch.Tensor, memory: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Latents (N, C, h, w) and the decoder memory after the previous block -> frames (4N, 3, 8h, 8w) in
        [0, 1] (a stream's first STARTUP_FRAMES included), the memory after it."""
        assert latents.shape[1] == self.config.latent_channels, (
            f"latents {tuple(latents.shape)}: want (N, {self.config.latent_channels}, h, w)"
        )
        frames, memory = _run(self.decoder, latents, memory)
        return frames.clamp(0.0, 1.0), memory

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames of one whole stream -> latents (the TinyAutoencoder interface)."""
        return self.encode_stream(frames)[0]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents of one whole stream -> frames, startup frames included."""
        return self.decode_stream(latents)[0]

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(frames))


def build_autoencoder(config: AutoencoderConfig) -> TinyAutoencoder | Taehv:
    """The autoencoder module of a config's kind."""
    if config.kind == "taehv":
        return Taehv(config)
    from .autoencoder import TinyAutoencoder

    return TinyAutoencoder(config)


# ---------------------------------------------------------------------------- ONNX graphs with memory


def memory_names(ae: Taehv, part: str) -> list[str]:
    layers = ae.encoder if part == "encoder" else ae.decoder
    return [f"{MEMORY_PREFIX}{i}" for i in ae.memory_layers(layers)]


class StreamEncoderGraph(nn.Module):
    """uint8 (fpb, H, W, 3), memory... -> latents (1, C, F, h, w), memory_next..."""

    def __init__(self, ae: Taehv) -> None:
        super().__init__()
        self.ae = ae

    def forward(self, frames: torch.Tensor, *memory: torch.Tensor):
        x = frames.permute(0, 3, 1, 2).float() / 255.0
        dtype = next(self.ae.parameters()).dtype
        latents, following = self.ae.encode_stream(x.to(dtype), list(memory))
        return (latents.permute(1, 0, 2, 3).unsqueeze(0), *following)


class StreamDecoderGraph(nn.Module):
    """latents (1, C, F, h, w), memory... -> uint8 (fpb, H, W, 4) alpha 255, memory_next..."""

    def __init__(self, ae: Taehv) -> None:
        super().__init__()
        self.ae = ae

    def forward(self, latents: torch.Tensor, *memory: torch.Tensor):
        rgb, following = self.ae.decode_stream(latents[0].permute(1, 0, 2, 3), list(memory))
        rgb = torch.round(rgb.float() * 255.0).permute(0, 2, 3, 1)
        alpha = torch.full_like(rgb[..., :1], 255.0)
        return (torch.cat([rgb, alpha], dim=-1).to(torch.uint8), *following)


def stream_graphs(ae: Taehv, height: int, width: int, frames_input: torch.Tensor, latents_input: torch.Tensor):
    """{"encoder"|"decoder": (module, example inputs, (input names, output names))} for export: the memory
    crosses the graph boundary as explicit inputs `memory_<i>` and outputs `memory_<i>_next`."""
    out = {}
    for part, module, first, io in (
        ("encoder", StreamEncoderGraph(ae), frames_input, ("frames", "latents")),
        ("decoder", StreamDecoderGraph(ae), latents_input, ("latents", "frames")),
    ):
        dtype = latents_input.dtype
        memory = [m.to(dtype) for m in ae.zero_memory(part, height, width, like=latents_input)]
        names = memory_names(ae, part)
        out[part] = (module, (first, *memory), ([io[0], *names], [io[1], *(n + MEMORY_NEXT for n in names)]))
    return out
