"""Compiled inner loops of the explicit render, with numba: forward splatting (splat.py), the push-pull hole
fill (fill.py), and the per-frame hole work of runtime/holes.py and runtime/explicit.py (the wide-hole mask,
the surroundings rays, the ring around the holes, the fill's source values and row means).

Why compiled: the splat's z-test and blending are scatters (many points into one pixel), which NumPy can only
do with `ufunc.at` (np.minimum.at, np.add.at): 10-14 ms a frame at 512x288, the floor of the explicit
generator; the fill and the hole mask were chains of full-size NumPy passes. Each kernel here is one plain loop
over the points or pixels, without (n,) temporaries; numba (LLVM) compiles it to machine code. Serial: the
server runs other threads beside a session's, and the kernels release the GIL (`nogil`) so those run meanwhile.

Same arithmetic, same result: every kernel does the float32 operations of the NumPy code it replaced, in the
same order (no fast-math, so LLVM neither reorders nor fuses them), and sums each pixel's contributions in the
order np.add.at did (footprint corner by corner, points in order within a corner): the images are
bit-identical (tests/geometry checks the splat against a NumPy reference).

Compiled once per install: the signatures are given, so importing this module compiles every kernel, or
loads it from numba's on-disk cache (`cache=True`: next to this file in __pycache__, or numba's user cache
directory when that is not writable). On the 2-core VM: about 6 s to compile (the first import after an
install or an edit of this file; 14 s of CPU with every kernel of this round, measured cold with an empty
NUMBA_CACHE_DIR), about 0.5-1.3 s to load from the cache, plus about 0.4 s to import numba; the first compile is
announced in the log, so a first `starbridge serve` does not look hung. A session's first frame never waits for
the compiler: it costs what it did before the kernels (new buffers).

Layout shared with splat.py's `_Target`: the target image lives in a flat (height + 2) x (width + 2) grid
with a one-pixel border (cropped at the end), pixel centres at integers, the image's first pixel at 1; a
point at continuous position (x, y) in that grid is drawn when 0 <= x < width + 1 and 0 <= y < height + 1
(anything else can only reach the border: skipped, which leaves every image pixel as it was).
"""

from __future__ import annotations

import logging

import numpy as np
from numba import njit
from numba import types as nt

from ..jit import JIT_OPTIONS, cached

log = logging.getLogger(__name__)


if not cached(__file__):
    log.info("compiling the explicit renderer's kernels for this install (once; about 15 s on two cores)")

_JIT = JIT_OPTIONS
_F32, _F64, _I64, _U8, _BOOL = nt.float32, nt.float64, nt.int64, nt.uint8, nt.boolean


#: A wide footprint (`footprint_z_test`) covers the pixels within its point's reach plus this (pixels): the cells
#: of neighbouring points then overlap by a little, so float rounding and a cell measured to the nearer neighbour
#: (a surface seen obliquely) leave no seam. (0.5 spilt more of a surface over the disocclusions beside it: on
#: bench_quality --paths roam, dolly, 1000003-dusk lost 0.05 dB more than with 0.25.)
WIDE_SPILL = 0.25


def _in(dtype: nt.Type, ndim: int) -> nt.Array:
    """A C-contiguous input array type; it accepts read-only arrays (scene bundles map theirs read-only)."""
    return nt.Array(dtype, ndim, "C", readonly=True)


def _out(dtype: nt.Type, ndim: int) -> nt.Array:
    """A C-contiguous array the kernel writes."""
    return nt.Array(dtype, ndim, "C")


@njit(
    nt.void(
        _in(_F32, 2), _in(_F32, 1), _in(_F32, 1), _in(_F32, 2), _in(_F32, 1), _F32,
        _out(_F32, 1), _out(_F32, 1), _out(_F32, 1),
    ),
    **_JIT,
)  # fmt: skip
def project_frame(depth, ray_a, ray_b, m, kt, near, x, y, key):  # pragma: no cover - compiled
    """Continuous target positions x, y and z-test keys (H * W,) of a source frame's pixel centres.

    depth (H, W) z-depth (+inf: a direction); ray_a (W,), ray_b (H,) the pixel-centre rays; m (3, 3) = K R and
    kt (3,) = K t of the source -> bordered-target transform. With inv_d = 1 / depth a point is
    depth * (M (a, b, 1) + kt inv_d): the homogeneous position needs only the bracket. Undrawable points (depth
    NaN or <= 0, or not in front: z <= near, <= 0 for a direction) get x = y = NaN. Keys are the target z-depth,
    at most 1e30 (splat.SKY_KEY: directions)."""
    height, width = depth.shape
    one = np.float32(1.0)
    sky = np.float32(1e30)
    nan = np.float32(np.nan)
    for v in range(height):
        bx = m[0, 1] * ray_b[v] + m[0, 2]
        by = m[1, 1] * ray_b[v] + m[1, 2]
        bz = m[2, 1] * ray_b[v] + m[2, 2]
        row = v * width
        for u in range(width):
            d = depth[v, u]
            inv_d = one / d
            hx = inv_d * kt[0] + (bx + m[0, 0] * ray_a[u])
            hy = inv_d * kt[1] + (by + m[1, 0] * ray_a[u])
            hz = inv_d * kt[2] + (bz + m[2, 0] * ray_a[u])
            i = row + u
            if d > 0 and hz > near * inv_d:
                x[i] = hx / hz
                y[i] = hy / hz
            else:
                x[i] = nan
                y[i] = nan
            k = hz * d
            key[i] = k if k < sky else sky


@njit(inline="always")
def _row(points, i, proj, r):  # pragma: no cover - compiled
    """Row r of proj @ points[i], as splat._transform sums it."""
    v = points[i, 0] * proj[r, 0]
    for j in range(1, 4):
        if proj[r, j] != 0:
            v += points[i, j] * proj[r, j]
    return v


