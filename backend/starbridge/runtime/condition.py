"""The STAR condition's mask part: the explicit render's validity mask on the latent grid.

Used by the runtime (runtime/star.py) and by training (train/), so the network sees at serving time
exactly what it was trained with (docs/architecture.md §6). Two conventions; a bundle's model.json says
which (`conventions.mask`; absent = "pool", star-tiny's):

- ``"pool"`` (star-tiny): each latent cell gets the fraction of valid pixels in its
  (H / latent_height) x (W / latent_width) cell; with a temporal stride s > 1 the s frames of one latent
  frame become s mask channels (channel m = frame m of that latent frame). Stateless, block by block.
- ``"wan"`` (the published InSpatio-World pipeline, `convert_mask_video`): the binary mask as -1 (hole) /
  +1 (valid), resized to the latent grid bilinearly (half-pixel centres, no antialiasing: PyTorch's
  ``interpolate(mode="bilinear", align_corners=False)``); the stream's first frame repeated to fill the
  temporal stride (Wan's first latent frame covers one video frame), then every s consecutive frames
  become the s mask channels of one latent frame. Because of that repeat, latent frame j >= 1 of the
  stream covers video frames 4j-3 .. 4j: a block's last s-1 mask frames belong to the next block, so
  this convention keeps state per stream (`WanMaskStream`).
"""

from __future__ import annotations

import numpy as np

#: The mask conventions a bundle can name.
MASK_POOL = "pool"
MASK_WAN = "wan"
MASK_CONVENTIONS = (MASK_POOL, MASK_WAN)


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
    return _group(pooled, mask_channels)


def _group(frames: np.ndarray, mask_channels: int) -> np.ndarray:
    """(n, h, w) -> (1, mask_channels, n / mask_channels, h, w): channel m = frame m of each group."""
    n, h, w = frames.shape
    grid = frames.reshape(n // mask_channels, mask_channels, h, w).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(grid)[None]


def _bilinear_taps(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices i0, i1 and weight of i1 for each output index, as PyTorch's bilinear resize with
    align_corners=False computes them (source coordinate (i + 0.5) * in / out - 0.5, clamped at 0)."""
    src = np.maximum((np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), size_in - 1)
    i1 = np.minimum(i0 + 1, size_in - 1)
    return i0, i1, (src - i0).astype(np.float32)


def wan_mask_frames(masks: np.ndarray, latent_height: int, latent_width: int) -> np.ndarray:
    """bool (frames, H, W) -> float32 (frames, latent_height, latent_width): valid +1, hole -1, bilinear."""
    values = np.where(masks, np.float32(1.0), np.float32(-1.0))
    r0, r1, wy = _bilinear_taps(masks.shape[1], latent_height)
    c0, c1, wx = _bilinear_taps(masks.shape[2], latent_width)
    rows = values[:, r0] * (1 - wy)[None, :, None] + values[:, r1] * wy[None, :, None]
    return (rows[:, :, c0] * (1 - wx) + rows[:, :, c1] * wx).astype(np.float32)


class WanMaskStream:
    """The "wan" convention over a stream cut into blocks: each call takes a block's masks and returns its
    condition channels; the stream's first frame is repeated, and the last `mask_channels - 1` frames of each
    block wait for the next (the first block's first latent frame is frame 0 alone, repeated)."""

    def __init__(self, latent_height: int, latent_width: int, mask_channels: int) -> None:
        self.shape = (latent_height, latent_width)
        self.mask_channels = mask_channels
        self._carry: np.ndarray | None = None

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        """bool (frames, H, W), frames a multiple of mask_channels -> float32 (1, mask_channels, frames / s, h, w)."""
        s = self.mask_channels
        if masks.shape[0] % s:
            raise ValueError(f"{masks.shape[0]} mask frames do not make whole latent frames of {s}")
        frames = wan_mask_frames(masks, *self.shape)
        if self._carry is None:  # start of the stream: frame 0 fills the first latent frame
            frames = np.concatenate([np.repeat(frames[:1], s - 1, axis=0), frames])
        else:
            frames = np.concatenate([self._carry, frames])
        n = masks.shape[0]
        self._carry = frames[n:]
        return _group(frames[:n], s)

    def reset(self) -> None:
        self._carry = None


class PoolMasks:
    """The "pool" convention with the same call/reset interface (stateless)."""

    def __init__(self, latent_height: int, latent_width: int, mask_channels: int) -> None:
        self.args = (latent_height, latent_width, mask_channels)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        return pool_masks(masks, *self.args)

    def reset(self) -> None:
        pass


def mask_encoder(convention: str, latent_height: int, latent_width: int, mask_channels: int):
    """A per-stream mask encoder of a convention: `encoder(masks)` per block, `encoder.reset()` per stream."""
    if convention == MASK_WAN:
        return WanMaskStream(latent_height, latent_width, mask_channels)
    if convention == MASK_POOL:
        return PoolMasks(latent_height, latent_width, mask_channels)
    raise ValueError(f"unknown mask convention {convention!r}; one of {', '.join(MASK_CONVENTIONS)}")
