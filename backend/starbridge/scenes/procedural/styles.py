"""Looks and styles of the procedural worlds, and the train / held-out split.

A **style** is a named distribution over how a world looks: sun elevation and azimuth, fog and shadows
(`DemoWorldConfig`), and a `Look` (sky, sun and ambient colours, ground tiles, an object tint and
saturation) that `StyledWorld` applies on top of a `DemoWorld` (the plain DemoWorld, and so the demo scene,
is untouched).

Splits, disjoint in both seeds and styles: "train" = seeds [0, HELDOUT_SEED_BASE) under TRAIN_STYLES (seed 0
is the built-in demo's layout), "heldout" = seeds [HELDOUT_SEED_BASE, 2 * HELDOUT_SEED_BASE) under
HELDOUT_STYLES. A seed and a style from different splits make a "mixed" world no split uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np

from ...errors import InvalidArgument
from .raycast import Box, Lighting, RayScene, Sphere, Vec3
from .world import DemoWorld, DemoWorldConfig

if TYPE_CHECKING:
    from .samples import SampleConfig

#: Held-out seeds start here; train seeds are below it.
HELDOUT_SEED_BASE = 1_000_000

Split = Literal["train", "heldout"]
Range = tuple[float, float]
_DEFAULT_LIGHT = Lighting()


@dataclass(frozen=True)
class Look:
    """The colours of one world (linear RGB) beyond what DemoWorldConfig sets: sky, sun, ambient light, ground
    tiles, and a tint and saturation applied to every object's albedo."""

    sun_color: Vec3 = _DEFAULT_LIGHT.sun_color
    ambient: Vec3 = _DEFAULT_LIGHT.ambient
    zenith: Vec3 = _DEFAULT_LIGHT.zenith
    horizon: Vec3 = _DEFAULT_LIGHT.horizon
    tile_m: float = 1.0
    ground_a: Vec3 = (0.42, 0.40, 0.36)
    ground_b: Vec3 = (0.30, 0.31, 0.28)
    tint: Vec3 = (1.0, 1.0, 1.0)
    #: 0 makes every object grey, 1 keeps the demo palette.
    saturation: float = 1.0


@dataclass(frozen=True)
class Style:
    """A named look of the world. Ranges are (low, high), drawn uniformly per sample; angles in degrees,
    distances in layout metres. `look` gives the colours; the ground's brightness is jittered per sample."""

    name: str
    sun_elevation_deg: Range = (30.0, 55.0)
    sun_azimuth_deg: Range = (100.0, 200.0)
    fog_distance_m: Range = (150.0, 250.0)
    shadows: bool = True
    tile_m: Range = (0.8, 1.2)
    look: Look = field(default_factory=Look)

    def draw(self, rng: np.random.Generator, seed: int, config: SampleConfig) -> tuple[DemoWorldConfig, Look]:
        """The world config (layout metres) and look of one sample."""
        world = DemoWorldConfig(
            seed=seed,
            loop_s=float(rng.uniform(*config.loop_s)),
            eye_height_m=float(rng.uniform(*config.eye_height_m)),
            sun_elevation_deg=float(rng.uniform(*self.sun_elevation_deg)),
            sun_azimuth_deg=float(rng.uniform(*self.sun_azimuth_deg)) % 360.0,
            fog_distance_m=float(rng.uniform(*self.fog_distance_m)),
            shadows=self.shadows,
        )
        bright = float(rng.uniform(0.85, 1.15))
        look = replace(
            self.look,
            tile_m=float(rng.uniform(*self.tile_m)),
            ground_a=_scaled(self.look.ground_a, bright),
            ground_b=_scaled(self.look.ground_b, bright),
        )
        return world, look


def _scaled(c: Vec3, k: float) -> Vec3:
    return (min(c[0] * k, 1.0), min(c[1] * k, 1.0), min(c[2] * k, 1.0))


#: Styles the trainer sees.
TRAIN_STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("day"),
        Style(
            "morning",
            sun_elevation_deg=(12.0, 25.0),
            sun_azimuth_deg=(40.0, 100.0),
            fog_distance_m=(80.0, 140.0),
            look=Look(
                sun_color=(1.0, 0.82, 0.60),
                ambient=(0.25, 0.27, 0.33),
                zenith=(0.22, 0.35, 0.62),
                horizon=(0.88, 0.80, 0.70),
            ),
        ),
        Style(
            "overcast",
            sun_elevation_deg=(55.0, 80.0),
            fog_distance_m=(60.0, 120.0),
            shadows=False,
            look=Look(
                sun_color=(0.35, 0.35, 0.37),
                ambient=(0.52, 0.54, 0.58),
                zenith=(0.50, 0.53, 0.58),
                horizon=(0.72, 0.74, 0.76),
                saturation=0.7,
            ),
        ),
        Style(
            "haze",
            sun_elevation_deg=(25.0, 45.0),
            sun_azimuth_deg=(150.0, 250.0),
            fog_distance_m=(28.0, 50.0),
            look=Look(horizon=(0.80, 0.78, 0.72), zenith=(0.35, 0.45, 0.62), tint=(1.0, 0.97, 0.92)),
        ),
        Style(
            "evening",
            sun_elevation_deg=(6.0, 14.0),
            sun_azimuth_deg=(210.0, 290.0),
            fog_distance_m=(100.0, 200.0),
            look=Look(
                sun_color=(1.0, 0.55, 0.30),
                ambient=(0.20, 0.19, 0.28),
                zenith=(0.10, 0.13, 0.38),
                horizon=(0.95, 0.60, 0.42),
            ),
        ),
        Style(
            "stone",
            sun_elevation_deg=(40.0, 65.0),
            sun_azimuth_deg=(60.0, 300.0),
            tile_m=(1.6, 2.4),
            look=Look(
                ground_a=(0.60, 0.58, 0.53), ground_b=(0.48, 0.47, 0.44), saturation=0.45, tint=(1.05, 1.0, 0.95)
            ),
        ),
    )
}

