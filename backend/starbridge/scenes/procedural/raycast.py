"""A small deterministic ray-caster: ground plane, boxes, spheres, sky and sun, in vectorised numpy.

It renders ground truth for the demo scene, the training samples and the benchmarks at any camera pose, so it
favours exactness over looks: one primary ray per pixel through the pixel centre (u + 0.5, v + 0.5),
analytic intersections (ray-plane, slab test for oriented boxes, ray-sphere), Lambert shading with a
directional sun, hard shadows, ambient light, distance fog, and an exact z-depth. Surface patterns (the
ground's tiles, the boxes' stripes, checks and windows) are averaged over each pixel's footprint, as a
camera's pixel averages the light it gathers: read at the ray's point only, a pattern finer than two pixels a
period aliases into moire, shimmering as the camera moves and moving unlike its surface.

Conventions: world +Y up, metres; camera-to-world poses in the wire convention (camera looks down -Z,
+Y up, +X right); images rows top to bottom. The per-pixel ray directions are scaled so that their
component along the camera's forward axis is 1, so a ray parameter *is* the pixel's z-depth.

Speed: every object is tested only inside the screen rectangle its corners project to, and its shadow
only inside the rectangle of its shadow volume (the object swept along the sun direction down to the
ground), so small and distant objects cost little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ...geometry.camera import Intrinsics

#: Bumped when what the renderer draws changes (caches of rendered training samples are then stale; the
#: benchmarks record it): 2 since the boxes' patterns are averaged over the pixel's footprint, not read at a
#: point (docs/capture-measurements.md, "Box textures filtered over the pixel, landed").
RENDER_VERSION = 2
#: Ray parameters below this are ignored (self-intersection guard), metres.
HIT_EPS = 1e-4
#: Shadow rays start this far off the surface, along its normal, metres.
SHADOW_BIAS = 1e-3
#: Points nearer the camera plane than this (or behind it) disable screen-rectangle culling, metres.
NEAR_Z = 1e-3
#: Entries of the linear -> sRGB lookup table.
SRGB_LUT_SIZE = 4096

Vec3 = tuple[float, float, float]

#: (8, 3) corners of the cube [-1, 1]^3.
_CUBE_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
_CUBE_CORNERS.setflags(write=False)


def yaw_rotation(radians: float) -> np.ndarray:
    """(3, 3) rotation by `radians` about +Y (positive turns -Z towards -X: a camera turns to its left)."""
    c, s = math.cos(radians), math.sin(radians)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@dataclass(frozen=True)
class Box:
    """An oriented box: centre and half extents in metres, turned by `yaw` radians about +Y.

    `albedo` is linear RGB in [0, 1]; `pattern` is one of "plain", "checker", "stripes", "windows".
    """

    center: Vec3
    half: Vec3
    albedo: Vec3
    yaw: float = 0.0
    pattern: str = "plain"

    def rotation(self) -> np.ndarray:
        """(3, 3) local-to-world rotation."""
        return yaw_rotation(self.yaw)

    def corners(self) -> np.ndarray:
        """(8, 3) world corners."""
        return (_CUBE_CORNERS * np.asarray(self.half)) @ self.rotation().T + np.asarray(self.center)


@dataclass(frozen=True)
class Sphere:
    """A sphere, metres; its checker texture is turned by `spin` radians about +Y (so rotation shows)."""

    center: Vec3
    radius: float
    albedo: Vec3
    spin: float = 0.0
    pattern: str = "checker"

    def corners(self) -> np.ndarray:
        """(8, 3) corners of the bounding cube."""
        return _CUBE_CORNERS * self.radius + np.asarray(self.center)


@dataclass(frozen=True)
class Ground:
    """The plane y = `height`, tiled: a two-tone checker of `tile_m` tiles with per-tile colour variation
    (relative, 0 = none) and darker grout lines `grout_m` wide. Colours linear RGB in [0, 1]."""

    height: float = 0.0
    tile_m: float = 1.0
    color_a: Vec3 = (0.42, 0.40, 0.36)
    color_b: Vec3 = (0.30, 0.31, 0.28)
    variation: float = 0.35
    grout_m: float = 0.04
    grout_color: Vec3 = (0.12, 0.12, 0.11)
    #: Mixed into the tile hash, so two worlds do not share their tile colours.
    seed: int = 0


@dataclass(frozen=True)
class Lighting:
    """Sun (directional, at infinity), ambient sky light, sky gradient and fog. Colours linear RGB."""

    #: Unit vector from the scene towards the sun.
    sun_dir: Vec3 = (0.5, 0.6, 0.62)
    sun_color: Vec3 = (1.0, 0.95, 0.85)
    ambient: Vec3 = (0.28, 0.32, 0.40)
    zenith: Vec3 = (0.10, 0.22, 0.55)
    horizon: Vec3 = (0.65, 0.75, 0.88)
    #: Angular radius of the sun disc, degrees.
    sun_disc_deg: float = 1.5
    #: Distance over which fog takes 63 % of the colour, metres (0: no fog).
    fog_distance_m: float = 180.0
    shadows: bool = True


@dataclass(frozen=True)
class RayScene:
    """Everything the ray-caster draws at one instant."""

    ground: Ground = field(default_factory=Ground)
    lighting: Lighting = field(default_factory=Lighting)
    boxes: tuple[Box, ...] = ()
    spheres: tuple[Sphere, ...] = ()


# ---------------------------------------------------------------------------------------------- rays

#: Three components (x, y, z) of points or directions, each a float32 array (planar layout) or a scalar.
Planar = tuple


@lru_cache(maxsize=8)
def _camera_grid(intr: Intrinsics) -> np.ndarray:
    """(3, H, W) float32 ray directions in the wire camera frame, forward component 1: (x, -y, -1)."""
    u, v = intr.ray_axes()
    grid = np.empty((3, intr.height, intr.width), dtype=np.float32)
    grid[0] = u[None, :]
    grid[1] = -v[:, None]
    grid[2] = -1.0
    grid.setflags(write=False)
    return grid


def _world_dirs(c2w: np.ndarray, intr: Intrinsics) -> np.ndarray:
    """(3, H, W) float32 world ray directions, scaled so their component along the camera forward is 1."""
    grid = _camera_grid(intr)
    rot = c2w[:3, :3].astype(np.float32)
    return np.einsum("ij,jhw->ihw", rot, grid)


def camera_rays(c2w_wire: np.ndarray, intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """(origin (3,) float64, directions (H, W, 3) float32 in world space, scaled to unit z-depth)."""
    c2w = np.asarray(c2w_wire, dtype=np.float64)
    return c2w[:3, 3].copy(), np.ascontiguousarray(np.moveaxis(_world_dirs(c2w, intr), 0, -1))


def screen_rect(points: np.ndarray, c2w_wire: np.ndarray, intr: Intrinsics) -> tuple[slice, slice] | None:
    """Rows and columns of the pixels whose centres can see the convex hull of `points` (M, 3), with a
    one-pixel margin. None when the hull is entirely behind the camera or off screen.

    A hull that straddles the camera plane is clipped to the part in front of it first (the hull of the
    points in front and of where the segments between front and back points cross the near plane).
    """
    c2w = np.asarray(c2w_wire, dtype=np.float64)
    cam = (np.asarray(points, np.float64) - c2w[:3, 3]) @ c2w[:3, :3]  # wire camera coordinates
    z = -cam[:, 2]
    front = z > NEAR_Z
    if not front.any():
        return None
    if not front.all():
        a, b = cam[front], cam[~front]
        za, zb = z[front][:, None, None], z[~front][None, :, None]
        crossing = a[:, None] + (b[None] - a[:, None]) * ((za - NEAR_Z) / (za - zb))
        cam = np.concatenate([a, crossing.reshape(-1, 3)])
        z = np.maximum(-cam[:, 2], NEAR_Z)
    u = intr.fx * cam[:, 0] / z + intr.cx
    v = -intr.fy * cam[:, 1] / z + intr.cy
    u0, u1 = max(math.ceil(u.min() - 0.5) - 1, 0), min(math.floor(u.max() - 0.5) + 2, intr.width)
    v0, v1 = max(math.ceil(v.min() - 0.5) - 1, 0), min(math.floor(v.max() - 0.5) + 2, intr.height)
    if u0 >= u1 or v0 >= v1:
        return None
    return slice(v0, v1), slice(u0, u1)


# ---------------------------------------------------------------------------------------------- intersections
#
# The core tests take planar components (x, y, z), each a float32 array or a scalar, so one code path
# serves primary rays (one origin, many directions) and shadow rays (many origins, one direction).


def _planar(v: np.ndarray) -> Planar:
    v = np.asarray(v, dtype=np.float32)
    return (v[..., 0], v[..., 1], v[..., 2]) if v.ndim > 1 else tuple(np.float32(c) for c in v)


def _box_local(box: Box, x, y, z) -> Planar:
    """World-aligned components -> the box's local frame (inverse yaw)."""
    if box.yaw == 0.0:
        return x, y, z
    c, s = np.float32(math.cos(box.yaw)), np.float32(math.sin(box.yaw))
    return c * x - s * z, y, s * x + c * z


