"""Shot cuts: where a clip jumps from one camera to another.

A backdrop is one place seen by one moving camera; an edited clip with several shots would make camera
tracking fail or glue unrelated places together. Cuts are found from colour histograms: consecutive
frames of one shot have nearly the same colour distribution, a cut changes it at once. A frame boundary is
a cut when its histogram distance is both large in absolute terms and far above the typical distance
around it (so fast pans and flashes within a shot do not count).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

ProgressFn = Callable[[str, int, int], None]

#: Bins per channel of the colour histograms (on a downscaled copy of each frame).
BINS = 16
#: Pixels on the long side of the copy the histograms are made from.
THUMB_SIDE = 64
#: A cut needs a histogram distance (half the L1 distance, in [0, 1]) of at least this ...
MIN_DISTANCE = 0.35
#: ... and at least this many times the median distance of the boundaries around it.
CONTRAST = 4.0
#: Boundaries on each side that make up "around it".
WINDOW = 8
#: Shots shorter than this many frames are merged into their neighbour (a flash is not a shot).
MIN_SHOT_FRAMES = 3


def _histograms(frames: np.ndarray) -> np.ndarray:
    n, h, w = frames.shape[:3]
    step = max(1, max(h, w) // THUMB_SIDE)
    thumbs = frames[:, ::step, ::step, :3].astype(np.int32) * BINS // 256  # (n, h', w', 3) bin indices
    codes = (thumbs[..., 0] * BINS + thumbs[..., 1]) * BINS + thumbs[..., 2]
    hist = np.stack([np.bincount(c.ravel(), minlength=BINS**3) for c in codes]).astype(np.float64)
    return hist / hist.sum(axis=1, keepdims=True)


def boundary_distances(frames: np.ndarray) -> np.ndarray:
    """(N - 1,) histogram distance in [0, 1] between each frame and the next."""
    if len(frames) < 2:
        return np.zeros(0)
    hist = _histograms(frames)
    return 0.5 * np.abs(np.diff(hist, axis=0)).sum(axis=1)


def find_shots(frames: np.ndarray, progress: ProgressFn | None = None) -> list[tuple[int, int]]:
    """The clip's shots as [start, end) frame ranges, in order, covering every frame."""
    n = len(frames)
    if progress is not None:
        progress("shots", 0, 1)
    d = boundary_distances(frames)
    cuts = []
    for i, value in enumerate(d):
        around = np.concatenate([d[max(0, i - WINDOW) : i], d[i + 1 : i + 1 + WINDOW]])
        typical = float(np.median(around)) if around.size else 0.0
        if value >= MIN_DISTANCE and value >= CONTRAST * max(typical, 1e-3):
            cuts.append(i + 1)  # the new shot starts at frame i + 1
    # A few frames that differ from both sides while the two sides match (a flash, a passing object) are no
    # shot: drop both of their cuts.
    hist = _histograms(frames) if cuts else None
    kept: list[int] = []
    k = 0
    while k < len(cuts):
        if k + 1 < len(cuts) and cuts[k + 1] - cuts[k] < MIN_SHOT_FRAMES and hist is not None:
            before, after = hist[cuts[k] - 1], hist[cuts[k + 1]]
            if 0.5 * np.abs(before - after).sum() < MIN_DISTANCE:
                k += 2
                continue
        kept.append(cuts[k])
        k += 1
    bounds = [0, *kept, n]
    shots = [(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]
    merged: list[tuple[int, int]] = []
    for a, b in shots:  # a too-short shot joins the one before it (or the next one, at the start)
        if merged and b - a < MIN_SHOT_FRAMES:
            merged[-1] = (merged[-1][0], b)
        elif merged and merged[-1][1] - merged[-1][0] < MIN_SHOT_FRAMES:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    if progress is not None:
        progress("shots", 1, 1)
    return merged


def choose_shot(shots: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The longest shot (the first of equals)."""
    return max(shots, key=lambda s: (s[1] - s[0], -s[0]))
