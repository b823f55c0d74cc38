"""Camera paths over a procedural world: the demo's reference path, the random reference and novel paths of
training samples, and a closed loop for benchmarks.

Poses are (N, 4, 4) camera-to-world matrices in the wire convention (camera looks down -Z, +Y up). Every
reference path starts at the identity (frame 0 is the scene's origin camera) and stays inside the disc the
world's layout keeps free (`world.CLEAR_CENTRE_XZ`), with a margin, so no camera is ever inside a box.

* `arc_path`: the demo scene's reference video: an arc around a point ahead while dollying towards it, a
  slight extra pan and a vertical bob (deterministic).
* `random_reference_path`: a sample's reference clip: a random mix of dolly, truck, arc, pan, tilt and bob.
* `novel_offsets` + `novel_path`: a sample's novel path: camera-local offsets from the reference, eased from
  a random start to a random end, shrunk until every camera is in the free disc and above the ground.
* `loop_around`: a closed loop of poses around the origin camera (the render benchmark's target cameras).

Engine flight paths (`starbridge fly`: orbit, dolly, pan, tour as functions of time) are not here: they fly
through any scene, imported or procedural, and live with the client (`client/paths.py`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .raycast import yaw_rotation
from .world import CLEAR_CENTRE_XZ, CLEAR_SLOT_RADIUS_M

if TYPE_CHECKING:
    from .samples import SampleConfig

#: Cameras stay inside the layout's free disc by this margin, metres.
CLEAR_MARGIN_M = 0.4
CLEAR_RADIUS_M = CLEAR_SLOT_RADIUS_M - CLEAR_MARGIN_M
#: Cameras stay at least this high above the ground, metres.
MIN_CAMERA_HEIGHT_M = 0.5


# ---------------------------------------------------------------------------------------------- poses


def yaw_pitch(yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """(3, 3) yaw about +Y (positive turns the view left), then pitch about the camera's +X (positive: up)."""
    p = math.radians(pitch_deg)
    cp, sp = math.cos(p), math.sin(p)
    pitch = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    return yaw_rotation(math.radians(yaw_deg)) @ pitch


def pose(yaw_deg: float, pitch_deg: float, position) -> np.ndarray:
    """(4, 4) camera-to-world (or a camera-local offset): `yaw_pitch` rotation at `position` (x, y, z)."""
    m = np.eye(4)
    m[:3, :3] = yaw_pitch(yaw_deg, pitch_deg)
    m[:3, 3] = position
    return m


def ease(s: np.ndarray) -> np.ndarray:
    """Smoothstep: 0 -> 0, 1 -> 1, zero slope at both ends."""
    return s * s * (3.0 - 2.0 * s)


def _progress(n: int) -> np.ndarray:
    """(n,) path parameter from 0 to 1 (a single frame sits at 0)."""
    return np.linspace(0.0, 1.0, n) if n > 1 else np.zeros(1)


# ---------------------------------------------------------------------------------------------- the demo's path


def arc_path(
    frames: int, *, arc_focus_m: float, arc_deg: float, dolly_m: float, pan_deg: float, bob_m: float
) -> np.ndarray:
    """(frames, 4, 4) poses (layout metres), frame 0 the identity: the camera arcs to the right by `arc_deg`
    around a point `arc_focus_m` ahead while moving `dolly_m` towards it, pans a further `pan_deg` (negative:
    to the right) and rises and falls by `bob_m`."""
    n = frames
    poses = np.repeat(np.eye(4)[None], n, axis=0)
    for i in range(n):
        s = i / max(n - 1, 1)
        phi = math.radians(arc_deg) * s
        radius = arc_focus_m - dolly_m * s
        poses[i, :3, :3] = yaw_rotation(phi + math.radians(pan_deg) * s)
        poses[i, :3, 3] = [
            radius * math.sin(phi),
            bob_m * math.sin(math.pi * s),
            -arc_focus_m + radius * math.cos(phi),
        ]
    poses[0] = np.eye(4)
    return poses


# ---------------------------------------------------------------------------------------------- sample paths