def _box_slab(box: Box, o: Planar, d: Planar) -> tuple[np.ndarray, np.ndarray]:
    """(t_near, t_far) of the slab test; the ray hits where t_far >= t_near and t_far > HIT_EPS.

    Per axis, when the origin (a scalar) lies below the slab, a ray can only enter through the lower face
    and leave through the upper one (rays going the other way get a negative t_far and miss); likewise
    above; and when the direction is a scalar its sign picks the faces. Only the remaining case (a ray
    origin inside the slab, or arrays on both sides) needs the per-pixel min/max of the general test.
    """
    cx, cy, cz = (np.float32(c) for c in box.center)
    lo = _box_local(box, o[0] - cx, o[1] - cy, o[2] - cz)
    ld = _box_local(box, *d)
    t_near: np.ndarray | np.float32 = np.float32(-np.inf)
    t_far: np.ndarray | np.float32 = np.float32(np.inf)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for k in range(3):  # one axis at a time: numpy reductions over a length-3 axis are slow
            h, ok, dk = np.float32(box.half[k]), lo[k], ld[k]
            inv = np.float32(1.0) / dk
            ta = (-h - ok) * inv  # parameter at the lower face
            tb = (h - ok) * inv  # parameter at the upper face
            scalar_o, scalar_d = np.ndim(ok) == 0, np.ndim(dk) == 0
            if (scalar_o and ok < -h) or (scalar_d and dk > 0):
                near, far = ta, tb
            elif (scalar_o and ok > h) or (scalar_d and dk < 0):
                near, far = tb, ta
            else:
                near, far = np.minimum(ta, tb), np.maximum(ta, tb)
            t_near = np.maximum(t_near, near)
            t_far = np.minimum(t_far, far)
    return np.asarray(t_near), np.asarray(t_far)


