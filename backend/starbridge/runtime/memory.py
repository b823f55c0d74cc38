"""A session's world memory: what the session showed where no reference frame saw anything.

When a frame has holes (pixels the fused world does not cover: disocclusions, or directions the video
never looked), the generator makes them up: push-pull fill for the explicit generator, the network's
output for STAR. Without memory that content is re-invented every frame, so turning away and back shows
something different. The memory keeps it, with the geometry the generator assumed (the fill's depth), as
points the next frames splat together with the fused world: content seen once stays where it was.

Bounded: at most `max_points` points; past that the oldest additions are forgotten first. It belongs to
one session (docs/architecture.md §8) and is freed with it. Only static content goes in (holes are filled
around the static world; moving objects come from the same-time reference frame), so a seek or a jump of
the scene clock keeps it.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MemoryConfig:
    #: Points kept at most (16 + 3 bytes each: 300 k is about 6 MB; each frame projects all of them).
    max_points: int = 300_000


class WorldMemory:
    """Points added in chunks (one per frame); oldest chunks evicted first. Not thread-safe (one session)."""

    def __init__(self, config: MemoryConfig = MemoryConfig()) -> None:  # noqa: B008 (frozen)
        self.config = config
        self._chunks: collections.deque[tuple[np.ndarray, np.ndarray]] = collections.deque()
        self._size = 0
        self._joined: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self._size

    def add(self, points: np.ndarray, colours: np.ndarray) -> None:
        """Remember (N, 4) float32 homogeneous world points with (N, 3) uint8 colours."""
        if len(points) == 0:
            return
        if len(points) > self.config.max_points:  # one huge frame: keep its first max_points
            points, colours = points[: self.config.max_points], colours[: self.config.max_points]
        self._chunks.append((points, colours))
        self._size += len(points)
        while self._size > self.config.max_points:
            old, _ = self._chunks.popleft()
            self._size -= len(old)
        self._joined = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """All remembered points and colours, as one (N, 4) and one (N, 3) array (cached until the next add)."""
        if self._joined is None:
            if self._chunks:
                self._joined = (
                    np.concatenate([p for p, _ in self._chunks]),
                    np.concatenate([c for _, c in self._chunks]),
                )
            else:
                self._joined = (np.empty((0, 4), np.float32), np.empty((0, 3), np.uint8))
        return self._joined

    def clear(self) -> None:
        self._chunks.clear()
        self._size = 0
        self._joined = None