def random_reference_path(rng: np.random.Generator, c: SampleConfig) -> np.ndarray:
    """(N, 4, 4) reference poses in layout metres: identity at frame 0, then a random mix of a dolly (along the
    first view direction), a truck (sideways), an arc around a point ahead, a pan, a tilt and a vertical bob."""
    on = rng.random(5) < c.motion_p
    dolly = float(rng.uniform(*c.dolly_m)) * on[0]
    truck = float(rng.uniform(-1.0, 1.0)) * c.truck_m * on[1]
    arc = math.radians(float(rng.uniform(-1.0, 1.0)) * c.arc_deg) * on[2]
    focus = float(rng.uniform(*c.arc_focus_m))
    pan = float(rng.uniform(-1.0, 1.0)) * c.pan_deg * on[3]
    tilt = float(rng.uniform(-1.0, 1.0)) * c.tilt_deg * on[4]
    bob = float(rng.uniform(-1.0, 1.0)) * c.bob_m
    poses = np.repeat(np.eye(4)[None], c.frames, axis=0)
    for i, si in enumerate(_progress(c.frames)):
        phi = arc * si
        x = focus * math.sin(phi) + truck * si
        z = -focus + focus * math.cos(phi) - dolly * si
        poses[i] = pose(math.degrees(phi) + pan * si, tilt * si, (x, bob * math.sin(math.pi * si), z))
    keep_clear(poses, 1.0)
    poses[0] = np.eye(4)
    return poses


def novel_offsets(rng: np.random.Generator, c: SampleConfig) -> np.ndarray:
    """(N, 4, 4) camera-local offsets (translation in scene units), eased from a random start to a random end,
    with a per-sample magnitude so that both small and large departures occur."""
    magnitude = float(rng.uniform(0.3, 1.0))
    ends = []
    for _ in range(2):
        t = rng.uniform(-1.0, 1.0, 3) * np.array([c.max_offset_m, c.max_vertical_m, c.max_offset_m]) * magnitude
        length = float(np.linalg.norm(t))
        if length > c.max_offset_m:
            t *= c.max_offset_m / length
        angles = rng.uniform(-1.0, 1.0, 2) * np.array([c.max_yaw_deg, c.max_pitch_deg]) * magnitude
        ends.append((t, angles))
    out = np.repeat(np.eye(4)[None], c.frames, axis=0)
    for i, wi in enumerate(ease(_progress(c.frames))):
        yaw, pitch = (1 - wi) * ends[0][1] + wi * ends[1][1]
        out[i] = pose(yaw, pitch, (1 - wi) * ends[0][0] + wi * ends[1][0])
    return out


def novel_path(ref_poses: np.ndarray, offsets: np.ndarray, scale: float, eye_height_m: float) -> np.ndarray:
    """ref_poses @ offsets, with the offsets' translations shrunk (for the whole path) until every camera is
    inside the layout's free disc and above the ground. `scale`: scene units per layout metre."""
    offsets = offsets.copy()
    for _ in range(20):
        poses = np.einsum("nij,njk->nik", ref_poses, offsets)
        if is_clear(poses, scale, eye_height_m):
            return poses
        offsets[:, :3, 3] *= 0.8
    offsets[:, :3, 3] = 0.0
    return np.einsum("nij,njk->nik", ref_poses, offsets)


def is_clear(poses: np.ndarray, scale: float, eye_height_m: float) -> bool:
    """Whether every camera is inside the free disc (with the margin) and MIN_CAMERA_HEIGHT_M above the ground."""
    pos = poses[:, :3, 3] / scale  # layout metres
    radius = np.hypot(pos[:, 0] - CLEAR_CENTRE_XZ[0], pos[:, 2] - CLEAR_CENTRE_XZ[1])
    return bool((radius <= CLEAR_RADIUS_M).all() and (pos[:, 1] + eye_height_m >= MIN_CAMERA_HEIGHT_M).all())


def keep_clear(poses: np.ndarray, scale: float) -> None:
    """Shrink the path's translations (in place, towards the origin) until it stays in the free disc."""
    for _ in range(20):
        if is_clear(poses, scale, math.inf):
            return
        poses[:, :3, 3] *= 0.8


# ---------------------------------------------------------------------------------------------- benchmark loop


def loop_around(
    n: int = 48,
    *,
    sideways_m: float = 0.4,
    vertical_m: float = 0.1,
    forward_m: float = 0.3,
    yaw_deg: float = 6.0,
    pitch_deg: float = 3.0,
) -> np.ndarray:
    """(n, 4, 4) poses on a closed loop around the origin camera: up to `sideways_m` to either side,
    `forward_m` forward and back, `vertical_m` up and down, turning up to `yaw_deg` and pitching `pitch_deg`."""
    poses = np.empty((n, 4, 4))
    for i in range(n):
        phi = 2.0 * math.pi * i / n
        position = (sideways_m * math.sin(phi), vertical_m * math.sin(2 * phi), -forward_m * math.cos(phi))
        poses[i] = pose(yaw_deg * math.sin(phi + 0.5), pitch_deg * math.cos(2 * phi), position)
    return poses
