"""Forward splatting: the explicit spatial constraint of docs/architecture.md §6, in NumPy.

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
3. **Z-test and depth-weighted blending.** Each target pixel keeps the nearest z-depth zmin among the
   contributions it got (np.minimum.at). A contribution at depth z then weighs
   bilinear * clip(1 - (z / zmin - 1) / depth_band, 0, 1): the nearest surface counts fully, points up to
   `depth_band` (relative) behind it fade out linearly, anything further is occluded. Directions at
   infinity have a depth larger than any point, so they lose against every finite surface.
4. **Output.** Colour is the weighted mean, mask is "some contribution survived", depth is zmin
   (target-camera z-depth; +inf where empty and also where the pixel shows a direction at infinity).

Pixels no point reaches (disocclusions, out of the source view) are masked invalid.

Performance: `Splatter` caches the source ray grid and every work buffer for one (source, target)
intrinsics pair. All work is vectorised over the N source pixels, one footprint corner at a time (flat
index views, so no (4, N) index array is built): per corner one np.minimum.at for the z-test, one take of
the z-buffer, and two np.add.at that each sum two channels packed as complex64 (r + i g, b + i w).
About 10 ms at 512x288 on one core of a 2-core Xeon VM (bench/bench_render.py); splitting the points over
two threads gave no speed-up there (ufunc.at and short memory-bound passes), so it runs on one. Points that
can only land on the cropped border (the camera turned away from part of the source) are dropped before the
scatter steps, which changes nothing in the result. No matmul on point arrays: NumPy hands it to a
multi-threaded BLAS whose spinning threads take the second core from the rest of the frame.

`PointSplatter` draws point sets (a fused world, a session memory); `sample` resolves it at a few pixels
only, and `SetBounds` culls whole sets by their bounding boxes: both exact, for drawing into scattered holes.

Threads: one `Splatter` must not be used by two threads at once; `splat()` builds a fresh one per call
(slower: new buffers) and is thread-safe (the ray grids it shares are read-only).
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgument
from .camera import Intrinsics
from .conventions import wire_to_cv

#: Integers up to this are exact in float32.
FLOAT32_EXACT_INTEGERS = 2**24

#: Z-test key of a direction at infinity: larger than any real depth, so any finite surface wins.
SKY_KEY = np.float32(1e30)


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
def _ray_axes(intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Normalised pixel-centre coordinates: a (W,) = (u + 0.5 - cx) / fx, b (H,) = (v + 0.5 - cy) / fy.

    The ray of pixel (u, v) in the OpenCV camera frame is (a[u], b[v], 1). Read-only float32.
    """
    a = ((np.arange(intr.width) + 0.5 - intr.cx) / intr.fx).astype(np.float32)
    b = ((np.arange(intr.height) + 0.5 - intr.cy) / intr.fy).astype(np.float32)
    a.flags.writeable = False
    b.flags.writeable = False
    return a, b


def relative_transform_cv(src_c2w_wire: np.ndarray, dst_c2w_wire: np.ndarray) -> np.ndarray:
    """(4, 4) float64 mapping source OpenCV camera coordinates to target OpenCV camera coordinates."""
    return np.linalg.inv(wire_to_cv(dst_c2w_wire)) @ wire_to_cv(src_c2w_wire)


