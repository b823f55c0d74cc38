"""Forward splatting: the explicit spatial constraint of docs/architecture.md §6 (NumPy set-up around the
compiled loops of kernels.py).

A source frame (colour + z-depth, with its camera) is unprojected at every pixel centre, moved into
the target camera, projected, z-tested and blended:

1. **Unproject.** Source pixel (u, v) has its centre at (u + 0.5, v + 0.5) (camera.py); with z-depth d
   its OpenCV-frame point is d * ((u + 0.5 - cx) / fx, (v + 0.5 - cy) / fy, 1). Depth +inf means a
   direction at infinity (sky, rotation-only scenes): it is rotated into the target camera without the
   translation. Depth NaN or <= 0 means no data: the pixel is dropped.
2. **Footprint: bilinear 2x2.** A point projecting to continuous pixel position (x, y) (pixel centres at
   integers) gives each of the four pixels around it its bilinear weight. This puts points at sub-pixel
   positions and closes the pinholes of a target camera that moved closer or zoomed, up to about 1.9x
   magnification; past that, holes stay and are left to the hole filler (fill.py). Footprint pixels whose
   weight is below `SplatConfig.min_footprint_weight` take no part in the z-test: they cannot occlude, and
   cannot make a pixel valid on their own (so a point exactly on a pixel centre covers that pixel only).
   Point sets may carry each point's cell (`PointSplatter`: the patch of surface it stands for); a point whose
   cell is magnified past what this footprint closes covers the cell instead (a tent over every pixel within
   its reach), so a fused world walked up to stays closed.
3. **Z-test and depth-weighted blending.** Each target pixel keeps the nearest z-depth zmin among the
   contributions it got. A contribution at depth z then weighs
   bilinear * clip(1 - (z / zmin - 1) / depth_band, 0, 1): the nearest surface counts fully, points up to
   `depth_band` (relative) behind it fade out linearly, anything further is occluded. Directions at
   infinity have a depth larger than any point, so they lose against every finite surface.
4. **Output.** Colour is the weighted mean, mask is "some contribution survived", depth is zmin
   (target-camera z-depth; +inf where empty and also where the pixel shows a direction at infinity).

Pixels no point reaches (disocclusions, out of the source view) are masked invalid.

Performance: `Splatter` caches the source ray grid and every work buffer for one (source, target)
intrinsics pair. The per-point work runs in numba-compiled loops (kernels.py), each one pass without (N,)
temporaries: projection of the source pixels (`project_frame`), or of point sets with their view culling
(`project_points`); footprint + z-test, which also packs the drawn points (`footprint_z_test`); the
depth-weighted sums, footprint corner by corner (`accumulate`); and the resolve (`resolve`). They replaced
np.minimum.at / np.add.at scatters (13.7 ms a frame at 512x288 on this project's 2-core AMD EPYC VM) with the
same float32 arithmetic in the same order: the images are bit-identical (tests/geometry compares them with a
NumPy reference). The splat now takes about 6 ms of CPU there (bench/bench_render.py, shared machine; README
has the idle numbers). Serial by choice (a parallel version was not tried: the server runs other threads beside
a session's on two cores), and the kernels release the GIL so those threads run meanwhile. Points that can only
land on the cropped border (outside x in [0, w + 1), y in [0, h + 1) in the bordered grid: a camera turned away
from part of the source) are skipped, which changes nothing in the result. No matmul on point arrays: NumPy
hands it to a multi-threaded BLAS whose spinning threads take the second core from the rest of the frame.

`PointSplatter` draws point sets (a fused world, a session memory); `sample` resolves it at a few pixels
only, and `SetBounds` culls whole sets by their bounding boxes: both exact, for drawing into scattered holes.

Threads: one `Splatter` must not be used by two threads at once; `splat()` builds a fresh one per call
(slower: new buffers) and is thread-safe (the ray grids it shares are read-only).
"""

from __future__ import annotations

import collections
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgument
from . import kernels
from .camera import Intrinsics
from .conventions import wire_to_cv

