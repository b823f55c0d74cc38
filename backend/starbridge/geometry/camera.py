"""Pinhole intrinsics. The wire carries vertical field of view and aspect; the renderer needs K.

Pixel convention: pixel (u, v) covers [u, u+1) x [v, v+1), so its centre is (u + 0.5, v + 0.5)
and the principal point of a centred camera is (width / 2, height / 2). Rows go top to bottom.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgument

#: Bounds of a vertical field of view the backend accepts, degrees (exclusive).
MIN_FOV_DEG = 1.0
MAX_FOV_DEG = 179.0
#: The diagonal of a 35 mm film frame (36 x 24 mm), millimetres: "35 mm-equivalent" focal lengths are
#: defined against it.
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
#: Bounds of a 35 mm-equivalent focal length the backend accepts, millimetres (inclusive): fisheye to telephoto.
MIN_EQUIVALENT_FOCAL_MM = 4.0
MAX_EQUIVALENT_FOCAL_MM = 1000.0


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera in pixels (OpenCV K): x right, y down, z forward."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, vertical_fov_deg: float, width: int, height: int, aspect: float = 0.0) -> Intrinsics:
        """Centred camera with square pixels (or `aspect` = width/height of the engine's viewport).

        With `aspect` 0 the pixels are square. A different aspect stretches the horizontal focal
        length so the image spans that aspect's horizontal field of view.
        """
        check_fov(vertical_fov_deg)
        if width <= 0 or height <= 0:
            raise InvalidArgument(f"image size must be positive, got {width}x{height}", field="width")
        fy = 0.5 * height / math.tan(math.radians(vertical_fov_deg) / 2.0)
        fx = fy
        if aspect and aspect > 0:
            fx = fy * (width / height) / aspect
        return cls(fx=fx, fy=fy, cx=width / 2.0, cy=height / 2.0, width=width, height=height)

    @property
    def K(self) -> np.ndarray:  # noqa: N802 (the usual name)
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def vertical_fov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(0.5 * self.height / self.fy))

    def ray_axes(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre ray axes, float64: a (width,) = (u + 0.5 - cx) / fx and b (height,) = (v + 0.5 - cy) / fy;
        the ray of pixel (u, v) in the OpenCV camera frame is (a[u], b[v], 1)."""
        a = (np.arange(self.width) + 0.5 - self.cx) / self.fx
        b = (np.arange(self.height) + 0.5 - self.cy) / self.fy
        return a, b

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera at another resolution."""
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)

    def subsampled(self, step: int) -> Intrinsics:
        """The camera of the image `image[step // 2 :: step, step // 2 :: step]` (every step-th pixel, centred
        in its step x step block), so a subsampled pixel keeps the exact ray of the pixel it was taken from."""
        o = step // 2
        width, height = len(range(o, self.width, step)), len(range(o, self.height, step))
        return Intrinsics(
            self.fx / step, self.fy / step, (self.cx - o - 0.5) / step + 0.5, (self.cy - o - 0.5) / step + 0.5,
            width, height,
        )  # fmt: skip


def fov_of_equivalent_focal(focal_35mm: float, width: int, height: int) -> float:
    """Vertical field of view, degrees, of a `width` x `height` picture taken through a lens of this 35 mm-
    equivalent focal length (millimetres, defined on the diagonal: the picture's diagonal spans what a
    full-frame diagonal spans). A phone's main camera (24-28 mm) filming 16:9 in landscape: 26 mm gives 44.4
    degrees vertical (71.9 across); in portrait the same lens gives 71.9 vertical."""
    check_equivalent_focal(focal_35mm)
    if width <= 0 or height <= 0:
        raise InvalidArgument(f"image size must be positive, got {width}x{height}", field="width")
    half_height = 0.5 * FULL_FRAME_DIAGONAL_MM * height / math.hypot(width, height)
    return math.degrees(2.0 * math.atan(half_height / focal_35mm))


def check_equivalent_focal(focal_35mm: float, field: str = "focal_35mm") -> None:
    ok = isinstance(focal_35mm, (int, float)) and math.isfinite(focal_35mm)
    if not (ok and MIN_EQUIVALENT_FOCAL_MM <= focal_35mm <= MAX_EQUIVALENT_FOCAL_MM):
        raise InvalidArgument(
            f"{field} (a 35 mm-equivalent focal length) must be in [{MIN_EQUIVALENT_FOCAL_MM:g}, "
            f"{MAX_EQUIVALENT_FOCAL_MM:g}] mm, got {focal_35mm}",
            field=field,
        )


def check_fov(vertical_fov_deg: float, field: str = "vertical_fov_deg") -> None:
    if not (math.isfinite(vertical_fov_deg) and MIN_FOV_DEG < vertical_fov_deg < MAX_FOV_DEG):
        raise InvalidArgument(
            f"{field} must be in ({MIN_FOV_DEG:g}, {MAX_FOV_DEG:g}) degrees, got {vertical_fov_deg}", field=field
        )
