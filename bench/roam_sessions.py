"""Roam benchmark sessions: the explicit generator as it was before the fused world (the baseline the roam
paths compare against), and per-pixel coverage of a flight (what backed each pixel: the same-time frame, the
fused world, the session memory, or nothing)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
for _path in (REPO_ROOT / "backend", REPO_ROOT):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench.bench_quality import generate  # noqa: E402
from starbridge.geometry.fill import push_pull_fill  # noqa: E402
from starbridge.geometry.splat import SplatResult, SplatterCache  # noqa: E402
from starbridge.runtime.generator import FrameRequest  # noqa: E402
from starbridge.runtime.memory import WorldMemory  # noqa: E402

REFERENCE_ONLY = "reference-only"
#: Coverage categories (uint8 per pixel).
FRAME, WORLD, MEMORY, NONE = 0, 1, 2, 3
CATEGORIES = ("frame", "world", "memory", "none")


# ---------------------------------------------------------------------------------------------- the old generator


class ReferenceOnlySession:
    """The explicit generator before the fused world (git 6e74102~3): the same-time reference frame splatted
    into the requested camera, holes filled by push-pull; no memory, no history."""

    block_frames = 1

    def __init__(self, scene: Any, width: int, height: int) -> None:
        self.scene = scene
        self.width = width
        self.height = height
        self._splatters = SplatterCache(scene.meta.intrinsics)

    def splat(self, request: FrameRequest) -> SplatResult:
        i = self.scene.frame_index(request.scene_time_s)
        return self._splatters.get(request.intrinsics)(
            self.scene.frames[i], self.scene.depth[i], self.scene.poses[i], request.c2w
        )

    def render(self, request: FrameRequest) -> np.ndarray:
        result = self.splat(request)
        out = np.empty((self.height, self.width, 4), np.uint8)
        out[..., :3] = push_pull_fill(result.colour, result.mask)
        out[..., 3] = 255
        return out

    def generate_block(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        return [self.render(r) for r in requests]

    def reset(self) -> None:
        pass

    def close(self) -> None:
        self._splatters.clear()


class ReferenceOnlyGenerator:
    name = REFERENCE_ONLY
    execution_provider = "numpy"

    def open(self, scene: Any, width: int, height: int) -> ReferenceOnlySession:
        return ReferenceOnlySession(scene, width, height)


# ---------------------------------------------------------------------------------------------- coverage


class CoverageProbe:
    """Per-pixel coverage category (FRAME, WORLD, MEMORY, NONE) of a request, from the session's own splat,
    for sessions that have `splat(request) -> SplatResult` (None for others). Call before the request is
    generated (the memory must not yet hold that frame)."""

    def __init__(self, scene: Any) -> None:
        self.scene = scene
        self._frames = SplatterCache(scene.meta.intrinsics)

    def __call__(self, session: Any, request: FrameRequest) -> np.ndarray | None:
        splat = getattr(session, "splat", None)
        if not callable(splat):
            return None
        scene = self.scene
        i = scene.frame_index(request.scene_time_s)
        frame = self._frames.get(request.intrinsics)(scene.frames[i], scene.depth[i], scene.poses[i], request.c2w).mask
        full = splat(request).mask
        memory = getattr(session, "memory", None)
        if isinstance(memory, WorldMemory) and len(memory):
            session.memory = WorldMemory(memory.config)  # the same splat without the memory: what was observed
            try:
                observed = splat(request).mask
            finally:
                session.memory = memory
        else:
            observed = full
        cat = np.full(full.shape, NONE, np.uint8)
        cat[full] = MEMORY
        cat[observed] = WORLD
        cat[frame & observed] = FRAME
        return cat


def run_path(
    session: Any, requests: Sequence[FrameRequest], width: int, height: int, probe: CoverageProbe | None
) -> tuple[np.ndarray, np.ndarray | None, float]:
    """Frames of `requests` ((N, H, W, 3) uint8), their coverage categories ((N, H, W) uint8, or None when the
    session has no splat or makes blocks of more than one frame), and the seconds spent generating."""
    if probe is None or int(session.block_frames) != 1 or not callable(getattr(session, "splat", None)):
        frames, spent = generate(session, requests, width, height)
        return frames, None, spent
    made: list[np.ndarray] = []
    cats: list[np.ndarray] = []
    spent = 0.0
    for r in requests:
        cat = probe(session, r)
        assert cat is not None  # the session has a splat
        cats.append(cat)
        f, s = generate(session, [r], width, height)
        made.append(f[0])
        spent += s
    return np.stack(made), np.stack(cats), spent