#: Z-test key of a direction at infinity: larger than any real depth, so any finite surface wins.
SKY_KEY = np.float32(1e30)

#: A point whose source cell reaches farther than this (pixels, in x or y) from it in the target draws a wide
#: footprint (PointSplatter with cells): a cell of up to 1.9 pixels keeps the bilinear one, which closes it. (0.75
#: spread surfaces a little more over what lies beside them: on bench_quality --paths roam, dolly, 1000003-dusk
#: lost 0.03 dB more.)
WIDE_REACH = 0.95
#: A cell's reach is capped at this many pixels (a surface right in front of the camera cracks, as before, past
#: a footprint of 2 * MAX_REACH + 1 pixels; and culling by bounds grows by this much).
MAX_REACH = 8.0
#: `SetBounds.in_view`'s margin for point sets drawn with cells: a wide footprint reaches MAX_REACH +
#: kernels.WIDE_SPILL pixels (and 2 more, as every footprint: `boxes_in_view`).
CELL_MARGIN = 2.0 + MAX_REACH + kernels.WIDE_SPILL


@dataclass(frozen=True)
class SplatConfig:
    """How points are blended. Depths are in the scene's units (metres)."""

    #: Relative depth band behind the nearest surface in which points blend (0.05 = 5 % of its depth).
    depth_band: float = 0.05
    #: Footprint pixels with a bilinear weight below this take no part in the z-test (cannot occlude, cannot
    #: make a pixel valid); where the pixel is covered anyway they still add their (tiny) weighted colour.
    min_footprint_weight: float = 0.01
    #: Points closer to the target camera than this (z-depth) are dropped.
    near: float = 1e-3

    def __post_init__(self) -> None:
        if not self.depth_band > 0.0:
            raise InvalidArgument(f"depth_band must be > 0, got {self.depth_band}", field="depth_band")
        if not 0.0 < self.min_footprint_weight < 0.25:
            raise InvalidArgument(
                f"min_footprint_weight must be in (0, 0.25), got {self.min_footprint_weight}",
                field="min_footprint_weight",
            )
        if not self.near > 0.0:
            raise InvalidArgument(f"near must be > 0, got {self.near}", field="near")


@dataclass(frozen=True)
class SplatResult:
    """A splatted image at the target intrinsics' size (h, w)."""

    #: (h, w, 3) uint8, same colour space as the source; 0 where `mask` is False.
    colour: np.ndarray
    #: (h, w) bool, True where some source point landed (with a footprint weight >= min_footprint_weight).
    mask: np.ndarray
    #: (h, w) float32 target-camera z-depth; +inf where empty or showing a direction at infinity.
    depth: np.ndarray


@dataclass(frozen=True)
class PixelSamples:
    """A splat resolved at n chosen target pixels only (`PointSplatter.sample`): the values a `SplatResult`
    has there."""

    #: (n, 3) uint8; 0 where `mask` is False.
    colour: np.ndarray
    #: (n,) bool.
    mask: np.ndarray
    #: (n,) float32 target-camera z-depth; +inf where empty or showing a direction at infinity.
    depth: np.ndarray


