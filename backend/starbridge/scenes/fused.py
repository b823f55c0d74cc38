"""The fused static world: everything the reference video saw, as one point set.

Rendering only the reference frame at the requested scene time throws away what the other frames saw:
turn the camera 30 degrees and half the view is a hole. At scene load we therefore fuse the *static*
pixels of many reference frames (colour + depth + pose; moving-object pixels excluded) into one
deduplicated point set in world coordinates; a frame is then the fused world splatted into the requested
camera, with the same-time frame's moving pixels splatted with it (one z-test), so moving objects stay
where and when they are.

Why a point set: it is what the splatter already draws (geometry/splat.py `PointSplatter`), it keeps the
exact geometry of every pixel that made it in (near parallax and far sky alike: directions at infinity are
points with w = 0), and culling to the camera's view keeps the cost near one frame's worth. Deduplication
is by coverage: frames are added in order, and a frame contributes only the static pixels the world built
so far does not already cover when seen from that frame's own camera. The set therefore grows with new
content (a 90 degree pan ends with about two and a half frames' worth), not with the frame count.

It fills what the same-time frame leaves uncovered, which is usually the smaller part of a frame and
blurred by the eye's expectations anyway: every second pixel in each direction goes in (`step`), and it
is drawn at half the output resolution, four times cheaper. Each point also keeps its cell (`cells`): the
world vectors to its neighbours in the frame it came from, the patch of surface it stands for, so that a camera
that walks up to a surface magnifies the patches instead of parting them into stripes (geometry/splat.py
`PointSplatter`). A cell ends at a depth edge (`FusionConfig.cell_edge_ratio`), so what lies behind stays open
for the fill. Memory: 16 bytes of position, 24 of cell and 3 of colour per point (a few MB). Built once per
scene and shared read-only by every session. The points are kept in parts, one per contributing frame, each
with its bounding boxes, so a frame draws only the parts that can land in its holes (`FusedWorld.bounds`,
`parts`).
"""

from __future__ import annotations

import collections
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..geometry.camera import Intrinsics
from ..geometry.conventions import wire_to_cv
from ..geometry.splat import PointSplatter, SetBounds, bounding_boxes, frame_points, ray_axes
from .bundle import SceneBundle

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FusionConfig:
    #: At most this many reference frames are fused, evenly spread over the video (the first and last in).
    max_frames: int = 48
    #: Every step-th pixel of a frame in each direction goes in (the world fills holes the same-time frame
    #: leaves, drawn at 1 / step of the output resolution: 2 makes it four times cheaper to draw).
    step: int = 2
    #: A pixel counts as covered when the world already projects there; grow coverage by this many pixels
    #: so that seams (where a splat footprint just misses) do not add near-duplicate points.
    cover_dilation: int = 1
    #: Two neighbouring pixels (step apart) are on one surface when their depths are within this ratio, or when
    #: inverse depth runs straight through both (a plane seen obliquely: `PLANE_TOLERANCE`): a point's cell edge
    #: is the shorter of its vectors to such neighbours (left or right; up or down). With none, the edge is the
    #: pixel's footprint on a surface facing the camera (depth / focal length). 1.3: by depth alone, the ground
    #: within about 60 m of a 1.6 m high camera with 60 degrees of vertical field of view is one surface; a wall
    #: 1.5 m behind a box 3.5 m away (1.43) is not.
    cell_edge_ratio: float = 1.3

    def __post_init__(self) -> None:
        if not self.cell_edge_ratio > 1.0:
            raise ValueError(f"cell_edge_ratio must be > 1, got {self.cell_edge_ratio}")


