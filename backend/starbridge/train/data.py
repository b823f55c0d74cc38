"""Procedural training and evaluation data with exact ground truth (issue 5, part 1).

A `Sample` is one dynamic scene seen along two camera paths over the same scene times:

* the **reference clip** (what a scene bundle holds): colour, exact z-depth and camera poses along a random
  slow path (a mix of dolly, truck, arc, pan and tilt) that starts at the identity;
* a **novel path** offset from it (per frame: up to `max_offset_m` in position and `max_yaw_deg` in yaw,
  varying smoothly) with ground-truth colour and depth from the ray-caster;
* what our renderer makes for the novel path (DESIGN.md section 6): the reference frame at the same scene
  time forward-splatted into the novel camera (holes black) with its validity mask, and that render with
  its holes filled by push-pull (the explicit-render-plus-fill baseline).

Scene units: like a scene bundle, the first reference camera is the identity and distances are scaled so the
median finite depth of the reference clip is SCENE_MEDIAN_DEPTH_M (`Sample.scale` scene units per layout
metre; the world is re-rendered with DemoWorldConfig.world_scale = scale, so poses go in as they are).
Novel-path offsets are in these units, so they mean the same parallax in every scene.

Worlds: a `DemoWorld` layout picked by the seed (houses, crates, towers, moving objects) under a **style**:
sun elevation and azimuth, fog, shadows (DemoWorldConfig) and sky, sun and ambient colours, ground tiles and
an object tint (applied on top of the DemoWorld by `StyledWorld`, which changes nothing in demo.py).

Splits, disjoint in both seeds and styles: "train" = seeds [0, HELDOUT_SEED_BASE) under TRAIN_STYLES (seed 0
is the built-in demo's layout), "heldout" = seeds [HELDOUT_SEED_BASE, 2 * HELDOUT_SEED_BASE) under
HELDOUT_STYLES. Everything random about a sample comes from one generator seeded with (seed, style), so the
same seed, style and config give identical arrays (DATA_VERSION changes when that stream changes).

Usage::

    for sample in iter_samples("train", 48):               # Sample objects, 0.3-0.5 s each at 256x144
        sample.ref_frames, sample.renders, sample.masks, sample.gt_frames
    sample = make_sample(1_000_003, "dusk")
    bundle = sample_to_bundle(sample, tmp / "scene")       # any Generator can now be evaluated on it
    frames, depth = render_truth(sample, poses, times)     # ground truth at any other pose and time
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import InvalidArgument
from ..geometry.camera import Intrinsics
from ..geometry.fill import push_pull_fill
from ..geometry.splat import Splatter
from ..scenes.bundle import SCENE_ID_RE, SCENE_MEDIAN_DEPTH_M, SceneBundle, SceneMeta, median_finite_depth, write_bundle
from ..scenes.demo import DemoWorld, DemoWorldConfig
from ..scenes.raycast import Box, Lighting, RayScene, Sphere

#: Bump when the random stream or the rendering of a sample changes (cached samples are then stale).
DATA_VERSION = 1
#: Held-out seeds start here; train seeds are below it.
HELDOUT_SEED_BASE = 1_000_000
#: Extra file of a bundle written by `sample_to_bundle`: seed, style, world and look (not demo.json, whose
#: `world_for_bundle` would rebuild the world without its style).
SAMPLE_FILE = "sample.json"

#: The demo layout keeps a disc of this radius (metres, centre CLEAR_CENTRE_XZ) free of objects around the
#: reference camera (demo.py claims a 2.6 m slot there); cameras stay inside it, with a margin.
CLEAR_CENTRE_XZ = (0.0, -0.6)
CLEAR_RADIUS_M = 2.2
#: Cameras stay at least this high above the ground, metres.
MIN_CAMERA_HEIGHT_M = 0.5

Split = Literal["train", "heldout"]
Vec3 = tuple[float, float, float]
Range = tuple[float, float]
_DEFAULT_LIGHT = Lighting()


# ---------------------------------------------------------------------------------------------- styles


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


# ---------------------------------------------------------------------------------------------- samples


@dataclass(frozen=True)
class SampleConfig:
    """Size, timing and camera motion of a sample. Reference-path distances are layout metres (the world
    before normalisation); novel-path offsets are scene units (after it). Ranges are (low, high)."""

    width: int = 256
    height: int = 144
    vertical_fov_deg: float = 60.0
    #: Frames of the clip (reference and novel path alike), and their rate on the scene clock.
    frames: int = 8
    fps: float = 12.0
    #: Period of the world's moving objects (their speed), seconds; and the reference camera's eye height.
    loop_s: Range = (2.5, 5.0)
    eye_height_m: Range = (1.3, 2.2)
    # Reference path, totals over the clip; each of dolly, truck, arc, pan, tilt is present with `motion_p`.
    motion_p: float = 0.6
    dolly_m: Range = (-0.3, 0.9)
    truck_m: float = 0.4
    arc_deg: float = 8.0
    arc_focus_m: Range = (4.0, 10.0)
    pan_deg: float = 6.0
    tilt_deg: float = 3.0
    bob_m: float = 0.06
    # Novel path: offset from the reference camera, in its own frame, eased from a start to an end value.
    max_offset_m: float = 0.6
    max_vertical_m: float = 0.2
    max_yaw_deg: float = 15.0
    max_pitch_deg: float = 4.0

    def __post_init__(self) -> None:
        if self.width < 8 or self.height < 8 or self.frames < 1 or not self.fps > 0:
            raise InvalidArgument(f"a sample needs width, height >= 8, frames >= 1 and fps > 0, got {self}")

    @property
    def intrinsics(self) -> Intrinsics:
        return Intrinsics.from_fov(self.vertical_fov_deg, self.width, self.height)


@dataclass(frozen=True, eq=False)
class Sample:
    """One scene, its reference clip and a novel path with ground truth; see the module docstring.

    Arrays (N = config.frames, H x W = config size; treat them as read-only):
    ref_frames, gt_frames, renders, filled: (N, H, W, 3) uint8 sRGB, rows top to bottom;
    ref_depth, gt_depth: (N, H, W) float32 z-depth in scene units, +inf for sky;
    ref_poses, novel_poses: (N, 4, 4) float64 camera-to-world, wire convention, scene units (ref_poses[0] = I);
    masks: (N, H, W) bool, True where the render has a splatted reference point (renders are 0 elsewhere);
    times: (N,) float64 scene times, seconds, on the bundle's clock (frame i at i / fps).
    """

    seed: int
    style: str
    config: SampleConfig
    #: The world in scene units (world_scale = scale); with `look`, rebuilds it (see `world_of`).
    world: DemoWorldConfig
    look: Look
    intrinsics: Intrinsics
    #: Scene units per layout metre.
    scale: float
    #: The world's clock at scene time 0 (world time = time_offset_s + scene time).
    time_offset_s: float
    times: np.ndarray
    ref_frames: np.ndarray
    ref_depth: np.ndarray
    ref_poses: np.ndarray
    novel_poses: np.ndarray
    gt_frames: np.ndarray
    gt_depth: np.ndarray
    renders: np.ndarray
    masks: np.ndarray
    filled: np.ndarray

    @property
    def split(self) -> str:
        """The split: "train" or "heldout" when seed and style agree, else "mixed" (a combination no split uses)."""
        seed_split = split_of_seed(self.seed)
        style_split = "train" if self.style in TRAIN_STYLES else "heldout"
        return seed_split if seed_split == style_split else "mixed"

    @property
    def name(self) -> str:
        """A scene id for the sample, e.g. 'heldout-1000003-dusk'."""
        return f"{self.split}-{self.seed}-{self.style}"

    @property
    def frame_count(self) -> int:
        return int(self.times.shape[0])


def split_of_seed(seed: int) -> Split:
    if not 0 <= seed < 2 * HELDOUT_SEED_BASE:
        raise InvalidArgument(f"seed must be in [0, {2 * HELDOUT_SEED_BASE}), got {seed}", field="seed")
    return "train" if seed < HELDOUT_SEED_BASE else "heldout"


def _style(name: str) -> Style:
    try:
        return STYLES[name]
    except KeyError:
        raise InvalidArgument(f"unknown style {name!r}; styles: {', '.join(STYLES)}", field="style") from None


def make_sample(seed: int, style: str, config: SampleConfig = SampleConfig()) -> Sample:  # noqa: B008 (frozen)
    """Render one sample (deterministic in seed, style and config). About 0.3-0.5 s at 256x144 on one core."""
    split_of_seed(seed)
    st = _style(style)
    rng = np.random.default_rng([seed, zlib.crc32(style.encode("utf-8")), DATA_VERSION])
    # 1. the world and its clock
    world_cfg, look = st.draw(rng, seed, config)
    time_offset = float(rng.uniform(0.0, world_cfg.loop_s))
    # 2. both camera paths (the novel path as camera-local offsets from the reference)
    ref_layout = _reference_path(rng, config)
    offsets = _novel_offsets(rng, config)
    # 3. the reference clip in layout metres, then normalised to scene units
    n, intr = config.frames, config.intrinsics
    times = np.arange(n, dtype=np.float64) / config.fps
    ref_frames, ref_depth = _render_clip(StyledWorld(world_cfg, look), ref_layout, intr, times + time_offset)
    median = median_finite_depth(ref_depth)
    scale = SCENE_MEDIAN_DEPTH_M / median if median > 0 else 1.0
    ref_depth *= np.float32(scale)
    ref_poses = ref_layout.copy()
    ref_poses[:, :3, 3] *= scale
    ref_poses[0] = np.eye(4)
    # 4. the novel path, kept inside the layout's free space, and its ground truth
    novel_poses = _novel_path(ref_poses, offsets, scale, world_cfg.eye_height_m)
    world_cfg = replace(world_cfg, world_scale=scale)
    gt_frames, gt_depth = _render_clip(StyledWorld(world_cfg, look), novel_poses, intr, times + time_offset)
    # 5. what our renderer makes for it: reference frame i splatted into novel camera i, holes filled
    renders = np.empty_like(gt_frames)
    masks = np.empty(gt_depth.shape, dtype=bool)
    filled = np.empty_like(gt_frames)
    splatter = Splatter(intr, intr)
    for i in range(n):
        out = splatter(ref_frames[i], ref_depth[i], ref_poses[i], novel_poses[i])
        renders[i], masks[i] = out.colour, out.mask
        filled[i] = push_pull_fill(out.colour, out.mask)
    return Sample(
        seed=seed,
        style=style,
        config=config,
        world=world_cfg,
        look=look,
        intrinsics=intr,
        scale=scale,
        time_offset_s=time_offset,
        times=times,
        ref_frames=ref_frames,
        ref_depth=ref_depth,
        ref_poses=ref_poses,
        novel_poses=novel_poses,
        gt_frames=gt_frames,
        gt_depth=gt_depth,
        renders=renders,
        masks=masks,
        filled=filled,
    )


def iter_samples(
    split: Split,
    count: int,
    start: int = 0,
    config: SampleConfig = SampleConfig(),  # noqa: B008 (frozen)
) -> Iterator[Sample]:
    """Samples `start` .. `start + count - 1` of a split: sample k has seed base + k (base 0 for "train",
    HELDOUT_SEED_BASE for "heldout") and the split's style number k modulo their count."""
    if split not in ("train", "heldout"):
        raise InvalidArgument(f"split must be 'train' or 'heldout', got {split!r}", field="split")
    if start < 0 or count < 0 or start + count > HELDOUT_SEED_BASE:
        raise InvalidArgument(f"samples {start} .. {start + count - 1} are outside [0, {HELDOUT_SEED_BASE})")
    base, styles = (0, list(TRAIN_STYLES)) if split == "train" else (HELDOUT_SEED_BASE, list(HELDOUT_STYLES))
    for k in range(start, start + count):
        yield make_sample(base + k, styles[k % len(styles)], config)