@njit(inline="always")
def _cell_shift(points, cells, i, c, proj, hx, hy, hz, near):  # pragma: no cover - compiled
    """How far (dx, dy, bordered-grid pixels) the point i's neighbour along its cell edge c (0: the source's row
    direction, 1: its column direction; cells[i, 3 c : 3 c + 3], a world vector) lies from it in the target,
    whose homogeneous position is (hx, hy, hz); (inf, inf) when the neighbour is not in front of the camera."""
    j = 3 * c
    d0, d1, d2 = cells[i, j], cells[i, j + 1], cells[i, j + 2]
    ex = proj[0, 0] * d0 + proj[0, 1] * d1 + proj[0, 2] * d2
    ey = proj[1, 0] * d0 + proj[1, 1] * d1 + proj[1, 2] * d2
    ez = proj[2, 0] * d0 + proj[2, 1] * d1 + proj[2, 2] * d2
    z = hz + ez
    if not z > near:
        return np.float32(np.inf), np.float32(np.inf)
    return abs((hx + ex) / z - hx / hz), abs((hy + ey) / z - hy / hz)


@njit(
    _I64(
        nt.Array(_F32, 2, "A", readonly=True), nt.Array(_U8, 2, "A", readonly=True), _in(_F32, 2), _F32, _I64, _I64,
        _in(_BOOL, 2), _BOOL, _out(_F32, 1), _out(_F32, 1), _out(_F32, 1), _out(_U8, 2), _I64,
        nt.Array(_F32, 2, "A", readonly=True), _BOOL, _F32, _F32, _in(nt.int32, 2), _in(_BOOL, 2), _out(_F32, 2),
    ),
    **_JIT,
)  # fmt: skip
def project_points(
    points,
    colours,
    proj,
    near,
    width,
    height,
    only,
    use_only,
    x,
    y,
    key,
    rgb,
    start,
    cells,
    use_cells,
    wide,
    max_reach,
    only_sums,
    reachable,
    reach,
):  # pragma: no cover - compiled
    """The points of a set that can land in a target view, appended at index `start` of x, y, key (positions in
    the bordered grid, z-test keys) and rgb (their colours); returns the new end.

    points (N, 4) homogeneous world points (w = 0: a direction), colours (N, 3), proj (3, 4) world -> bordered
    pixels. Each row of proj @ point is summed as NumPy's element-wise transform did (splat._transform: the
    first term, then the others whose coefficient is not 0, in float32). Kept: points ahead of the camera (z >
    near, > 0 for a direction) whose position lies within 2 pixels of the bordered grid (a footprint can reach
    into the image from there) and, with `use_only`, whose image pixel is True in `only` (height, width). Keys
    are the target z-depth, 1e30 (splat.SKY_KEY) for directions.

    With `use_cells`, cells (N, 6) are the two edges of each finite point's cell in its source frame (world
    vectors to its neighbours: splat.PointSplatter); reach (2, >= end) gets, appended like x, how far the cell
    reaches from the point in the target (half its projected extent in x and in y, pixels; at most max_reach;
    0 for directions). A point whose reach is above `wide` in x or y draws a wide footprint (footprint_z_test):
    it is kept within 2 + reach pixels of the grid and, with `use_only`, also when `only` has a True pixel within
    reach + WIDE_SPILL of it (counted with only_sums (height + 1, width + 1), `only`'s summed-area table). The reach is
    worked out only where it can matter: with `use_only`, for the points whose image pixel is True in
    `reachable` (`only` grown by the farthest a footprint reaches, max_reach + 2 pixels) or in `only`."""
    margin = np.float32(2.0)
    half = np.float32(0.5)
    zero = np.float32(0.0)
    sky = np.float32(1e30)
    spill = np.float32(WIDE_SPILL)
    far = margin + (max_reach if use_cells else zero)
    end = start
    for i in range(points.shape[0]):
        hx, hy, hz = _row(points, i, proj, 0), _row(points, i, proj, 1), _row(points, i, proj, 2)
        finite = points[i, 3] > 0
        ahead = hz > near if finite else hz > 0
        if not ahead:
            continue
        px = hx / hz
        py = hy / hz
        if not (px > -far and px < np.float32(width) + far and py > -far and py < np.float32(height) + far):
            continue  # (no footprint reaches the grid from there)
        hit = True  # with `use_only`: its image pixel is in `only`
        if use_only:
            u = np.int64(min(max(px - half, zero), np.float32(width - 1)))  # bordered -> image pixel
            v = np.int64(min(max(py - half, zero), np.float32(height - 1)))
            hit = only[v, u]
            if not hit and not (use_cells and finite and reachable[v, u]):
                continue
        rx, ry = zero, zero
        if use_cells and finite:
            ux, uy = _cell_shift(points, cells, i, 0, proj, hx, hy, hz, near)
            vx, vy = _cell_shift(points, cells, i, 1, proj, hx, hy, hz, near)
            rx = min(half * (ux + vx), max_reach)
            ry = min(half * (uy + vy), max_reach)
        mx, my = margin + rx, margin + ry
        if not (px > -mx and px < np.float32(width) + mx and py > -my and py < np.float32(height) + my):
            continue
        if not hit:  # any `only` pixel under its wide footprint (image pixel = grid - 1)?
            if not (rx > wide or ry > wide):
                continue
            c0 = max(np.int64(np.ceil(px - (rx + spill))) - 1, 0)
            c1 = min(np.int64(np.floor(px + (rx + spill))) - 1, width - 1)
            r0 = max(np.int64(np.ceil(py - (ry + spill))) - 1, 0)
            r1 = min(np.int64(np.floor(py + (ry + spill))) - 1, height - 1)
            if c0 > c1 or r0 > r1:
                continue
            if only_sums[r1 + 1, c1 + 1] - only_sums[r0, c1 + 1] - only_sums[r1 + 1, c0] + only_sums[r0, c0] == 0:
                continue
        x[end], y[end] = px, py
        key[end] = hz if finite else sky
        rgb[end, 0], rgb[end, 1], rgb[end, 2] = colours[i, 0], colours[i, 1], colours[i, 2]
        if use_cells:
            reach[0, end], reach[1, end] = rx, ry
        end += 1
    return end


