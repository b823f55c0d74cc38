"""What the backend says about a frame, in one type (docs/architecture.md §4).

The same fields travel in `FrameReady` (engine.proto) and in a ring slot's header (ring.py), and a
client hands them on with the pixels: `FrameMeta` is that record, `Frame` a FrameMeta with its
pixels. Conversions to and from FrameReady live here; the ring packs and unpacks the same record.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..protocol import engine_pb2 as pb
from .convert import pose_to_proto


@dataclass(frozen=True)
class FrameMeta:
    """One frame's metadata: which frame, which pose it answers, the pose it was generated for, its size."""

    #: Grows by one per frame of a session (>= 1).
    frame_sequence: int
    #: Ring slot the pixels are in (shared memory); 0 for inline frames. `FrameRingWriter.write` picks it.
    slot: int
    #: Sequence of the CameraPose the frame answers.
    pose_sequence: int
    #: The engine clock of that pose, echoed: the engine measures pose-to-frame latency with it.
    engine_time_us: int
    #: The pose the frame was generated for (predicted to its display time), wire convention:
    #: position (x, y, z) in scene metres, rotation a unit quaternion (x, y, z, w).
    position: tuple[float, float, float]
    rotation: tuple[float, float, float, float]
    vertical_fov_deg: float
    #: Viewport aspect (width / height) the frame was generated with; 0: the frame's.
    aspect: float
    #: Scene clock time the frame shows, seconds.
    scene_time_s: float
    #: How long generating the frame took, milliseconds.
    generation_latency_ms: float
    width: int
    height: int

    def to_proto(self, out: pb.FrameReady | None = None) -> pb.FrameReady:
        """This record as a FrameReady (filled into `out` when given, e.g. `message.frame`); returns it."""
        fr = pb.FrameReady() if out is None else out
        fr.frame_sequence = self.frame_sequence
        fr.slot = self.slot
        fr.pose_sequence = self.pose_sequence
        fr.engine_time_us = self.engine_time_us
        pose_to_proto(self.position, self.rotation, fr.pose)
        fr.vertical_fov_deg = self.vertical_fov_deg
        fr.aspect = self.aspect
        fr.scene_time_s = self.scene_time_s
        fr.generation_latency_ms = self.generation_latency_ms
        fr.width, fr.height = self.width, self.height
        return fr

    @classmethod
    def from_proto(cls, fr: pb.FrameReady) -> FrameMeta:
        """The record a FrameReady carries (floats as the wire has them: single precision)."""
        p, q = fr.pose.position, fr.pose.rotation
        return cls(
            frame_sequence=fr.frame_sequence,
            slot=fr.slot,
            pose_sequence=fr.pose_sequence,
            engine_time_us=fr.engine_time_us,
            position=(p.x, p.y, p.z),
            rotation=(q.x, q.y, q.z, q.w),
            vertical_fov_deg=fr.vertical_fov_deg,
            aspect=fr.aspect,
            scene_time_s=fr.scene_time_s,
            generation_latency_ms=fr.generation_latency_ms,
            width=fr.width,
            height=fr.height,
        )


@dataclass(frozen=True)
class Frame:
    """A frame's pixels and what the backend said about them.

    `pixels` is (height, width, 4) uint8 RGBA, sRGB, rows top to bottom. Whoever returns a Frame says
    whether the array is the caller's reused buffer (overwritten by the next read into it), a view of a
    received message, or a new array.
    """

    meta: FrameMeta
    pixels: np.ndarray = field(repr=False, compare=False)
