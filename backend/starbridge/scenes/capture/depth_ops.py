"""Image and camera helpers shared by the dense-depth (`depth`) and moving-object (`dynamic`) stages.

Conventions (geometry/camera.py, geometry/conventions.py): pixel (u, v) covers [u, u+1) x [v, v+1), its centre
is (u + 0.5, v + 0.5); array coordinates (x, y) used for sampling are pixel centres minus 0.5, so array index
(row, col) sits at (y, x) = (row, col). Poses arrive as wire camera-to-world matrices (camera looks down -Z);
everything here works in the OpenCV camera frame (+X right, +Y down, +Z forward).
"""

from __future__ import annotations

import logging

import numpy as np
from numba import njit
from numba import types as nt
from PIL import Image

from ...geometry.camera import Intrinsics
from ...geometry.conventions import GL_TO_CV
from ...jit import JIT_OPTIONS, announce_compile

announce_compile(__file__, logging.getLogger(__name__), "the edge-aware filter's recursive passes")


def working_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(h, w) with the long side at most `max_side` (never upscaled), the aspect kept, both >= 8."""
    scale = min(1.0, max_side / max(height, width))
    return max(8, round(height * scale)), max(8, round(width * scale))


def resize_rgb(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, 3) float32 in [0, 1] from an (H, W, 3) uint8 frame, by area averaging (PIL BOX)."""
    h, w = size
    if frame.shape[:2] != (h, w):
        frame = np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize((w, h), Image.Resampling.BOX))
    return frame.astype(np.float32) * np.float32(1.0 / 255.0)