@njit(nt.void(_in(_I64, 1), _I64, _in(_F64, 2), _in(_F64, 2), _in(_I64, 1), _F64, _out(_BOOL, 1)), **_JIT)
def boxes_in_view(pixels, width, corners, proj, owner, margin, shown):  # pragma: no cover - compiled
    """splat.SetBounds.in_view's test: shown[owner[b]] = True for every box b (corners[8 b : 8 b + 8], (x, y, z, w)
    float64) that may draw on the image pixels `pixels` (n > 0 flat indices in an image `width` wide) of a camera
    whose proj (3, 4) maps world to pixels (centres at + 0.5). A box is out when all its corners are behind the
    camera (z <= 1e-9), or all are ahead and all lie beyond one side of the pixels' bounding rectangle grown by
    `margin` pixels (2: a bilinear footprint's reach; a box ahead projects into the hull of its corners). float64,
    summed as splat._transform."""
    row_min, col_min = np.iinfo(np.int64).max, np.iinfo(np.int64).max
    row_max, col_max = -1, -1
    for p in pixels:
        r, c = divmod(p, width)
        row_min, row_max = min(row_min, r), max(row_max, r)
        col_min, col_max = min(col_min, c), max(col_max, c)
    x0, x1 = col_min - margin, (col_max + 1) + margin
    y0, y1 = row_min - margin, (row_max + 1) + margin
    for b in range(owner.size):
        any_ahead, all_ahead = False, True
        left, right, above, below = True, True, True, True
        for i in range(8 * b, 8 * b + 8):
            hx, hy, hz = _row(corners, i, proj, 0), _row(corners, i, proj, 1), _row(corners, i, proj, 2)
            u, v = hx / hz, hy / hz
            ahead = hz > 1e-9
            any_ahead, all_ahead = any_ahead or ahead, all_ahead and ahead
            left, right = left and u < x0, right and u > x1
            above, below = above and v < y0, below and v > y1
        if any_ahead and not (all_ahead and (left or right or above or below)):
            shown[owner[b]] = True


@njit(inline="always")
def _span(c, r, n):  # pragma: no cover - compiled
    """The grid cells (first, last; inclusive) of a wide footprint along one axis: the integers within r of the
    position c, clipped to the bordered grid's n + 2 cells (0 to n + 1)."""
    return max(np.int64(np.ceil(c - r)), 0), min(np.int64(np.floor(c + r)), n + 1)


@njit(
    nt.UniTuple(_I64, 2)(
        _in(_F32, 1), _in(_F32, 1), _in(_F32, 1), _in(_U8, 2), _I64, _I64, _F32,
        _out(_I64, 1), _out(_F32, 2), _out(_F32, 1), _out(_F32, 2), _out(_F32, 1), _BOOL,
        _in(_F32, 2), _BOOL, _F32,
    ),
    **_JIT,
)  # fmt: skip
def footprint_z_test(
    x, y, key, rgb, width, height, min_weight, base, wt, keys, rgbw, zbuf, clear, reach, use_reach, wide
):  # pragma: no cover - compiled
    """Footprints of n points and the z-test, in one pass over the points; returns (m, m2), how many are drawn
    with the bilinear footprint and with a wide one.

    x, y, key (n,), rgb (n, 3): positions in the bordered grid of an image `width` x `height`, z-test keys and
    colours. Points with a NaN position or key, or outside, are not drawn; the m drawn ones are written, in
    order, to base (m,) (top-left footprint pixel, flat), wt (4, >= m) (corner weights: top-left, top-right,
    bottom-left, bottom-right), keys (m,) and rgbw (m, 4) (r, g, b, 1 as float32). zbuf (grid size,) gets the
    smallest key per pixel over the corners with a weight >= min_weight (+inf where none): set to +inf first
    with `clear`, else already +inf everywhere (`forget` after a sparse draw: no full-grid pass).

    With `use_reach`, a point whose reach (2, n) (splat.PointSplatter: how far its source cell reaches in x and
    y, pixels) is above `wide` in x or y is magnified past what the bilinear footprint closes: it covers every
    grid pixel within rx = reach x + WIDE_SPILL of it in x and ry = reach y + WIDE_SPILL in y (`_span`), each
    taking part in the z-test; its neighbours' footprints then overlap its own. Such points are written from the
    back of the buffers, in order (the k-th at index c - 1 - k, c = keys.size), with wt[:, index] = (x, y, rx,
    ry); a point whose footprint misses the grid is not drawn."""
    row = width + 2
    xmax = np.float32(width + 1)
    ymax = np.float32(height + 1)
    one = np.float32(1.0)
    spill = np.float32(WIDE_SPILL)
    inf = np.float32(np.inf)
    if clear:
        zbuf[:] = inf
    m = 0
    m2 = 0
    back = keys.size - 1
    for i in range(x.size):
        xi, yi, k = x[i], y[i], key[i]
        if use_reach and (reach[0, i] > wide or reach[1, i] > wide):
            rx, ry = reach[0, i] + spill, reach[1, i] + spill
            if not (xi == xi and yi == yi and k == k):
                continue
            c0, c1 = _span(xi, rx, width)
            r0, r1 = _span(yi, ry, height)
            if c0 > c1 or r0 > r1:
                continue
            j = back - m2
            wt[0, j], wt[1, j], wt[2, j], wt[3, j] = xi, yi, rx, ry
            keys[j] = k
            rgbw[j, 0], rgbw[j, 1], rgbw[j, 2], rgbw[j, 3] = rgb[i, 0], rgb[i, 1], rgb[i, 2], one
            for r in range(r0, r1 + 1):
                for p in range(r * row + c0, r * row + c1 + 1):
                    zbuf[p] = min(zbuf[p], k)
            m2 += 1
            continue
        if not (xi >= 0 and xi < xmax and yi >= 0 and yi < ymax and k == k):  # NaN compares False
            continue
        x0 = np.floor(xi)
        y0 = np.floor(yi)
        fx = xi - x0
        fy = yi - y0
        gx = one - fx
        gy = one - fy
        w0, w1, w2, w3 = gx * gy, fx * gy, gx * fy, fx * fy
        wt[0, m], wt[1, m], wt[2, m], wt[3, m] = w0, w1, w2, w3
        b = np.int64(y0) * row + np.int64(x0)
        base[m] = b
        keys[m] = k
        rgbw[m, 0], rgbw[m, 1], rgbw[m, 2], rgbw[m, 3] = rgb[i, 0], rgb[i, 1], rgb[i, 2], one
        # Selects, not branches: which corners take part is data-dependent, and mispredictions cost more.
        zbuf[b] = min(zbuf[b], k if w0 >= min_weight else inf)
        zbuf[b + 1] = min(zbuf[b + 1], k if w1 >= min_weight else inf)
        zbuf[b + row] = min(zbuf[b + row], k if w2 >= min_weight else inf)
        zbuf[b + row + 1] = min(zbuf[b + row + 1], k if w3 >= min_weight else inf)
        m += 1
    return m, m2