@functools.lru_cache(maxsize=16)
def ray_axes(intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """`Intrinsics.ray_axes` as read-only float32, cached: the ray of pixel (u, v) in the OpenCV camera frame is
    (a[u], b[v], 1)."""
    a, b = (axis.astype(np.float32) for axis in intr.ray_axes())
    a.flags.writeable = False
    b.flags.writeable = False
    return a, b


def relative_transform_cv(src_c2w_wire: np.ndarray, dst_c2w_wire: np.ndarray) -> np.ndarray:
    """(4, 4) float64 mapping source OpenCV camera coordinates to target OpenCV camera coordinates."""
    return np.linalg.inv(wire_to_cv(dst_c2w_wire)) @ wire_to_cv(src_c2w_wire)


class _Target:
    """The target half of splatting, shared by every source kind: a target image's buffers, and the
    footprint, z-test, blending and resolve steps (kernels.py) over points given by their continuous target
    positions.

    Buffers for the points are sized for `capacity` points; a call may use fewer.
    """

    def __init__(self, dst_intr: Intrinsics, capacity: int, config: SplatConfig) -> None:
        self.dst_intr = dst_intr
        self.config = config
        self.capacity = capacity
        h, w = dst_intr.height, dst_intr.width
        # Target buffers are flat (h + 2) x (w + 2) grids: a one-pixel border (cropped at the end) takes the
        # footprint pixels just outside the image.
        self._row = w + 2
        size = (h + 2) * self._row
        self._zbuf = np.empty(size, np.float32)  # nearest z-test key per pixel
        self._inv = np.empty(size, np.float32)  # 1 / (depth_band * zbuf)
        self._acc = np.empty((size, 4), np.float32)  # per pixel: sum w r, sum w g, sum w b, sum w
        # The drawn points (kernels.footprint_z_test): top-left footprint pixel (flat index), bilinear weight of
        # each corner, key, colour as float32 (r, g, b, 1).
        self._base = np.empty(capacity, np.intp)
        self._wt = np.empty((4, capacity), np.float32)
        self._keys = np.empty(capacity, np.float32)
        self._rgbw = np.empty((capacity, 4), np.float32)
        self._inner: np.ndarray | None = None  # grid index of every image pixel, row-major (made on first draw)
        self._clean = False  # zbuf is +inf everywhere (after a `draw_at`): the next `draw_at` need not reset it
        self._min_weight = np.float32(config.min_footprint_weight)
        self._band = np.float32(config.depth_band)
        self._full = np.float32((1.0 + config.depth_band) / config.depth_band)

    def bordered_k(self) -> np.ndarray:
        """K of the bordered grid: pixel centres at integers, the image's first pixel at 1."""
        d = self.dst_intr
        return np.array([[d.fx, 0.0, d.cx + 0.5], [0.0, d.fy, d.cy + 0.5], [0.0, 0.0, 1.0]])

    def draw(
        self, x: np.ndarray, y: np.ndarray, key: np.ndarray, rgb: np.ndarray, reach: np.ndarray | None = None
    ) -> SplatResult:
        """Splat n points: continuous positions x, y (n,) in the bordered grid (NaN: not drawable), z-test keys
        (n,) (target z-depth, SKY_KEY at infinity) and colours rgb (n, 3); with `reach` (2, n) (how far each
        point's source cell reaches in x and y, pixels), the points past WIDE_REACH draw a wide footprint
        (kernels.footprint_z_test)."""
        self._scatter(x, y, key, rgb, sparse=False, reach=reach)
        h, w = self.dst_intr.height, self.dst_intr.width
        if self._inner is None:
            self._inner = ((np.arange(1, h + 1) * self._row)[:, None] + np.arange(1, w + 1)).ravel()
        colour, mask, depth = self._resolve(self._inner)
        return SplatResult(colour=colour.reshape(h, w, 3), mask=mask.reshape(h, w), depth=depth.reshape(h, w))

    def draw_at(
        self,
        x: np.ndarray,
        y: np.ndarray,
        key: np.ndarray,
        rgb: np.ndarray,
        pixels: np.ndarray,
        reach: np.ndarray | None = None,
    ) -> PixelSamples:
        """`draw`, resolved only at the image pixels `pixels` (flat indices y * width + x): no full-size output,
        and no full-grid pass either (the work grows with the points: the grid buffers are set at the points'
        footprints only, and zbuf is put back to +inf there afterwards)."""
        m, m2 = self._scatter(x, y, key, rgb, sparse=True, reach=reach)
        y_, x_ = np.divmod(np.asarray(pixels, np.intp), self.dst_intr.width)
        colour, mask, depth = self._resolve((y_ + 1) * self._row + (x_ + 1))
        kernels.forget(m, self._base, self.dst_intr.width, self._zbuf, m2, self._wt, self.dst_intr.height)
        self._clean = True
        return PixelSamples(colour=colour, mask=mask, depth=depth)

    def _scatter(
        self, x: np.ndarray, y: np.ndarray, key: np.ndarray, rgb: np.ndarray, sparse: bool, reach: np.ndarray | None
    ) -> tuple[int, int]:
        """Footprints and z-test (zbuf), then the depth-weighted colour sums (acc); returns how many points were
        drawn with the bilinear footprint and with a wide one. `sparse`: only the drawn points' footprint pixels of
        the buffers are set (the others are left stale: resolve only pixels where zbuf < inf counts)."""
        x, y, key = (np.ascontiguousarray(a, np.float32) for a in (x, y, key))
        rgb = np.ascontiguousarray(rgb, np.uint8)
        if not len(x) == len(y) == len(key) == len(rgb) <= self.capacity or rgb.shape[1:] != (3,):
            raise ValueError(f"{len(key)} points for a target with room for {self.capacity}, or mismatched arrays")
        use_reach = reach is not None
        reach = np.ascontiguousarray(reach, np.float32) if use_reach else _NO_REACH
        if use_reach and reach.shape != (2, len(x)):
            raise ValueError(f"reach must be (2, {len(x)}), got {reach.shape}")
        w, h = self.dst_intr.width, self.dst_intr.height
        base, wt, keys, rgbw, zbuf = self._base, self._wt, self._keys, self._rgbw, self._zbuf
        clear = not (sparse and self._clean)
        self._clean = False
        m, m2 = kernels.footprint_z_test(x, y, key, rgb, w, h, self._min_weight, base, wt, keys, rgbw, zbuf, clear,
                                         reach, use_reach, _WIDE)  # fmt: skip
        kernels.accumulate(m, base, wt, keys, rgbw, w, zbuf, self._band, self._full, self._inv, self._acc, sparse,
                           m2, h)  # fmt: skip
        return m, m2

    def _resolve(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Colour (n, 3) uint8, mask (n,) and depth (n,) at the grid pixels `at` (n,)."""
        n = len(at)
        colour, mask, depth = np.empty((n, 3), np.uint8), np.empty(n, np.bool_), np.empty(n, np.float32)
        kernels.resolve(self._zbuf, self._acc, np.ascontiguousarray(at, np.intp), colour, mask, depth)
        return colour, mask, depth


_NO_REACH = np.zeros((2, 1), np.float32)  # (the kernels' placeholder when no point has a cell)
_NO_CELLS = np.zeros((1, 6), np.float32)
_NO_SUMS = np.zeros((1, 1), np.int32)
_NO_PIXELS = np.zeros((1, 1), np.bool_)
_WIDE = np.float32(WIDE_REACH)


def near_pixels(mask: np.ndarray, r: int) -> np.ndarray:
    """(H, W) bool: within r pixels (a square) of a True pixel of `mask` (compiled: two sliding-window passes)."""
    rows, out = np.empty(mask.shape, np.bool_), np.empty(mask.shape, np.bool_)
    kernels.near(np.ascontiguousarray(mask), r, rows, out)
    return out


def _check_pose(name: str, m: np.ndarray) -> None:
    m = np.asarray(m)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise InvalidArgument(f"{name} must be a finite (4, 4) matrix, got shape {m.shape}", field=name)


class Splatter:
    """Forward splatting of whole frames for a fixed (source, target) intrinsics pair, with cached grids and
    buffers.

    Usage::

        splatter = Splatter(src_intr, dst_intr)
        result = splatter(colour, depth, src_c2w_wire, dst_c2w_wire)   # SplatResult

    Not thread-safe (the work buffers are reused): one per session or thread.
    """

    def __init__(self, src_intr: Intrinsics, dst_intr: Intrinsics, config: SplatConfig | None = None) -> None:
        self.src_intr = src_intr
        self.dst_intr = dst_intr
        self.config = config or SplatConfig()
        self._ray_a, self._ray_b = ray_axes(src_intr)
        n = src_intr.width * src_intr.height
        self._target = _Target(dst_intr, n, self.config)
        self._near = np.float32(self.config.near)
        self._x, self._y, self._key = (np.empty(n, np.float32) for _ in range(3))  # projected source pixels

    def __call__(
        self, colour: np.ndarray, depth: np.ndarray, src_c2w_wire: np.ndarray, dst_c2w_wire: np.ndarray
    ) -> SplatResult:
        """Splat `colour` (H, W, 3) uint8 with z-depth `depth` (H, W) float32 metres (+inf = at infinity)
        from the source camera `src_c2w_wire` (4, 4) to the target camera `dst_c2w_wire` (4, 4),
        both camera-to-world in the wire (OpenGL) convention. H, W are the source intrinsics' size."""
        colour, depth = self._check(colour, depth, src_c2w_wire, dst_c2w_wire)
        rel = relative_transform_cv(src_c2w_wire, dst_c2w_wire)
        k = self._target.bordered_k()
        m = (k @ rel[:3, :3]).astype(np.float32)
        kt = (k @ rel[:3, 3]).astype(np.float32)
        x, y, key = self._x, self._y, self._key
        kernels.project_frame(depth, self._ray_a, self._ray_b, m, kt, self._near, x, y, key)
        return self._target.draw(x, y, key, colour.reshape(-1, 3))

    def _check(
        self, colour: np.ndarray, depth: np.ndarray, src_c2w: np.ndarray, dst_c2w: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        h, w = self.src_intr.height, self.src_intr.width
        colour = np.asarray(colour)
        if colour.shape != (h, w, 3) or colour.dtype != np.uint8:
            raise InvalidArgument(
                f"colour must be ({h}, {w}, 3) uint8 like the source intrinsics, got {colour.shape} {colour.dtype}",
                field="colour",
            )
        depth = np.asarray(depth)
        if depth.shape != (h, w):
            raise InvalidArgument(f"depth must be ({h}, {w}), got {depth.shape}", field="depth")
        depth = np.ascontiguousarray(depth, np.float32)
        _check_pose("src_c2w_wire", src_c2w)
        _check_pose("dst_c2w_wire", dst_c2w)
        return np.ascontiguousarray(colour), depth


class PointSplatter:
    """Forward splatting of a point set (e.g. a fused world) into one target camera.

    Points are homogeneous world coordinates in the wire world frame: (x, y, z, 1) for a point, (dx, dy, dz, 0)
    for a direction at infinity (sky). Points outside the target's view are culled before the expensive
    scatter steps, so a large world costs little more than what the camera sees.

    A set may also give each point its cell: (N, 6) float32, the two world vectors from the point to its
    neighbours in the frame it was seen in (one along the source's rows, one down its columns; zero for a
    direction), i.e. the patch of surface the point stands for. Projected into the target they say how far the
    cell reaches from the point (its magnification); a point magnified past what the bilinear footprint closes
    (a reach above WIDE_REACH pixels) covers its whole reach (kernels.footprint_z_test), so a continuous surface
    seen closer than its source saw it stays closed, while across a depth edge (where the cells end: the fused
    world's cells do not span one) it stays open; the z-test still keeps the nearest surface.

    Usage::

        splatter = PointSplatter(dst_intr, capacity=len(points))
        result = splatter(points, colours, dst_c2w_wire)   # points (N, 4) float32, colours (N, 3) uint8

    Not thread-safe (the work buffers are reused): one per session or thread.
    """

    def __init__(self, dst_intr: Intrinsics, capacity: int, config: SplatConfig | None = None) -> None:
        self.dst_intr = dst_intr
        self.config = config or SplatConfig()
        self._target = _Target(dst_intr, max(1, capacity), self.config)
        self._near = np.float32(self.config.near)

    @property
    def capacity(self) -> int:
        return self._target.capacity

    def __call__(self, points: np.ndarray, colours: np.ndarray, dst_c2w_wire: np.ndarray) -> SplatResult:
        """Splat one point set: points (N, 4) float32, colours (N, 3) uint8."""
        return self.splat([(points, colours)], dst_c2w_wire)

    def splat(
        self,
        sets: Sequence[tuple[np.ndarray, ...]],
        dst_c2w_wire: np.ndarray,
        only: np.ndarray | None = None,
    ) -> SplatResult:
        """Splat several point sets together (one z-test over all): a list of (points, colours) or (points,
        colours, cells) tuples.

        `only` (H, W) bool: draw just the points that land on (or next to) these target pixels, e.g. the
        holes another pass left; the result is meaningful only there."""
        x, y, key, rgb, reach = self._gather(sets, dst_c2w_wire, only)
        return self._target.draw(x, y, key, rgb, reach)

    def sample(
        self, sets: Sequence[tuple[np.ndarray, ...]], dst_c2w_wire: np.ndarray, pixels: np.ndarray
    ) -> PixelSamples:
        """`splat(sets, dst_c2w_wire, only)` at the target pixels `pixels` ((n,) flat indices y * width + x)
        only, with `only` those pixels: the same values there, without full-size temporaries (for a few
        scattered holes)."""
        grown = np.zeros((self.dst_intr.height, self.dst_intr.width), bool)
        kernels.around(np.ascontiguousarray(pixels, np.int64), grown)  # compiled: the pixels and their neighbours
        x, y, key, rgb, reach = self._gather(sets, dst_c2w_wire, grown, is_grown=True)
        return self._target.draw_at(x, y, key, rgb, pixels, reach)

    def _gather(
        self,
        sets: Sequence[tuple[np.ndarray, ...]],
        dst_c2w_wire: np.ndarray,
        only: np.ndarray | None,
        is_grown: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Positions, keys, colours and reaches (None when no set has cells) of the points of every set that can
        land in the view (and on `only`, grown by a pixel here unless `is_grown` says it is already)."""
        _check_pose("dst_c2w_wire", dst_c2w_wire)
        if only is not None and not is_grown:
            grown = only.copy()  # a point's bilinear footprint reaches one pixel further
            grown[1:] |= only[:-1]
            grown[:-1] |= only[1:]
            grown[:, 1:] |= grown[:, :-1].copy()
            grown[:, :-1] |= grown[:, 1:].copy()
            only = grown
        w2c = np.linalg.inv(wire_to_cv(dst_c2w_wire))
        proj = (self._target.bordered_k() @ w2c[:3]).astype(np.float32)  # (3, 4): world -> bordered pixels
        for entry in sets:
            points, colours = entry[0], entry[1]
            if (
                len(entry) not in (2, 3)
                or points.ndim != 2
                or points.shape[1] != 4
                or colours.shape != (len(points), 3)
            ):
                raise InvalidArgument(
                    f"points must be (N, 4) and colours (N, 3), got {points.shape} and {colours.shape}",
                    field="points",
                )
            if len(entry) == 3 and entry[2].shape != (len(points), 6):
                raise InvalidArgument(f"cells must be ({len(points)}, 6), got {entry[2].shape}", field="cells")
        total = sum(len(entry[0]) for entry in sets)
        x, y, key = (np.empty(total, np.float32) for _ in range(3))
        rgb = np.empty((total, 3), np.uint8)
        with_cells = any(len(entry) == 3 for entry in sets)
        reach = np.zeros((2, total), np.float32) if with_cells else _NO_REACH
        use_only = only is not None
        only = np.ascontiguousarray(only) if use_only else np.zeros((1, 1), np.bool_)
        sums, reachable = _NO_SUMS, _NO_PIXELS
        if use_only and with_cells:  # is any pixel under a wide footprint in `only`: its summed-area table,
            sums = np.zeros((only.shape[0] + 1, only.shape[1] + 1), np.int32)
            np.cumsum(np.cumsum(only, axis=0, dtype=np.int32), axis=1, out=sums[1:, 1:])
            reachable = near_pixels(only, math.ceil(MAX_REACH + kernels.WIDE_SPILL) + 1)  # and where one reaches it
        d, n = self.dst_intr, 0
        for entry in sets:  # in order: the same sums
            points, colours = np.asarray(entry[0], np.float32), np.asarray(entry[1], np.uint8)
            use_cells = len(entry) == 3
            cells = np.asarray(entry[2], np.float32) if use_cells else _NO_CELLS
            n = kernels.project_points(points, colours, proj, self._near, d.width, d.height, only, use_only,
                                       x, y, key, rgb, n, cells, use_cells, _WIDE, np.float32(MAX_REACH), sums,
                                       reachable, reach)  # fmt: skip
        if n > self._target.capacity:
            self._target = _Target(self.dst_intr, n, self.config)
        return x[:n], y[:n], key[:n], rgb[:n], (reach[:, :n] if with_cells else None)


def frame_points(
    depth: np.ndarray, intrinsics: Intrinsics, c2w_wire: np.ndarray, where: np.ndarray | None = None
) -> np.ndarray:
    """(N, 4) float32 homogeneous wire-world points of a frame's pixel centres (row-major, only where `where`
    (H, W) bool is True, when given): (x, y, z, 1) for finite z-depth, (dx, dy, dz, 0) for +inf. Pixels with
    no depth (NaN, <= 0) are left out."""
    depth = np.asarray(depth, np.float32)
    keep = depth > 0
    if where is not None:
        keep &= where
    flat = np.flatnonzero(keep)
    return pixel_points(flat, depth.reshape(-1)[flat], intrinsics, c2w_wire)


def pixel_points(flat: np.ndarray, depth: np.ndarray, intrinsics: Intrinsics, c2w_wire: np.ndarray) -> np.ndarray:
    """`frame_points` of some pixels: flat indices (n,) (y * width + x) with their z-depths (n,) (> 0; +inf for a
    direction), as (n, 4) float32 homogeneous wire-world points."""
    a, b = ray_axes(intrinsics)
    rows, cols = np.divmod(flat, intrinsics.width)
    d = np.asarray(depth, np.float32)
    finite = np.isfinite(d)
    scale = np.where(finite, d, np.float32(1.0))
    cam = np.empty((len(d), 4), np.float64)  # OpenCV camera frame
    cam[:, 0] = a[cols] * scale
    cam[:, 1] = b[rows] * scale
    cam[:, 2] = scale
    cam[:, 3] = finite
    world = np.empty((len(d), 4), np.float32)
    world[:, 0], world[:, 1], world[:, 2] = _transform(wire_to_cv(c2w_wire)[:3], cam)
    world[:, 3] = finite
    return world


def _transform(m: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three rows of m (3, 4) @ points.T for (N, 4) points, computed in points' dtype, element by element.

    Not with matmul: NumPy hands that to a multi-threaded BLAS, whose threads keep spinning after the call and
    take the second core from the rest of the frame (and `m @ points.T` on this layout is ~50x slower)."""
    m = m.astype(points.dtype)
    p = [points[:, j] for j in range(4)]
    out = []
    for i in range(3):
        row = p[0] * m[i, 0]
        for j in range(1, 4):
            if m[i, j] != 0:
                row += p[j] * m[i, j]
        out.append(row)
    return out[0], out[1], out[2]


def bounding_boxes(points: np.ndarray) -> np.ndarray:
    """(B, 8, 4) float32 corners of the axis-aligned boxes around a point set's finite points (w = 1) and around
    its directions at infinity (w = 0), one per kind present (B = 0, 1 or 2): every point is in one of them."""
    finite = points[:, 3] > 0
    kinds = ((1.0, points[finite, :3] / points[finite, 3:]), (0.0, points[~finite, :3]))  # (w, xyz of that kind)
    boxes = []
    for w, xyz in kinds:
        if len(xyz):
            lo, hi = xyz.min(axis=0), xyz.max(axis=0)
            box = np.full((8, 4), w, np.float32)
            for k in range(8):
                box[k, :3] = [hi[a] if k >> a & 1 else lo[a] for a in range(3)]
            boxes.append(box)
    return np.stack(boxes) if boxes else np.empty((0, 8, 4), np.float32)


class SetBounds:
    """The `bounding_boxes` of several point sets, gathered once, to cull the sets per frame (`in_view`)."""

    def __init__(self, boxes: Sequence[np.ndarray]) -> None:
        self.count = len(boxes)
        sizes = [len(b) for b in boxes]
        self._owner = np.repeat(np.arange(self.count, dtype=np.int64), sizes)  # the set of each box
        corners = np.concatenate(boxes) if sum(sizes) else np.empty((0, 8, 4))
        self._corners = np.ascontiguousarray(corners.reshape(-1, 4), np.float64)

    def in_view(
        self, intrinsics: Intrinsics, c2w_wire: np.ndarray, pixels: np.ndarray, margin: float = 2.0
    ) -> np.ndarray:
        """(count,) bool: which sets may draw on the target `pixels` ((n,) flat indices y * width + x, n > 0) of a
        camera `c2w_wire` with `intrinsics`. False only when each of its boxes lies behind the camera, or wholly
        in front of it and beside the pixels' bounding rectangle grown by `margin` pixels (2: how far a bilinear
        footprint reaches; CELL_MARGIN for sets drawn with cells): exact culling, since a box in front of the
        camera projects into the hull of its corners (with the rotation alone for a box of directions)."""
        shown = np.zeros(self.count, bool)
        if not len(self._corners):
            return shown
        pixels = np.ascontiguousarray(pixels, np.int64)
        if not pixels.size:
            raise ValueError("in_view needs at least one pixel")
        k = np.array([[intrinsics.fx, 0.0, intrinsics.cx], [0.0, intrinsics.fy, intrinsics.cy], [0.0, 0.0, 1.0]])
        proj = k @ np.linalg.inv(wire_to_cv(c2w_wire))[:3]  # world -> pixels (centres at + 0.5)
        kernels.boxes_in_view(pixels, intrinsics.width, self._corners, proj, self._owner, float(margin), shown)
        return shown


def boxes_in_view(
    boxes: Sequence[np.ndarray], intrinsics: Intrinsics, c2w_wire: np.ndarray, pixels: np.ndarray
) -> np.ndarray:
    """`SetBounds(boxes).in_view(intrinsics, c2w_wire, pixels)`: which of the point sets bounded by `boxes` (each
    its `bounding_boxes`) may draw on the target pixels."""
    return SetBounds(boxes).in_view(intrinsics, c2w_wire, pixels)


def splat(
    colour: np.ndarray,
    depth: np.ndarray,
    src_intr: Intrinsics,
    src_c2w_wire: np.ndarray,
    dst_intr: Intrinsics,
    dst_c2w_wire: np.ndarray,
    config: SplatConfig | None = None,
) -> SplatResult:
    """Splat one frame into another camera; see the module docstring. Thread-safe; for many frames with
    the same intrinsics a `Splatter` is faster (it keeps its buffers)."""
    return Splatter(src_intr, dst_intr, config)(colour, depth, src_c2w_wire, dst_c2w_wire)


class SplatterCache:
    """A few Splatters for one source camera, keyed by target intrinsics, least recently used out first.

    An engine that changes its field of view or aspect gets a new Splatter (its buffers are sized for
    the target); the old ones are dropped past `capacity`. Owned by one session: not thread-safe.
    """

    def __init__(self, source: Intrinsics, capacity: int = 4, config: SplatConfig | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"a splatter cache needs capacity >= 1, got {capacity}")
        self.source = source
        self.capacity = capacity
        self.config = config
        self._splatters: collections.OrderedDict[Intrinsics, Splatter] = collections.OrderedDict()

    def get(self, target: Intrinsics) -> Splatter:
        """The Splatter for `target`, made on first use."""
        splatter = self._splatters.get(target)
        if splatter is None:
            if len(self._splatters) >= self.capacity:
                self._splatters.popitem(last=False)
            splatter = self._splatters[target] = Splatter(self.source, target, self.config)
        else:
            self._splatters.move_to_end(target)
        return splatter

    def __len__(self) -> int:
        return len(self._splatters)

    def clear(self) -> None:
        self._splatters.clear()
