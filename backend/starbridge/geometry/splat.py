"""Forward splatting: the explicit spatial constraint of DESIGN.md section 6, in NumPy.

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
two threads gave no speed-up there (ufunc.at and short memory-bound passes), so it runs on one.

Threads: one `Splatter` must not be used by two threads at once; `splat()` builds a fresh one per call
(slower: new buffers) and is thread-safe (the ray grids it shares are read-only).
"""

from __future__ import annotations

import collections
import functools
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


class Splatter:
    """Forward splatting for a fixed (source, target) intrinsics pair, with cached grids and buffers.

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
        n = src_intr.width * src_intr.height
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
        self._base = np.empty(n, np.intp)  # top-left footprint pixel of each point (flat index)
        self._wt = np.empty((4, n), np.float32)  # bilinear weight of each corner
        self._keep = np.empty(n, np.bool_)
        self._tmp = np.empty(n, np.float32)
        self._vals = np.empty(n, np.complex64)
        # Colour as complex pairs (r + i g, b + i 1), so that one add.at sums two channels.
        self._rg = np.empty(n, np.complex64)
        self._b1 = np.full(n, 1j, np.complex64)  # imaginary part stays 1; the real part takes b

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
            self._footprint(x, y)
            self._z_test(key)
            self._accumulate(colour, key)
            return self._resolve()

    # ------------------------------------------------------------------ steps

    def _project(self, depth: np.ndarray, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Continuous positions x, y (N,) in the bordered target grid (pixel centres at integers, the image's
        first pixel at 1) and z-test keys (N,). Points that cannot be drawn get NaN positions.

        With inv_d = 1 / depth (0 at infinity), a source point is depth * (R @ ray + t * inv_d): the
        projection needs only the bracket, and directions at infinity drop the translation by themselves.
        """
        d = self.dst_intr
        k = np.array([[d.fx, 0.0, d.cx + 0.5], [0.0, d.fy, d.cy + 0.5], [0.0, 0.0, 1.0]])  # K, bordered grid
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
        np.clip(x, 0.0, d.width + 1.0, out=x)  # beyond the image: onto the cropped border
        np.clip(y, 0.0, d.height + 1.0, out=y)
        key = np.multiply(hz, depth, out=hz)  # target z-depth; +inf at infinity
        np.minimum(key, SKY_KEY, out=key)
        return x, y, key

    def _footprint(self, x: np.ndarray, y: np.ndarray) -> None:
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
        np.copyto(self._base, base, casting="unsafe")
        gx = np.subtract(np.float32(1.0), fx, out=x0)
        gy = np.float32(1.0) - fy
        wt = self._wt
        np.multiply(gx, gy, out=wt[0])
        np.multiply(fx, gy, out=wt[1])
        np.multiply(gx, fy, out=wt[2])
        np.multiply(fx, fy, out=wt[3])

    def _z_test(self, key: np.ndarray) -> None:
        """Nearest key per pixel into `_zbuf` (+inf where none), then `_inv` = 1 / (depth_band * zbuf).

        Corners whose bilinear weight is below min_footprint_weight do not take part (key +inf)."""
        zbuf, base, keep, masked = self._zbuf, self._base, self._keep, self._tmp
        zbuf.fill(np.inf)
        for corner, offset in enumerate(self._corners):
            np.greater_equal(self._wt[corner], np.float32(self.config.min_footprint_weight), out=keep)
            np.divide(key, keep, out=masked)  # key / False = inf
            np.minimum.at(zbuf[offset:], base, masked)
        np.multiply(zbuf, np.float32(self.config.depth_band), out=self._inv)
        np.divide(np.float32(1.0), self._inv, out=self._inv)

    def _accumulate(self, colour: np.ndarray, key: np.ndarray) -> None:
        """Sum depth-weighted colours per pixel into `_acc`.

        Depth weight max(0, 1 - (z / zmin - 1) / band) = (1 + band) / band - z * inv[pixel], clipped to
        [0, 1]: above 1 only for corners too small to take part in the z-test."""
        rgb = colour.reshape(-1, 3)
        self._rg.real, self._rg.imag, self._b1.real = rgb[:, 0], rgb[:, 1], rgb[:, 2]
        band = self.config.depth_band
        full = np.float32((1.0 + band) / band)
        base, weight, vals, acc = self._base, self._tmp, self._vals, self._acc
        acc.fill(0.0)
        for corner, offset in enumerate(self._corners):
            np.take(self._inv[offset:], base, out=weight, mode="clip")  # indices are in range: no checks
            weight *= key
            np.subtract(full, weight, out=weight)
            np.clip(weight, 0.0, 1.0, out=weight)
            weight *= self._wt[corner]
            np.multiply(weight, self._rg, out=vals)
            np.add.at(acc[offset:, 0], base, vals)
            np.multiply(weight, self._b1, out=vals)
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
        for name, m in (("src_c2w_wire", src_c2w), ("dst_c2w_wire", dst_c2w)):
            m = np.asarray(m)
            if m.shape != (4, 4) or not np.all(np.isfinite(m)):
                raise InvalidArgument(f"{name} must be a finite (4, 4) matrix, got shape {m.shape}", field=name)
        return colour, depth


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