@njit(
    nt.void(
        _I64, _in(_I64, 1), _in(_F32, 2), _in(_F32, 1), _in(_F32, 2), _I64, _in(_F32, 1), _F32, _F32,
        _out(_F32, 1), _out(_F32, 2), _BOOL, _I64, _I64,
    ),
    **_JIT,
)  # fmt: skip
def accumulate(m, base, wt, keys, rgbw, width, zbuf, depth_band, full, inv, acc, sparse, m2, height):  # noqa: E501  # pragma: no cover
    """Depth-weighted colour sums per pixel of the m points `footprint_z_test` drew with the bilinear footprint
    and the m2 it drew wide: acc (grid size, 4) = sum w r, sum w g, sum w b, sum w.

    A corner's weight is bilinear * clip(full - key * inv[pixel], 0, 1) with full = (1 + band) / band (rounded
    from float64 by the caller) and inv = 1 / (band * zbuf) (written into `inv`): max(0, 1 - (key / zmin - 1) /
    band), above 1 only for corners too small to take part in the z-test. Summed corner by corner, points in
    order within a corner (as np.add.at did); then the wide points in order, each pixel of a footprint row by
    row, weighing clip(full - key * inv[pixel], 0, 1) * (tx * ty) with the tent tx = 1 - |gx - x| / (rx + 0.5)
    (ty likewise; gx the pixel's grid column). `sparse`: inv and acc are set at the drawn points' footprints only
    (the other pixels keep stale values: read them only where zbuf < inf), for a few points on a large grid."""
    row = width + 2
    one = np.float32(1.0)
    zero = np.float32(0.0)
    half = np.float32(0.5)
    sums = acc.reshape(-1)  # flat: (pixel, channel) at 4 pixel + channel
    back = keys.size - 1
    if sparse:
        for i in range(m):
            for offset in (0, 1, row, row + 1):
                p = base[i] + offset
                inv[p] = one / (zbuf[p] * depth_band)
                sums[4 * p], sums[4 * p + 1], sums[4 * p + 2], sums[4 * p + 3] = zero, zero, zero, zero
        for j in range(back, back - m2, -1):
            c0, c1 = _span(wt[0, j], wt[2, j], width)
            r0, r1 = _span(wt[1, j], wt[3, j], height)
            for r in range(r0, r1 + 1):
                for p in range(r * row + c0, r * row + c1 + 1):
                    inv[p] = one / (zbuf[p] * depth_band)
                    sums[4 * p], sums[4 * p + 1], sums[4 * p + 2], sums[4 * p + 3] = zero, zero, zero, zero
    else:
        for p in range(zbuf.size):
            inv[p] = one / (zbuf[p] * depth_band)
        sums[:] = 0.0
    colours = rgbw.reshape(-1)
    for c in range(4):
        offset = (c & 1) + (c >> 1) * row  # 0, 1, row, row + 1
        weights = wt[c]
        for i in range(m):
            p = base[i] + offset
            w = full - inv[p] * keys[i]
            w = min(max(w, zero), one)
            w = w * weights[i]
            q, r = 4 * p, 4 * i
            sums[q] += w * colours[r]
            sums[q + 1] += w * colours[r + 1]
            sums[q + 2] += w * colours[r + 2]
            sums[q + 3] += w * colours[r + 3]  # w * 1 = w
    for j in range(back, back - m2, -1):
        xj, yj, rx, ry = wt[0, j], wt[1, j], wt[2, j], wt[3, j]
        c0, c1 = _span(xj, rx, width)
        r0, r1 = _span(yj, ry, height)
        sx, sy = rx + half, ry + half
        k = keys[j]
        s = 4 * j
        for gy in range(r0, r1 + 1):
            ty = one - abs(np.float32(gy) - yj) / sy
            for gx in range(c0, c1 + 1):
                tx = one - abs(np.float32(gx) - xj) / sx
                p = gy * row + gx
                w = full - inv[p] * k
                w = min(max(w, zero), one)
                w = w * (tx * ty)
                q = 4 * p
                sums[q] += w * colours[s]
                sums[q + 1] += w * colours[s + 1]
                sums[q + 2] += w * colours[s + 2]
                sums[q + 3] += w * colours[s + 3]


@njit(nt.void(_in(_F32, 1), _in(_F32, 2), _in(_I64, 1), _out(_U8, 2), _out(_BOOL, 1), _out(_F32, 1)), **_JIT)
def resolve(zbuf, acc, at, colour, mask, depth):  # pragma: no cover - compiled
    """The pixels at flat grid indices at (n,): colour (n, 3) the weighted mean rounded (0 where empty), mask
    (n,) "some corner took part in the z-test", depth (n,) the nearest key (+inf where empty or a direction)."""
    one = np.float32(1.0)
    half = np.float32(0.5)
    sky = np.float32(1e30)
    for j in range(at.size):
        p = at[j]
        z = zbuf[p]
        covered = z < np.inf
        mask[j] = covered
        depth[j] = z if z < sky else np.inf
        if covered:  # (acc is stale elsewhere after a sparse `accumulate`)
            inv = one / acc[p, 3]
            for c in range(3):
                colour[j, c] = np.uint8(acc[p, c] * inv + half)  # a weighted mean of values in [0, 255]: in range
        else:
            colour[j, 0], colour[j, 1], colour[j, 2] = 0, 0, 0


@njit(nt.void(_in(_I64, 1), _out(_BOOL, 2)), **_JIT)
def around(pixels, out):  # pragma: no cover - compiled
    """out (h, w) = True at the pixels (n,) (flat indices) and their 8 neighbours; left as it was elsewhere."""
    h, w = out.shape
    for p in pixels:
        y, x = divmod(p, w)
        for v in range(max(y - 1, 0), min(y + 2, h)):
            for u in range(max(x - 1, 0), min(x + 2, w)):
                out[v, u] = True


