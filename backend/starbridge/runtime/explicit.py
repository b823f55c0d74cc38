"""The baseline generator: the explicit spatial constraint plus a hole fill, no neural network.

For each requested frame (docs/architecture.md §6): the reference frame at the same scene time is
splatted into the requested camera (exact where it sees, moving objects included); what it leaves
uncovered comes from the scene's fused static world (scenes/fused.py: the static pixels of many
reference frames) and the session's world memory (runtime/memory.py: what it showed before where
nothing was seen), drawn in turn into just those pixels (only the world's parts and the memory's chunks whose
bounds reach them, resolved there only), and never farther than the surface a hole is closed in by (a surface
seen closer than the reference saw it cracks open; what lies behind it must not show through: `surroundings`,
and in the same-time frame itself `drop_see_through`);
the remaining holes are filled (`hole_fill`: from what does not move, keeping the horizon; a disocclusion
from the far side of its depth edge) and remembered with the fill's depth, so that looking away and back
shows the same. This is what the STAR model is compared
against; it also serves the demo on a machine with no model bundle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgument
from ..geometry import kernels
from ..geometry.camera import Intrinsics
from ..geometry.conventions import wire_to_cv
from ..geometry.fill import push_pull_fill, put_pixels
from ..geometry.splat import CELL_MARGIN, PointSplatter, SplatResult, SplatterCache, frame_points, pixel_points
from ..scenes.bundle import SceneBundle
from ..scenes.fused import FusedWorld, FusedWorlds
from ..transport.defaults import MAX_SIDE
from .generator import FrameRequest
from .holes import (
    SURROUND_DEPTH_TOL,
    SourceCamera,
    clamped,
    drop_see_through,
    finish_fill,
    near,
    push_pull_sources,
    surroundings,
    to_uint8,
    wide_holes,
)
from .memory import MemoryConfig, WorldMemory


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
        self._dynamic = self._unfilled  # set by splat: the wide-hole pixels inside a moving object
        self._limits = (self._unfilled, np.empty(0, np.float32))  # set by splat: its holes, their `surroundings`
        self._moves = np.zeros((height, width), bool)  # set by splat when it has holes: `_moving`
        #: (reference frame index, its moving pixels as world points, their (black) colours, their `_box`), for
        #: `_moving`.
        self._moving_points: tuple[int, np.ndarray, np.ndarray, np.ndarray | None] = (
            -1, np.empty((0, 4), np.float32), np.empty((0, 3), np.uint8), None,
        )  # fmt: skip
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
        source = SourceCamera.between(request.intrinsics, request.c2w, scene.meta.intrinsics, scene.poses[i])
        drop_see_through(result.mask, result.depth, source)  # what shows through a magnified surface's cracks
        holes = wide_holes(~result.mask)  # cracks where the camera came closer are left to the fill, as before
        at = np.flatnonzero(holes)
        self.observed = np.ones(holes.shape, bool)  # True where a reference frame saw the pixel (the viewer's coverage)
        self._unfilled = at  # the wide-hole pixels no layer covers (flat indices)
        self._dynamic = at[:0]
        self._limits = (at, np.empty(0, np.float32))
        if not at.size:
            return result
        self._moves = self._moving(request, result, holes)
        limit, dynamic = surroundings(result.mask, result.depth, self._moves, at)
        self._dynamic = at[dynamic]  # holes inside what moves (a moving object seen closer): filled, not remembered
        self._limits = (at, limit)
        world = self.world
        step = world.step
        h, w = holes.shape
        coarse = request.intrinsics.scaled(-(-w // step), -(-h // step))
        block = np.empty(at.size, np.int64)  # the coarse pixel over each hole pixel
        blocks = np.empty((coarse.height, coarse.width), bool)  # the coarse pixels with a hole pixel in them
        kernels.coarse_pixels(at.astype(np.int64, copy=False), w, step, block, blocks)  # compiled: one pass
        seen = world.parts(world.bounds.in_view(coarse, request.c2w, block, margin=CELL_MARGIN))  # (with cells)
        second = self._splatter(coarse).splat([seen], request.c2w, only=blocks)
        at, limit = _take_layer(result, second.colour.reshape(-1, 3), second.mask.reshape(-1),
                                second.depth.reshape(-1), block, at, limit)  # fmt: skip
        self.observed.reshape(-1)[at] = False  # neither the same-time frame nor the fused world: memory or fill
        self._unfilled = at
        if len(self.memory) and at.size:
            shown = self.memory.bounds().in_view(request.intrinsics, request.c2w, at)
            chunks = [c for c, s in zip(self.memory.chunks(), shown, strict=True) if s]  # in order: same sums
            if chunks:
                points = self.memory.arrays(chunks)
                third = self._splatter(request.intrinsics).sample([points], request.c2w, at)
                self._unfilled, _ = _take_layer(result, third.colour, third.mask, third.depth, None, at, limit)
        return result

    def render(self, request: FrameRequest) -> np.ndarray:
        """One (height, width, 4) uint8 RGBA frame; alpha 255."""
        result = self.splat(request)
        rgb, at, colours, depth = self.fill(request, result)
        if at.size:
            self.memory.add(pixel_points(at, depth, request.intrinsics, request.c2w), colours)
        out = np.empty((self.height, self.width, 4), np.uint8)
        kernels.opaque(np.ascontiguousarray(rgb), out)  # compiled: NumPy's strided copy costs a few ms
        return out

    def fill(self, request: FrameRequest, result: SplatResult) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The frame of `result`, this session's last splat (of `request`), with its holes filled: (H, W, 3)
        uint8; and what to remember of it: the flat indices (n,) of its wide holes left (not those inside a
        moving object), their colours (n, 3) uint8 and depths (n,) float32 (+inf: a direction).

        Wide holes: `hole_fill` from what does not move (what moves now is not what lies behind the holes),
        weighted toward the far side of depth edges where the same-time reference frame looked and saw something
        nearer (`_behind`: a disocclusion shows what lies behind), at depths no farther than their surroundings
        (so that the memory passes the same z-test on a revisit). Cracks: push-pull. Where a crack lies beside a
        wide hole's fill, that fill is one of its sources (a second push-pull, of everything shown): on a revisit
        the memory shows the fill there and the crack comes out the same; from the covered pixels alone it would
        change once the hole was remembered. (Always so, a second push-pull cost about 1.5 ms a frame at 512x288;
        a local mean for the cracks instead lost up to 4 dB of revisit PSNR on the roam paths.)"""
        if not self._unfilled.size:  # (the wide holes left now are among these: none, nothing new to remember)
            rgb = push_pull_fill(result.colour, result.mask)
            return rgb, self._unfilled, np.empty((0, 3), np.uint8), np.empty(0, np.float32)
        holes = wide_holes(~result.mask, within=self._unfilled)  # (the layers only took holes away)
        holes.reshape(-1)[self._dynamic] = False
        sources = result.mask & ~self._moves
        every, filled, far, values = push_pull_sources(result.colour, result.depth, sources)
        keep = holes.reshape(-1)[every]
        at, wide, far = every[keep], filled[keep], far[keep]
        behind = self._behind(request, at, far[:, 3])
        wide[behind] = far[behind]
        at, colours, depth = finish_fill(values, sources, at, wide)
        depth = clamped(depth, at, *self._limits)
        shown = result.mask.copy()
        shown.reshape(-1)[at] = True
        rgb = result.colour.copy()
        if self._moves.any() or (near(holes, 1) & ~shown).any():  # the cracks from what moves too / beside a fill
            put_pixels(rgb, at, colours)
            return push_pull_fill(rgb, shown), at, colours, depth
        put_pixels(rgb, every, to_uint8(filled[:, :3]))  # the cracks from the same push-pull (each channel alone)
        put_pixels(rgb, at, colours)  # shown as remembered: a revisit shows the same
        return rgb, at, colours, depth

    def _behind(self, request: FrameRequest, at: np.ndarray, inverse_depth: np.ndarray) -> np.ndarray:
        """(n,) bool: the hole pixels `at` (n,) flat indices of `request` that are disocclusions: at the depth of
        their far-weighted fill (`inverse_depth` (n,), 0: a direction), inside the image of the same-time reference
        frame, which therefore saw something nearer there. The others lie past its edge (`hole_fill`'s `behind`).
        Compiled: one pass over the pixels."""
        scene = self.scene
        i = scene.frame_index(request.scene_time_s)
        ref = scene.meta.intrinsics
        cam = SourceCamera.between(request.intrinsics, request.c2w, ref, scene.poses[i])
        out = np.empty(at.size, np.bool_)
        kernels.in_other_view(
            np.ascontiguousarray(at, np.int64), np.ascontiguousarray(inverse_depth, np.float32),
            request.intrinsics.width, cam.a, cam.b, cam.proj, ref.width, ref.height, out,
        )  # fmt: skip
        return out

    def memory_at(self, request: FrameRequest, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """What the memory as it is now shows at the pixels `at` (n,) flat indices of `request`: where it has a
        point ((n,) bool) and its colour there ((n, 3) uint8). (A generator that makes several frames per splat
        shows and keeps, in its later frames, what the first of them remembered.)"""
        none = np.zeros(at.size, bool), np.zeros((at.size, 3), np.uint8)
        if not at.size or not len(self.memory):
            return none
        shown = self.memory.bounds().in_view(request.intrinsics, request.c2w, at)
        chunks = [c for c, s in zip(self.memory.chunks(), shown, strict=True) if s]
        if not chunks:
            return none
        got = self._splatter(request.intrinsics).sample([self.memory.arrays(chunks)], request.c2w, at)
        return got.mask, got.colour

    def _moving(self, request: FrameRequest, result: SplatResult, holes: np.ndarray) -> np.ndarray:
        """(H, W) bool: the covered pixels of `result` within MOVING_RING pixels of the `holes` (H, W) bool that
        show a moving object of the same-time reference frame (its moving pixels splatted alone, resolved at
        those pixels only, where they are the nearest surface); all False without moving masks.

        Looked for only inside the rectangle the moving points' bounding boxes project to (`_reach`): a pixel's
        splat depends only on the points whose footprint covers it, so the result is the same as looking at the
        whole ring, without the work over the whole frame."""
        out = np.zeros(result.mask.shape, bool)
        moving = getattr(self.scene, "moving", None)
        if moving is None:
            return out
        i = self.scene.frame_index(request.scene_time_s)
        if self._moving_points[0] != i:
            where = moving[i]
            points = frame_points(self.scene.depth[i], self.scene.meta.intrinsics, self.scene.poses[i], where=where)
            box = _box(points) if len(points) else None
            self._moving_points = (i, points, np.zeros((len(points), 3), np.uint8), box)
        _, points, colours, boxes = self._moving_points
        if not len(points):
            return out
        h, w = holes.shape
        window = (0, h, 0, w) if boxes is None else _reach(boxes, request.intrinsics, request.c2w)
        if window is None:
            return out
        y0, y1, x0, x1 = window
        r = MOVING_RING  # the holes up to r pixels outside the window count too
        b0, b1, a0, a1 = max(y0 - r, 0), min(y1 + r, h), max(x0 - r, 0), min(x1 + r, w)
        ring = near(holes[b0:b1, a0:a1], r)[y0 - b0 : y1 - b0, x0 - a0 : x1 - a0] & result.mask[y0:y1, x0:x1]
        rows, cols = np.nonzero(ring)  # row-major, as np.flatnonzero over the whole frame
        ring = (rows + y0) * w + (cols + x0)
        if not ring.size:
            return out
        drawn = self._splatter(request.intrinsics).sample([(points, colours)], request.c2w, ring)
        front = drawn.depth <= result.depth.reshape(-1)[ring] * np.float32(1.0 + MOVING_DEPTH_TOL)
        out.reshape(-1)[ring[drawn.mask & front]] = True
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


#: Moving pixels are looked for this close (pixels) to the wide holes: what a hole's fill takes most from.
MOVING_RING = 8
#: A pixel shows a moving object when the object's own splat is no farther there than this (relative).
MOVING_DEPTH_TOL = 0.05


#: `in_front`'s factor (runtime/holes.py) for `_take_layer`.
_IN_FRONT = np.float32(1.0 + SURROUND_DEPTH_TOL)

#: `_reach`: image pixels this far outside the rectangle of the projected box corners count as reached (a
#: footprint spans 2 pixels; the rest covers float32 rounding in the points' own projection).
REACH_MARGIN = 3


def _box(points: np.ndarray) -> np.ndarray | None:
    """(8, 4) float64 corners (w = 1) of the axis-aligned box around (N > 0, 4) points, all finite (w = 1); None
    when some are directions (w = 0). (geometry.splat.bounding_boxes does both kinds, several times slower.)"""
    if not (points[:, 3] > 0).all():
        return None
    lo = [float(points[:, a].min()) for a in range(3)]  # (column by column: NumPy's axis-0 min is slower)
    hi = [float(points[:, a].max()) for a in range(3)]
    return np.array([[(hi if k >> a & 1 else lo)[a] for a in range(3)] + [1.0] for k in range(8)])


def _reach(box: np.ndarray, intrinsics: Intrinsics, c2w: np.ndarray) -> tuple[int, int, int, int] | None:
    """The image rectangle (row start, row end, column start, column end; ends exclusive) outside which no point
    inside the `box` (8, 4) (`_box`) can draw in the camera `c2w` with `intrinsics`; the whole image when the box is
    not wholly in front of the camera; None when no point can draw. A box in front of the camera projects into
    the hull of its corners."""
    h, w = intrinsics.height, intrinsics.width
    k = np.array([[intrinsics.fx, 0.0, intrinsics.cx], [0.0, intrinsics.fy, intrinsics.cy], [0.0, 0.0, 1.0]])
    proj = k @ np.linalg.inv(wire_to_cv(c2w))[:3]  # world -> pixels (centres at + 0.5)
    hx, hy, hz = proj @ box.T
    if not (hz > 1e-9).all():
        return 0, h, 0, w
    u, v = hx / hz, hy / hz
    m = REACH_MARGIN
    x0, x1 = max(int(np.floor(u.min())) - m, 0), min(int(np.floor(u.max())) + m + 1, w)
    y0, y1 = max(int(np.floor(v.min())) - m, 0), min(int(np.floor(v.max())) + m + 1, h)
    if x0 >= x1 or y0 >= y1:
        return None
    return y0, y1, x0, x1


def _take_layer(
    result: SplatResult,
    colour: np.ndarray,
    mask: np.ndarray,
    depth: np.ndarray,
    src: np.ndarray | None,
    at: np.ndarray,
    limit: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Write a later layer into the splat's arrays (colour, depth; marked covered) at the hole pixels `at` (n,)
    (flat indices) where it has a point `in_front` of their `limit` (n,): its colour (m, 3), mask and depth (m,)
    at entry src (n,) of each (at entry k of pixel k when None). Returns the pixels left and their limits
    (compiled: one pass, no (n,) temporaries)."""
    left, left_limit = np.empty(at.size, np.int64), np.empty(at.size, np.float32)
    at = np.ascontiguousarray(at, np.int64)
    use_src = src is not None
    src = np.ascontiguousarray(src, np.int64) if use_src else at
    n = kernels.take_layer(
        np.ascontiguousarray(colour), np.ascontiguousarray(mask), np.ascontiguousarray(depth), src, use_src,
        at, np.ascontiguousarray(limit, np.float32), _IN_FRONT,
        result.colour.reshape(-1, 3), result.mask.reshape(-1), result.depth.reshape(-1), left, left_limit,
    )  # fmt: skip
    return left[:n], left_limit[:n]
