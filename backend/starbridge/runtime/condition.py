"""The STAR condition's mask part: the explicit render's validity mask on the latent grid.

One function, used by the runtime (runtime/star.py) and by training (train/), so the network sees at
serving time exactly what it was trained with (docs/architecture.md §6).

star-tiny's convention: each latent cell gets the fraction of valid pixels in its
(H / latent_height) x (W / latent_width) cell; with a temporal stride s > 1 the s frames of one latent
frame become s mask channels (channel m = frame m of that latent frame).
"""

from __future__ import annotations

import numpy as np


def pool_masks(masks: np.ndarray, latent_height: int, latent_width: int, mask_channels: int) -> np.ndarray:
    """bool (frames, H, W) -> float32 (1, mask_channels, frames / mask_channels, latent_height, latent_width).

    H and W must be multiples of the latent grid, frames a multiple of mask_channels.
    """
    n, h, w = masks.shape
    if h % latent_height or w % latent_width or n % mask_channels:
        raise ValueError(
            f"masks of shape {masks.shape} do not pool to a {latent_height}x{latent_width} grid "
            f"with {mask_channels} mask channel(s)"
        )
    sy, sx = h // latent_height, w // latent_width
    pooled = masks.reshape(n, latent_height, sy, latent_width, sx).mean(axis=(2, 4), dtype=np.float32)
    frames = n // mask_channels
    grid = pooled.reshape(frames, mask_channels, latent_height, latent_width).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(grid)[None]
