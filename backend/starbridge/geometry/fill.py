"""Baseline hole fill: push-pull (after Gortler et al., "The Lumigraph", 1996), with binary coverage.

- **Pull**: a pyramid halving the size at each level down to one cell. A cell is valid when any of its
  2x2 children is valid, and its colour is the mean colour of its valid children (odd sizes are padded
  with invalid cells).
- **Push**: from the coarsest level down, each level's invalid cells take the bilinearly upsampled colour
  of the filled level below it; valid cells keep theirs. At full resolution valid pixels are therefore
  kept exactly and holes get a smooth blend of the nearest valid colours, blurrier the larger the hole.

Cost: one pass over the full-size image to pull, then per level one pass that fills the invalid cells,
and the full-size holes alone at the end; the loops are numba-compiled (kernels.py `pull`, `push`,
`upsample_at`, with NumPy's float32 arithmetic and summation order: bit-identical to the NumPy version they
replaced, 3.6 ms at 512x288 on the 2-core VM): about 1.5 ms of CPU there (bench/bench_render.py).
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidArgument
from . import kernels

#: Colour of an image with no valid pixel at all (sRGB mid grey).
NEUTRAL_GREY = 128


def push_pull_fill(colour: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the pixels of `colour` (H, W, 3) uint8 where `mask` (H, W) bool is False.

    Returns a new (H, W, 3) uint8 image equal to `colour` where `mask` is True. With no valid pixel
    at all the result is neutral grey.
    """
    colour = np.asarray(colour)
    mask = np.asarray(mask)
    if colour.ndim != 3 or colour.shape[2] != 3 or colour.dtype != np.uint8:
        raise InvalidArgument(f"colour must be (H, W, 3) uint8, got {colour.shape} {colour.dtype}", field="colour")
    _check_mask(mask, colour.shape[:2])
    holes = np.flatnonzero(~mask)
    if holes.size == 0:
        return colour.copy()
    if holes.size == mask.size:
        return np.full_like(colour, NEUTRAL_GREY)
    out = colour.copy()  # C order
    rgb = _push_pull(out, mask, holes)
    put_pixels(out, holes, np.clip(rgb + 0.5, 0.0, 255.0).astype(np.uint8))
    return out


def push_pull_fill_values(values: np.ndarray, mask: np.ndarray, empty: float = 0.0) -> np.ndarray:
    """The same fill for (H, W, C) float32 values (e.g. inverse depth): a new array equal to `values` where
    `mask` is True, smooth blends of the nearest valid values in the holes; all `empty` with no valid pixel."""
    values, holes = _float_holes(values, mask)
    if holes.size == mask.size:
        return np.full_like(values, empty)
    out = values.copy()
    if holes.size:
        put_pixels(out, holes, _push_pull(values, mask, holes))
    return out


def push_pull_fill_holes(values: np.ndarray, mask: np.ndarray, empty: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """`push_pull_fill_values` at the holes only: (the flat indices (n,) of the pixels where `mask` is False,
    row-major; their filled values (n, C) float32), without a full-size result."""
    values, holes = _float_holes(values, mask)
    if holes.size == mask.size:
        return holes, np.full((holes.size, values.shape[2]), empty, np.float32)
    if not holes.size:
        return holes, np.empty((0, values.shape[2]), np.float32)
    return holes, _push_pull(values, mask, holes)


def _check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> None:
    if mask.shape != shape or mask.dtype != np.bool_:
        raise InvalidArgument(f"mask must be {shape} bool, got {mask.shape} {mask.dtype}", field="mask")


def _float_holes(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checked (H, W, C) float32 values and the flat indices of the pixels where `mask` is False."""
    values = np.asarray(values)
    if values.ndim != 3 or values.dtype != np.float32:
        raise InvalidArgument(f"values must be (H, W, C) float32, got {values.shape} {values.dtype}", field="values")
    _check_mask(mask, values.shape[:2])
    return np.ascontiguousarray(values), np.flatnonzero(~mask)


def _push_pull(values: np.ndarray, mask: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """The filled values (n, C) float32 at the `holes` (n,) (flat indices of the pixels where `mask` is False) of
    `values` (H, W, C) uint8 or float32, which must have a valid pixel."""
    # Pull: levels[i] = (mean (h, w, C) float32, 0 where invalid; valid (h, w) bool) at 1 / 2 ** (i + 1) of the size.
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    level, valid = np.ascontiguousarray(values), np.ascontiguousarray(mask)
    while not levels or valid.size > 1:
        h, w = valid.shape
        coarse = np.empty(((h + 1) // 2, (w + 1) // 2, values.shape[2]), np.float32)
        coarse_valid = np.empty(coarse.shape[:2], np.bool_)
        kernels.pull(level, valid, coarse, coarse_valid)
        levels.append((coarse, coarse_valid))
        level, valid = coarse, coarse_valid
    # Push: the one-cell top level is valid; each finer level fills its invalid cells from the one below.
    filled = levels[-1][0]
    for mean, valid in reversed(levels[:-1]):
        kernels.push(mean, valid, filled)  # levels are not needed afterwards: fill in place
        filled = mean
    out = np.empty((holes.size, values.shape[2]), np.float32)
    kernels.upsample_at(filled, holes.astype(np.int64, copy=False), mask.shape[1], out)
    return out


def put_pixels(image: np.ndarray, flat: np.ndarray, rows: np.ndarray) -> None:
    """image.reshape(-1, C)[flat] = rows (n, C), for a contiguous (h, w, C) image, through a one-element-per-pixel
    view (NumPy's fancy assignment of short rows is several times slower)."""
    c = image.shape[2]
    pixel = np.dtype((np.void, c * image.itemsize))
    target = image.reshape(-1, c).view(pixel).ravel()
    np.put(target, flat, np.ascontiguousarray(rows, dtype=image.dtype).view(pixel).ravel())


def take_pixels(image: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """image.reshape(-1, C)[flat] as a new (n, C) array, for a contiguous (h, w, C) image (the gather twin of
    `put_pixels`, as much faster than fancy indexing of short rows)."""
    c = image.shape[2]
    pixel = np.dtype((np.void, c * image.itemsize))
    return np.take(image.reshape(-1, c).view(pixel).ravel(), flat).view(image.dtype).reshape(-1, c)