@njit(nt.void(_I64, _in(_I64, 1), _I64, _out(_F32, 1), _I64, _in(_F32, 2), _I64), **_JIT)
def forget(m, base, width, zbuf, m2, wt, height):  # pragma: no cover - compiled
    """zbuf = +inf again at the footprint pixels of the m points `footprint_z_test` drew with the bilinear
    footprint and the m2 it drew wide (after a sparse draw: the grid is then all +inf, as `footprint_z_test`
    without `clear` needs it)."""
    row = width + 2
    inf = np.float32(np.inf)
    for i in range(m):
        b = base[i]
        zbuf[b], zbuf[b + 1], zbuf[b + row], zbuf[b + row + 1] = inf, inf, inf, inf
    back = wt.shape[1] - 1
    for j in range(back, back - m2, -1):
        c0, c1 = _span(wt[0, j], wt[2, j], width)
        r0, r1 = _span(wt[1, j], wt[3, j], height)
        for r in range(r0, r1 + 1):
            for p in range(r * row + c0, r * row + c1 + 1):
                zbuf[p] = inf


# ---------------------------------------------------------------------- push-pull hole fill (fill.py)


@njit(
    [
        nt.void(_in(_U8, 3), _in(_BOOL, 2), _out(_F32, 3), _out(_BOOL, 2)),
        nt.void(_in(_F32, 3), _in(_BOOL, 2), _out(_F32, 3), _out(_BOOL, 2)),
    ],
    **_JIT,
)  # fmt: skip
def pull(values, valid, mean, coarse_valid):  # pragma: no cover - compiled
    """One pyramid level down: values (h, w, C) with valid (h, w) -> mean (ceil(h/2), ceil(w/2), C) of each
    2x2 block's valid cells (0 where none) and coarse_valid (the block has one). Invalid cells and the cells past
    an odd edge count as 0. Sums in float32 as (top-left + bottom-left) + (top-right + bottom-right): the order
    NumPy summed float32 levels in, and exact for uint8 values (integers up to 1020)."""
    h, w, channels = values.shape
    hc, wc = coarse_valid.shape
    zero = np.float32(0.0)
    for i in range(hc):
        y0, y1 = 2 * i, 2 * i + 1
        for j in range(wc):
            x0, x1 = 2 * j, 2 * j + 1
            tl = valid[y0, x0]
            tr = x1 < w and valid[y0, x1]
            bl = y1 < h and valid[y1, x0]
            br = y1 < h and x1 < w and valid[y1, x1]
            count = np.int64(tl) + np.int64(tr) + np.int64(bl) + np.int64(br)
            coarse_valid[i, j] = count > 0
            divisor = np.float32(max(count, 1))
            for c in range(channels):
                v_tl = np.float32(values[y0, x0, c]) if tl else zero
                v_tr = np.float32(values[y0, x1, c]) if tr else zero
                v_bl = np.float32(values[y1, x0, c]) if bl else zero
                v_br = np.float32(values[y1, x1, c]) if br else zero
                mean[i, j, c] = ((v_tl + v_bl) + (v_tr + v_br)) / divisor


@njit(inline="always")
def _upsample(coarse, hc, wc, y, x, channels, out):  # pragma: no cover - compiled
    """out (C,) = the bilinear 2x upsampling of coarse (hc, wc, C) at fine cell (y, x) (`upsample_at`)."""
    near, far = np.float32(0.75), np.float32(0.25)
    y0, x0 = y >> 1, x >> 1
    y1 = min(max(y0 + 2 * (y & 1) - 1, 0), hc - 1)
    x1 = min(max(x0 + 2 * (x & 1) - 1, 0), wc - 1)
    for c in range(channels):
        top = near * coarse[y0, x0, c] + far * coarse[y0, x1, c]
        bottom = near * coarse[y1, x0, c] + far * coarse[y1, x1, c]
        out[c] = near * top + far * bottom


@njit(nt.void(_out(_F32, 3), _in(_BOOL, 2), _in(_F32, 3)), **_JIT)
def push(mean, valid, coarse):  # pragma: no cover - compiled
    """One pyramid level up: the invalid cells of mean (h, w, C) take the bilinear 2x upsampling of the filled
    level below, coarse (ceil(h/2), ceil(w/2), C) (`upsample_at`'s weights)."""
    h, w, channels = mean.shape
    hc, wc = coarse.shape[:2]
    for y in range(h):
        for x in range(w):
            if not valid[y, x]:
                _upsample(coarse, hc, wc, y, x, channels, mean[y, x])


@njit(nt.void(_in(_F32, 3), _in(_I64, 1), _I64, _out(_F32, 2)), **_JIT)
def upsample_at(coarse, flat, width, out):  # pragma: no cover - compiled
    """Bilinear 2x upsampling of coarse (hc, wc, C) at the fine cells flat (n,) of a grid `width` wide, into out
    (n, C). Fine cell y = 2i lies a quarter cell before coarse cell i and y = 2i + 1 a quarter after it: the
    nearer coarse cell weighs 3/4 and its neighbour 1/4 (clamped at the edges)."""
    hc, wc, channels = coarse.shape
    for k in range(flat.size):
        y, x = divmod(flat[k], width)
        _upsample(coarse, hc, wc, y, x, channels, out[k])


# ---------------------------------------------------------------------- hole work (runtime/holes.py, explicit.py)


@njit(inline="always")
def _row_of(p, width, row):  # pragma: no cover - compiled
    """The row of flat pixel p in an image `width` wide, stepping on from `row` (the previous pixel's): no
    division for sorted pixels (row-major order), one for the others."""
    if p < row * width:
        return p // width
    while p >= (row + 1) * width:
        row += 1
    return row


@njit(nt.void(_in(_BOOL, 2), _I64, _out(_BOOL, 2)), **_JIT)
def wide_holes(holes, radius, out):  # pragma: no cover - compiled
    """out (h, w) = the hole pixels within city-block distance `radius` of the core of `holes` (h, w): the hole
    pixels whose four neighbours are holes too (outside the image counts as a hole). The same as an erosion with
    the plus-shaped element followed by `radius` dilations with it, in three passes: the erosion, then an exact
    two-pass city-block distance transform (capped at radius + 1)."""
    h, w = holes.shape
    cap = radius + 1
    dist = np.empty((h, w), np.int64)
    for y in range(h):  # erosion, and the forward pass (from above and from the left)
        for x in range(w):
            core = (
                holes[y, x]
                and (y == 0 or holes[y - 1, x])
                and (y == h - 1 or holes[y + 1, x])
                and (x == 0 or holes[y, x - 1])
                and (x == w - 1 or holes[y, x + 1])
            )
            d = 0 if core else cap
            if y > 0:
                d = min(d, dist[y - 1, x] + 1)
            if x > 0:
                d = min(d, dist[y, x - 1] + 1)
            dist[y, x] = d
    for y in range(h - 1, -1, -1):  # the backward pass (from below and from the right)
        for x in range(w - 1, -1, -1):
            d = dist[y, x]
            if y < h - 1:
                d = min(d, dist[y + 1, x] + 1)
            if x < w - 1:
                d = min(d, dist[y, x + 1] + 1)
            dist[y, x] = d
            out[y, x] = holes[y, x] and d <= radius