def _box_t(box: Box, o: Planar, d: Planar) -> np.ndarray:
    t_near, t_far = _box_slab(box, o, d)
    t = np.where(t_near > HIT_EPS, t_near, t_far).astype(np.float32)
    t[~((t_far >= t_near) & (t_far > HIT_EPS))] = np.inf
    return t


def _sphere_t(sphere: Sphere, o: Planar, d: Planar, dd: np.ndarray | None = None) -> np.ndarray:
    ox, oy, oz = (o[k] - np.float32(sphere.center[k]) for k in range(3))
    a = dd if dd is not None else d[0] * d[0] + d[1] * d[1] + d[2] * d[2]
    b = d[0] * ox + d[1] * oy + d[2] * oz  # half of the usual b
    c = ox * ox + oy * oy + oz * oz - np.float32(sphere.radius**2)
    disc = b * b - a * c
    with np.errstate(invalid="ignore"):
        root = np.sqrt(disc)
        t_near = (-b - root) / a
        t_far = (-b + root) / a
    t = np.asarray(np.where(t_near > HIT_EPS, t_near, t_far), dtype=np.float32)
    t[~((disc >= 0) & (t > HIT_EPS))] = np.inf
    return t


def intersect_plane_y(origin: np.ndarray, dirs: np.ndarray, height: float) -> np.ndarray:
    """Ray parameter of the hit with the plane y = height, +inf for a miss. origin (3,), dirs (..., 3)."""
    return _plane_t(np.asarray(origin, np.float64), np.asarray(dirs, np.float32)[..., 1], height)


def _plane_t(origin: np.ndarray, dy: np.ndarray, height: float) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (np.float32(height - origin[1]) / dy).astype(np.float32)
    t[~(t > HIT_EPS)] = np.inf  # also NaN and negative
    return t


