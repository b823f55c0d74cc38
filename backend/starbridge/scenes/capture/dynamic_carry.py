"""Moving masks carried along time (step 5 of dynamic.py): what a frame-to-frame colour test misses on a plain mover.

A plain-coloured object that overlaps itself between the frames compared (a ball coming towards the camera,
larger in every frame than it moved) matches its own colour wherever it lands, so the votes flag its outline
and its patterned parts only: on bench_capture's dolly in procedural world 1 the near ball was mostly missed in
frame 36 (that frame's masks at IoU 0.46), and the rest kept the stereo's depth (noise) in the render. Its
neighbours in time had it whole.

So each frame's mask is carried to the next frame and the pixels it covers are decided by colour, once
forwards and once backwards in time (the union of both, holes filled): every connected region of the
(carried) mask of frame k-1, dilated by `carry_grow` times the square root of its area (it moves and grows
a little from one frame to the next), is a prior in frame k; a pixel of the prior that frame k did not flag is
added when its colour is within `carry_colour` of one of the object's colours (its pixels flagged in frame
k-1, not the carried ones, so a mistake does not teach the colour model) and nearer to them than `carry_ratio`
times its distance to the colours of a 3-pixel ring as far again beyond the prior in frame k (the background
the object is seen against; beyond its own reach, so the object's pixels that outgrew the prior are not taken
for background). Colours are the blurred working-size RGB in [0, 1], Euclidean; the object's and the
ring's colours are taken at a fixed stride (deterministic): all of them up to `carry_samples`, else between
`carry_samples` and twice as many.

What it cannot do: an object the votes never flag is never carried; an object the same colour as what is
behind it is not told apart by colour either; a flagged shadow is carried like an object (it is flagged as
moving already); a small patch flagged inside a much larger plain object (world 2's turning yellow plank: a
few dozen of its 600-800 pixels) is not grown over the rest, since the ring beyond its prior lies on the object
itself and has the object's colour (docs/capture-measurements.md, "The plain plank once more").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree


def carry_masks(
    rgb: np.ndarray,
    masks: np.ndarray,
    *,
    grow: float,
    colour: float,
    ratio: float,
    samples: int,
    min_pixels: int,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """(N, h, w) bool: `masks` (N, h, w) bool with what carrying them forwards and backwards in time adds
    (module docstring); `rgb` (N, h, w, 3) uint8 or float colours (uint8 are scaled to [0, 1]).
    `progress(done)` after each frame of each pass (done up to 2N)."""
    n = len(masks)
    colours = rgb.astype(np.float32) * np.float32(1.0 / 255.0) if rgb.dtype == np.uint8 else rgb.astype(np.float32)
    tick = progress or (lambda done: None)
    forward = _carry(colours, masks, list(range(n)), grow, colour, ratio, samples, min_pixels, tick, 0)
    backward = _carry(colours, masks, list(range(n - 1, -1, -1)), grow, colour, ratio, samples, min_pixels, tick, n)
    both = forward | backward
    return np.stack([ndimage.binary_fill_holes(m) for m in both]) if n else both


def _carry(
    colours: np.ndarray,
    flagged: np.ndarray,
    order: list[int],
    grow: float,
    tolerance: float,
    ratio: float,
    samples: int,
    min_pixels: int,
    tick: Callable[[int], None],
    done: int,
) -> np.ndarray:
    """One pass in the given frame order: each frame's carried mask is the next one's prior. `tick(done + i)`
    after the i-th frame (1-based)."""
    carried = flagged.copy()
    if order:
        tick(done + 1)  # the first frame has no prior: as flagged
    for step, (prev, k) in enumerate(zip(order[:-1], order[1:], strict=True), start=2):
        labels, count = ndimage.label(carried[prev])
        if count == 0:
            tick(done + step)
            continue
        added = np.zeros_like(flagged[k])
        for j in range(1, count + 1):
            region = labels == j
            area = int(region.sum())
            own = colours[prev][region & flagged[prev]]  # the object's colours where it was flagged
            if area < min_pixels or len(own) < min_pixels:
                continue
            reach = max(2.0, grow * float(np.sqrt(area)))
            distance = ndimage.distance_transform_edt(~region)
            prior = distance <= reach
            candidates = prior & ~flagged[k]
            # the background: a ring as far again beyond the prior, so the object's own pixels that moved
            # out of the prior (it grew or moved more than `reach`) are not taken for the background
            ring = (distance > 2.0 * reach) & (distance <= 2.0 * reach + 3.0) & ~flagged[k]
            if not candidates.any() or ring.sum() < 10:
                continue
            background = colours[k][ring]
            near_object, _ = cKDTree(own[:: max(1, len(own) // samples)]).query(colours[k][candidates])
            near_background, _ = cKDTree(background[:: max(1, len(background) // samples)]).query(
                colours[k][candidates]
            )
            take = (near_object < tolerance) & (near_object < ratio * near_background)
            added[candidates] |= take
        carried[k] = flagged[k] | added
        tick(done + step)
    return carried