@njit(nt.void(_in(_BOOL, 2), _in(_I64, 1), _I64, _out(_BOOL, 2), _out(_BOOL, 2)), **_JIT)
def wide_holes_at(holes, at, radius, core, out):  # pragma: no cover - compiled
    """`wide_holes` at the pixels at (n,) (flat indices) only, when they hold every core pixel of `holes` (h, w)
    and so every wide one: out (h, w) (False on entry) = True at those of them within city-block distance
    `radius` of a core pixel. core (h, w) is scratch, False on entry. Work: (2 radius^2 + 2 radius + 1) reads
    per pixel of at, none over the rest of the image."""
    h, w = holes.shape
    for p in at:  # the core among them
        y, x = divmod(p, w)
        core[y, x] = (
            holes[y, x]
            and (y == 0 or holes[y - 1, x])
            and (y == h - 1 or holes[y + 1, x])
            and (x == 0 or holes[y, x - 1])
            and (x == w - 1 or holes[y, x + 1])
        )
    for p in at:
        y, x = divmod(p, w)
        if not holes[y, x]:
            continue
        found = False
        for v in range(max(y - radius, 0), min(y + radius + 1, h)):
            reach = radius - abs(v - y)
            for u in range(max(x - reach, 0), min(x + reach + 1, w)):
                if core[v, u]:
                    found = True
                    break
            if found:
                break
        out[y, x] = found


@njit(nt.void(_in(_BOOL, 2), _I64, _out(_BOOL, 2), _out(_BOOL, 2)), **_JIT)
def near(mask, radius, rows, out):  # pragma: no cover - compiled
    """out (h, w) = a True pixel of mask (h, w) within `radius` pixels (a square: the Chebyshev distance); rows
    (h, w) is scratch (the row pass). Two sliding-window counts: along each row, then down each column."""
    h, w = mask.shape
    for y in range(h):
        count = 0
        for x in range(min(radius, w)):
            count += mask[y, x]
        for x in range(w):
            if x + radius < w:
                count += mask[y, x + radius]
            if x - radius - 1 >= 0:
                count -= mask[y, x - radius - 1]
            rows[y, x] = count > 0
    for x in range(w):
        count = 0
        for y in range(min(radius, h)):
            count += rows[y, x]
        for y in range(h):
            if y + radius < h:
                count += rows[y + radius, x]
            if y - radius - 1 >= 0:
                count -= rows[y - radius - 1, x]
            out[y, x] = count > 0


@njit(
    nt.void(_in(_BOOL, 2), _in(_F32, 2), _in(_BOOL, 2), _in(_I64, 1), _I64, _out(_F32, 1), _out(_BOOL, 1)),
    **_JIT,
)  # fmt: skip
def surroundings(mask, depth, moving, at, radius, limit, dynamic):  # pragma: no cover - compiled
    """runtime/holes.py's `surroundings` at the pixels at (n,) (flat indices of an (h, w) image): along 4 rays
    (right, down, left, up) of `radius` pixels, the first pixel where mask (h, w) is True. Where the rays meet
    one on both sides (left and right, or up and down): limit (n,) = the largest depth (h, w) of those met and
    dynamic (n,) = every one met is True in moving (h, w); elsewhere -1 and False.

    The distance to the nearest True pixel in each direction (capped at radius + 1: none within the ray) comes
    from scans, not from walking the rays: up and down over the whole image, left and right along each row of
    `at` once for the run of pixels in it (sorted `at` has one run per row)."""
    h, w = mask.shape
    cap = radius + 1
    above = np.empty((h, w), np.int32)  # distance to the nearest True pixel above, capped
    below = np.empty((h, w), np.int32)
    for x in range(w):
        above[0, x] = cap
        below[h - 1, x] = cap
    for y in range(1, h):
        for x in range(w):
            above[y, x] = 1 if mask[y - 1, x] else min(above[y - 1, x] + 1, cap)
    for y in range(h - 2, -1, -1):
        for x in range(w):
            below[y, x] = 1 if mask[y + 1, x] else min(below[y + 1, x] + 1, cap)
    before = np.empty(w, np.int32)  # the same along the current row
    after = np.empty(w, np.int32)
    flat_depth = depth.reshape(-1)
    flat_moving = moving.reshape(-1)
    row = -1
    y = 0
    for k in range(at.size):
        y = _row_of(at[k], w, y)
        x = at[k] - y * w
        if y != row:
            row = y
            before[0] = cap
            for i in range(1, w):
                before[i] = 1 if mask[y, i - 1] else min(before[i - 1] + 1, cap)
            after[w - 1] = cap
            for i in range(w - 2, -1, -1):
                after[i] = 1 if mask[y, i + 1] else min(after[i + 1] + 1, cap)
        rt, dn, lt, up = after[x], below[y, x], before[x], above[y, x]
        if not ((rt <= radius and lt <= radius) or (dn <= radius and up <= radius)):
            limit[k] = np.float32(-1.0)
            dynamic[k] = False
            continue
        p = at[k]
        far = np.float32(-1.0)
        moves = True
        for q in (
            p + rt if rt <= radius else -1,
            p + dn * w if dn <= radius else -1,
            p - lt if lt <= radius else -1,
            p - up * w if up <= radius else -1,
        ):  # np.max's order
            if q >= 0:
                v = flat_depth[q]
                far = v if v > far or v != v or far != far else far  # NaN wins, as in np.max
                moves = moves and flat_moving[q]
        limit[k] = far
        dynamic[k] = moves


