"""The built-in demo scene bundle, so `starbridge serve` works on a fresh machine.

`build_demo_scene` renders the procedural world of seed 0 (`procedural/world.py`) along the demo's reference
path (`procedural/paths.arc_path`: a slow arc-and-dolly for parallax and disocclusions, with a sweep of the
view across the street, so the fused world covers most directions a player turns to), with exact depth and
exact moving-object masks, and writes it as a scene bundle. The bundle records the world it was rendered from
(DEMO_WORLD_FILE), so `world_for_bundle` gives the ground truth at any other pose and time.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import SceneError
from ..geometry.camera import Intrinsics
from .bundle import SceneBundle, SceneMeta, write_bundle
from .procedural.paths import arc_path
from .procedural.raycast import yaw_rotation
from .procedural.world import DemoWorld, DemoWorldConfig

log = logging.getLogger(__name__)

#: Scene id of the built-in demo scene.
DEMO_SCENE_ID = "demo"
#: Extra file of a demo bundle that records the world it was rendered from (see `world_for_bundle`).
DEMO_WORLD_FILE = "demo.json"
#: Bump when the demo's look or layout changes, so stores can tell an old demo bundle.
#: 2: the reference video sweeps across the street (about two thirds of all directions) and the bundle
#: carries exact moving-object masks.
DEMO_VERSION = 2

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DemoSceneConfig:
    """The demo scene's reference video: size in pixels, frame rate, length and camera path."""

    width: int = 512
    height: int = 288
    fps: float = 24.0
    frame_count: int = 96
    vertical_fov_deg: float = 60.0
    world: DemoWorldConfig = field(default_factory=DemoWorldConfig)
    #: Arc: the camera circles a point this far ahead (metres) by `arc_deg`, while dollying in by `dolly_m`.
    arc_focus_m: float = 8.0
    arc_deg: float = 12.0
    dolly_m: float = 1.0
    #: Extra pan on top of looking at the focus, degrees over the whole path (negative: to the right).
    pan_deg: float = -4.0
    #: Vertical rise and fall of the camera over the path, metres.
    bob_m: float = 0.12
    #: On top of the arc, the camera sweeps its view across the street: yaw(s) = sweep_deg * sin(2 pi s) over
    #: the video (s in [0, 1)), left first; with the 91 degree horizontal field of view of 60 degrees vertical
    #: at 16:9, a 75 degree sweep sees about 240 of the 360 degrees around.
    sweep_deg: float = 75.0

    @property
    def loop_s(self) -> float:
        return self.frame_count / self.fps


def reference_path(config: DemoSceneConfig) -> np.ndarray:
    """(N, 4, 4) camera-to-world poses (wire convention, layout metres) of the reference video; frame 0 is
    the identity (see `procedural.paths.arc_path`)."""
    c = config
    poses = arc_path(c.frame_count, arc_focus_m=c.arc_focus_m, arc_deg=c.arc_deg, dolly_m=c.dolly_m,
                     pan_deg=c.pan_deg, bob_m=c.bob_m)  # fmt: skip
    for i in range(c.frame_count):
        yaw = math.radians(c.sweep_deg) * math.sin(2.0 * math.pi * i / c.frame_count)
        poses[i, :3, :3] = yaw_rotation(yaw) @ poses[i, :3, :3]
    return poses


def build_demo_scene(
    dest: Path | str,
    config: DemoSceneConfig | None = None,
    progress: ProgressFn | None = None,
    overwrite: bool = False,
    scene_id: str | None = None,
) -> SceneBundle:
    """Render the demo scene's reference video (exact depth) and write it as a bundle at `dest`.

    Deterministic: the same config gives the same bytes (apart from the `created` time in scene.json).
    `progress(stage, done, total)` is called with stage "render" per frame and "write" at the end.
    `scene_id` defaults to the name of `dest` (the store keeps each bundle in a folder named by its id).
    """
    config = config or DemoSceneConfig()
    world_config = replace(config.world, loop_s=config.loop_s, world_scale=1.0)
    intr = Intrinsics.from_fov(config.vertical_fov_deg, config.width, config.height)
    poses = reference_path(config)
    n = config.frame_count
    times = np.arange(n, dtype=np.float64) / config.fps
    on_frame = (lambda done: progress("render", done, n)) if progress else None
    world = DemoWorld(world_config)
    frames, depth = world.render_clip(poses, intr, times, on_frame)
    moving = np.stack([world.moving_mask(poses[i], intr, float(times[i]), depth[i]) for i in range(n)])
    meta = SceneMeta(
        scene_id=scene_id or Path(dest).name,
        title=f"StarBridge demo (procedural world, seed {config.world.seed})",
        fps=config.fps,
        frame_count=n,
        intrinsics=intr,
        source="demo",
        depth_source="exact",
    )
    record = {"demo_version": DEMO_VERSION, "world": asdict(world_config), "scene": _scene_record(config)}
    extra = {DEMO_WORLD_FILE: (json.dumps(record, indent=2) + "\n").encode("utf-8")}
    if progress:
        progress("write", 0, 1)
    bundle = write_bundle(dest, meta, frames, depth, poses, extra, moving=moving, overwrite=overwrite)
    if progress:
        progress("write", 1, 1)
    return bundle


def _scene_record(config: DemoSceneConfig) -> dict:
    doc = asdict(config)
    doc.pop("world")
    return doc


def demo_version(bundle: SceneBundle) -> int:
    """DEMO_VERSION of the code that built a demo bundle; 0 when it does not say."""
    try:
        return int(json.loads(bundle.file(DEMO_WORLD_FILE).read_text(encoding="utf-8"))["demo_version"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def world_for_bundle(bundle: SceneBundle) -> DemoWorld:
    """The DemoWorld a demo bundle was rendered from, in the bundle's scene units (ground truth at any pose).

    Scene poses can be passed to its `render` as they are; depths come out in scene metres.
    """
    path = bundle.file(DEMO_WORLD_FILE)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        world = DemoWorldConfig(**record["world"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SceneError(f"{bundle.path} is not a demo bundle with a readable {DEMO_WORLD_FILE}: {exc}") from exc
    return DemoWorld(replace(world, world_scale=bundle.meta.scale))
