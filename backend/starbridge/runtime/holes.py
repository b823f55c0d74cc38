"""The holes of the explicit generator's layered splat (runtime/explicit.py), and how they are filled.

* `drop_see_through`: what shows through the cracks of a surface seen much closer than the reference saw it
  becomes a hole of that surface (a ball passing close to the camera is not a wire frame).
* `wide_holes`: the holes at least 3 pixels across; thinner cracks (a surface seen closer than the reference
  camera saw it) are left to push-pull.
* `surroundings` / `in_front`: the surface a hole is closed in by; a later layer (fused world, memory) may fill
  a hole only no farther than it, so what lies behind a cracked surface does not show through.
* `hole_fill` (`push_pull_sources` + `finish_fill`): colour and depth for the wide holes left, from the pixels
  that do not move: push-pull next to what is seen (weighted toward the far side of a depth edge: a
  disocclusion shows what lies behind), the row's mean further out (keeps the horizon); depth by push-pull of
  inverse depth, `clamped` to the surroundings, so that what is remembered passes the same z-test on a
  revisit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import kernels
from ..geometry.camera import Intrinsics
from ..geometry.conventions import wire_to_cv
from ..geometry.fill import push_pull_fill_holes

#: `hole_fill`: the colour of a hole pixel is all the row's mean this far (a fraction of the width) from the
#: nearest source pixel in its row, push-pull next to it, and in between linearly.
ROW_MEAN_SPAN = 0.25


def hole_fill(
    colour: np.ndarray,
    depth: np.ndarray,
    holes: np.ndarray,
    sources: np.ndarray,
    behind: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour and depth for the `holes` (H, W) bool, filled from the `sources` (H, W) bool pixels only (of a
    splat's (H, W, 3) uint8 colour and (H, W) float32 depth; inverse depth, so sky (+inf) fills as 0).

    The sources are what a remembered fill may continue: covered pixels (not the cracks, whose empty depth
    would pull as sky and put the points far off), and not what moves (see `ExplicitSession._moving`).
    Colour: push-pull next to the sources, going over to the mean of the row's sources with the distance
    along the row to the nearest one (all of it from ROW_MEAN_SPAN of the width on). Push-pull alone is
    right near the edge of what is seen, but over a hole as wide as a turned view it is one average of sky
    and ground (worse than neutral grey on a 180 degree turn: bench_quality --paths roam, turn-back); the
    row's mean keeps the horizon where it is. (Continuing each row from its nearest source pixel instead
    streaks an object at the edge across the view: worse on the 90 degree turns.) Depth: the same push-pull.
    At the holes where `behind` (H, W) bool is True (disocclusions: what the reference saw nearer hides
    them), the push-pull is weighted toward the far sources (`push_pull_sources`).
    Returns (flat indices (n,) of the holes, row-major; colours (n, 3) uint8; depths (n,) float32, +inf for
    a direction)."""
    at, plain, far, values = push_pull_sources(colour, depth, sources)
    keep = holes.reshape(-1)[at]
    filled = plain[keep]
    if behind is not None:
        use = behind.reshape(-1)[at[keep]]
        filled[use] = far[keep][use]
    return finish_fill(values, sources, at[keep], filled)


