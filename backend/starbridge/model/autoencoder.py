"""A tiny convolutional video autoencoder: 8x spatial compression, optional 4x temporal compression.

In the spirit of TAESD/TAEHV (small, fast, good enough to decode a few-step model's latents in real
time), written for this project. Frames are (N, 3, H, W) float in [0, 1] (sRGB values, rows top to
bottom); latents are (N / temporal_stride, C, H / 8, W / 8), roughly unit scale.

With `temporal_stride` 4 (the published InSpatio layout: one latent frame covers 4 video frames),
two temporal pools in the encoder fold pairs of frames into channels, and two temporal grows in the
decoder unfold them again. With 1 (star-tiny), every frame has its own latent.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import SPATIAL_STRIDE, AutoencoderConfig


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class ResBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_conv(width, width), nn.ReLU(), _conv(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.conv(x))


class TemporalPool(nn.Module):
    """(N, C, H, W) -> (N / 2, C, H, W): pairs of consecutive frames folded into channels, then mixed."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.mix = nn.Conv2d(2 * width, width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return self.mix(x.reshape(n // 2, 2 * c, h, w))


class TemporalGrow(nn.Module):
    """(N, C, H, W) -> (2N, C, H, W): each frame unfolds into two."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(width, 2 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return self.expand(x).reshape(2 * n, c, h, w)


def _stage_widths(width: int) -> tuple[int, int, int, int]:
    """Channels at full, 1/2, 1/4 and 1/8 resolution: narrow where there are many pixels."""
    return max(width // 4, 8), max(width // 2, 8), width, width


class Encoder(nn.Module):
    """Frames (N, 3, H, W) in [0, 1] -> latents (N / ts, C, H/8, W/8)."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        widths = _stage_widths(config.width)
        layers: list[nn.Module] = [_conv(3, widths[0]), nn.ReLU()]
        for stage in range(3):
            layers += [_conv(widths[stage], widths[stage + 1], stride=2), nn.ReLU()]
            if stage > 0:
                layers.append(ResBlock(widths[stage + 1]))
            if config.temporal_stride == 4 and stage < 2:
                layers.append(TemporalPool(widths[stage + 1]))
        layers.append(_conv(widths[3], config.latent_channels))
        self.layers = nn.Sequential(*layers)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.layers(frames * 2.0 - 1.0)


class Decoder(nn.Module):
    """Latents (N, C, h, w) -> frames (N * ts, 3, 8h, 8w) in [0, 1]."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        widths = _stage_widths(config.width)
        layers: list[nn.Module] = [_conv(config.latent_channels, widths[3]), nn.ReLU()]
        for stage in (3, 2, 1):
            if stage > 1:
                layers.append(ResBlock(widths[stage]))
            if config.temporal_stride == 4 and stage > 1:
                layers.append(TemporalGrow(widths[stage]))
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _conv(widths[stage], widths[stage - 1]), nn.ReLU()]
        layers.append(_conv(widths[0], 3))
        self.layers = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return (self.layers(latents) * 0.5 + 0.5).clamp(0.0, 1.0)


class TinyAutoencoder(nn.Module):
    """encode (N, 3, H, W) in [0, 1] -> (N / ts, C, H/8, W/8); decode back. H and W multiples of 8."""

    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.decoder = Decoder(config)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        n, c, h, w = frames.shape
        ts = self.config.temporal_stride
        assert c == 3 and h % SPATIAL_STRIDE == 0 and w % SPATIAL_STRIDE == 0 and n % ts == 0, (
            f"frames {tuple(frames.shape)}: want (N, 3, H, W) with H, W multiples of 8 and N a multiple of {ts}"
        )
        return self.encoder(frames)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        assert latents.shape[1] == self.config.latent_channels, (
            f"latents {tuple(latents.shape)}: want (N, {self.config.latent_channels}, h, w)"
        )
        return self.decoder(latents)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(frames))
