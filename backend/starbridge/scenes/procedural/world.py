"""The procedural 4D world: a seeded layout with moving objects, ray-cast at any camera pose and time.

`DemoWorld` is a seeded world (ground tiles, near crates and pillars, houses, far towers, a ring of
distant blocks all around, a sky with a sun) with moving objects (a bouncing ball, a sliding box, a
spinning box, an orbiting ball) whose motion loops every `loop_s` seconds. Seed 0 is the built-in demo
scene's world (`scenes/demo.py`); other seeds, seen under a style (`styles.py`), are the training and
held-out worlds (`samples.py`). It renders any camera pose at any time, so it is also the ground truth at
novel poses.

The layout keeps a disc around the reference camera free of objects (CLEAR_CENTRE_XZ, CLEAR_SLOT_RADIUS_M),
so camera paths near the origin (`paths.py`) never start inside a box.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ...errors import SceneError
from ...geometry.camera import Intrinsics
from .raycast import Box, Ground, Lighting, RayScene, Sphere, render

#: Building colours (linear RGB): plaster, brick, sand, slate, teal, ochre, rose, sage.
PALETTE = (
    (0.70, 0.66, 0.58),
    (0.45, 0.16, 0.10),
    (0.62, 0.48, 0.30),
    (0.25, 0.28, 0.33),
    (0.10, 0.38, 0.40),
    (0.65, 0.42, 0.08),
    (0.62, 0.30, 0.35),
    (0.36, 0.45, 0.30),
)

#: Centre (x, z) and radius, layout metres, of the disc the layout keeps free around the reference camera.
CLEAR_CENTRE_XZ = (0.0, -0.6)
CLEAR_SLOT_RADIUS_M = 2.6


@dataclass(frozen=True)
class DemoWorldConfig:
    """A procedural world. Distances in metres (times `world_scale`), angles in degrees, times in seconds."""

    #: Picks the layout and colours; 0 is the built-in demo, others are held-out worlds for benchmarks.
    seed: int = 0
    #: Period of every moving object's motion (the scene duration).
    loop_s: float = 3.0
    #: The ground is this far below the origin (the reference camera's eye height).
    eye_height_m: float = 1.6
    sun_elevation_deg: float = 38.0
    #: Compass direction of the sun, degrees from -Z (ahead of the reference camera) towards +X.
    sun_azimuth_deg: float = 145.0
    fog_distance_m: float = 180.0
    shadows: bool = True
    #: Units of the rendered world per metre of the layout: positions in `render` are in these units and
    #: depths come out in them (a bundle's `scale`, so the world matches a normalised scene).
    world_scale: float = 1.0


@dataclass(frozen=True)
class _Slot:
    """A spot on the ground an object claims: centre (x, z) and radius, metres."""

    x: float
    z: float
    r: float


class DemoWorld:
    """A deterministic 4D world: `render(c2w_wire, intrinsics, t_seconds)` at any pose and time."""

    def __init__(self, config: DemoWorldConfig | None = None) -> None:
        self.config = config or DemoWorldConfig()
        if not (self.config.loop_s > 0 and self.config.world_scale > 0):
            raise SceneError(f"loop_s and world_scale must be > 0, got {self.config}")
        rng = np.random.default_rng(self.config.seed)
        self.ground_y = -self.config.eye_height_m
        self._slots: list[_Slot] = [_Slot(*CLEAR_CENTRE_XZ, CLEAR_SLOT_RADIUS_M)]  # the camera paths stay clear
        self.moving = _MovingSet.place(self, rng)
        self.static_boxes = tuple(self._layout(rng))
        self.ground = Ground(height=self.ground_y, seed=self.config.seed)
        self.lighting = _lighting(self.config)

    # ------------------------------------------------------------------ layout

    def _claim(self, rng: np.random.Generator, x_range, z_range, r: float, tries: int = 60) -> _Slot | None:
        for _ in range(tries):
            slot = _Slot(float(rng.uniform(*x_range)), float(rng.uniform(*z_range)), r)
            if all(math.hypot(slot.x - s.x, slot.z - s.z) > slot.r + s.r for s in self._slots):
                self._slots.append(slot)
                return slot
        return None

    def _layout(self, rng: np.random.Generator) -> list[Box]:
        g = self.ground_y
        boxes: list[Box] = []
        for _ in range(3):  # near crates and pillars: strong parallax, big disocclusions
            hx, hy = rng.uniform(0.25, 0.5), rng.uniform(0.3, 1.0)
            slot = self._claim(rng, (-4.0, 4.0), (-7.5, -3.8), hx * 1.5)
            if slot:
                colour = PALETTE[int(rng.integers(len(PALETTE)))]
                pattern = "checker" if hy < 0.6 else "stripes"
                boxes.append(Box((slot.x, g + hy, slot.z), (hx, hy, hx), colour, float(rng.uniform(0, 1.5)), pattern))
        for _ in range(6):  # houses: a body with windows and a darker roof slab
            hx, hz, hy = rng.uniform(1.2, 2.5), rng.uniform(1.2, 2.5), rng.uniform(1.5, 3.5)
            slot = self._claim(rng, (-14.0, 14.0), (-24.0, -10.0), math.hypot(hx, hz) + 0.3)
            if slot:
                yaw = float(rng.uniform(-0.5, 0.5))
                colour = PALETTE[int(rng.integers(len(PALETTE)))]
                boxes.append(Box((slot.x, g + hy, slot.z), (hx, hy, hz), colour, yaw, "windows"))
                roof = (0.35 * colour[0], 0.25 * colour[1] + 0.05, 0.2 * colour[2] + 0.05)
                boxes.append(Box((slot.x, g + 2 * hy + 0.15, slot.z), (hx + 0.25, 0.15, hz + 0.25), roof, yaw))
        for _ in range(4):  # far towers
            hx, hy = rng.uniform(2.0, 4.0), rng.uniform(6.0, 14.0)
            slot = self._claim(rng, (-40.0, 40.0), (-70.0, -32.0), hx * 1.5)
            if slot:
                colour = PALETTE[int(rng.integers(len(PALETTE)))]
                boxes.append(Box((slot.x, g + hy, slot.z), (hx, hy, hx), colour, float(rng.uniform(0, 1.5)), "windows"))
        for k in range(12):  # a ring of distant blocks, so every direction has a skyline
            angle = 2 * math.pi * (k + rng.uniform(-0.3, 0.3)) / 12
            radius = rng.uniform(80.0, 110.0)
            hx, hy = rng.uniform(6.0, 12.0), rng.uniform(4.0, 16.0)
            colour = PALETTE[int(rng.integers(len(PALETTE)))]
            centre = (radius * math.sin(angle), g + hy, -radius * math.cos(angle))
            boxes.append(Box(centre, (hx, hy, hx * 0.8), colour, angle, "stripes"))
        return boxes

    # ------------------------------------------------------------------ time and rendering

    def scene_at(self, t_seconds: float) -> RayScene:
        """The objects at scene time `t_seconds` (in layout metres; motion loops every loop_s)."""
        boxes, spheres = self.moving.at(t_seconds, self.config.loop_s)
        return RayScene(self.ground, self.lighting, self.static_boxes + boxes, spheres)

    def static_scene(self) -> RayScene:
        """Only what never moves (the world without its moving objects): ground truth for moving-pixel masks."""
        return RayScene(self.ground, self.lighting, self.static_boxes + self.moving.fixed(), ())

    def render(self, c2w_wire: np.ndarray, intrinsics: Intrinsics, t_seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """(rgb (H, W, 3) uint8 sRGB, depth (H, W) float32 z-depth, +inf for sky) seen by a camera.

        `c2w_wire`: (4, 4) camera-to-world, wire convention, positions in world units (see `world_scale`).
        """
        return self._render(self.scene_at(t_seconds), c2w_wire, intrinsics)

    def moving_mask(
        self, c2w_wire: np.ndarray, intrinsics: Intrinsics, t_seconds: float, depth: np.ndarray | None = None
    ) -> np.ndarray:
        """(H, W) bool: the pixels where a moving object is in front of the static world at `t_seconds`.
        `depth`: this camera's depth from `render` at that time, when already rendered (saves a render)."""
        if depth is None:
            _, depth = self._render(self.scene_at(t_seconds), c2w_wire, intrinsics)
        _, static = self._render(self.static_scene(), c2w_wire, intrinsics)
        return depth < static * np.float32(1.0 - 1e-4)

    def moving_shadow_mask(self, c2w_wire: np.ndarray, intrinsics: Intrinsics, t_seconds: float) -> np.ndarray:
        """(H, W) bool: the static world's pixels in a moving object's shadow at `t_seconds` (darker by more than
        15% than the world without its movers, outside the movers themselves): ground truth for shadows.py."""
        rgb, depth = self._render(self.scene_at(t_seconds), c2w_wire, intrinsics)
        static_rgb, static_depth = self._render(self.static_scene(), c2w_wire, intrinsics)
        darker = rgb.astype(np.float32).sum(axis=2) < 0.85 * static_rgb.astype(np.float32).sum(axis=2)
        return darker & ~(depth < static_depth * np.float32(1.0 - 1e-4)) & np.isfinite(static_depth)

    def _render(self, scene: RayScene, c2w_wire: np.ndarray, intrinsics: Intrinsics) -> tuple[np.ndarray, np.ndarray]:
        c2w = np.array(c2w_wire, dtype=np.float64)
        if c2w.shape != (4, 4) or not np.isfinite(c2w).all():
            raise SceneError(f"c2w_wire must be a finite (4, 4) matrix, got shape {c2w.shape}")
        scale = self.config.world_scale
        c2w[:3, 3] /= scale
        rgb, depth = render(scene, c2w, intrinsics)
        if scale != 1.0:
            depth *= np.float32(scale)
        return rgb, depth

    def render_clip(
        self,
        poses: np.ndarray | Sequence[np.ndarray],
        intrinsics: Intrinsics,
        times: np.ndarray | Sequence[float],
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`render` at poses (N, 4, 4) and times (N,): (frames (N, H, W, 3) uint8, depth (N, H, W) float32).
        `progress(done)` is called after each frame."""
        n = len(poses)
        frames = np.empty((n, intrinsics.height, intrinsics.width, 3), np.uint8)
        depth = np.empty((n, intrinsics.height, intrinsics.width), np.float32)
        for i in range(n):
            frames[i], depth[i] = self.render(poses[i], intrinsics, float(times[i]))
            if progress:
                progress(i + 1)
        return frames, depth


def _lighting(config: DemoWorldConfig) -> Lighting:
    el, az = math.radians(config.sun_elevation_deg), math.radians(config.sun_azimuth_deg)
    sun = (math.cos(el) * math.sin(az), math.sin(el), -math.cos(el) * math.cos(az))
    return Lighting(sun_dir=sun, fog_distance_m=config.fog_distance_m, shadows=config.shadows)


@dataclass(frozen=True)
class _MovingSet:
    """Where the moving objects live; their motion is a function of the phase 2 pi t / loop_s."""

    ball: _Slot
    slider: _Slot
    spinner: _Slot
    pivot: _Slot
    ground_y: float
    colours: tuple[tuple[float, float, float], ...] = field(default=())

    @classmethod
    def place(cls, world: DemoWorld, rng: np.random.Generator) -> _MovingSet:
        claims = [
            ((0.5, 2.5), (-6.5, -4.5), 1.0),  # bouncing ball, right of centre, near
            ((-2.0, 2.0), (-12.0, -9.0), 3.8),  # sliding box sweeps +-3 m in x
            ((-3.5, -1.5), (-8.5, -5.5), 1.2),  # spinning box, left, near
            ((-6.0, 6.0), (-16.0, -12.0), 2.2),  # pillar with an orbiting ball
        ]
        slots = []
        for x_range, z_range, r in claims:
            slot = world._claim(rng, x_range, z_range, r, tries=200)
            slots.append(slot or _Slot(float(np.mean(x_range)), float(np.mean(z_range)), r))
        colours = tuple(PALETTE[int(i)] for i in rng.permutation(len(PALETTE))[:4])
        ball, slider, spinner, pivot = slots
        return cls(ball, slider, spinner, pivot, ground_y=world.ground_y, colours=colours)

    def fixed(self) -> tuple[Box, Box]:
        """The parts of the moving set that never move: the spinner's stand and the orbit's pillar."""
        g = self.ground_y
        stand = Box((self.spinner.x, g + 0.375, self.spinner.z), (0.08, 0.375, 0.08), (0.2, 0.2, 0.2))
        pillar = Box((self.pivot.x, g + 2.0, self.pivot.z), (0.4, 2.0, 0.4), self.colours[3], 0.0, "stripes")
        return stand, pillar

    def at(self, t: float, loop_s: float) -> tuple[tuple[Box, ...], tuple[Sphere, ...]]:
        phase = 2 * math.pi * (t / loop_s)
        g = self.ground_y
        ball_r = 0.5
        bounce = 1.6 * abs(math.sin(phase))  # two bounces per loop
        ball = Sphere((self.ball.x, g + ball_r + bounce, self.ball.z), ball_r, (0.75, 0.10, 0.08), spin=phase)
        slider = Box((self.slider.x + 3.0 * math.sin(phase), g + 0.5, self.slider.z), (0.7, 0.5, 0.5), self.colours[1])
        spinner = Box(
            (self.spinner.x, g + 1.0, self.spinner.z), (0.9, 0.25, 0.25), (0.85, 0.75, 0.15), phase, "checker"
        )
        stand, pillar = self.fixed()
        orbit = Sphere(
            (self.pivot.x + 1.5 * math.cos(phase), g + 2.5, self.pivot.z + 1.5 * math.sin(phase)),
            0.35,
            (0.15, 0.35, 0.80),
            spin=-2 * phase,
        )
        return (slider, spinner, stand, pillar), (ball, orbit)