def resize_nearest(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` (h, w, ...) resized to `size` (H, W) by taking, for each output pixel, the input pixel under its
    centre: no value is blended with another (masks, and depths across edges, stay what they were)."""
    h, w = image.shape[:2]
    rows = np.minimum(((np.arange(size[0]) + 0.5) * h / size[0]).astype(np.intp), h - 1)
    cols = np.minimum(((np.arange(size[1]) + 0.5) * w / size[1]).astype(np.intp), w - 1)
    return image[rows[:, None], cols[None, :]]


def working_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) bool: the working pixels at least half inside the full-size (H, W) `mask`."""
    h, w = size
    if mask.shape == (h, w):
        return mask
    cover = np.asarray(Image.fromarray(mask.astype(np.float32)).resize((w, h), Image.Resampling.BOX))
    return cover >= 0.5


def grey(rgb: np.ndarray) -> np.ndarray:
    """(h, w) float32 luma (Rec. 601 weights) of an (h, w, 3) float image."""
    return (rgb @ np.array([0.299, 0.587, 0.114], np.float32)).astype(np.float32)


def cv_poses(poses_c2w_wire: np.ndarray) -> np.ndarray:
    """(N, 4, 4) float64 OpenCV camera-to-world from wire camera-to-world."""
    return np.asarray(poses_c2w_wire, dtype=np.float64) @ GL_TO_CV


def relative(c2w_cv_src: np.ndarray, c2w_cv_dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(R (3, 3), t (3,)) mapping OpenCV camera coordinates of `src` to those of `dst`: x_dst = R x_src + t."""
    m = np.linalg.inv(c2w_cv_dst) @ c2w_cv_src
    return m[:3, :3], m[:3, 3]


def image_rays(intr: Intrinsics, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(3, M) float64 camera rays (z = 1) through image points (u, v) (M,) (pixel (c, r)'s centre is (c + 0.5,
    r + 0.5))."""
    u = np.asarray(u, np.float64).ravel()
    v = np.asarray(v, np.float64).ravel()
    return np.stack([(u - intr.cx) / intr.fx, (v - intr.cy) / intr.fy, np.ones(u.size)])


def pixel_rays(intr: Intrinsics) -> np.ndarray:
    """(3, h*w) float64 rays (z = 1) through every pixel centre, row-major."""
    a, b = intr.ray_axes()
    return np.stack([np.tile(a, intr.height), np.repeat(b, intr.width), np.ones(intr.width * intr.height)])


def back_project(inverse: np.ndarray, use: np.ndarray, rays: np.ndarray, rot: np.ndarray, t: np.ndarray) -> np.ndarray:
    """(3, M) points x = rot @ p + t of the pixels `use` ((h*w,) bool, or (h, w)) of an inverse z-depth map
    `inverse` (same size; > 0 where used) along `rays` (3, h*w) at z = 1: with (rot, t) a camera-to-world pose
    these are world points, with `relative`'s they are another camera's."""
    use = np.asarray(use, bool).ravel()
    return rot @ (rays[:, use] / np.asarray(inverse).ravel()[use].astype(np.float64)) + np.asarray(t)[:, None]


def project(points: np.ndarray, intr: Intrinsics) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Array coordinates (x, y) and z of (3, M) camera-frame points (x = column, y = row; centres integer)."""
    z = points[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        x = intr.fx * points[0] / z + intr.cx - 0.5
        y = intr.fy * points[1] / z + intr.cy - 0.5
    return x, y, z


def bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample `image` (h, w) or (h, w, c) at array coordinates (x, y) of any shape; NaN outside the image.

    A sample is inside when it lies within the pixel centres' hull widened by half a pixel (edge pixels
    are repeated there)."""
    h, w = image.shape[:2]
    inside = (x > -0.5) & (x < w - 0.5) & (y > -0.5) & (y < h - 0.5)
    xc = np.clip(np.nan_to_num(x, nan=0.0), 0.0, w - 1.0)
    yc = np.clip(np.nan_to_num(y, nan=0.0), 0.0, h - 1.0)
    x0 = np.minimum(xc.astype(np.intp), w - 2) if w > 1 else np.zeros(xc.shape, np.intp)
    y0 = np.minimum(yc.astype(np.intp), h - 2) if h > 1 else np.zeros(yc.shape, np.intp)
    fx = (xc - x0).astype(np.float32)
    fy = (yc - y0).astype(np.float32)
    flat = image.reshape(h * w, -1) if image.ndim == 3 else image.reshape(h * w)
    base = y0 * w + x0
    dx = 1 if w > 1 else 0
    dy = w if h > 1 else 0
    if image.ndim == 3:
        fx, fy = fx[..., None], fy[..., None]
    top = flat[base] * (1 - fx) + flat[base + dx] * fx
    bottom = flat[base + dy] * (1 - fx) + flat[base + dy + dx] * fx
    out = (top * (1 - fy) + bottom * fy).astype(np.float32)
    out[~inside] = np.nan
    return out


def nearest(image: np.ndarray, x: np.ndarray, y: np.ndarray, fill: float = np.nan) -> tuple[np.ndarray, np.ndarray]:
    """(values, inside) of `image` (h, w) at the pixels nearest to array coordinates (x, y); `fill` outside."""
    h, w = image.shape[:2]
    with np.errstate(invalid="ignore"):
        col = np.floor(x + 0.5)
        row = np.floor(y + 0.5)
        inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    idx = np.where(inside, row * w + col, 0).astype(np.intp)
    values = image.reshape(-1)[idx]
    values = np.where(inside, values, fill)
    return values, inside


def domain_transform(
    values: np.ndarray, guide: np.ndarray, sigma_s: float, sigma_r: float, iterations: int = 3
) -> np.ndarray:
    """Edge-aware smoothing of `values` (h, w, c) guided by `guide` (h, w, 3) in [0, 1]: the recursive filter
    of the domain transform (Gastal and Oliveira, SIGGRAPH 2011). `sigma_s` in pixels, `sigma_r` in guide
    units. Rows and columns are scanned in Python, each step vectorised over the other axis."""
    out = np.array(values, dtype=np.float64)
    g = np.asarray(guide, dtype=np.float64)
    ratio = sigma_s / sigma_r
    # Distance between neighbours in the transformed domain: 1 + sigma_s / sigma_r * |dI| (L1 over channels).
    dx = 1.0 + ratio * np.abs(np.diff(g, axis=1)).sum(axis=2)  # (h, w-1)
    dy = 1.0 + ratio * np.abs(np.diff(g, axis=0)).sum(axis=2)  # (h-1, w)
    for i in range(iterations):
        sigma_i = sigma_s * np.sqrt(3.0) * 2.0 ** (iterations - i - 1) / np.sqrt(4.0**iterations - 1.0)
        a = np.exp(-np.sqrt(2.0) / sigma_i)
        _recursive_pass(out, a**dx, axis=1)
        _recursive_pass(out, a**dy, axis=0)
    return out


@njit(nt.void(nt.Array(nt.float64, 3, "A"), nt.Array(nt.float64, 2, "A")), **JIT_OPTIONS)
def _recursive_kernel(view, wts):  # pragma: no cover - compiled
    n, m, c = view.shape
    for k in range(1, n):
        for j in range(m):
            a = wts[k - 1, j]
            for q in range(c):
                view[k, j, q] += a * (view[k - 1, j, q] - view[k, j, q])
    for k in range(n - 2, -1, -1):
        for j in range(m):
            a = wts[k, j]
            for q in range(c):
                view[k, j, q] += a * (view[k + 1, j, q] - view[k, j, q])


def _recursive_pass(img: np.ndarray, weights: np.ndarray, axis: int) -> None:
    """In place: a causal then an anti-causal first-order recursive filter along `axis` with per-step weights.
    Compiled (numba): in NumPy each step was a Python iteration over a row or column, 25 ms a frame for two
    channels at the 192-pixel working size of then; the arithmetic is the same, element by element (float64, no fused
    multiply-add), so the output is the same to the bit (tests/scenes/capture/test_capture_depth_ops.py)."""
    view = img if axis == 0 else img.swapaxes(0, 1)
    wts = weights if axis == 0 else weights.swapaxes(0, 1)
    _recursive_kernel(view, np.asarray(wts, dtype=np.float64))
