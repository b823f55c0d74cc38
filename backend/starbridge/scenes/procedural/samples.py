"""Ground-truth samples of procedural worlds, for training and for the quality benchmark.

A `Sample` is one dynamic scene seen along two camera paths over the same scene times:

* the **reference clip** (what a scene bundle holds): colour, exact z-depth and camera poses along a random
  slow path (`paths.random_reference_path`) that starts at the identity;
* a **novel path** offset from it (`paths.novel_offsets`: per frame up to `max_offset_m` in position and
  `max_yaw_deg` in yaw, varying smoothly) with ground-truth colour and depth from the ray-caster;
* what our renderer makes for the novel path (docs/architecture.md §6): the reference frame at the same scene
  time forward-splatted into the novel camera (holes black) with its validity mask, and that render with
  its holes filled by push-pull (the explicit-render-plus-fill baseline).

Scene units: like a scene bundle, the first reference camera is the identity and distances are scaled so the
median finite depth of the reference clip is SCENE_MEDIAN_DEPTH_M (`Sample.scale` scene units per layout
metre; the world is re-rendered with DemoWorldConfig.world_scale = scale, so poses go in as they are).
Novel-path offsets are in these units, so they mean the same parallax in every scene.

Worlds: a `DemoWorld` layout picked by the seed under a style (`styles.py`, which also defines the disjoint
train and held-out splits). Everything random about a sample comes from one generator seeded with (seed,
style), so the same seed, style and config give identical arrays (DATA_VERSION changes when that stream
changes).

Usage::

    for sample in iter_samples("train", 48):               # Sample objects, 0.3-0.5 s each at 256x144
        sample.ref_frames, sample.renders, sample.masks, sample.gt_frames
    sample = make_sample(1_000_003, "dusk")
    bundle = sample_to_bundle(sample, tmp / "scene")       # any Generator can now be evaluated on it
    frames, depth = render_truth(sample, poses, times)     # ground truth at any other pose and time
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from ...geometry.fill import push_pull_fill
from ...geometry.splat import Splatter
from ..bundle import SCENE_ID_RE, SCENE_MEDIAN_DEPTH_M, SceneBundle, SceneMeta, median_finite_depth, write_bundle
from .paths import novel_offsets, novel_path, random_reference_path
from .raycast import RENDER_VERSION
from .styles import HELDOUT_SEED_BASE, Look, Split, StyledWorld, get_style, split_of, split_of_seed, split_worlds
from .world import DemoWorldConfig

#: Bump when the random stream of a sample changes (it seeds the stream: every world changes with it). A change
#: of the rendering alone bumps raycast.RENDER_VERSION, which the sample caches and records carry too.
DATA_VERSION = 1
#: Extra file of a bundle written by `sample_to_bundle`: seed, style, world and look (not demo.json, whose
#: `world_for_bundle` would rebuild the world without its style).
SAMPLE_FILE = "sample.json"

Range = tuple[float, float]


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
        return split_of(self.seed, self.style)

    @property
    def name(self) -> str:
        """A scene id for the sample, e.g. 'heldout-1000003-dusk'."""
        return f"{self.split}-{self.seed}-{self.style}"

    @property
    def frame_count(self) -> int:
        return int(self.times.shape[0])


def make_sample(seed: int, style: str, config: SampleConfig = SampleConfig()) -> Sample:  # noqa: B008 (frozen)
    """Render one sample (deterministic in seed, style and config). About 0.3-0.5 s at 256x144 on one core."""
    split_of_seed(seed)
    st = get_style(style)
    rng = np.random.default_rng([seed, zlib.crc32(style.encode("utf-8")), DATA_VERSION])
    # 1. the world and its clock
    world_cfg, look = st.draw(rng, seed, config)
    time_offset = float(rng.uniform(0.0, world_cfg.loop_s))
    # 2. both camera paths (the novel path as camera-local offsets from the reference)
    ref_layout = random_reference_path(rng, config)
    offsets = novel_offsets(rng, config)
    # 3. the reference clip in layout metres, then normalised to scene units
    n, intr = config.frames, config.intrinsics
    times = np.arange(n, dtype=np.float64) / config.fps
    ref_frames, ref_depth = StyledWorld(world_cfg, look).render_clip(ref_layout, intr, times + time_offset)
    median = median_finite_depth(ref_depth)
    scale = SCENE_MEDIAN_DEPTH_M / median if median > 0 else 1.0
    ref_depth *= np.float32(scale)
    ref_poses = ref_layout.copy()
    ref_poses[:, :3, 3] *= scale
    ref_poses[0] = np.eye(4)
    # 4. the novel path, kept inside the layout's free space, and its ground truth
    novel_poses = novel_path(ref_poses, offsets, scale, world_cfg.eye_height_m)
    world_cfg = replace(world_cfg, world_scale=scale)
    gt_frames, gt_depth = StyledWorld(world_cfg, look).render_clip(novel_poses, intr, times + time_offset)
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
    base, styles = split_worlds(split)
    if start < 0 or count < 0 or start + count > HELDOUT_SEED_BASE:
        raise InvalidArgument(f"samples {start} .. {start + count - 1} are outside [0, {HELDOUT_SEED_BASE})")
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
    return world_of(sample).render_clip(poses, sample.intrinsics, times + sample.time_offset_s)


def moving_masks(sample: Sample) -> np.ndarray:
    """(N, H, W) bool: the exact moving-object pixels of the sample's reference frames (as the demo scene has)."""
    world = world_of(sample)
    return np.stack(
        [
            world.moving_mask(pose, sample.intrinsics, sample.time_offset_s + float(t), depth)
            for pose, t, depth in zip(sample.ref_poses, sample.times, sample.ref_depth, strict=True)
        ]
    )


def sample_to_bundle(
    sample: Sample, dest: Path | str, overwrite: bool = False, moving: np.ndarray | None = None
) -> SceneBundle:
    """Write the sample's reference clip as a scene bundle at `dest` (already normalised: written as is), with
    the reference frames' moving-object masks when given (e.g. `moving_masks(sample)`).

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
        "render_version": RENDER_VERSION,
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
        moving=moving,
    )
