"""The generator interface: what the server asks of whatever makes frames.

A `Generator` is shared, read-only, and opens one `GeneratorSession` per client session; the
session owns all mutable state (for STAR: the KV cache). The server's block scheduler calls
`generate_block` with one `FrameRequest` per frame of the next block, poses predicted to the
frames' display times. Implementations: `explicit.ExplicitGenerator` (render + hole fill,
the baseline) and `star.StarGenerator` (the STAR model on ONNX Runtime).

Usage::

    gen = ExplicitGenerator()
    gen.check_size(512, 288)                      # raises InvalidArgument if it cannot
    sess = gen.open(scene_bundle, 512, 288)
    frames = sess.generate_block([FrameRequest(c2w, intr, t) for ...])  # list of (H, W, 4) uint8
    sess.reset()                                   # e.g. after a seek: forget history
    sess.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..geometry.camera import Intrinsics

if TYPE_CHECKING:
    from ..scenes.bundle import SceneBundle


@dataclass(frozen=True)
class FrameRequest:
    """One frame to make: where the camera is, what it sees with, and when in the scene."""

    #: (4, 4) float64 camera-to-world, wire convention (camera looks down -Z, +Y up), scene units.
    c2w: np.ndarray
    #: Intrinsics at the session's output size.
    intrinsics: Intrinsics
    #: Scene time in seconds (already wrapped into the scene's duration).
    scene_time_s: float


class GeneratorSession(Protocol):
    """Per-client generator state."""

    #: Frames per call of generate_block.
    block_frames: int

    def generate_block(self, requests: Sequence[FrameRequest]) -> list[np.ndarray]:
        """Return one (height, width, 4) uint8 RGBA sRGB frame per request, rows top to bottom."""
        ...

    # Optional: `observed_masks`, a list with one (height, width) bool array per frame of the last block, True
    # where a reference frame saw the pixel (False: invented by memory or fill); the viewer's coverage overlay
    # shows it. Generators that cannot tell leave it out (or None).

    def reset(self) -> None:
        """Forget history (after a seek or a jump of the camera)."""
        ...

    def close(self) -> None:
        """Free resources; the session is not used again."""
        ...


class Generator(Protocol):
    """Shared, read-only: makes per-client sessions."""

    #: Short name shown to clients, e.g. "explicit-fill".
    name: str
    #: ONNX Runtime execution provider it runs on, or "numpy".
    execution_provider: str

    def check_size(self, width: int, height: int) -> None:
        """Raise InvalidArgument naming the field and the bound when it cannot make this size."""
        ...

    def prepare(self, scene: SceneBundle) -> None:
        """Do a scene's one-off work now (e.g. at start-up), so its first session does not wait for it."""
        ...

    def open(self, scene: SceneBundle, width: int, height: int) -> GeneratorSession: ...