class _Target:
    """The target half of splatting, shared by every source kind: a target image's buffers, and the
    footprint, z-test, blending and resolve steps over points given by their continuous target positions.

    Buffers for the points are sized for `capacity` points; a call may use fewer.
    """

    def __init__(self, dst_intr: Intrinsics, capacity: int, config: SplatConfig) -> None:
        self.dst_intr = dst_intr
        self.config = config
        self.capacity = capacity
        h, w = dst_intr.height, dst_intr.width
        # Target buffers are flat (h + 2) x (w + 2) grids: a one-pixel border (cropped at the end) takes the
        # footprint pixels just outside the image, and a trash area after it takes points that cannot be drawn.
        self._row = w + 2
        self._trash = (h + 2) * self._row
        size = self._trash + self._row + 2
        #: Flat offsets of the footprint pixels from its top-left one: top-left, top-right, bottom-left, bottom-right.
        self._corners = (0, 1, self._row, self._row + 1)
        self._zbuf = np.empty(size, np.float32)  # nearest z-test key per pixel
        self._inv = np.empty(size, np.float32)  # 1 / (depth_band * zbuf)
        self._acc = np.empty((size, 2), np.complex64)  # per pixel: sum w r + i sum w g, sum w b + i sum w
        n = capacity
        self._base = np.empty(n, np.intp)  # top-left footprint pixel of each point (flat index)
        self._wt = np.empty((4, n), np.float32)  # bilinear weight of each corner
        self._keep = np.empty(n, np.bool_)
        self._tmp = np.empty(n, np.float32)
        self._vals = np.empty(n, np.complex64)
        # Colour as complex pairs (r + i g, b + i 1), so that one add.at sums two channels.
        self._rg = np.empty(n, np.complex64)
        self._b1 = np.full(n, 1j, np.complex64)  # imaginary part stays 1; the real part takes b

    def bordered_k(self) -> np.ndarray:
        """K of the bordered grid: pixel centres at integers, the image's first pixel at 1."""
        d = self.dst_intr
        return np.array([[d.fx, 0.0, d.cx + 0.5], [0.0, d.fy, d.cy + 0.5], [0.0, 0.0, 1.0]])

    def draw(self, x: np.ndarray, y: np.ndarray, key: np.ndarray, rgb: np.ndarray) -> SplatResult:
        """Splat n points: continuous positions x, y (n,) in the bordered grid (NaN: not drawable; overwritten),
        z-test keys (n,) (target z-depth, SKY_KEY at infinity) and colours rgb (n, 3)."""
        self._scatter(x, y, key, rgb)
        return self._resolve()

    def draw_at(
        self, x: np.ndarray, y: np.ndarray, key: np.ndarray, rgb: np.ndarray, pixels: np.ndarray
    ) -> PixelSamples:
        """`draw`, resolved only at the image pixels `pixels` (flat indices y * width + x): no full-size output."""
        self._scatter(x, y, key, rgb)
        return self._resolve_at(pixels)

    def _scatter(self, x: np.ndarray, y: np.ndarray, key: np.ndarray, rgb: np.ndarray) -> None:
        n = len(key)
        with np.errstate(invalid="ignore", over="ignore"):
            np.clip(x, 0.0, self.dst_intr.width + 1.0, out=x)  # beyond the image: onto the cropped border
            np.clip(y, 0.0, self.dst_intr.height + 1.0, out=y)
            self._footprint(x, y, n)
            self._z_test(key, n)
            self._accumulate(rgb, key, n)

    def _footprint(self, x: np.ndarray, y: np.ndarray, n: int) -> None:
        """Top-left footprint pixel (`_base`) and the four bilinear weights (`_wt`) of every point.

        NaN positions go to the trash area (their weights are NaN and stay there)."""
        x0 = np.floor(x)
        y0 = np.floor(y)
        fx = np.subtract(x, x0, out=x)
        fy = np.subtract(y, y0, out=y)
        # Flat index, computed in floats so that NaN marks the undrawable; float32 is exact below 2**24.
        base = y0 if self._trash + self._row < FLOAT32_EXACT_INTEGERS else y0.astype(np.float64)
        base *= self._row
        base += x0
        np.copyto(base, self._trash, where=np.isnan(base))
        np.copyto(self._base[:n], base, casting="unsafe")
        gx = np.subtract(np.float32(1.0), fx, out=x0)
        gy = np.float32(1.0) - fy
        wt = self._wt[:, :n]
        np.multiply(gx, gy, out=wt[0])
        np.multiply(fx, gy, out=wt[1])
        np.multiply(gx, fy, out=wt[2])
        np.multiply(fx, fy, out=wt[3])

    def _z_test(self, key: np.ndarray, n: int) -> None:
        """Nearest key per pixel into `_zbuf` (+inf where none), then `_inv` = 1 / (depth_band * zbuf).

        Corners whose bilinear weight is below min_footprint_weight do not take part (key +inf)."""
        zbuf, base, keep, masked = self._zbuf, self._base[:n], self._keep[:n], self._tmp[:n]
        zbuf.fill(np.inf)
        for corner, offset in enumerate(self._corners):
            np.greater_equal(self._wt[corner, :n], np.float32(self.config.min_footprint_weight), out=keep)
            with np.errstate(divide="ignore"):
                np.divide(key, keep, out=masked)  # key / False = inf
            np.minimum.at(zbuf[offset:], base, masked)
        np.multiply(zbuf, np.float32(self.config.depth_band), out=self._inv)
        with np.errstate(divide="ignore"):
            np.divide(np.float32(1.0), self._inv, out=self._inv)

    def _accumulate(self, rgb: np.ndarray, key: np.ndarray, n: int) -> None:
        """Sum depth-weighted colours per pixel into `_acc`.

        Depth weight max(0, 1 - (z / zmin - 1) / band) = (1 + band) / band - z * inv[pixel], clipped to
        [0, 1]: above 1 only for corners too small to take part in the z-test."""
        rg, b1 = self._rg[:n], self._b1[:n]
        rg.real, rg.imag, b1.real = rgb[:, 0], rgb[:, 1], rgb[:, 2]
        band = self.config.depth_band
        full = np.float32((1.0 + band) / band)
        base, weight, vals, acc = self._base[:n], self._tmp[:n], self._vals[:n], self._acc
        acc.fill(0.0)
        for corner, offset in enumerate(self._corners):
            np.take(self._inv[offset:], base, out=weight, mode="clip")  # indices are in range: no checks
            weight *= key
            np.subtract(full, weight, out=weight)
            np.clip(weight, 0.0, 1.0, out=weight)
            weight *= self._wt[corner, :n]
            np.multiply(weight, rg, out=vals)
            np.add.at(acc[offset:, 0], base, vals)
            np.multiply(weight, b1, out=vals)
            np.add.at(acc[offset:, 1], base, vals)

    def _resolve(self) -> SplatResult:
        """Crop the border, normalise the colour sums, make mask and depth."""
        h, w = self.dst_intr.height, self.dst_intr.width
        inner = (slice(1, h + 1), slice(1, w + 1))
        zbuf = self._zbuf[: self._trash].reshape(h + 2, self._row)[inner]
        acc = self._acc.view(np.float32)[: self._trash].reshape(h + 2, self._row, 4)[inner]  # w r, w g, w b, w
        mask = zbuf < np.inf
        inv = np.zeros((h, w), np.float32)
        np.divide(np.float32(1.0), acc[:, :, 3], out=inv, where=mask)
        out = np.empty((h, w, 3), np.float32)
        for c in range(3):
            np.multiply(acc[:, :, c], inv, out=out[:, :, c])
        out += np.float32(0.5)  # weighted means of values in [0, 255]: no clipping needed
        depth = zbuf.copy()
        np.copyto(depth, np.float32(np.inf), where=depth >= SKY_KEY)  # directions at infinity
        return SplatResult(colour=out.astype(np.uint8), mask=mask, depth=depth)

    def _resolve_at(self, pixels: np.ndarray) -> PixelSamples:
        """`_resolve` at some pixels only (the same arithmetic, so the same values)."""
        y, x = np.divmod(np.asarray(pixels, np.intp), self.dst_intr.width)
        at = (y + 1) * self._row + (x + 1)  # bordered grid
        zbuf = np.take(self._zbuf, at)
        acc = np.take(self._acc.view(np.complex128).ravel(), at).view(np.float32).reshape(-1, 4)  # w r, w g, w b, w
        mask = zbuf < np.inf
        inv = np.zeros(len(at), np.float32)
        np.divide(np.float32(1.0), acc[:, 3], out=inv, where=mask)
        out = acc[:, :3] * inv[:, None]
        out += np.float32(0.5)
        np.copyto(zbuf, np.float32(np.inf), where=zbuf >= SKY_KEY)
        return PixelSamples(colour=out.astype(np.uint8), mask=mask, depth=zbuf)


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
        self._ray_a, self._ray_b = _ray_axes(src_intr)
        self._target = _Target(dst_intr, src_intr.width * src_intr.height, self.config)

    def __call__(
        self, colour: np.ndarray, depth: np.ndarray, src_c2w_wire: np.ndarray, dst_c2w_wire: np.ndarray
    ) -> SplatResult:
        """Splat `colour` (H, W, 3) uint8 with z-depth `depth` (H, W) float32 metres (+inf = at infinity)
        from the source camera `src_c2w_wire` (4, 4) to the target camera `dst_c2w_wire` (4, 4),
        both camera-to-world in the wire (OpenGL) convention. H, W are the source intrinsics' size."""
        colour, depth = self._check(colour, depth, src_c2w_wire, dst_c2w_wire)
        rel = relative_transform_cv(src_c2w_wire, dst_c2w_wire)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            x, y, key = self._project(depth, rel)
        rgb = colour.reshape(-1, 3)
        d = self.dst_intr
        inside = (x >= 0.0) & (x < d.width + 1.0) & (y >= 0.0) & (y < d.height + 1.0)  # NaN: False
        if inside.mean() < 0.97:  # the camera turned: skip the points that can only land on the cropped border
            keep = np.flatnonzero(inside)  # (order kept: the sums, and so the result, are exactly the same)
            x, y, key = x[keep], y[keep], key[keep]
            rgb = (
                np.take(np.ascontiguousarray(rgb).view(np.dtype((np.void, 3))).ravel(), keep)
                .view(np.uint8)
                .reshape(-1, 3)
            )
        return self._target.draw(x, y, key, rgb)

    def _project(self, depth: np.ndarray, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Continuous positions x, y (N,) in the bordered target grid (pixel centres at integers, the image's
        first pixel at 1) and z-test keys (N,). Points that cannot be drawn get NaN positions.

        With inv_d = 1 / depth (0 at infinity), a source point is depth * (R @ ray + t * inv_d): the
        projection needs only the bracket, and directions at infinity drop the translation by themselves.
        """
        k = self._target.bordered_k()
        m = (k @ rel[:3, :3]).astype(np.float32)
        kt = (k @ rel[:3, 3]).astype(np.float32)
        a, b = self._ray_a, self._ray_b
        inv_d = np.float32(1.0) / depth
        hom = []
        for i in range(3):
            h_i = np.multiply(inv_d, kt[i])
            h_i += np.add.outer(m[i, 1] * b + m[i, 2], m[i, 0] * a)  # (H, W): row i of M @ (a, b, 1)
            hom.append(h_i.ravel())
        hx, hy, hz = hom
        depth = depth.ravel()
        drawable = depth > 0  # not NaN, not <= 0
        drawable &= hz > np.float32(self.config.near) * inv_d.ravel()  # in front: z > near, or > 0 at infinity
        hz_drawable = np.where(drawable, hz, np.float32(np.nan))
        x = np.divide(hx, hz_drawable, out=hx)
        y = np.divide(hy, hz_drawable, out=hy)
        key = np.multiply(hz, depth, out=hz)  # target z-depth; +inf at infinity
        np.minimum(key, SKY_KEY, out=key)
        return x, y, key

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
        depth = depth.astype(np.float32, copy=False)
        _check_pose("src_c2w_wire", src_c2w)
        _check_pose("dst_c2w_wire", dst_c2w)
        return colour, depth


class PointSplatter:
    """Forward splatting of a point set (e.g. a fused world) into one target camera.

    Points are homogeneous world coordinates in the wire world frame: (x, y, z, 1) for a point, (dx, dy, dz, 0)
    for a direction at infinity (sky). Points outside the target's view are culled before the expensive
    scatter steps, so a large world costs little more than what the camera sees.

    Usage::

        splatter = PointSplatter(dst_intr, capacity=len(points))
        result = splatter(points, colours, dst_c2w_wire)   # points (N, 4) float32, colours (N, 3) uint8

    Not thread-safe (the work buffers are reused): one per session or thread.
    """

    def __init__(self, dst_intr: Intrinsics, capacity: int, config: SplatConfig | None = None) -> None:
        self.dst_intr = dst_intr
        self.config = config or SplatConfig()
        self._target = _Target(dst_intr, max(1, capacity), self.config)

    @property
    def capacity(self) -> int:
        return self._target.capacity

    def __call__(self, points: np.ndarray, colours: np.ndarray, dst_c2w_wire: np.ndarray) -> SplatResult:
        """Splat one point set: points (N, 4) float32, colours (N, 3) uint8."""
        return self.splat([(points, colours)], dst_c2w_wire)

    def splat(
        self,
        sets: Sequence[tuple[np.ndarray, np.ndarray]],
        dst_c2w_wire: np.ndarray,
        only: np.ndarray | None = None,
    ) -> SplatResult:
        """Splat several point sets together (one z-test over all): a list of (points, colours) pairs.

        `only` (H, W) bool: draw just the points that land on (or next to) these target pixels, e.g. the
        holes another pass left; the result is meaningful only there."""
        x, y, key, rgb = self._gather(sets, dst_c2w_wire, only)
        return self._target.draw(x, y, key, rgb)

    def sample(
        self, sets: Sequence[tuple[np.ndarray, np.ndarray]], dst_c2w_wire: np.ndarray, pixels: np.ndarray
    ) -> PixelSamples:
        """`splat(sets, dst_c2w_wire, only)` at the target pixels `pixels` ((n,) flat indices y * width + x)
        only, with `only` those pixels: the same values there, without full-size temporaries (for a few
        scattered holes)."""
        h, w = self.dst_intr.height, self.dst_intr.width
        only = np.zeros(h * w, bool)
        only[pixels] = True
        x, y, key, rgb = self._gather(sets, dst_c2w_wire, only.reshape(h, w))
        return self._target.draw_at(x, y, key, rgb, pixels)

    def _gather(
        self, sets: Sequence[tuple[np.ndarray, np.ndarray]], dst_c2w_wire: np.ndarray, only: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Positions, keys and colours of the points of every set that can land in the view (and on `only`)."""
        _check_pose("dst_c2w_wire", dst_c2w_wire)
        if only is not None:
            grown = only.copy()  # a point's bilinear footprint reaches one pixel further
            grown[1:] |= only[:-1]
            grown[:-1] |= only[1:]
            grown[:, 1:] |= grown[:, :-1].copy()
            grown[:, :-1] |= grown[:, 1:].copy()
            only = grown
        w2c = np.linalg.inv(wire_to_cv(dst_c2w_wire))
        proj = (self._target.bordered_k() @ w2c[:3]).astype(np.float32)  # (3, 4): world -> bordered pixels
        xs, ys, keys, rgbs = [], [], [], []
        for points, colours in sets:
            if points.ndim != 2 or points.shape[1] != 4 or colours.shape != (len(points), 3):
                raise InvalidArgument(
                    f"points must be (N, 4) and colours (N, 3), got {points.shape} and {colours.shape}",
                    field="points",
                )
            x, y, key, index = self._visible(points, proj, only)
            xs.append(x)
            ys.append(y)
            keys.append(key)
            rgbs.append(colours[index])
        n = sum(len(k) for k in keys)
        if n > self._target.capacity:
            self._target = _Target(self.dst_intr, n, self.config)
        if len(sets) == 1:
            return xs[0], ys[0], keys[0], rgbs[0]
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(keys), np.concatenate(rgbs)

    def _visible(
        self, points: np.ndarray, proj: np.ndarray, only: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Positions x, y, keys and indices of the points inside the target's view (with a small margin), and
        on the `only` pixels when given."""
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            hx, hy, hz = _transform(proj, points)  # hz: target z-depth of points, > 0 ahead for directions
            finite = points[:, 3] > 0
            ahead = np.where(finite, hz > np.float32(self.config.near), hz > 0)
            x = hx / hz
            y = hy / hz
            margin = 2.0
            visible = ahead & (x > -margin) & (x < self.dst_intr.width + margin)
            visible &= (y > -margin) & (y < self.dst_intr.height + margin)
        index = np.flatnonzero(visible)
        if only is not None and len(index):
            h, w = only.shape
            px = np.clip(x[index] - np.float32(0.5), 0, w - 1).astype(np.intp)  # bordered -> image pixel
            py = np.clip(y[index] - np.float32(0.5), 0, h - 1).astype(np.intp)
            index = index[only[py, px]]
        key = np.where(finite[index], hz[index], SKY_KEY).astype(np.float32)
        return x[index], y[index], key, index


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
    a, b = _ray_axes(intrinsics)
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
        self._owner = np.repeat(np.arange(self.count), sizes)  # the set of each box
        self._corners = (np.concatenate(boxes) if sum(sizes) else np.empty((0, 8, 4))).reshape(-1, 4).astype(np.float64)

    def in_view(self, intrinsics: Intrinsics, c2w_wire: np.ndarray, pixels: np.ndarray) -> np.ndarray:
        """(count,) bool: which sets may draw on the target `pixels` ((n,) flat indices y * width + x, n > 0) of a
        camera `c2w_wire` with `intrinsics`. False only when each of its boxes lies behind the camera, or wholly
        in front of it and beside the pixels' bounding rectangle: exact culling, since a box in front of the
        camera projects into the hull of its corners (with the rotation alone for a box of directions)."""
        shown = np.zeros(self.count, bool)
        if not len(self._corners):
            return shown
        rows, cols = np.divmod(pixels, intrinsics.width)
        margin = 2.0  # a point's bilinear footprint reaches its neighbours
        x0, x1 = cols.min() - margin, cols.max() + 1 + margin
        y0, y1 = rows.min() - margin, rows.max() + 1 + margin
        k = np.array([[intrinsics.fx, 0.0, intrinsics.cx], [0.0, intrinsics.fy, intrinsics.cy], [0.0, 0.0, 1.0]])
        proj = k @ np.linalg.inv(wire_to_cv(c2w_wire))[:3]  # world -> pixels (centres at + 0.5)
        hx, hy, hz = _transform(proj, self._corners)
        with np.errstate(divide="ignore", invalid="ignore"):
            u, v = (hx / hz).reshape(-1, 8), (hy / hz).reshape(-1, 8)
        ahead = (hz > 1e-9).reshape(-1, 8)
        beside = (u < x0).all(1) | (u > x1).all(1) | (v < y0).all(1) | (v > y1).all(1)
        show = ahead.any(1) & ~(ahead.all(1) & beside)
        shown[self._owner[show]] = True
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