#: Styles only the quality benchmark sees: combinations of light, fog and ground the trainer never had.
HELDOUT_STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            "dusk",
            sun_elevation_deg=(3.0, 8.0),
            sun_azimuth_deg=(290.0, 340.0),
            fog_distance_m=(90.0, 150.0),
            look=Look(
                sun_color=(1.0, 0.45, 0.25),
                ambient=(0.18, 0.16, 0.27),
                zenith=(0.08, 0.09, 0.28),
                horizon=(0.85, 0.48, 0.45),
            ),
        ),
        Style(
            "fog-noon",
            sun_elevation_deg=(55.0, 75.0),
            fog_distance_m=(18.0, 30.0),
            look=Look(horizon=(0.80, 0.82, 0.85), zenith=(0.45, 0.55, 0.70)),
        ),
        Style(
            "backlit",
            sun_elevation_deg=(15.0, 30.0),
            sun_azimuth_deg=(-25.0, 25.0),
            tile_m=(0.4, 0.6),
            look=Look(
                sun_color=(1.0, 0.92, 0.78),
                ambient=(0.24, 0.27, 0.36),
                ground_a=(0.38, 0.33, 0.28),
                ground_b=(0.26, 0.24, 0.22),
                tint=(0.95, 1.0, 1.05),
            ),
        ),
    )
}

STYLES: dict[str, Style] = {**TRAIN_STYLES, **HELDOUT_STYLES}
assert not TRAIN_STYLES.keys() & HELDOUT_STYLES.keys(), "train and held-out styles must be disjoint"


def get_style(name: str) -> Style:
    """The style called `name` (either split); InvalidArgument naming the styles when there is none."""
    try:
        return STYLES[name]
    except KeyError:
        raise InvalidArgument(f"unknown style {name!r}; styles: {', '.join(STYLES)}", field="style") from None


# ---------------------------------------------------------------------------------------------- splits


def split_of_seed(seed: int) -> Split:
    """The split a seed belongs to; InvalidArgument for a seed outside both."""
    if not 0 <= seed < 2 * HELDOUT_SEED_BASE:
        raise InvalidArgument(f"seed must be in [0, {2 * HELDOUT_SEED_BASE}), got {seed}", field="seed")
    return "train" if seed < HELDOUT_SEED_BASE else "heldout"


def split_of(seed: int, style: str) -> str:
    """The split of a world: "train" or "heldout" when seed and style agree, else "mixed" (none uses it)."""
    seed_split = split_of_seed(seed)
    style_split = "train" if style in TRAIN_STYLES else "heldout"
    return seed_split if seed_split == style_split else "mixed"


def split_worlds(split: Split) -> tuple[int, list[str]]:
    """(first seed, style names) of a split: its world k has seed first + k and style k modulo their count."""
    if split == "train":
        return 0, list(TRAIN_STYLES)
    if split == "heldout":
        return HELDOUT_SEED_BASE, list(HELDOUT_STYLES)
    raise InvalidArgument(f"split must be 'train' or 'heldout', got {split!r}", field="split")


# ---------------------------------------------------------------------------------------------- a styled world


class StyledWorld(DemoWorld):
    """A DemoWorld seen under a `Look`: sky, sun and ambient colours, ground tiles, object tint."""

    def __init__(self, config: DemoWorldConfig, look: Look) -> None:
        super().__init__(config)
        self.look = look
        self.lighting = replace(
            self.lighting, sun_color=look.sun_color, ambient=look.ambient, zenith=look.zenith, horizon=look.horizon
        )
        self.ground = replace(self.ground, tile_m=look.tile_m, color_a=look.ground_a, color_b=look.ground_b)
        self._static = len(self.static_boxes)
        self.static_boxes = tuple(replace(b, albedo=self._recolour(b.albedo)) for b in self.static_boxes)

    def _recolour(self, albedo: Vec3) -> Vec3:
        grey = 0.299 * albedo[0] + 0.587 * albedo[1] + 0.114 * albedo[2]
        s, t = self.look.saturation, self.look.tint
        return tuple(min(max((grey + s * (a - grey)) * k, 0.0), 1.0) for a, k in zip(albedo, t, strict=True))  # type: ignore

    def scene_at(self, t_seconds: float) -> RayScene:
        scene = super().scene_at(t_seconds)
        recolour = self._recolour
        moving: tuple[Box, ...] = tuple(replace(b, albedo=recolour(b.albedo)) for b in scene.boxes[self._static :])
        spheres: tuple[Sphere, ...] = tuple(replace(s, albedo=recolour(s.albedo)) for s in scene.spheres)
        return replace(scene, boxes=scene.boxes[: self._static] + moving, spheres=spheres)
