"""Black bars baked into a clip's picture (letterbox, pillarbox), found and cropped before the capture.

A film in a 16:9 file, or a portrait phone clip exported on a landscape timeline, carries black bands that
are not part of the world: kept, they would stand in the scene as black walls that turn with the camera, and
they skew the field of view the capture works out from the frame's size. A band is a run of rows (or
columns) from an edge, each of them dark (every pixel's brightest channel at most `dark_level`) and still (no
pixel varying by more than `still_level` over the clip) in every sampled frame: a real dark surface, a night
sky, varies as the camera moves, compression noise included, and is kept. Bands thinner than `min_band` are
left (a line or two of encoder padding is harmless); if the bars would leave less than `min_picture` of a
side, or the whole frame is dark, nothing is cropped. The crop keeps even sides (the bundle's video needs
them).

Everything after works on the picture inside the bars: its size is the scene's, and `--fov` / `--lens` (or
a lens the file names) describe that picture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BorderConfig:
    #: A bar pixel's brightest channel is at most this (0-255): black, with compression's lift.
    dark_level: int = 24
    #: ...and it varies by at most this over the clip (0-255).
    still_level: int = 12
    #: Bands thinner than this many pixels are kept.
    min_band: int = 2
    #: At least this fraction of each side must remain (a portrait clip on a 16:9 timeline keeps 32%).
    min_picture: float = 0.2
    #: Frames looked at (evenly spread).
    sample_frames: int = 60


@dataclass(frozen=True)
class Borders:
    """Pixels to crop from each side of the decoded frames (all 0: none)."""

    top: int = 0
    bottom: int = 0
    left: int = 0
    right: int = 0

    @property
    def none(self) -> bool:
        return not (self.top or self.bottom or self.left or self.right)

    def crop_frames(self, frames: np.ndarray) -> np.ndarray:
        """(N, H, W, C) frames of the decoded size, the bars cut off."""
        return frames[:, self.top : frames.shape[1] - self.bottom, self.left : frames.shape[2] - self.right]

    def crop_maps(self, maps: np.ndarray) -> np.ndarray:
        """(N, H, W) per-frame maps (the user's depth) of the decoded size, the bars cut off."""
        return maps[:, self.top : maps.shape[1] - self.bottom, self.left : maps.shape[2] - self.right]

    def words(self, width: int, height: int) -> str:
        """What was cropped from a `width` x `height` picture, in plain words ('' for nothing)."""
        if self.none:
            return ""
        parts = [f"{n} px {side}" for side, n in (("top", self.top), ("bottom", self.bottom),
                                                   ("left", self.left), ("right", self.right)) if n]  # fmt: skip
        kept = f"{width - self.left - self.right}x{height - self.top - self.bottom}"
        return f"black bars cropped ({', '.join(parts)} of {width}x{height}; the picture kept is {kept})"


def find_borders(frames: np.ndarray, config: BorderConfig = BorderConfig()) -> Borders:  # noqa: B008 (frozen)
    """The black bars of (N, H, W, 3) uint8 frames (module docstring)."""
    n, h, w = frames.shape[:3]
    if n == 0:
        return Borders()
    picked = frames[np.unique(np.linspace(0, n - 1, min(n, config.sample_frames)).round().astype(int))]
    brightest = picked.max(axis=3)  # (S, H, W)
    high = brightest.max(axis=0).astype(np.int16)
    low = picked.min(axis=3).min(axis=0).astype(np.int16)
    bar = (high <= config.dark_level) & (high - low <= config.still_level)
    if bar.all():
        return Borders()  # a dark clip, not bars
    rows, cols = bar.all(axis=1), bar.all(axis=0)

    def run(flags: np.ndarray) -> int:
        """Length of the run of True from the start of `flags`."""
        stop = np.flatnonzero(~flags)
        return int(stop[0]) if stop.size else len(flags)

    top, bottom, left, right = run(rows), run(rows[::-1]), run(cols), run(cols[::-1])
    top, bottom, left, right = (b if b >= config.min_band else 0 for b in (top, bottom, left, right))
    if h - top - bottom < config.min_picture * h:
        top = bottom = 0
    if w - left - right < config.min_picture * w:
        left = right = 0
    # even sides: one more row or column off the thicker bar
    if (h - top - bottom) % 2:
        if top >= bottom and top:
            top += 1
        elif bottom:
            bottom += 1
    if (w - left - right) % 2:
        if left >= right and left:
            left += 1
        elif right:
            right += 1
    return Borders(top, bottom, left, right)