def world_of(sample: Sample) -> StyledWorld:
    """The sample's world in scene units: `render(c2w, intrinsics, sample.time_offset_s + t)` is ground truth."""
    return StyledWorld(sample.world, sample.look)


def render_truth(
    sample: Sample, poses: np.ndarray | Sequence[np.ndarray], times: np.ndarray | Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth at any poses (M, 4, 4) (wire c2w, scene units) and scene times (M,): (frames (M, H, W, 3)
    uint8, depth (M, H, W) float32), at the sample's intrinsics."""
    poses = np.asarray(poses, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or times.shape != poses.shape[:1]:
        raise InvalidArgument(f"poses must be (M, 4, 4) and times (M,), got {poses.shape} and {times.shape}")
    return _render_clip(world_of(sample), poses, sample.intrinsics, times + sample.time_offset_s)


def sample_to_bundle(sample: Sample, dest: Path | str, overwrite: bool = False) -> SceneBundle:
    """Write the sample's reference clip as a scene bundle at `dest` (already normalised: written as is).

    The bundle's scene id is the folder name when it is a valid id, else the sample's name; SAMPLE_FILE
    records seed, style, world and look."""
    dest = Path(dest)
    scene_id = dest.name if SCENE_ID_RE.fullmatch(dest.name) else sample.name
    meta = SceneMeta(
        scene_id=scene_id,
        title=f"procedural sample {sample.seed} ({sample.style})",
        fps=sample.config.fps,
        frame_count=sample.frame_count,
        intrinsics=sample.intrinsics,
        scale=sample.scale,
        source="demo",
        depth_source="exact",
    )
    record = {
        "data_version": DATA_VERSION,
        "seed": sample.seed,
        "style": sample.style,
        "split": sample.split,
        "time_offset_s": sample.time_offset_s,
        "config": asdict(sample.config),
        "world": asdict(sample.world),
        "look": asdict(sample.look),
    }
    extra = {SAMPLE_FILE: (json.dumps(record, indent=2) + "\n").encode("utf-8")}
    return write_bundle(
        dest,
        meta,
        sample.ref_frames,
        sample.ref_depth,
        sample.ref_poses,
        extra,
        in_scene_units=True,
        overwrite=overwrite,
    )


# ---------------------------------------------------------------------------------------------- camera paths


def _render_clip(
    world: DemoWorld, poses: np.ndarray, intr: Intrinsics, world_times: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n = poses.shape[0]
    frames = np.empty((n, intr.height, intr.width, 3), np.uint8)
    depth = np.empty((n, intr.height, intr.width), np.float32)
    for i in range(n):
        frames[i], depth[i] = world.render(poses[i], intr, float(world_times[i]))
    return frames, depth


def _rotation(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """(3, 3) yaw about +Y (positive turns the view left), then pitch about the camera's +X (positive: up)."""
    y, p = math.radians(yaw_deg), math.radians(pitch_deg)
    cy, sy, cp, sp = math.cos(y), math.sin(y), math.cos(p), math.sin(p)
    yaw = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    return yaw @ pitch


def _ease(s: np.ndarray) -> np.ndarray:
    """Smoothstep: 0 -> 0, 1 -> 1, zero slope at both ends."""
    return s * s * (3.0 - 2.0 * s)


def _reference_path(rng: np.random.Generator, c: SampleConfig) -> np.ndarray:
    """(N, 4, 4) reference poses in layout metres: identity at frame 0, then a random mix of a dolly (along the
    first view direction), a truck (sideways), an arc around a point ahead, a pan, a tilt and a vertical bob."""
    on = rng.random(5) < c.motion_p
    dolly = float(rng.uniform(*c.dolly_m)) * on[0]
    truck = float(rng.uniform(-1.0, 1.0)) * c.truck_m * on[1]
    arc = math.radians(float(rng.uniform(-1.0, 1.0)) * c.arc_deg) * on[2]
    focus = float(rng.uniform(*c.arc_focus_m))
    pan = float(rng.uniform(-1.0, 1.0)) * c.pan_deg * on[3]
    tilt = float(rng.uniform(-1.0, 1.0)) * c.tilt_deg * on[4]
    bob = float(rng.uniform(-1.0, 1.0)) * c.bob_m
    n = c.frames
    s = np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)
    poses = np.repeat(np.eye(4)[None], n, axis=0)
    for i, si in enumerate(s):
        phi = arc * si
        x = focus * math.sin(phi) + truck * si
        z = -focus + focus * math.cos(phi) - dolly * si
        poses[i, :3, :3] = _rotation(math.degrees(phi) + pan * si, tilt * si)
        poses[i, :3, 3] = (x, bob * math.sin(math.pi * si), z)
    _keep_clear(poses, 1.0)
    poses[0] = np.eye(4)
    return poses


def _novel_offsets(rng: np.random.Generator, c: SampleConfig) -> np.ndarray:
    """(N, 4, 4) camera-local offsets (translation in scene units), eased from a random start to a random end,
    with a per-sample magnitude so that both small and large departures occur."""
    magnitude = float(rng.uniform(0.3, 1.0))
    ends = []
    for _ in range(2):
        t = rng.uniform(-1.0, 1.0, 3) * np.array([c.max_offset_m, c.max_vertical_m, c.max_offset_m]) * magnitude
        length = float(np.linalg.norm(t))
        if length > c.max_offset_m:
            t *= c.max_offset_m / length
        angles = rng.uniform(-1.0, 1.0, 2) * np.array([c.max_yaw_deg, c.max_pitch_deg]) * magnitude
        ends.append((t, angles))
    n = c.frames
    w = _ease(np.linspace(0.0, 1.0, n)) if n > 1 else np.zeros(1)
    out = np.repeat(np.eye(4)[None], n, axis=0)
    for i, wi in enumerate(w):
        t = (1 - wi) * ends[0][0] + wi * ends[1][0]
        yaw, pitch = (1 - wi) * ends[0][1] + wi * ends[1][1]
        out[i, :3, :3] = _rotation(yaw, pitch)
        out[i, :3, 3] = t
    return out


def _novel_path(ref_poses: np.ndarray, offsets: np.ndarray, scale: float, eye_height_m: float) -> np.ndarray:
    """ref_poses @ offsets, with the offsets' translations shrunk (for the whole path) until every camera is
    inside the layout's free disc and above the ground."""
    offsets = offsets.copy()
    for _ in range(20):
        poses = np.einsum("nij,njk->nik", ref_poses, offsets)
        if _is_clear(poses, scale, eye_height_m):
            return poses
        offsets[:, :3, 3] *= 0.8
    offsets[:, :3, 3] = 0.0
    return np.einsum("nij,njk->nik", ref_poses, offsets)


def _is_clear(poses: np.ndarray, scale: float, eye_height_m: float) -> bool:
    pos = poses[:, :3, 3] / scale  # layout metres
    radius = np.hypot(pos[:, 0] - CLEAR_CENTRE_XZ[0], pos[:, 2] - CLEAR_CENTRE_XZ[1])
    return bool((radius <= CLEAR_RADIUS_M).all() and (pos[:, 1] + eye_height_m >= MIN_CAMERA_HEIGHT_M).all())


def _keep_clear(poses: np.ndarray, scale: float) -> None:
    """Shrink the path's translations (in place, towards the origin) until it stays in the free disc."""
    for _ in range(20):
        if _is_clear(poses, scale, math.inf):
            return
        poses[:, :3, 3] *= 0.8