@dataclass(frozen=True)
class FusedWorld:
    """A scene's static world: (N, 4) float32 homogeneous wire-world points (stored column by column) and their
    (N, 3) uint8 colours."""

    #: The subsampling step it was made with (draw it at 1 / step of the output resolution).
    step: int
    points: np.ndarray
    colours: np.ndarray
    #: (N,) int32: the reference frame each point came from.
    source_frame: np.ndarray
    #: Reference frames that contributed, in the order they were fused.
    frames_used: tuple[int, ...]
    seconds: float
    #: The points in parts, one per contributing frame (in order): part k is points[offsets[k]:offsets[k + 1]],
    #: bounded by boxes[k] (geometry.splat.bounding_boxes), so a camera skips the parts it cannot see.
    offsets: tuple[int, ...] = (0,)
    boxes: tuple[np.ndarray, ...] = ()
    #: (N, 6) float32 (stored column by column): each point's cell, the world vectors to its neighbours along
    #: its source frame's rows and down its columns (zero for a direction); geometry.splat.PointSplatter.
    cells: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.points)

    @functools.cached_property
    def bounds(self) -> SetBounds:
        """The parts' boxes, gathered to cull parts per frame."""
        return SetBounds(self.boxes)

    def parts(self, shown: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Points, colours and cells of the parts where `shown` (len(boxes),) bool is True, in order (a set for
        PointSplatter)."""
        cells = self.cells if self.cells is not None else np.zeros((len(self.points), 6), np.float32)
        if shown.all():
            return self.points, self.colours, cells
        spans = [slice(self.offsets[k], self.offsets[k + 1]) for k in np.flatnonzero(shown)]
        if not spans:
            return self.points[:0], self.colours[:0], cells[:0]
        points = np.concatenate([self.points[s].T for s in spans], axis=1).T  # kept column by column, as `points`
        return (
            points,
            np.concatenate([self.colours[s] for s in spans]),
            _by_column(np.concatenate([cells[s] for s in spans])),
        )

    @property
    def nbytes(self) -> int:
        cells = 0 if self.cells is None else self.cells.nbytes
        return self.points.nbytes + self.colours.nbytes + self.source_frame.nbytes + cells


def _frame_order(frame_count: int, max_frames: int) -> list[int]:
    """Frames to fuse: first, then last, then the rest evenly spread, coarse to fine (so the big picture
    comes first and later frames only add detail)."""
    if frame_count <= max_frames:
        chosen = list(range(frame_count))
    else:
        chosen = sorted({round(k * (frame_count - 1) / (max_frames - 1)) for k in range(max_frames)})
    order: list[int] = []
    step = len(chosen)
    while step >= 1:
        for i in range(0, len(chosen), step):
            if chosen[i] not in order:
                order.append(chosen[i])
        if chosen[-1] not in order:
            order.append(chosen[-1])
        step //= 2
    return order


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(r):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= out[:, :-1]
        grown[:, :-1] |= out[:, 1:]
        out = grown
    return out


def fuse_world(
    bundle: SceneBundle,
    config: FusionConfig = FusionConfig(),  # noqa: B008 (frozen)
    progress: Callable[[int, int], None] | None = None,
) -> FusedWorld:
    """Fuse the static pixels of the bundle's reference frames (see the module docstring)."""
    t0 = time.perf_counter()
    meta = bundle.meta
    step, o = config.step, config.step // 2
    intr = meta.intrinsics.subsampled(step)
    order = _frame_order(meta.frame_count, config.max_frames)
    moving = getattr(bundle, "moving", None)
    frames, depth, poses = bundle.frames, bundle.depth, bundle.poses
    splatter = PointSplatter(intr, capacity=intr.width * intr.height)
    chunks_p: list[np.ndarray] = []
    chunks_c: list[np.ndarray] = []
    chunks_f: list[np.ndarray] = []
    chunks_e: list[np.ndarray] = []
    points = np.empty((0, 4), np.float32)
    colours = np.empty((0, 3), np.uint8)
    for done, k in enumerate(order, start=1):
        d, rgb = depth[k][o::step, o::step], frames[k][o::step, o::step]
        static = d > 0  # not NaN, not <= 0
        if moving is not None:
            static &= ~moving[k][o::step, o::step]
        surface = static.copy()  # (what the cells may span: not the pixels already covered)
        if len(points):
            covered = _dilate(splatter(points, colours, poses[k]).mask, config.cover_dilation)
            static &= ~covered
        new = frame_points(d, intr, poses[k], where=static)
        if len(new):
            chunks_p.append(new)
            chunks_c.append(rgb[static])
            chunks_f.append(np.full(len(new), k, np.int32))
            chunks_e.append(point_cells(d, surface, intr, poses[k], config.cell_edge_ratio)[static[surface]])
            points = np.concatenate(chunks_p)
            colours = np.concatenate(chunks_c)
        if progress is not None:
            progress(done, len(order))
    source = np.concatenate(chunks_f) if chunks_f else np.empty(0, np.int32)
    cells = _by_column(np.concatenate(chunks_e) if chunks_e else np.empty((0, 6), np.float32))
    points = _by_column(points)
    offsets = tuple(int(x) for x in np.cumsum([0] + [len(c) for c in chunks_p]))
    boxes = tuple(bounding_boxes(c) for c in chunks_p)
    seconds = time.perf_counter() - t0
    world = FusedWorld(step, points, colours, source, tuple(order), seconds, offsets, boxes, cells)
    log.info(
        "fused %d frames of scene %s into %d points (%.1f MB) in %.1f s",
        len(order), meta.scene_id, len(world), world.nbytes / 1e6, world.seconds,
    )  # fmt: skip
    return world


#: `point_cells`: neighbours farther apart in depth than `FusionConfig.cell_edge_ratio` are still on one surface
#: when inverse depth runs straight through both (a plane seen obliquely: a wall along the street, the ground
#: far off): its second difference at each, relative to their own inverse depth, is at most this.
PLANE_TOLERANCE = 0.02


def point_cells(
    depth: np.ndarray, surface: np.ndarray, intrinsics: Intrinsics, c2w_wire: np.ndarray, edge_ratio: float
) -> np.ndarray:
    """(n, 6) float32 world vectors: the cells of a frame's pixels where `surface` (H, W) bool is True (row-major,
    as `frame_points(depth, intrinsics, c2w_wire, where=surface)` orders them; those need depth > 0). A pixel's
    first edge is the shorter of its vectors to its left and right neighbours on the same surface (also True in
    `surface`, finite depths within `edge_ratio` of each other or on one plane with it: `PLANE_TOLERANCE`), its
    second the same with the pixels above and below; with no such neighbour, the pixel's extent on a surface
    facing the camera at its depth (depth / fx along x, depth / fy along y). Zero for a direction (+inf depth)."""
    depth = np.asarray(depth, np.float32)
    a, b = ray_axes(intrinsics)
    keep = surface & (depth > 0)
    finite = keep & np.isfinite(depth)
    z = np.where(finite, depth, np.float32(1.0))
    xyz = (a[None, :] * z, b[:, None] * z, z)  # the OpenCV camera-frame points, coordinate by coordinate
    rot = wire_to_cv(c2w_wire)[:3, :3]  # camera (OpenCV) -> world
    out = np.empty((int(keep.sum()), 6), np.float32)
    for e, (axis, focal) in enumerate(((1, intrinsics.fx), (0, intrinsics.fy))):
        edge = [c[keep] for c in _edges(xyz, z, finite, edge_ratio, axis, np.float32(1.0 / focal))]
        for i in range(3):  # element-wise, not matmul (splat._transform says why)
            out[:, 3 * e + i] = edge[0] * rot[i, 0] + edge[1] * rot[i, 1] + edge[2] * rot[i, 2]
    return out


def _edges(
    xyz: tuple[np.ndarray, ...], z: np.ndarray, finite: np.ndarray, ratio: float, axis: int, facing: np.float32
) -> list[np.ndarray]:
    """`point_cells`' edge along `axis` (1: the rows, 0: the columns): three (H, W) float32 camera-frame
    coordinates, from the points xyz (three (H, W)) with depths z (H, W) where `finite` (H, W); a pixel with no
    neighbour on its surface gets z * facing along the axis (its extent on a surface facing the camera)."""
    ahead = (slice(None), slice(1, None)) if axis == 1 else (slice(1, None),)  # pixel k + 1 of each pair
    back = (slice(None), slice(None, -1)) if axis == 1 else (slice(None, -1),)  # pixel k
    inner = (slice(None), slice(1, -1)) if axis == 1 else (slice(1, -1),)
    steps = [np.diff(c, axis=axis) for c in xyz]  # from each pixel to the next along the axis
    near, far = np.minimum(z[ahead], z[back]), np.maximum(z[ahead], z[back])
    with np.errstate(invalid="ignore"):
        inv = np.where(finite, np.float32(1.0) / z, np.float32(np.nan))  # straight along a plane, however oblique
        bend = np.full(z.shape, np.inf, np.float32)
        bend[inner] = np.abs(np.diff(inv, n=2, axis=axis)) * z[inner]  # NaN: compares False below
    if z.shape[axis] > 2:  # (the first and last pixels: as their neighbour)
        first, last = np.take(bend, [1, -2], axis=axis).swapaxes(0, axis)
        np.moveaxis(bend, axis, 0)[0], np.moveaxis(bend, axis, 0)[-1] = first, last
    flat = bend <= PLANE_TOLERANCE
    joined = finite[ahead] & finite[back] & ((far <= np.float32(ratio) * near) | (flat[ahead] & flat[back]))
    length = np.where(joined, steps[0] * steps[0] + steps[1] * steps[1] + steps[2] * steps[2], np.inf)
    after, before = np.full(z.shape, np.inf, np.float32), np.full(z.shape, np.inf, np.float32)
    after[back], before[ahead] = length, length  # (squared) to the next pixel, from the previous one
    forward = after <= before
    alone = np.isinf(np.minimum(after, before)) & finite
    edges = []
    for c, step in enumerate(steps):
        edge = np.zeros(z.shape, np.float32)
        edge[ahead] = step  # from the previous pixel
        np.copyto(edge[back], step, where=forward[back])  # to the next one, where that is the shorter
        if c == 1 - axis:  # x along the rows, y down the columns
            edge[alone] = z[alone] * facing
        else:
            edge[alone] = 0.0
        edge[~finite] = 0.0
        edges.append(edge)
    return edges


def _by_column(points: np.ndarray) -> np.ndarray:
    """(N, 4) points stored column by column (a transposed view of (4, N)): each coordinate is contiguous, so
    projecting them every frame (PointSplatter) reads memory in order (about 2x faster)."""
    return np.ascontiguousarray(points.T).T


class FusedWorlds:
    """Fused worlds of the scenes in use, built once per scene and shared (thread-safe, small LRU).

    A scene is known by its folder and the modification time of its scene.json, so a scene replaced by
    `scene import --overwrite` is fused anew.
    """

    def __init__(self, config: FusionConfig = FusionConfig(), capacity: int = 4) -> None:  # noqa: B008 (frozen)
        self.config = config
        self.capacity = capacity
        self._lock = threading.Lock()
        self._worlds: collections.OrderedDict[tuple[str, int], FusedWorld] = collections.OrderedDict()
        self._building: dict[tuple[str, int], threading.Lock] = {}

    def get(self, bundle: SceneBundle) -> FusedWorld:
        key = _scene_key(bundle)
        with self._lock:
            world = self._worlds.get(key)
            if world is not None:
                self._worlds.move_to_end(key)
                return world
            building = self._building.setdefault(key, threading.Lock())
        with building:  # one thread fuses; the others wait for it
            with self._lock:
                world = self._worlds.get(key)
            if world is None:
                world = fuse_world(bundle, self.config)
                with self._lock:
                    self._worlds[key] = world
                    while len(self._worlds) > self.capacity:
                        self._worlds.popitem(last=False)
                    self._building.pop(key, None)
        return world


def _scene_key(bundle: SceneBundle) -> tuple[str, int]:
    try:
        stamp = (bundle.path / "scene.json").stat().st_mtime_ns
    except OSError:
        stamp = 0
    return str(bundle.path.resolve()), stamp
