"""The baseline generator: the explicit spatial constraint plus a hole fill, no neural network.

For each requested frame, the reference frame at the same scene time is forward-splatted into the
requested camera (geometry/splat.py) and the disoccluded holes are filled by push-pull
(geometry/fill.py). This is what the STAR model conditions on, and what its quality is compared
against; it also serves the demo on a machine with no model bundle.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgument
from ..geometry.fill import push_pull_fill
from ..geometry.splat import SplatterCache
from ..scenes.bundle import SceneBundle
from .generator import FrameRequest

#: Largest output side, pixels (the renderer's buffers grow with the square of it).
MAX_SIDE = 4096


class ExplicitSession:
    """Per-client state: splatters cached per target intrinsics (they hold work buffers)."""

    block_frames = 1

    def __init__(self, scene: SceneBundle, width: int, height: int) -> None:
        self.scene = scene
        self.width = width
        self.height = height
        self._splatters = SplatterCache(scene.meta.intrinsics)

    def render(self, request: FrameRequest) -> np.ndarray:
        """One (height, width, 4) uint8 RGBA frame; alpha 255."""
        i = self.scene.frame_index(request.scene_time_s)
        result = self._splatters.get(request.intrinsics)(
            self.scene.frames[i], self.scene.depth[i], self.scene.poses[i], request.c2w
        )
        rgb = push_pull_fill(result.colour, result.mask)
        out = np.empty((self.height, self.width, 4), np.uint8)
        out[..., :3] = rgb
        out[..., 3] = 255
        return out

    def generate_block(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        return [self.render(r) for r in requests]

    def reset(self) -> None:
        pass  # no history

    def close(self) -> None:
        self._splatters.clear()


class ExplicitGenerator:
    name = "explicit-fill"
    execution_provider = "numpy"

    def check_size(self, width: int, height: int) -> None:
        for field, value in (("width", width), ("height", height)):
            if not 1 <= value <= MAX_SIDE:
                raise InvalidArgument(f"{field} must be in [1, {MAX_SIDE}], got {value}", field=field)

    def open(self, scene: SceneBundle, width: int, height: int) -> ExplicitSession:
        self.check_size(width, height)
        return ExplicitSession(scene, width, height)