def intersect_box(box: Box, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Ray parameter of the hit with an oriented box: the entry (from inside: the exit), +inf for a miss.

    origin (3,) or (..., 3); dirs (..., 3) or (3,); returns the broadcast shape without the last axis."""
    return np.asarray(_box_t(box, _planar(origin), _planar(dirs)))


def intersect_sphere(sphere: Sphere, origin: np.ndarray, dirs: np.ndarray) -> np.ndarray:
    """Ray parameter of the nearest hit in front (+inf for a miss). origin (3,) or (..., 3), dirs (..., 3)."""
    return np.asarray(_sphere_t(sphere, _planar(origin), _planar(dirs)))


# ---------------------------------------------------------------------------------------------- textures


def _hash2(ix: np.ndarray, iz: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic hash of integer grid cells to [0, 1), float32."""
    h = ix.astype(np.int64) * 374761393 + iz.astype(np.int64) * 668265263 + seed * 1442695041
    h = (h ^ (h >> 13)) * 1274126177
    h = h ^ (h >> 16)
    return ((h & 0xFFFF).astype(np.float32)) / np.float32(65536.0)


def ground_albedo(ground: Ground, x: np.ndarray, z: np.ndarray, footprint: np.ndarray) -> np.ndarray:
    """(M, 3) albedo at ground points (x, z). `footprint` (M,) is a pixel's size on the ground, metres;
    texture contrast fades where tiles get smaller than a few pixels (cheap anti-aliasing)."""
    sx, sz = x / ground.tile_m, z / ground.tile_m
    ix, iz = np.floor(sx), np.floor(sz)
    checker = ((ix + iz) % 2).astype(np.float32)
    fade = np.clip(1.0 - footprint / ground.tile_m, 0.0, 1.0).astype(np.float32)
    a, b = np.asarray(ground.color_a, np.float32), np.asarray(ground.color_b, np.float32)
    mean = 0.5 * (a + b)
    base = mean + ((b - a) * 0.5) * ((2 * checker - 1) * fade)[:, None]
    jitter = 1.0 + ground.variation * (_hash2(ix, iz, ground.seed) - 0.5) * fade
    albedo = base * jitter[:, None]
    edge = np.minimum(np.minimum(sx - ix, 1 - (sx - ix)), np.minimum(sz - iz, 1 - (sz - iz))) * ground.tile_m
    grout_fade = np.clip(1.0 - footprint / (4 * ground.grout_m), 0.0, 1.0)
    grout = ((edge < 0.5 * ground.grout_m) * grout_fade).astype(np.float32)
    return albedo + (np.asarray(ground.grout_color, np.float32) - albedo) * grout[:, None]


def _pulse_integral(x: np.ndarray, period: float, lo: float, hi: float) -> np.ndarray:
    """The integral from 0 to x of the pulse train that is 1 on [lo, hi) of each `period` (lo, hi in metres
    within the period) and 0 elsewhere: piecewise linear, so its difference over a pixel's footprint is the
    pattern's exact area average there."""
    whole = np.floor(x / period)
    return whole * (hi - lo) + np.clip(x - whole * period - lo, 0.0, hi - lo)


def _pulse_mean(x: np.ndarray, footprint: np.ndarray | None, period: float, lo: float, hi: float) -> np.ndarray:
    """The pulse train of `_pulse_integral` averaged over [x - footprint / 2, x + footprint / 2] (a pixel's
    box filter along the face), or sampled at x where `footprint` is None."""
    if footprint is None:
        frac = x / period - np.floor(x / period)
        return ((frac >= lo / period) & (frac < hi / period)).astype(np.float32)
    half = np.maximum(footprint, 1e-6) * 0.5
    area = _pulse_integral(x + half, period, lo, hi) - _pulse_integral(x - half, period, lo, hi)
    return (area / (2.0 * half)).astype(np.float32)


def box_albedo(
    box: Box, local_hit: np.ndarray, spread: np.ndarray | None = None, local_dir: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(albedo (M, 3), local normal (M, 3)) at local hit points (M, 3) on the box surface.

    With `spread` (M,) (a pixel's size across its ray at the hit, metres, times the ray direction's length:
    ray parameter x |dir|^2 / fy, as the ground's footprint) and `local_dir` (M, 3) the rays in the box's
    frame, each pattern is averaged over the pixel's footprint on the face (spread / |dir . normal|, the same
    length along both face axes): a camera integrates the light over a pixel, and a pattern point-sampled
    finer than two pixels a period is moire that moves unlike the surface (a far tower's 0.4 m stripes, 0.8 px
    a stripe at 100 m through a 320-pixel frame, matched by stereo as a nearer surface). Up close the
    averaging only softens the pattern's edges within a pixel; without `spread` the patterns are point-sampled."""
    half = np.asarray(box.half, dtype=np.float32)
    rel = np.abs(local_hit) / half
    axis = rel.argmax(axis=1)
    m = local_hit.shape[0]
    normal = np.zeros((m, 3), dtype=np.float32)
    normal[np.arange(m), axis] = np.sign(local_hit[np.arange(m), axis])
    albedo = np.broadcast_to(np.asarray(box.albedo, np.float32), (m, 3)).copy()
    footprint = None
    if spread is not None and local_dir is not None:
        facing = np.abs(np.einsum("mk,mk->m", local_dir, normal))
        footprint = spread / np.maximum(facing, 1e-6 * np.sqrt(np.einsum("mk,mk->m", local_dir, local_dir)))
    # Face coordinates in metres from the box's lower corner: s runs along the face, y up it.
    s = np.where(axis == 0, local_hit[:, 2] + half[2], local_hit[:, 0] + half[0])
    y = local_hit[:, 1] + half[1]
    top = axis == 1
    if box.pattern == "checker":
        a = np.where(top, local_hit[:, 2] + half[2], y)
        # the checker is 1 where exactly one of the two band trains is: 1 - (1 - 2u)(1 - 2v), halved
        u, v = (_pulse_mean(c, footprint, 1.0, 0.5, 1.0) for c in (s, a))
        albedo *= (0.75 + 0.25 * 0.5 * (1.0 - (1.0 - 2.0 * u) * (1.0 - 2.0 * v)))[:, None]
    elif box.pattern == "stripes":
        albedo *= (0.8 + 0.2 * _pulse_mean(y, footprint, 0.8, 0.4, 0.8))[:, None]
    elif box.pattern == "windows":
        window = _pulse_mean(s, footprint, 1.4, 0.42, 0.98) * _pulse_mean(y, footprint, 1.6, 0.56, 1.28)
        window *= ((y > 0.8) & ~top).astype(np.float32)
        window *= ((s > 0.3) & (s < 2 * np.where(axis == 0, half[2], half[0]) - 0.3)).astype(np.float32)
        albedo += (np.asarray((0.05, 0.08, 0.12), np.float32) - albedo) * window[:, None]
    albedo[top] *= 0.7  # roofs and lids a little darker
    return albedo, normal


def sphere_albedo(sphere: Sphere, normal: np.ndarray) -> np.ndarray:
    """(M, 3) albedo at unit normals (M, 3): 8 x 4 checker in longitude/latitude, turned by `spin`."""
    lon = np.arctan2(normal[:, 2], normal[:, 0]) + sphere.spin
    lat = np.arcsin(np.clip(normal[:, 1], -1.0, 1.0))
    cell = np.floor(lon / (math.pi / 4)) + np.floor(lat / (math.pi / 4))
    shade = 0.55 + 0.45 * (cell % 2) if sphere.pattern == "checker" else np.ones_like(lon)
    return (np.asarray(sphere.albedo, np.float32) * shade[:, None].astype(np.float32)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- render


@lru_cache(maxsize=1)
def _srgb_lut() -> np.ndarray:
    x = np.linspace(0.0, 1.0, SRGB_LUT_SIZE)
    srgb = np.where(x <= 0.0031308, 12.92 * x, 1.055 * np.power(x, 1 / 2.4) - 0.055)
    return np.round(srgb * 255.0).astype(np.uint8)


def linear_to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear RGB (any shape, values clipped to [0, 1]) -> sRGB uint8, through a lookup table."""
    idx = (np.clip(linear, 0.0, 1.0) * (SRGB_LUT_SIZE - 1) + 0.5).astype(np.int32)
    return _srgb_lut()[idx]


class _Frame:
    """Rays and per-pixel hit record of one render, planar: depth (H, W) z-depth (+inf = sky),
    normal (3, H, W) unit, albedo (3, H, W) linear RGB, is_ground (H, W)."""

    def __init__(self, c2w: np.ndarray, intr: Intrinsics) -> None:
        self.c2w, self.intr = c2w, intr
        self.origin = c2w[:3, 3].copy()
        self.dirs = _world_dirs(c2w, intr)
        self.dd = np.einsum("khw,khw->hw", self.dirs, self.dirs)  # squared length of each ray direction
        shape = (intr.height, intr.width)
        self.depth = np.full(shape, np.inf, dtype=np.float32)
        self.normal = np.zeros((3, *shape), dtype=np.float32)
        self.albedo = np.zeros((3, *shape), dtype=np.float32)
        self.is_ground = np.zeros(shape, dtype=bool)

    def rays_in(self, rect: tuple[slice, slice]) -> Planar:
        return tuple(self.dirs[k][rect] for k in range(3))

    def origin_planar(self) -> Planar:
        return tuple(np.float32(c) for c in self.origin)

    def take(self, rect: tuple[slice, slice], t: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
        """Record hits `t` (rect-shaped) nearer than what is there. Returns (their indices within rect,
        their world points (M, 3))."""
        closer = t < self.depth[rect]
        self.depth[rect][closer] = t[closer]
        self.is_ground[rect][closer] = False
        idx = np.nonzero(closer)
        d = np.stack([self.dirs[k][rect][idx] for k in range(3)], axis=1)
        return idx, self.origin + t[idx][:, None] * d

    def store(self, rect: tuple[slice, slice], idx: tuple[np.ndarray, ...], normal, albedo) -> None:
        """Write (M, 3) normals and albedos at pixels `idx` of `rect`."""
        self.normal[(slice(None), *rect)][:, idx[0], idx[1]] = normal.T
        self.albedo[(slice(None), *rect)][:, idx[0], idx[1]] = albedo.T


def _draw_ground(fr: _Frame, ground: Ground) -> None:
    fr.depth[:] = _plane_t(fr.origin, fr.dirs[1], ground.height)
    fr.is_ground[:] = np.isfinite(fr.depth)


def _shade_ground(fr: _Frame, ground: Ground) -> None:
    """Albedo and normal of the pixels that still see the ground after every object was drawn."""
    idx = np.nonzero(fr.is_ground)
    t = fr.depth[idx]
    dy = fr.dirs[1][idx]
    x = fr.origin[0] + t * fr.dirs[0][idx]
    z = fr.origin[2] + t * fr.dirs[2][idx]
    footprint = t * fr.dd[idx] / (fr.intr.fy * np.maximum(np.abs(dy), 1e-6))
    fr.albedo[:, idx[0], idx[1]] = ground_albedo(ground, x, z, footprint).T
    fr.normal[1][idx] = 1.0 if fr.origin[1] >= ground.height else -1.0


def _draw_boxes(fr: _Frame, boxes: tuple[Box, ...]) -> None:
    origin = fr.origin_planar()
    for box in boxes:
        rect = screen_rect(box.corners(), fr.c2w, fr.intr)
        if rect is None:
            continue
        idx, hit = fr.take(rect, _box_t(box, origin, fr.rays_in(rect)))
        if idx[0].size:
            rot = box.rotation()
            dirs = np.stack([fr.dirs[k][rect][idx] for k in range(3)], axis=1)
            spread = fr.depth[rect][idx] * fr.dd[rect][idx] / fr.intr.fy
            local = ((hit - np.asarray(box.center)) @ rot).astype(np.float32)
            albedo, normal = box_albedo(box, local, spread, (dirs @ rot).astype(np.float32))
            fr.store(rect, idx, normal @ rot.T.astype(np.float32), albedo)


def _draw_spheres(fr: _Frame, spheres: tuple[Sphere, ...]) -> None:
    origin = fr.origin_planar()
    for sphere in spheres:
        rect = screen_rect(sphere.corners(), fr.c2w, fr.intr)
        if rect is None:
            continue
        idx, hit = fr.take(rect, _sphere_t(sphere, origin, fr.rays_in(rect), fr.dd[rect]))
        if idx[0].size:
            normal = ((hit - np.asarray(sphere.center)) / sphere.radius).astype(np.float32)
            fr.store(rect, idx, normal, sphere_albedo(sphere, normal))


def _shadow_volume(corners: np.ndarray, sun: np.ndarray, ground_y: float) -> np.ndarray:
    """(16, 3) corners of the occluder and of its shadow on the ground plane (convex hull = shadow volume)."""
    drop = np.maximum(corners[:, 1] - ground_y, 0.0) / max(sun[1], 1e-3)
    return np.concatenate([corners, corners - drop[:, None] * sun])


def _sun_blocked(fr: _Frame, scene: RayScene, candidates: np.ndarray) -> np.ndarray:
    """(H, W) bool: True where an object blocks the sun from the surface point of a candidate pixel.

    Dense per occluder over its shadow volume's screen rectangle (gathering the candidate pixels first
    costs more than testing them all)."""
    blocked = np.zeros(candidates.shape, dtype=bool)
    sun = np.asarray(scene.lighting.sun_dir, dtype=np.float64)
    if sun[1] <= 0:
        return blocked  # sun at or below the horizon: nothing is lit directly anyway
    depth = np.where(candidates, fr.depth, np.float32(0.0))
    points = [fr.origin[k] + depth * fr.dirs[k] + np.float32(SHADOW_BIAS) * fr.normal[k] for k in range(3)]
    towards_sun = tuple(np.float32(c) for c in sun)
    occluders: list[Box | Sphere] = [*scene.boxes, *scene.spheres]
    for occ in occluders:
        rect = screen_rect(_shadow_volume(occ.corners(), sun, scene.ground.height), fr.c2w, fr.intr)
        if rect is None or not candidates[rect].any():
            continue
        origin = tuple(p[rect] for p in points)
        if isinstance(occ, Box):
            t_near, t_far = _box_slab(occ, origin, towards_sun)
            blocked[rect] |= (t_far >= t_near) & (t_far > HIT_EPS)
        else:
            blocked[rect] |= np.isfinite(_sphere_t(occ, origin, towards_sun))
    return blocked & candidates


def _sky(lighting: Lighting, dirs: np.ndarray) -> np.ndarray:
    """(M, 3) linear sky colour for ray directions (M, 3): horizon-to-zenith gradient, sun disc and glow."""
    unit = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    up = np.clip(unit[:, 1], 0.0, 1.0)
    zen, hor = np.asarray(lighting.zenith, np.float32), np.asarray(lighting.horizon, np.float32)
    colour = hor + (zen - hor) * np.sqrt(up)[:, None]
    cos_sun = unit @ np.asarray(lighting.sun_dir, np.float32)
    glow = 0.35 * np.clip(cos_sun, 0.0, 1.0) ** 48
    disc = cos_sun > math.cos(math.radians(lighting.sun_disc_deg))
    colour = colour + glow[:, None] * np.asarray(lighting.sun_color, np.float32)
    colour[disc] = 1.0
    return colour


def _shade(fr: _Frame, scene: RayScene) -> np.ndarray:
    """(3, H, W) linear colour: Lambert + ambient with shadows, fog towards the horizon colour, then sky."""
    light = scene.lighting
    sun = np.asarray(light.sun_dir, np.float32)
    surface = np.isfinite(fr.depth)
    lambert = np.maximum(np.einsum("k,khw->hw", sun, fr.normal), 0.0)
    lambert[~surface] = 0.0
    if light.shadows:
        lambert[_sun_blocked(fr, scene, lambert > 0)] = 0.0
    ambient, sun_colour = np.asarray(light.ambient, np.float32), np.asarray(light.sun_color, np.float32)
    colour = fr.albedo * (ambient[:, None, None] + lambert[None] * sun_colour[:, None, None])
    if light.fog_distance_m > 0:
        with np.errstate(invalid="ignore"):
            keep = np.exp(-fr.depth * np.sqrt(fr.dd) / np.float32(light.fog_distance_m))
        horizon = np.asarray(light.horizon, np.float32)[:, None, None]
        colour = horizon + (colour - horizon) * keep[None]
    sky = np.nonzero(~surface)
    sky_dirs = np.stack([fr.dirs[k][sky] for k in range(3)], axis=1)
    colour[:, sky[0], sky[1]] = _sky(light, sky_dirs).T
    return colour


def render(scene: RayScene, c2w_wire: np.ndarray, intr: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Render `scene` from a camera. Returns (rgb (H, W, 3) uint8 sRGB, depth (H, W) float32 z-depth in
    metres, +inf where the ray reaches the sky). Rows top to bottom; the camera's +X is to the right."""
    fr = _Frame(np.asarray(c2w_wire, dtype=np.float64), intr)
    _draw_ground(fr, scene.ground)
    _draw_boxes(fr, scene.boxes)
    _draw_spheres(fr, scene.spheres)
    _shade_ground(fr, scene.ground)
    colour = _shade(fr, scene)
    rgb = np.ascontiguousarray(np.moveaxis(linear_to_srgb8(colour), 0, -1))
    return rgb, fr.depth
