"""Ground-truth videos: procedural worlds filmed along known camera paths, for testing video capture.

The capture pipeline (scenes/capture/) recovers camera poses, depth and moving-object masks from a video
alone. To measure it, we film a procedural world with the ray-caster along a path whose every pose, depth
and moving pixel is known, encode it to MP4 like a real clip, import it, and compare.

Kinds of clip (`CLIP_KINDS`), each the kind of footage a user brings:

* `handheld`: a 2 m sideways walk that turns 20 degrees towards where it goes, with a little hand shake;
* `orbit`: a 25 degree arc around a point 6 m ahead, always looking at it (a drone orbit);
* `dolly`: 2 m straight ahead with a slight pan (a vehicle);
* `pan`: a tripod pan of 90 degrees to the left (rotation only: no parallax at all);
* `moving`: a slow sideways walk through the moving objects (the bouncing ball, the sliding box).

Poses are wire camera-to-world matrices in metres, frame 0 at the origin camera; depth is z-depth in
metres (+inf for sky); `moving` masks are the pixels where a moving object is in front of the static world.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import InvalidArgument
from ...geometry.camera import Intrinsics
from ..video import write_video
from .paths import pose
from .world import DemoWorld, DemoWorldConfig

CLIP_KINDS = ("handheld", "orbit", "dolly", "pan", "moving")


@dataclass(frozen=True)
class ClipConfig:
    kind: str = "handheld"
    frames: int = 60
    width: int = 480
    height: int = 270
    #: Vertical field of view of the filming camera, degrees (60 gives fy = 234 px at 270 rows).
    vertical_fov_deg: float = 60.0
    fps: float = 30.0
    #: The procedural world (its seed picks the layout and colours).
    world_seed: int = 0
    #: Hand shake of `handheld` clips: position (m) and rotation (degrees) jitter.
    shake_m: float = 0.01
    shake_deg: float = 0.3

    def __post_init__(self) -> None:
        if self.kind not in CLIP_KINDS:
            raise InvalidArgument(f"clip kind must be one of {', '.join(CLIP_KINDS)}, got {self.kind!r}", field="kind")
        if self.frames < 2 or self.width < 16 or self.height < 16 or not 1 < self.vertical_fov_deg < 179:
            raise InvalidArgument(f"a clip needs >= 2 frames of >= 16x16 pixels and a fov in (1, 179): {self}")


@dataclass(frozen=True)
class GroundTruthClip:
    """A filmed clip and everything true about it."""

    config: ClipConfig
    intrinsics: Intrinsics
    #: (N, H, W, 3) uint8 sRGB, rows top to bottom.
    frames: np.ndarray = field(repr=False)
    #: (N, H, W) float32 z-depth, metres; +inf for sky.
    depth: np.ndarray = field(repr=False)
    #: (N, 4, 4) wire camera-to-world, metres; frame 0 is the identity.
    poses: np.ndarray = field(repr=False)
    #: (N, H, W) bool: a moving object in front of the static world.
    moving: np.ndarray = field(repr=False)
    #: (N,) scene time of each frame, seconds.
    times: np.ndarray = field(repr=False)

    @property
    def rotation_only(self) -> bool:
        return bool(np.allclose(self.poses[:, :3, 3], 0.0))

    def moving_shadows(self) -> np.ndarray:
        """(N, H, W) bool: the static world's pixels in a moving object's shadow (rendered again: the truth for
        shadows.py, not kept with the clip)."""
        world = DemoWorld(DemoWorldConfig(seed=self.config.world_seed))
        return np.stack(
            [
                world.moving_shadow_mask(p, self.intrinsics, float(t))
                for p, t in zip(self.poses, self.times, strict=True)
            ]
        )

    def write_mp4(self, path: Path, *, crf: int = 16) -> Path:
        """Encode the frames as an H.264 MP4 (high quality, as a phone would record), like a real clip."""
        return write_video(path, self.frames, self.config.fps, crf=crf)


def clip_path(config: ClipConfig) -> np.ndarray:
    """(N, 4, 4) wire camera-to-world poses of the clip kind, metres, frame 0 the identity."""
    n = config.frames
    s = np.linspace(0.0, 1.0, n)
    smooth = s * s * (3.0 - 2.0 * s)
    poses = np.empty((n, 4, 4))
    for i, u in enumerate(smooth):
        if config.kind == "handheld":  # walk right while turning right, towards where it goes
            poses[i] = pose(-20.0 * u, 0.0, (2.0 * u, 0.0, -0.3 * math.sin(math.pi * u)))
        elif config.kind == "orbit":  # a 25 degree arc to the left around a point 6 m ahead, looking at it
            phi = math.radians(-25.0) * u
            poses[i] = pose(math.degrees(phi), 0.0, (6.0 * math.sin(phi), 0.0, -6.0 + 6.0 * math.cos(phi)))
        elif config.kind == "dolly":  # 2 m ahead with a slight pan
            poses[i] = pose(-6.0 * u, 0.0, (0.0, 0.05 * math.sin(math.pi * u), -2.0 * u))
        elif config.kind == "pan":  # a tripod pan, 90 degrees to the left
            poses[i] = pose(90.0 * u, 0.0, (0.0, 0.0, 0.0))
        else:  # moving: a slow walk to the right, the moving objects in view
            poses[i] = pose(-5.0 * u, -3.0, (1.0 * u, 0.0, 0.0))
    if config.kind == "handheld" and (config.shake_m or config.shake_deg):
        rng = np.random.default_rng(1234)
        for i in range(1, n):
            yaw, pitch = rng.normal(0.0, config.shake_deg, 2)
            jitter = pose(float(yaw), float(pitch), rng.normal(0.0, config.shake_m, 3))
            poses[i] = poses[i] @ jitter
    poses[0] = np.eye(4)
    return poses


def render_clip(config: ClipConfig, progress: Callable[[int], None] | None = None) -> GroundTruthClip:
    """Film the clip: frames, exact depth, poses and moving-object masks. `progress(done)` after each frame."""
    world = DemoWorld(DemoWorldConfig(seed=config.world_seed))
    intr = Intrinsics.from_fov(config.vertical_fov_deg, config.width, config.height)
    poses = clip_path(config)
    times = np.arange(config.frames) / config.fps
    frames, depth = world.render_clip(poses, intr, times, progress=progress)
    moving = np.stack([world.moving_mask(poses[i], intr, float(times[i]), depth[i]) for i in range(config.frames)])
    return GroundTruthClip(config, intr, frames, depth, poses, moving, times)
