"""The baseline generator: the explicit spatial constraint plus a hole fill, no neural network.

For each requested frame (docs/architecture.md §6): the reference frame at the same scene time is
splatted into the requested camera (exact where it sees, moving objects included); what it leaves
uncovered comes from the scene's fused static world (scenes/fused.py: the static pixels of many
reference frames) and the session's world memory (runtime/memory.py: what it showed before where
nothing was seen), drawn in turn into just those pixels (only the world's parts and the memory's chunks whose
bounds reach them, resolved there only); the remaining holes are filled by push-pull
(geometry/fill.py) and remembered with the fill's depth, so that looking away and back shows the same. This is
what the STAR model is compared against; it also serves the demo on a machine with no model bundle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgument
from ..geometry.camera import Intrinsics
from ..geometry.fill import push_pull_fill, push_pull_fill_holes, put_pixels, take_pixels
from ..geometry.splat import PointSplatter, SplatResult, SplatterCache, pixel_points
from ..scenes.bundle import SceneBundle
from ..scenes.fused import FusedWorld, FusedWorlds
from ..transport.defaults import MAX_SIDE
from .generator import FrameRequest
from .memory import MemoryConfig, WorldMemory


def hole_points(result: SplatResult, filled_rgb: np.ndarray, intrinsics: Intrinsics, c2w: np.ndarray):
    """The holes of a splat as world points, at the depth a push-pull fill of the inverse depth gives them
    (0 = infinity where the surroundings are sky): ((N, 4) float32, (N, 3) uint8 colours from `filled_rgb`)."""
    if result.mask.all():
        return np.empty((0, 4), np.float32), np.empty((0, 3), np.uint8)
    inv = np.zeros(result.depth.shape + (1,), np.float32)
    np.divide(np.float32(1.0), result.depth[..., None], out=inv, where=result.mask[..., None])  # 1 / inf = 0
    at, filled = push_pull_fill_holes(inv, result.mask)
    with np.errstate(divide="ignore"):
        depth = np.float32(1.0) / filled[:, 0]  # 1 / 0 = inf: a direction
    return pixel_points(at, depth, intrinsics, c2w), take_pixels(np.ascontiguousarray(filled_rgb), at)


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
        self._unfilled = np.empty(0, np.intp)  # set by splat: the wide-hole pixels no layer covered
        #: (height, width) bool of the last splat: True where the same-time frame or the fused world saw the pixel.
        self.observed = np.ones((height, width), bool)
        #: `observed` for each frame of the last block (GeneratorSession.observed_masks).
        self.observed_masks: list[np.ndarray] | None = None

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
        then the session's memory (at full resolution, so a revisited view shows exactly what it showed).

        The later layers are drawn only at the hole pixels (their points culled to them) and written into the
        first layer's arrays there: the work grows with the holes, not with the frame."""
        scene = self.scene
        i = scene.frame_index(request.scene_time_s)
        result = self._frames.get(request.intrinsics)(scene.frames[i], scene.depth[i], scene.poses[i], request.c2w)
        holes = _wide(~result.mask)  # cracks where the camera came closer are left to the fill, as before
        at = np.flatnonzero(holes)
        self.observed = np.ones(holes.shape, bool)  # True where a reference frame saw the pixel (the viewer's coverage)
        self._unfilled = at  # the wide-hole pixels no layer covers (flat indices)
        if not at.size:
            return result
        world = self.world
        step = world.step
        h, w = holes.shape
        coarse = request.intrinsics.scaled(-(-w // step), -(-h // step))
        rows, cols = np.divmod(at, w)
        block = (rows // step) * coarse.width + cols // step  # the coarse pixel over each hole pixel
        blocks = np.zeros((coarse.height, coarse.width), bool)  # the coarse pixels with a hole pixel in them
        blocks.reshape(-1)[block] = True
        seen = world.parts(world.bounds.in_view(coarse, request.c2w, block))
        second = self._splatter(coarse).splat([seen], request.c2w, only=blocks)
        got = second.mask.reshape(-1)[block]
        block = block[got]
        _put(result, at[got], take_pixels(second.colour, block), second.depth.reshape(-1)[block])
        at = at[~got]
        self.observed.reshape(-1)[at] = False  # neither the same-time frame nor the fused world: memory or fill
        self._unfilled = at
        if len(self.memory) and at.size:
            shown = self.memory.bounds().in_view(request.intrinsics, request.c2w, at)
            chunks = [c for c, s in zip(self.memory.chunks(), shown, strict=True) if s]  # in order: same sums
            if chunks:
                points = self.memory.arrays(chunks)
                third = self._splatter(request.intrinsics).sample([points], request.c2w, at)
                _put(result, at[third.mask], third.colour[third.mask], third.depth[third.mask])
                self._unfilled = at[~third.mask]
        return result

    def render(self, request: FrameRequest) -> np.ndarray:
        """One (height, width, 4) uint8 RGBA frame; alpha 255."""
        result = self.splat(request)
        rgb = push_pull_fill(result.colour, result.mask)
        if self._unfilled.size:  # (the wide holes left now are among these: none, nothing new to remember)
            remembered = SplatResult(result.colour, ~_wide(~result.mask), result.depth)  # not the cracks
            self.memory.add(*hole_points(remembered, rgb, request.intrinsics, request.c2w))
        out = np.empty((self.height, self.width, 4), np.uint8)
        out[..., :3] = rgb
        out[..., 3] = 255
        return out

    def generate_block(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        frames, observed = [], []
        for r in requests:
            frames.append(self.render(r))
            observed.append(self.observed)
        self.observed_masks = observed
        return frames

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


def _put(result: SplatResult, at: np.ndarray, colour: np.ndarray, depth: np.ndarray) -> None:
    """Write (n, 3) colours and (n,) depths into a splat's arrays at the flat pixels `at` (n,), marking them covered."""
    put_pixels(result.colour, at, colour)
    result.depth.reshape(-1)[at] = depth
    result.mask.reshape(-1)[at] = True
