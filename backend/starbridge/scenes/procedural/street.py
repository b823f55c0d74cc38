"""The benchmark street: one fixed, static world for speed benchmarks (colour plus exact depth).

Shaped like a real reference frame: a tiled street running away from the camera with house fronts on both
sides, spheres at 3.5-13 m, a brick-red wall across the far end of the street and sky at infinite depth
above. The camera stands at the origin, 1.6 m above the ground, looking down -Z; `render_street` renders it
from there (or any other pose) at 512x288 with a 60 degree vertical field of view unless told otherwise.

    colour, depth = render_street()                          # (288, 512, 3) uint8, (288, 512) float32
    for c2w in loop_around(48): ...                          # target cameras: paths.loop_around
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...geometry.camera import Intrinsics
from .raycast import Box, Ground, Lighting, RayScene, Sphere, render

STREET_WIDTH, STREET_HEIGHT, STREET_FOV_DEG = 512, 288, 60.0
#: The ground plane, metres below the camera.
STREET_GROUND_Y = -1.6


@lru_cache(maxsize=1)
def street_scene() -> RayScene:
    """The benchmark street (layout metres, +Y up; the camera at the origin looks down -Z)."""
    g = STREET_GROUND_Y
    houses = []
    # (nearest z, depth, width, height) of each pair of houses, metres; their fronts line the street at x = +-5
    for z_near, depth, width, height in ((-4.0, 5.0, 2.5, 3.0), (-10.0, 4.0, 2.0, 4.5), (-15.0, 4.0, 3.0, 3.5)):
        for side, colour in ((-1.0, (0.55, 0.45, 0.35)), (1.0, (0.35, 0.40, 0.45))):
            centre = (side * (5.0 + width / 2), g + height / 2, z_near - depth / 2)
            houses.append(Box(centre, (width / 2, height / 2, depth / 2), colour, 0.0, "windows"))
    wall = Box((-6.5, g + 3.3, -20.25), (5.5, 3.3, 0.25), (0.45, 0.12, 0.06), 0.0, "stripes")
    spheres = (
        Sphere((-2.0, -0.6, -6.0), 1.0, (0.58, 0.08, 0.05)),
        Sphere((1.5, -0.9, -3.5), 0.7, (0.05, 0.35, 0.10)),
        Sphere((0.4, 0.6, -13.0), 2.6, (0.10, 0.15, 0.65)),
        Sphere((4.0, -0.1, -9.0), 1.5, (0.72, 0.52, 0.06)),
    )
    return RayScene(Ground(height=g), Lighting(), boxes=(*houses, wall), spheres=spheres)


def street_intrinsics(
    width: int = STREET_WIDTH, height: int = STREET_HEIGHT, vertical_fov_deg: float = STREET_FOV_DEG
) -> Intrinsics:
    return Intrinsics.from_fov(vertical_fov_deg, width, height)


def render_street(
    intrinsics: Intrinsics | None = None, c2w_wire: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The street seen from `c2w_wire` (default: the origin camera): (colour (H, W, 3) uint8 sRGB, z-depth
    (H, W) float32 metres, +inf for sky), at `intrinsics` (default: 512x288, 60 degrees vertical)."""
    intr = intrinsics or street_intrinsics()
    return render(street_scene(), np.eye(4) if c2w_wire is None else c2w_wire, intr)
