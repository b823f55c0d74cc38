"""The baseline generator: the explicit spatial constraint plus a hole fill, no neural network.

For each requested frame (docs/architecture.md §6): the reference frame at the same scene time is
splatted into the requested camera (exact where it sees, moving objects included); what it leaves
uncovered comes from the scene's fused static world (scenes/fused.py: the static pixels of many
reference frames) and the session's world memory (runtime/memory.py: what it showed before where
nothing was seen), splatted together into just those pixels; the remaining holes are filled by push-pull
(geometry/fill.py) and remembered with the fill's depth, so that looking away and back shows the same. This is
what the STAR model is compared against; it also serves the demo on a machine with no model bundle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgument
from ..geometry.camera import Intrinsics
from ..geometry.fill import push_pull_fill, push_pull_fill_values
from ..geometry.splat import PointSplatter, SplatResult, SplatterCache, frame_points
from ..scenes.bundle import SceneBundle
from ..scenes.fused import FusedWorld, FusedWorlds
from ..transport.defaults import MAX_SIDE
from .generator import FrameRequest
from .memory import MemoryConfig, WorldMemory


def hole_points(result: SplatResult, filled_rgb: np.ndarray, intrinsics: Intrinsics, c2w: np.ndarray):
    """The holes of a splat as world points, at the depth a push-pull fill of the inverse depth gives them
    (0 = infinity where the surroundings are sky): ((N, 4) float32, (N, 3) uint8 colours from `filled_rgb`)."""
    holes = ~result.mask
    if not holes.any():
        return np.empty((0, 4), np.float32), np.empty((0, 3), np.uint8)
    inv = np.zeros(result.depth.shape + (1,), np.float32)
    finite = result.mask & np.isfinite(result.depth)
    inv[finite, 0] = 1.0 / result.depth[finite]
    filled = push_pull_fill_values(inv, result.mask)[..., 0]
    with np.errstate(divide="ignore"):
        depth = np.where(filled > 0, 1.0 / filled, np.inf).astype(np.float32)
    return frame_points(depth, intrinsics, c2w, where=holes), filled_rgb[holes & (depth > 0)]


class ExplicitSession:
    """Per-client state: a point splatter per target intrinsics, and the session's world memory."""

    block_frames = 1

    def __init__(self, scene: SceneBundle, width: int, height: int, worlds: FusedWorlds, memory: MemoryConfig) -> None:
        self.scene = scene
        self.width = width
        self.height = height
        self._worlds = worlds
        self._world: FusedWorld | None = None
        self._frames = SplatterCache(scene.meta.intrinsics)
        self._splatters: dict[Intrinsics, PointSplatter] = {}
        self.memory = WorldMemory(memory)

    @property
    def world(self) -> FusedWorld:
        """The scene's fused world (fused on first use, in the session's own thread, then shared)."""
        if self._world is None:
            self._world = self._worlds.get(self.scene)
        return self._world

    def _splatter(self, intrinsics: Intrinsics) -> PointSplatter:
        splatter = self._splatters.get(intrinsics)
        if splatter is None:
            if len(self._splatters) >= 4:  # the engine changed its fov or aspect: drop old buffers
                self._splatters.clear()
            splatter = self._splatters[intrinsics] = PointSplatter(intrinsics, capacity=2 * self.width * self.height)
        return splatter

    def splat(self, request: FrameRequest) -> SplatResult:
        """Three layers, each drawn only where the ones before left holes: the same-time reference frame (exact,
        moving objects included), the fused static world (at 1 / step of the resolution: `FusionConfig.step`),
        then the session's memory (at full resolution, so a revisited view shows exactly what it showed)."""
        scene = self.scene
        i = scene.frame_index(request.scene_time_s)
        result = self._frames.get(request.intrinsics)(scene.frames[i], scene.depth[i], scene.poses[i], request.c2w)
        holes = _wide(~result.mask)  # cracks where the camera came closer are left to the fill, as before
        if not holes.any():
            return result
        world = self.world
        step = world.step
        h, w = holes.shape
        coarse = request.intrinsics.scaled(-(-w // step), -(-h // step))
        second = self._splatter(coarse).splat(
            [(world.points, world.colours)], request.c2w, only=_any_in_blocks(holes, step)
        )
        # the first layer's arrays are this call's own: fill them in place
        fill = holes & _upsample(second.mask, step, h, w)
        np.copyto(result.colour, _upsample(second.colour, step, h, w), where=fill[..., None])
        np.copyto(result.depth, _upsample(second.depth, step, h, w), where=fill)
        result.mask[fill] = True
        holes &= ~fill
        if len(self.memory) and holes.any():
            third = self._splatter(request.intrinsics).splat([self.memory.arrays()], request.c2w, only=holes)
            where = holes & third.mask
            np.copyto(result.colour, third.colour, where=where[..., None])
            np.copyto(result.depth, third.depth, where=where)
            result.mask[where] = True
        return result

    def render(self, request: FrameRequest) -> np.ndarray:
        """One (height, width, 4) uint8 RGBA frame; alpha 255."""
        result = self.splat(request)
        rgb = push_pull_fill(result.colour, result.mask)
        remembered = SplatResult(result.colour, ~_wide(~result.mask), result.depth)  # not the cracks
        self.memory.add(*hole_points(remembered, rgb, request.intrinsics, request.c2w))
        out = np.empty((self.height, self.width, 4), np.uint8)
        out[..., :3] = rgb
        out[..., 3] = 255
        return out

    def generate_block(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        return [self.render(r) for r in requests]

    def reset(self) -> None:
        pass  # the memory holds static content only: it survives a seek

    def close(self) -> None:
        self._frames.clear()
        self._splatters.clear()
        self.memory.clear()


class ExplicitGenerator:
    name = "explicit-fill"
    execution_provider = "numpy"

    def __init__(self, memory: MemoryConfig = MemoryConfig(), worlds: FusedWorlds | None = None) -> None:  # noqa: B008
        self.memory = memory
        self.worlds = worlds or FusedWorlds()

    def prepare(self, scene: SceneBundle) -> None:
        """Fuse a scene's world ahead of its first session (e.g. the default scene at start-up)."""
        self.worlds.get(scene)

    def check_size(self, width: int, height: int) -> None:
        for field, value in (("width", width), ("height", height)):
            if not 1 <= value <= MAX_SIDE:  # the largest a session may ask for (its buffers grow with the square)
                raise InvalidArgument(f"{field} must be in [1, {MAX_SIDE}], got {value}", field=field)

    def open(self, scene: SceneBundle, width: int, height: int) -> ExplicitSession:
        self.check_size(width, height)
        return ExplicitSession(scene, width, height, self.worlds, self.memory)


#: Hole pixels this close (pixels) to a wide hole count as part of it (so the fill of the cracks around it
#: does not change when the memory later fills the hole itself: revisits stay identical).
WIDE_HOLE_MARGIN = 3


def _wide(holes: np.ndarray) -> np.ndarray:
    """The holes at least 3 pixels across (morphological opening with a plus-shaped element), with the hole
    pixels within WIDE_HOLE_MARGIN of them: not the isolated one- or two-pixel cracks a surface shows when the
    camera comes closer than the reference camera was (push-pull fills those better than any layer)."""
    core = holes.copy()  # erosion
    core[1:] &= holes[:-1]
    core[:-1] &= holes[1:]
    core[:, 1:] &= holes[:, :-1]
    core[:, :-1] &= holes[:, 1:]
    for _ in range(1 + WIDE_HOLE_MARGIN):  # dilation back, and the margin
        grown = core.copy()
        grown[1:] |= core[:-1]
        grown[:-1] |= core[1:]
        grown[:, 1:] |= core[:, :-1]
        grown[:, :-1] |= core[:, 1:]
        core = grown
    return core & holes


def _any_in_blocks(mask: np.ndarray, step: int) -> np.ndarray:
    """(ceil(H / step), ceil(W / step)) bool: True where any pixel of the step x step block is."""
    h, w = mask.shape
    hb, wb = -(-h // step), -(-w // step)
    padded = np.zeros((hb * step, wb * step), bool)
    padded[:h, :w] = mask
    return np.asarray(padded.reshape(hb, step, wb, step).any(axis=(1, 3)))


def _upsample(image: np.ndarray, step: int, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour upsampling by `step` (a broadcast view, no copy), cropped to (h, w)."""
    hb, wb = image.shape[:2]
    tiled = np.broadcast_to(image[:, None, :, None], (hb, step, wb, step, *image.shape[2:]))
    return tiled.reshape(hb * step, wb * step, *image.shape[2:])[:h, :w]
