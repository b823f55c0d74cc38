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


# ---------------------------------------------------------------------------------------------- roaming paths
#
# The roam benchmark (bench/bench_quality.py --paths roam) looks far beyond the reference frame: turns of
# 90 and 180 degrees, strafes and dollies of a few metres, and tours that come back to earlier poses. The
# paths start at the origin camera (the reference video's first camera; its position is the layout's
# origin), distances are layout metres (the world's own metres) converted to scene units with the sample's
# `scale`, and every camera stays in the free disc (`is_clear`): a requested distance that does not fit is
# cut to what fits (`clear_distance`), and `roam_paths` reports the distance it used.

#: The roaming paths `roam_paths` makes, in order.
ROAM_PATHS = ("turn-left", "turn-right", "turn-back", "strafe", "dolly", "return")
#: The "return" tour's waypoints after the origin: (x, z) layout metres, yaw degrees (positive: left).
#: Both lie well inside the free disc (a straight leg between two points of the disc stays in it).
ROAM_TOUR = (((-1.4, -0.4), 75.0), ((1.1, -2.0), -100.0))


def clear_distance(direction_xz, start_xz=(0.0, 0.0)) -> float:
    """How far (layout metres) a camera at `start_xz` (layout metres, inside the disc) can move along
    `direction_xz` (any length) and stay in the free disc with the margin (CLEAR_RADIUS_M)."""
    d = np.asarray(direction_xz, np.float64)
    d = d / np.linalg.norm(d)
    p = np.asarray(start_xz, np.float64) - np.asarray(CLEAR_CENTRE_XZ, np.float64)
    b = float(p @ d)
    disc = b * b - float(p @ p) + CLEAR_RADIUS_M**2
    return max(0.0, -b + math.sqrt(disc)) if disc >= 0 else 0.0


def _there_and_back(n: int, end_of) -> np.ndarray:
    """(n, 4, 4): `end_of(s)` for s eased 0 -> 1 -> 0 over the path, symmetric (pose k is pose n - 1 - k), so
    the second half revisits the first half's poses exactly."""
    half = (n - 1) / 2.0
    out = np.empty((n, 4, 4))
    for k in range(n):
        s = float(ease(np.asarray(min(k, n - 1 - k) / half))) if n > 1 else 0.0
        out[k] = end_of(s)
    return out


def roam_turn(n: int, yaw_deg: float, base: np.ndarray | None = None) -> np.ndarray:
    """(n, 4, 4): turn in place from `base` (default the identity) by `yaw_deg` (positive: left), eased."""
    base = np.eye(4) if base is None else base
    return np.stack([base @ pose(yaw_deg * float(s), 0.0, (0.0, 0.0, 0.0)) for s in ease(_progress(n))])


def roam_turn_back(n: int, yaw_deg: float = 180.0, base: np.ndarray | None = None) -> np.ndarray:
    """(n, 4, 4): turn in place by `yaw_deg` and back (pose k is pose n - 1 - k exactly; odd n peaks exactly)."""
    base = np.eye(4) if base is None else base
    return _there_and_back(n, lambda s: base @ pose(yaw_deg * s, 0.0, (0.0, 0.0, 0.0)))


def roam_move_back(n: int, offset, base: np.ndarray | None = None) -> np.ndarray:
    """(n, 4, 4): move by the camera-local `offset` (x right, y up, z back; scene units) looking ahead, then
    back to `base` along the same line (pose k is pose n - 1 - k)."""
    base = np.eye(4) if base is None else base
    offset = np.asarray(offset, np.float64)
    return _there_and_back(n, lambda s: base @ pose(0.0, 0.0, offset * s))


def roam_tour(n: int, waypoints, base: np.ndarray | None = None) -> np.ndarray:
    """(n', 4, 4) with n' close to n: straight eased legs through `waypoints` ((x, y, z) scene units, yaw
    degrees), the first leg starting at the first waypoint; legs share their end poses (no repeated frame)."""
    base = np.eye(4) if base is None else base
    legs = len(waypoints) - 1
    per = max(2, round((n - 1) / legs))
    out = [base @ pose(waypoints[0][1], 0.0, waypoints[0][0])]
    for (p0, y0), (p1, y1) in zip(waypoints[:-1], waypoints[1:], strict=True):
        p0, p1 = np.asarray(p0, np.float64), np.asarray(p1, np.float64)
        for s in ease(_progress(per + 1))[1:]:
            out.append(base @ pose((1 - s) * y0 + s * y1, 0.0, (1 - s) * p0 + s * p1))
    return np.stack(out)


def roam_paths(
    n: int, scale: float, eye_height_m: float, *, strafe_m: float = 2.5, dolly_m: float = 2.5
) -> dict[str, tuple[np.ndarray, dict]]:
    """The roaming paths (ROAM_PATHS) of a world: name -> ((n or about n, 4, 4) scene-unit poses, what it
    does, with the distances used in layout metres and scene units). `scale`: scene units per layout metre;
    `strafe_m` (to the right) and `dolly_m` (forward) are layout metres, cut to what fits in the free disc
    (the "fits" field says whether the requested distance did). Every path passes `is_clear`."""
    out: dict[str, tuple[np.ndarray, dict]] = {
        "turn-left": (roam_turn(n, 90.0), {"what": "turn in place 90 degrees to the left"}),
        "turn-right": (roam_turn(n, -90.0), {"what": "turn in place 90 degrees to the right"}),
        "turn-back": (roam_turn_back(n, 180.0), {"what": "turn 180 degrees to the left and back"}),
    }
    for name, request, direction, local in (
        ("strafe", strafe_m, (1.0, 0.0), (1.0, 0.0, 0.0)),
        ("dolly", dolly_m, (0.0, -1.0), (0.0, 0.0, -1.0)),
    ):
        room = clear_distance(direction) - 1e-6
        used = min(request, room)
        poses = roam_move_back(n, np.asarray(local) * used * scale)
        way = "to the right" if name == "strafe" else "forward"
        out[name] = (
            poses,
            {
                "what": f"move {used:.2f} m {way} looking ahead, and back",
                "requested_m": request,
                "used_m": used,
                "used_scene_units": used * scale,
                "fits": bool(used >= request),
            },
        )
    points = [((0.0, 0.0, 0.0), 0.0)] + [((x * scale, 0.0, z * scale), yaw) for (x, z), yaw in ROAM_TOUR]
    tour = [points[0], points[1], points[2], points[0], points[1]]
    out["return"] = (
        roam_tour(n, tour),
        {"what": "tour origin -> A -> B -> origin -> A (comes back to earlier poses)", "waypoints_m": ROAM_TOUR},
    )
    for name, (poses, _) in out.items():
        if not is_clear(poses, scale, eye_height_m):
            raise AssertionError(f"roam path {name} leaves the free disc")
    return out
