"""A session's world memory: what the session showed where no reference frame saw anything.

When a frame has holes (pixels the fused world does not cover: disocclusions, or directions the video
never looked), the generator makes them up: push-pull fill for the explicit generator, the network's
output for STAR. Without memory that content is re-invented every frame, so turning away and back shows
something different. The memory keeps it, with the geometry the generator assumed (the fill's depth), as
points the next frames splat together with the fused world: content seen once stays where it was.

Each frame's addition is a chunk with its bounding boxes, so a frame splats only the chunks that can land in
its holes. Bounded: at most `max_points` points; past that the oldest additions are forgotten first. It belongs to
one session (docs/architecture.md §8) and is freed with it. Only static content goes in (holes are filled
around the static world; moving objects come from the same-time reference frame), so a seek or a jump of
the scene clock keeps it.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..geometry.splat import SetBounds, bounding_boxes


@dataclass(frozen=True)
class MemoryConfig:
    #: Points kept at most (16 + 3 bytes each: 1 M is about 19 MB). A frame projects only the chunks whose
    #: bounds reach its holes. A turn of 180 degrees at 512x288 remembers about 450 k points (a smaller cap
    #: forgets the way out before the way back: bench_quality --paths roam, revisit).
    max_points: int = 1_000_000


@dataclass(frozen=True)
class MemoryChunk:
    """The points one frame added, with their bounds (so a frame that cannot see them skips them whole)."""

    #: (N, 4) float32 homogeneous world points (stored column by column: each coordinate contiguous, so a
    #: frame projects them faster), (N, 3) uint8 colours.
    points: np.ndarray
    colours: np.ndarray
    #: (B, 8, 4) float32 boxes around its points (geometry.splat.bounding_boxes).
    boxes: np.ndarray


class WorldMemory:
    """Points added in chunks (one per frame); oldest chunks evicted first. Not thread-safe (one session)."""

    def __init__(self, config: MemoryConfig = MemoryConfig()) -> None:  # noqa: B008 (frozen)
        self.config = config
        self._chunks: collections.deque[MemoryChunk] = collections.deque()
        self._size = 0
        self._joined: tuple[np.ndarray, np.ndarray] | None = None
        self._bounds: SetBounds | None = None

    def __len__(self) -> int:
        return self._size

    def add(self, points: np.ndarray, colours: np.ndarray) -> None:
        """Remember (N, 4) float32 homogeneous world points with (N, 3) uint8 colours."""
        if len(points) == 0:
            return
        if len(points) > self.config.max_points:  # one huge frame: keep its first max_points
            points, colours = points[: self.config.max_points], colours[: self.config.max_points]
        self._chunks.append(MemoryChunk(np.ascontiguousarray(points.T).T, colours, bounding_boxes(points)))
        self._size += len(points)
        while self._size > self.config.max_points:
            old = self._chunks.popleft()
            self._size -= len(old.points)
        self._joined = None
        self._bounds = None

    def chunks(self) -> tuple[MemoryChunk, ...]:
        """The remembered chunks, oldest first."""
        return tuple(self._chunks)

    def bounds(self) -> SetBounds:
        """The chunks' boxes, gathered (cached until the next add) to cull chunks per frame."""
        if self._bounds is None:
            self._bounds = SetBounds([c.boxes for c in self._chunks])
        return self._bounds

    def arrays(self, chunks: Sequence[MemoryChunk] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The remembered points and colours (of `chunks`, when given: e.g. those a camera may see), as one (N, 4)
        and one (N, 3) array (all of them: cached until the next add)."""
        if chunks is not None and len(chunks) < len(self._chunks):
            return _join(chunks)
        if self._joined is None:
            self._joined = _join(self._chunks)
        return self._joined

    def clear(self) -> None:
        self._chunks.clear()
        self._size = 0
        self._joined = None
        self._bounds = None


def _join(chunks: Iterable[MemoryChunk]) -> tuple[np.ndarray, np.ndarray]:
    chunks = list(chunks)
    if not chunks:
        return np.empty((0, 4), np.float32), np.empty((0, 3), np.uint8)
    points = np.concatenate([c.points.T for c in chunks], axis=1).T  # column by column: projected faster
    return points, np.concatenate([c.colours for c in chunks])