def push_pull_sources(
    colour: np.ndarray, depth: np.ndarray, sources: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Push-pull of colour and inverse depth from the `sources`, plain and weighted toward what is far: (flat
    indices (n,) of every other pixel; their (n, 4) float32 values, plain; the same weighted by each source's
    depth squared (up to FAR_WEIGHT_CAP; 0 with no source at all); the (H, W, 9) float32 values pulled from,
    whose first 4 channels are the source values (colour, inverse depth; 0 elsewhere): `finish_fill`'s).

    The far-weighted fill is for disocclusions: what the camera sees in a hole beside a depth edge, where the
    reference saw the near side, lies behind it, and the far side continues it (the near side's colour smeared
    across it is wrong, and once remembered it is seen again, magnified, from other poses: with the plain fill
    1000003-dusk dolly lost 0.18 dB to reference-only, bench_quality --paths roam). Not past the frame edge:
    there the sky outweighs the ground below the horizon (weighted in every wide hole, the turns' PSNR rose,
    but a turned view's open side showed sky colour down over the ground). Between sources at one depth the
    two are equal.
    Both in one push-pull: the plain values and the weighted ones with their weight as a channel (a push-pull
    of those, divided by it, is the weighted push-pull)."""
    colour, depth, sources = (np.ascontiguousarray(a) for a in (colour, depth, sources))
    values = np.empty(depth.shape + (9,), np.float32)
    kernels.plain_and_far_sources(colour, depth, sources, np.float32(FAR_WEIGHT_CAP), values)  # compiled: one pass
    at, sums = push_pull_fill_holes(values, sources)
    total = sums[:, 8:]
    far = np.divide(sums[:, 4:8], total, out=np.zeros((at.size, 4), np.float32), where=total > 0)
    return at, np.ascontiguousarray(sums[:, :4]), far, values


#: `push_pull_sources`: a source's far weight is its depth squared, depths beyond this (scene units; sky: +inf)
#: counting as this far. Squared and 50 measured best of depth ** 2 / ** 4 and 15 / 50 / 1000 on the roam
#: paths (bench_quality --paths roam at 512x288, the far weight in every wide hole).
FAR_WEIGHT_CAP = 50.0


def finish_fill(
    values: np.ndarray, sources: np.ndarray, at: np.ndarray, filled: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`hole_fill`'s result from the push-pull values (n, 4) at the hole pixels `at` (n,)."""
    mean, dist = row_mean(values, sources, at, filled)  # push-pull near the sources, the
    weight = np.minimum(dist / np.float32(ROW_MEAN_SPAN * values.shape[1]), np.float32(1.0))[:, None]  # row's
    filled[:, :3] += weight * (mean - filled[:, :3])  # mean far from them
    with np.errstate(divide="ignore"):
        far = np.float32(1.0) / filled[:, -1]  # 1 / 0 = inf: a direction
    return at, to_uint8(filled[:, :3]), far


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Float colours rounded as push_pull_fill rounds them."""
    return np.clip(rgb + np.float32(0.5), 0.0, 255.0).astype(np.uint8)


def row_mean(
    values: np.ndarray, sources: np.ndarray, at: np.ndarray, fallback: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For the pixels `at` (n,): the mean (n, 3) float32 of the colours (the first 3 channels of `values`
    (H, W, C) float32, integers) of the source pixels of their row (`fallback`'s first 3 (n, C) in rows with
    none), and the distance (n,) float32 along the row to the nearest of them (+inf: none). Only the rows of
    `at` are read (compiled: each row once for the run of `at` in it)."""
    mean = np.empty((at.size, 3), np.float32)
    dist = np.empty(at.size, np.float32)
    at, fallback = at.astype(np.int64, copy=False), np.ascontiguousarray(fallback)
    kernels.row_mean(np.ascontiguousarray(values), np.ascontiguousarray(sources), at, fallback, mean, dist)
    return mean, dist


#: Hole pixels this close (pixels) to a wide hole count as part of it (so the fill of the cracks around it
#: does not change when the memory later fills the hole itself: revisits stay identical).
WIDE_HOLE_MARGIN = 3


def wide_holes(holes: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
    """The holes at least 3 pixels across (morphological opening with a plus-shaped element), with the hole
    pixels within WIDE_HOLE_MARGIN of them: not the isolated one- or two-pixel cracks a surface shows when the
    camera comes closer than the reference camera was (push-pull fills those better than any layer).

    `within` (n,) flat indices, when given, holds every wide hole pixel (e.g. the wide holes of a mask with more
    holes: the layers only take holes away): the work is then at those pixels only, when they are few."""
    holes = np.ascontiguousarray(holes)
    radius = 1 + WIDE_HOLE_MARGIN
    if within is None or within.size > holes.size // WIDE_HOLE_SPARSE:
        out = np.empty(holes.shape, np.bool_)
        kernels.wide_holes(holes, radius, out)  # compiled: erosion, distance dilation
        return out
    out, core = np.zeros(holes.shape, np.bool_), np.zeros(holes.shape, np.bool_)
    kernels.wide_holes_at(holes, np.ascontiguousarray(within, np.int64), radius, core, out)  # their core: among them
    return out


#: `wide_holes` looks only at the pixels `within` when they are fewer than 1 / this of the image (each costs
#: 41 reads, where the whole image costs a few passes).
WIDE_HOLE_SPARSE = 16


#: Rays from a hole pixel in 4 directions, this many pixels long, find the surface around it (`surroundings`).
SURROUND_RADIUS = 4


#: A later layer's point fills a hole only when no farther than this (relative) behind the surface around it.
SURROUND_DEPTH_TOL = 0.05
#: `drop_see_through`: how far (pixels) a pixel looks for the nearer surface it may be seen through, how much
#: nearer (a depth ratio) that surface must be...
SEE_THROUGH_RADIUS = kernels.SEE_THROUGH_RADIUS  # (3: unrolled in the compiled kernel)
SEE_THROUGH_RATIO = 1.25
#: ...and how magnified that surface must be (the bilinear footprint closes the gaps up to about 1.9x).
SEE_THROUGH_MAGNIFICATION = 1.5


def surroundings(
    mask: np.ndarray, depth: np.ndarray, moving: np.ndarray, at: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For the hole pixels `at` (n,) flat indices of a splat (`mask`, `depth` (H, W)): the farthest depth of the
    first covered pixel along each of 4 rays (right, down, left, up) of SURROUND_RADIUS pixels, where the rays
    meet covered pixels on both sides (left and right, or up and down) ((n,) float32; -1 elsewhere: an open
    hole), and whether there every covered pixel met shows a moving object (`moving` (H, W) bool).

    A hole closed in on both sides is a crack in a surface seen closer than the reference camera saw it (wider
    than `wide_holes`'s cracks when the magnification is large) and no point farther than that surface belongs
    there, or a narrow disocclusion, whose far side is among what the rays meet; a wide disocclusion or a
    view past the frame edge is open. Work: at most 4 * SURROUND_RADIUS reads per hole pixel (compiled)."""
    limit = np.empty(at.size, np.float32)
    dynamic = np.empty(at.size, np.bool_)
    kernels.surroundings(
        np.ascontiguousarray(mask), np.ascontiguousarray(depth), np.ascontiguousarray(moving),
        at.astype(np.int64, copy=False), SURROUND_RADIUS, limit, dynamic,
    )  # fmt: skip
    return limit, dynamic


def drop_see_through(mask: np.ndarray, depth: np.ndarray, camera: SourceCamera) -> int:
    """In place on a splat's `mask` and `depth` (H, W): points seen through the cracks of a nearer, magnified
    surface become holes (mask False, depth +inf); returns how many. A surface seen more than about twice as close
    as the source camera saw it splats with gaps between its points (geometry/splat.py: the bilinear footprint
    closes up to 1.9x), and what lies behind shows through them as a grid (a ball passing close to the camera
    turned into a wire frame). Such a pixel has a surface more than SEE_THROUGH_RATIO times nearer within
    SEE_THROUGH_RADIUS pixels on both sides (left and right, or up and down) -- a depth edge or a slope has it on
    one side only -- and that surface is magnified at least SEE_THROUGH_MAGNIFICATION times from `camera` (a real
    gap between two surfaces that are not magnified, as in a turn on the spot, stays). Dropped, it is a crack of
    the near surface, filled from it. Compiled, branch-free: about 0.25 ms a 512x288 frame."""
    return int(
        kernels.see_through(
            depth,
            mask,
            np.float32(SEE_THROUGH_RATIO),
            camera.a,
            camera.b,
            camera.proj,
            camera.focal_ratio,
            SEE_THROUGH_MAGNIFICATION,
        )  # fmt: skip
    )


@dataclass(frozen=True)
class SourceCamera:
    """How a target camera's pixels relate to the source camera a layer was splatted from: a (W,), b (H,) the
    target pixel centres' rays (x / z and y / z, OpenCV), proj (3, 4) target camera coordinates (OpenCV) to the
    source's pixels (K @ world-to-source @ target-to-world), focal_ratio = target fx / source fx."""

    a: np.ndarray
    b: np.ndarray
    proj: np.ndarray
    focal_ratio: float

    @classmethod
    def between(
        cls, target: Intrinsics, target_c2w: np.ndarray, source: Intrinsics, source_c2w: np.ndarray
    ) -> SourceCamera:
        """From the cameras' intrinsics and camera-to-world poses (wire convention)."""
        k = np.array([[source.fx, 0.0, source.cx], [0.0, source.fy, source.cy], [0.0, 0.0, 1.0]])
        proj = k @ (np.linalg.inv(wire_to_cv(source_c2w)) @ wire_to_cv(target_c2w))[:3]
        a, b = target.ray_axes()
        return cls(a, b, np.ascontiguousarray(proj), target.fx / source.fx)


def near(mask: np.ndarray, r: int) -> np.ndarray:
    """(H, W) bool: within r pixels (a square) of a True pixel of `mask` (compiled: two sliding-window passes)."""
    rows, out = np.empty(mask.shape, np.bool_), np.empty(mask.shape, np.bool_)
    kernels.near(np.ascontiguousarray(mask), r, rows, out)
    return out


def clamped(depth: np.ndarray, at: np.ndarray, holes: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """Depths (n,) of the pixels `at` (n,) no farther than the `surroundings` limit of the same pixel among
    `holes` (sorted flat indices, with their `limit`), where it has one."""
    if not holes.size:
        return depth
    pos = np.minimum(np.searchsorted(holes, at), holes.size - 1)
    bound = np.where(holes[pos] == at, limit[pos], np.float32(-1.0))
    return np.where(bound >= 0, np.minimum(depth, bound), depth)


def in_front(depth: np.ndarray, limit: np.ndarray) -> np.ndarray:
    """(n,) bool: depths (n,) no farther than their `surroundings` limit (n,) allows (any, where it is -1)."""
    return (limit < 0) | (depth <= limit * np.float32(1.0 + SURROUND_DEPTH_TOL))