@njit(nt.void(_in(_U8, 3), _in(_F32, 2), _in(_BOOL, 2), _out(_F32, 3)), **_JIT)
def colour_inverse_depth(colour, depth, sources, values):  # pragma: no cover - compiled
    """values (h, w, 4) = colour (h, w, 3) as float32 and 1 / depth (h, w) where `sources` (h, w), else 0."""
    h, w = sources.shape
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for y in range(h):
        for x in range(w):
            for c in range(3):
                values[y, x, c] = np.float32(colour[y, x, c])
            values[y, x, 3] = one / depth[y, x] if sources[y, x] else zero


@njit(nt.void(_in(_U8, 3), _in(_F32, 2), _in(_BOOL, 2), _F32, _out(_F32, 3)), **_JIT)
def plain_and_far_sources(colour, depth, sources, cap, values):  # pragma: no cover - compiled
    """values (h, w, 9) where `sources` (h, w), else 0: channels 0-3 colour (h, w, 3) as float32 and 1 / depth
    (h, w) (`colour_inverse_depth`), channels 4-7 the same times the weight min(depth, cap) ** 2, channel 8 the
    weight (runtime/holes.py `push_pull_sources`: a push-pull of 4-7, divided by 8, is weighted toward what is
    far)."""
    h, w = sources.shape
    one = np.float32(1.0)
    zero = np.float32(0.0)
    for y in range(h):
        for x in range(w):
            if sources[y, x]:
                d = depth[y, x]
                inv = one / d
                near = d if d < cap else cap
                weight = near * near
                for c in range(3):
                    v = np.float32(colour[y, x, c])
                    values[y, x, c] = v
                    values[y, x, 4 + c] = weight * v
                values[y, x, 3] = inv
                values[y, x, 7] = weight * inv
                values[y, x, 8] = weight
            else:
                for c in range(3):
                    values[y, x, c] = np.float32(colour[y, x, c])
                for c in range(3, 9):
                    values[y, x, c] = zero


@njit(
    nt.void(_in(_I64, 1), _in(_F32, 1), _I64, _in(_F64, 1), _in(_F64, 1), _in(_F64, 2), _I64, _I64, _out(_BOOL, 1)),
    **_JIT,
)
def in_other_view(at, inverse_depth, width, a, b, proj, other_width, other_height, out):  # pragma: no cover
    """out (n,) = whether the pixels at (n,) (flat indices of an image `width` wide) at their inverse depths
    (n,) (0: a direction) land in front of another camera and inside its image (other_width x other_height).
    a (W,), b (H,) float64: the image's ray axes (geometry/splat.py `ray_axes`); proj (3, 4) float64: its
    camera (OpenCV) to the other camera's pixels (K @ world-to-camera @ camera-to-world). The point of pixel
    (x, y) at depth d is d * (a[x], b[y], 1, 1 / d): homogeneous (a[x], b[y], 1, inverse depth)."""
    for k in range(at.size):
        y = at[k] // width
        x = at[k] - y * width
        px, py, pw = a[x], b[y], np.float64(inverse_depth[k])
        hx = proj[0, 0] * px + proj[0, 1] * py + proj[0, 2] + proj[0, 3] * pw
        hy = proj[1, 0] * px + proj[1, 1] * py + proj[1, 2] + proj[1, 3] * pw
        hz = proj[2, 0] * px + proj[2, 1] * py + proj[2, 2] + proj[2, 3] * pw
        if hz > 1e-6 * pw:  # in front (a direction: hz > 0)
            u = hx / hz
            v = hy / hz
            out[k] = u >= 0.0 and u < other_width and v >= 0.0 and v < other_height
        else:
            out[k] = False


@njit(nt.void(_in(_F32, 3), _in(_BOOL, 2), _in(_I64, 1), _in(_F32, 2), _out(_F32, 2), _out(_F32, 1)), **_JIT)
def row_mean(values, sources, at, fallback, mean, dist):  # pragma: no cover - compiled
    """runtime/holes.py's `row_mean` of the first C = mean.shape[1] channels of values (h, w, >= C) for the
    pixels at (n,): mean (n, C) of the row's source pixels (fallback (n, >= C) in rows with none) and dist (n,)
    to the nearest of them along the row (+inf: none; on one side only, the other counts as 2 w before or 3 w
    after the row's start). A row is summed once for a run of pixels in it. The channels must hold integers
    (colours): their float32 sums are then exact, in any order."""
    h, w = sources.shape
    channels = mean.shape[1]
    sums = np.zeros(channels, np.float64)
    left = np.empty(w, np.int64)
    right = np.empty(w, np.int64)
    row = -1
    count = 0
    for k in range(at.size):
        y, x = divmod(at[k], w)
        if y != row:
            row = y
            count = 0
            sums[:] = 0.0
            last = -2 * w
            for i in range(w):
                if sources[y, i]:
                    count += 1
                    for c in range(channels):
                        sums[c] += values[y, i, c]
                    last = i
                left[i] = last
            last = 3 * w
            for i in range(w - 1, -1, -1):
                if sources[y, i]:
                    last = i
                right[i] = last
        if count == 0:
            for c in range(channels):
                mean[k, c] = fallback[k, c]
            dist[k] = np.inf
        else:
            for c in range(channels):
                mean[k, c] = np.float32(sums[c]) / np.float32(count)
            dist[k] = np.float32(min(x - left[x], right[x] - x))


@njit(
    _I64(
        _in(_U8, 2), _in(_BOOL, 1), _in(_F32, 1), _in(_I64, 1), _BOOL, _in(_I64, 1), _in(_F32, 1), _F32,
        _out(_U8, 2), _out(_BOOL, 1), _out(_F32, 1), _out(_I64, 1), _out(_F32, 1),
    ),
    **_JIT,
)  # fmt: skip
def take_layer(colour, mask, depth, src, use_src, at, limit, tol, to_colour, to_mask, to_depth, left, left_limit):  # noqa: E501  # pragma: no cover
    """A later layer's values into the hole pixels at (n,) (flat indices) of an image (to_colour (H * W, 3),
    to_mask, to_depth (H * W,)): where the layer (colour (m, 3), mask, depth (m,)) has a point at the pixel's
    entry src[k] (k itself without `use_src`) no farther than the hole's `surroundings` limit (n,) allows (any
    where it is -1; else depth <= limit * tol, tol = 1 + SURROUND_DEPTH_TOL: runtime/holes.py `in_front`). The
    pixels left, with their limits, go in order to left and left_limit; returns how many."""
    end = 0
    for k in range(at.size):
        s = src[k] if use_src else k
        lim = limit[k]
        d = depth[s]
        if mask[s] and (lim < 0 or d <= lim * tol):
            p = at[k]
            to_colour[p, 0], to_colour[p, 1], to_colour[p, 2] = colour[s, 0], colour[s, 1], colour[s, 2]
            to_depth[p] = d
            to_mask[p] = True
        else:
            left[end] = at[k]
            left_limit[end] = lim
            end += 1
    return end


