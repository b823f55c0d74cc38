"""Baseline hole fill: push-pull (after Gortler et al., "The Lumigraph", 1996), with binary coverage.

- **Pull**: a pyramid halving the size at each level down to one cell. A cell is valid when any of its
  2x2 children is valid, and its colour is the mean colour of its valid children (odd sizes are padded
  with invalid cells).
- **Push**: from the coarsest level down, each level's invalid cells take the bilinearly upsampled colour
  of the filled level below it; valid cells keep theirs. At full resolution valid pixels are therefore
  kept exactly and holes get a smooth blend of the nearest valid colours, blurrier the larger the hole.

Cost: one pass over the full-size image to pull, and work proportional to the number of holes to
push (invalid cells are found with flatnonzero and filled by gathers): about 1-2 ms at 512x288.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidArgument

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
    out = colour.copy()
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
        put_pixels(out, holes, _push_pull(out, mask, holes))
    return out


def push_pull_fill_holes(values: np.ndarray, mask: np.ndarray, empty: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """`push_pull_fill_values` at the holes only: (the flat indices (n,) of the pixels where `mask` is False,
    row-major; their filled values (n, C) float32), without a full-size result."""
    values, holes = _float_holes(values, mask)
    if holes.size == mask.size:
        return holes, np.full((holes.size, values.shape[2]), empty, np.float32)
    if not holes.size:
        return holes, np.empty((0, values.shape[2]), np.float32)
    return holes, _push_pull(values.copy(), mask, holes)


def _check_mask(mask: np.ndarray, shape: tuple[int, ...]) -> None:
    if mask.shape != shape or mask.dtype != np.bool_:
        raise InvalidArgument(f"mask must be {shape} bool, got {mask.shape} {mask.dtype}", field="mask")


def _float_holes(values: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checked (H, W, C) float32 values and the flat indices of the pixels where `mask` is False."""
    values = np.asarray(values)
    if values.ndim != 3 or values.dtype != np.float32:
        raise InvalidArgument(f"values must be (H, W, C) float32, got {values.shape} {values.dtype}", field="values")
    _check_mask(mask, values.shape[:2])
    return values, np.flatnonzero(~mask)


def _push_pull(out: np.ndarray, mask: np.ndarray, holes: np.ndarray) -> np.ndarray:
    """The filled values (n, C) float32 at the `holes` of `out` (zeroed there in place first)."""
    c = out.shape[2]
    put_pixels(out, holes, np.zeros((holes.size, c), out.dtype))  # invalid pixels must not leak into the means
    # Pull: levels[i] = (mean (h, w, C) float32, 0 where invalid; valid (h, w) bool), level 0 excluded.
    levels = [_pull(out, mask)]
    while levels[-1][1].size > 1:
        levels.append(_pull(*levels[-1]))
    # Push: the one-cell top level is valid; each finer level fills its invalid cells from the one below.
    filled = levels[-1][0]
    for mean, valid in reversed(levels[:-1]):
        filled = _fill_cells(mean, valid, filled)  # levels are not needed afterwards: fill in place
    return _upsample_at(filled, holes, out.shape[1])


def _pull(colour: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One level down: (h, w, 3) colour zeroed where invalid and (h, w) valid -> the same at (ceil(h/2), ceil(w/2))."""
    h, w = valid.shape
    if h % 2 or w % 2:
        colour = _pad_even(colour)
        valid = _pad_even(valid)
        h, w = valid.shape
    sums = _sum2x2(colour, np.float32 if colour.dtype == np.float32 else np.uint16)
    counts = _sum2x2(valid.view(np.uint8)[:, :, None], np.uint8)[:, :, 0]
    coarse_valid = counts > 0
    mean = sums / np.maximum(counts, 1)[:, :, None].astype(np.float32)
    return mean.astype(np.float32, copy=False), coarse_valid


def _sum2x2(a: np.ndarray, dtype: type) -> np.ndarray:
    """Sums of 2x2 blocks of an (h, w, C) array with even h and w, as (h/2, w/2, C) of `dtype`."""
    h, w, c = a.shape
    rows = a.reshape(h // 2, 2 * w * c)
    pairs = np.add(rows[:, : w * c], rows[:, w * c :], dtype=dtype).reshape(h // 2, w // 2, 2 * c)
    return pairs[:, :, :c] + pairs[:, :, c:]


def _pad_even(a: np.ndarray) -> np.ndarray:
    """Pad rows and columns at the end with zeros (False) to even sizes."""
    h, w = a.shape[:2]
    out = np.zeros((h + h % 2, w + w % 2, *a.shape[2:]), a.dtype)
    out[:h, :w] = a
    return out


def _fill_cells(mean: np.ndarray, valid: np.ndarray, coarse: np.ndarray) -> np.ndarray:
    """`mean` (h, w, C) with its invalid cells replaced by the bilinear upsampling of `coarse` (filled)."""
    holes = np.flatnonzero(~valid)
    if holes.size:
        put_pixels(mean, holes, _upsample_at(coarse, holes, valid.shape[1]))
    return mean


def _upsample_at(coarse: np.ndarray, flat: np.ndarray, width: int) -> np.ndarray:
    """Bilinear 2x upsampling of `coarse` (hc, wc, C) evaluated only at the fine cells `flat` (n,) of a
    grid `width` wide: (n, C) float32. Fine cell y = 2i lies a quarter cell before coarse cell i and
    y = 2i + 1 a quarter after it, so the nearer coarse cell weighs 3/4 and its neighbour 1/4 (edges clamp)."""
    hc, wc = coarse.shape[:2]
    y, x = np.divmod(flat, width)
    y0, x0 = y >> 1, x >> 1
    y1 = np.clip(y0 + 2 * (y & 1) - 1, 0, hc - 1)
    x1 = np.clip(x0 + 2 * (x & 1) - 1, 0, wc - 1)
    c = coarse.reshape(-1, coarse.shape[2])

    def at(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        return np.take(c, yy * wc + xx, axis=0, mode="clip")  # indices are in range: skip the checks

    near, far = np.float32(0.75), np.float32(0.25)
    top = near * at(y0, x0) + far * at(y0, x1)
    bottom = near * at(y1, x0) + far * at(y1, x1)
    return near * top + far * bottom


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