@njit(nt.void(_in(_U8, 3), _out(_U8, 3)), **_JIT)
def opaque(rgb, out):  # pragma: no cover - compiled
    """out (h, w, 4) = rgb (h, w, 3) with alpha 255."""
    h, w = rgb.shape[:2]
    for y in range(h):
        for x in range(w):
            out[y, x, 0], out[y, x, 1], out[y, x, 2] = rgb[y, x, 0], rgb[y, x, 1], rgb[y, x, 2]
            out[y, x, 3] = 255


@njit(nt.void(_in(_I64, 1), _I64, _I64, _out(_I64, 1), _out(_BOOL, 2)), **_JIT)
def coarse_pixels(at, width, step, block, blocks):  # pragma: no cover - compiled
    """For the pixels at (n,) (flat indices of an image `width` wide): block (n,) = the flat index of the pixel
    over each in the image at 1 / step of the resolution, blocks.shape[1] wide; blocks (its shape) = True there,
    False elsewhere."""
    blocks[:] = False
    coarse_width = blocks.shape[1]
    flat = blocks.reshape(-1)
    y = 0
    for k in range(at.size):
        y = _row_of(at[k], width, y)
        b = (y // step) * coarse_width + (at[k] - y * width) // step
        block[k] = b
        flat[b] = True


#: The radius (pixels) `see_through` looks for a nearer surface on each side (unrolled in it).
SEE_THROUGH_RADIUS = 3


@njit(nt.int64(_out(_F32, 2), _out(_BOOL, 2), _F32, _in(_F64, 1), _in(_F64, 1), _in(_F64, 2), _F64, _F64), **_JIT)
def see_through(depth, mask, ratio, a, b, proj, focal_ratio, min_magnification):  # pragma: no cover - compiled
    """runtime/holes.py's `drop_see_through`, in place on mask and depth (h, w): a covered pixel whose depth is
    more than `ratio` times a nearer surface's met within SEE_THROUGH_RADIUS pixels on both sides (left and right,
    or up and down), where that surface is magnified at least `min_magnification` times from the source camera,
    is a point seen through a crack of that surface: mask False, depth +inf there. Returns how many were dropped.
    Decided on the mask as it was (a dropped pixel does not close others).

    Per pixel, the nearer surface is the farther of the two sides' nearest covered depths (left/right, up/down),
    the nearer of the two axes; the depths are read from a copy bordered with +inf, so the loops need no bounds
    and run branch-free (vectorised). Magnification of that surface at depth z on pixel (x, y): focal_ratio *
    (its depth in the source camera) / z, the point being z * (a[x], b[y], 1) and proj (3, 4) this camera's
    coordinates (OpenCV) to the source camera's pixels (its third row gives the source depth)."""
    h, w = depth.shape
    inf = np.float32(np.inf)
    v = np.full((h + 6, w + 6), inf, np.float32)  # covered depth, +inf where nothing is (and 3 pixels around)
    for y in range(h):
        for x in range(w):
            v[y + 3, x + 3] = depth[y, x] if mask[y, x] else inf
    near = np.empty((h, w), np.float32)
    for y in range(h):
        row = v[y + 3]
        for x in range(w):
            left = min(row[x + 2], min(row[x + 1], row[x]))
            right = min(row[x + 4], min(row[x + 5], row[x + 6]))
            near[y, x] = max(left, right)
    for y in range(h):
        u1, u2, u3 = v[y + 2], v[y + 1], v[y]
        d1, d2, d3 = v[y + 4], v[y + 5], v[y + 6]
        for x in range(w):
            up = min(u1[x + 3], min(u2[x + 3], u3[x + 3]))
            down = min(d1[x + 3], min(d2[x + 3], d3[x + 3]))
            near[y, x] = min(near[y, x], max(up, down))
    dropped = 0
    for y in range(h):
        for x in range(w):
            z = near[y, x]
            if mask[y, x] and z < depth[y, x] / ratio:  # nearer than depth / ratio (inf / ratio: any surface)
                zz = np.float64(z)
                source = proj[2, 0] * a[x] * zz + proj[2, 1] * b[y] * zz + proj[2, 2] * zz + proj[2, 3]
                if focal_ratio * source >= min_magnification * zz:
                    mask[y, x] = False
                    depth[y, x] = inf
                    dropped += 1
    return dropped


@njit(inline="always")
def _soft_row(mask, i, y, x, height):  # pragma: no cover - compiled
    """A 3-row box of mask frame i at (y, x) (its first and last rows as they are)."""
    mid = np.float32(mask[i, y, x])
    if y == 0 or y == height - 1:
        return mid
    return (np.float32(mask[i, y - 1, x]) + mid + np.float32(mask[i, y + 1, x])) / np.float32(3.0)


@njit(nt.void(_out(_U8, 4), _in(_U8, 4), _in(_BOOL, 3)), **_JIT)
def composite_feathered(frames, renders, masks):  # pragma: no cover - compiled
    """runtime/star.py `composite_visible`: frames[..., :3] take renders where masks are valid, weighted by the
    3x3 box of the mask (a 1-pixel feather at hole rims), in one pass (the NumPy version's float32 arithmetic)."""
    n, height, width = masks.shape
    third = np.float32(3.0)
    for i in range(n):
        for y in range(height):
            for x in range(width):
                if not masks[i, y, x]:
                    continue  # w = 0: the generated pixel stays
                centre = _soft_row(masks, i, y, x, height)
                if x == 0 or x == width - 1:
                    w = centre
                else:
                    w = (_soft_row(masks, i, y, x - 1, height) + centre + _soft_row(masks, i, y, x + 1, height)) / third
                for c in range(3):
                    value = w * np.float32(renders[i, y, x, c]) + (np.float32(1.0) - w) * np.float32(frames[i, y, x, c])
                    frames[i, y, x, c] = np.uint8(value + np.float32(0.5))
